"""Scale error of the camera-height estimate on the synthetic street's ground-truth depth.

    python -m monodepth2_ros.tools.ground_plane_figures --seeds 0 1 2 3 --frames 10 [--noise 0.05]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from monodepth2_ros.inference.ground_plane import find_ground_plane
from monodepth2_ros.inference.scale import CameraHeightScale
from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive


def main(argv: list[str] | None = None) -> int:
    """Scale error of the camera-height estimate on the synthetic street's ground-truth depth."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--frames", type=int, default=10, help="frames per seed (a scale estimate after each)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--factor", type=float, default=7.3, help="ground truth is divided by this unknown factor")
    parser.add_argument("--noise", type=float, default=0.0, help="relative Gaussian noise on every depth (0.05 = 5 %%)")
    options = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    errors = []
    for seed in options.seeds:
        config = SynthConfig(frames=options.frames, width=options.width, height=options.height, seed=seed)
        drive = SyntheticDrive(config)
        source = CameraHeightScale(config.camera_height_m)
        single = []
        for frame in drive.iter_frames():
            noise = 1.0 + options.noise * rng.standard_normal(frame.depth.shape)
            depth_units = torch.from_numpy(frame.depth * noise / options.factor)[None, None]
            search = find_ground_plane(depth_units, drive.K)
            if search.found:
                single.append(config.camera_height_m / search.plane.height / options.factor - 1.0)
            source.observe(depth_units, drive.K)
        final = source.scale / options.factor - 1.0
        errors.extend(single)
        print(
            f"seed {seed}: {len(single)}/{options.frames} frames with a plane; per-frame error "
            f"median {np.median(np.abs(single)) * 100:.2f} % max {np.max(np.abs(single)) * 100:.2f} %; "
            f"smoothed scale error {final * 100:+.2f} %"
        )
    if errors:
        absolute = np.abs(errors) * 100
        print(
            f"all: {len(errors)} frames, |error| median {np.median(absolute):.2f} %, "
            f"p95 {np.percentile(absolute, 95):.2f} %, max {absolute.max():.2f} %"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
