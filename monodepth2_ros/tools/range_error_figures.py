"""Metric depth error by distance, as the depth node publishes it: where to cap a costmap's ranges.

    python -m monodepth2_ros.tools.range_error_figures --seed 9 --frames 20 [--weights DIR]

Renders a synthetic drive (seed 9 is the demo's held-out drive), runs the depth network, makes it
metric with the ``camera_height`` scale exactly as ``depth_node`` does (the median of per-frame
road-plane fits), and prints, per band of ground-truth distance, the share of pixels, the median
signed error and the 90th percentile of the relative error, once with that scale and once with
the per-frame median scale (the network's shape alone). Only the scan band's rows count with
``--scan-rows N`` (N rows around the optical centre), which is what ``scan`` sees.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from monodepth2_ros.inference.estimators import DepthEstimator, InferenceConfig
from monodepth2_ros.inference.preprocess import rgb_to_tensor
from monodepth2_ros.inference.scale import CameraHeightScale
from monodepth2_ros.inference.weights import resolve_weights
from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive

__all__ = ["range_error_table", "main"]

DEFAULT_EDGES_M = (0.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0)


def range_error_table(gt: np.ndarray, pred: np.ndarray, edges: tuple[float, ...]) -> list[dict[str, float]]:
    """Per band ``[edges[i], edges[i+1])`` of ground truth: pixel share, median signed and p90 relative error."""
    valid = np.isfinite(gt) & np.isfinite(pred) & (gt > 0)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = valid & (gt >= low) & (gt < high)
        relative = (pred[inside] - gt[inside]) / gt[inside]
        rows.append(
            {
                "low": low,
                "high": high,
                "share": float(inside.sum() / max(valid.sum(), 1)),
                "median_signed": float(np.median(relative)) if relative.size else float("nan"),
                "p90_abs": float(np.percentile(np.abs(relative), 90)) if relative.size else float("nan"),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the metric depth error by distance of a synthetic drive (markdown table)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--weights", default="", help="checkpoint folder (default: the bundled model)")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--scan-rows", type=int, default=0, help="only this many rows around the optical centre")
    options = parser.parse_args(argv)

    config = SynthConfig(frames=options.frames, width=options.width, height=options.height, seed=options.seed)
    drive = SyntheticDrive(config)
    estimator = DepthEstimator(resolve_weights(options.weights), InferenceConfig(device="cpu", scale=1.0))
    scale = CameraHeightScale(config.camera_height_m)
    gts, metric, median_scaled = [], [], []
    for frame in drive.iter_frames():
        with torch.inference_mode():
            units = estimator.disparity_to_depth(
                estimator.predict_disparity(rgb_to_tensor(frame.rgb, estimator.device)), frame.depth.shape
            )
        scale.observe(units, drive.K)
        depth_units = units[0, 0].numpy()
        gt = frame.depth
        if options.scan_rows:
            centre = int(round(drive.K[1, 2]))
            rows = slice(centre - options.scan_rows // 2, centre - options.scan_rows // 2 + options.scan_rows)
            gt, depth_units = gt[rows], depth_units[rows]
        finite = np.isfinite(gt)
        gts.append(gt)
        metric.append(depth_units * scale.scale)
        median_scaled.append(depth_units * np.median(gt[finite]) / np.median(depth_units[finite]))
    gt_all = np.concatenate([g.ravel() for g in gts])
    print(f"seed {options.seed}, {options.frames} frames at {options.width}x{options.height}, "
          f"camera_height scale {scale.scale:.4g} m/unit ({'metric' if scale.is_metric else 'no plane found'})")
    print("| ground truth | pixels | camera_height scale: median error | p90 abs error | median scale: median error | p90 abs error |")
    print("|---|---:|---:|---:|---:|---:|")
    table_metric = range_error_table(gt_all, np.concatenate([m.ravel() for m in metric]), DEFAULT_EDGES_M)
    table_median = range_error_table(gt_all, np.concatenate([m.ravel() for m in median_scaled]), DEFAULT_EDGES_M)
    for row, shape in zip(table_metric, table_median):
        print(
            f"| {row['low']:g}-{row['high']:g} m | {row['share'] * 100:.1f} % | {row['median_signed'] * 100:+.1f} % | "
            f"{row['p90_abs'] * 100:.1f} % | {shape['median_signed'] * 100:+.1f} % | {shape['p90_abs'] * 100:.1f} % |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
