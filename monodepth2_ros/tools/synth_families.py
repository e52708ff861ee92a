"""Contact sheet and render speed of the synthetic scene families.

    python -m monodepth2_ros.tools.synth_families --sheet families.png --seeds 1 2 3
    python -m monodepth2_ros.tools.synth_families --bench --frames 20 --width 320 --height 96
    python -m monodepth2_ros.tools.synth_families --split 20 --width 320 --height 96 --frames 200

``--split N`` prints the ``monodepth2 synth`` commands of the default model's data: N training drives
of every training family and N evaluation drives per family (see ``synthetic/families.py``).

The sheet has one row per seed and one column per family: the image (with its sensor effects) above
its ground-truth depth (inverse depth, per image normalised). The benchmark renders ``--frames``
frames of each family (randomised, with sensor effects) on one thread and prints frames/s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive
from monodepth2_ros.synthetic.families import FAMILIES, held_out_drives, training_drives


def _inverse_depth_image(depth: np.ndarray) -> np.ndarray:
    import matplotlib

    inverse = 1.0 / np.where(np.isfinite(depth), np.maximum(depth, 1e-3), np.inf)
    top = np.percentile(inverse, 95) or 1.0
    return (matplotlib.colormaps["magma"](np.clip(inverse / top, 0, 1))[..., :3] * 255).astype(np.uint8)


def contact_sheet(seeds: list[int], width: int, height: int, frame: int) -> np.ndarray:
    rows = []
    for seed in seeds:
        cells = []
        for family in FAMILIES:
            drive = SyntheticDrive(SynthConfig(frames=frame + 1, width=width, height=height, seed=seed, family=family,
                                               randomize=True))
            shot = drive.frame(frame)
            fov = np.degrees(2 * np.arctan(0.5 * width / drive.K[0, 0]))
            print(f"{family} seed {seed}: {drive.carrier}, hfov {fov:.0f}, camera height "
                  f"{shot.T_world_camera[2, 3]:.2f} m, depth median {np.nanmedian(shot.depth):.2f} m")
            cells.append(np.concatenate([shot.rgb, _inverse_depth_image(shot.depth)], axis=0))
            cells.append(np.full((2 * height, 4, 3), 255, np.uint8))
        rows.append(np.concatenate(cells[:-1], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def bench(frames: int, width: int, height: int, seeds: list[int]) -> None:
    print(f"{frames} frames per drive at {width}x{height}, 1 thread, randomised with sensor effects "
          "(street plain: today's default street, the reference)")
    for family in ("street plain",) + FAMILIES:
        rates, blurred = [], []
        for seed in seeds:
            plain = family == "street plain"
            drive = SyntheticDrive(SynthConfig(frames=frames, width=width, height=height, seed=seed,
                                               family="street" if plain else family, randomize=not plain))
            start = time.perf_counter()
            for _ in drive.iter_frames():
                pass
            rates.append(frames / (time.perf_counter() - start))
            blurred.append(drive.effects is not None and drive.effects.exposure_fraction > 0.0)
        rates = np.asarray(rates)
        blurred = np.asarray(blurred)
        sharp = f"{rates[~blurred].mean():.1f}" if (~blurred).any() else "-"
        blur = f"{rates[blurred].mean():.1f}" if blurred.any() else "-"
        print(f"{family:12s} {sharp:>6s} frames/s without motion blur, {blur:>5s} with it "
              f"(seeds {seeds}: {', '.join(f'{r:.1f}' + ('b' if b else '') for r, b in zip(rates, blurred))})")


def split_commands(count: int, width: int, height: int, frames: int, out_dir: str = "data/synth") -> list[str]:
    """``monodepth2 synth`` command lines for the training drives, then the held-back ones."""
    lines = []
    for role, drives in (("train", training_drives(count)), ("heldout", held_out_drives(count))):
        for family, seed in drives:
            lines.append(f"monodepth2 synth --out {out_dir}/{role}/{family}_{seed:04d} --family {family} --seed {seed} "
                         f"--randomize --width {width} --height {height} --frames {frames}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sheet", help="write the contact sheet PNG here")
    parser.add_argument("--bench", action="store_true", help="print the render speed per family")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--frame", type=int, default=10, help="frame of each drive on the sheet")
    parser.add_argument("--frames", type=int, default=20, help="frames per drive for --bench and --split")
    parser.add_argument("--split", type=int, metavar="N", help="print the synth commands of N drives per family")
    args = parser.parse_args(argv)
    if args.split:
        print("\n".join(split_commands(args.split, args.width, args.height, args.frames)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if args.sheet:
            import cv2

            sheet = contact_sheet(args.seeds, args.width, args.height, args.frame)
            cv2.imwrite(args.sheet, sheet[..., ::-1])
            print(f"contact sheet -> {args.sheet}")
        if args.bench:
            bench(args.frames, args.width, args.height, args.seeds)
    finally:
        torch.set_num_threads(threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
