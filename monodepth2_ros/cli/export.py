"""``monodepth2 export``: the depth and pose networks as ONNX files, checked against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.export import DEFAULT_OPSET, MIN_OPSET, export_checkpoint
from monodepth2_ros.inference.quantize import DEFAULT_CALIBRATION_FRAMES, bag_frames, synthetic_frames
from monodepth2_ros.inference.weights import resolve_weights
from monodepth2_ros.model.checkpoint import load_checkpoint

__all__ = ["register", "run", "FORMATS"]

FORMATS = ("onnx",)
_CHECK_FRAMES = 3

EXAMPLES = """examples:
  monodepth2 export --format onnx --weights models/mono_640x192 --out models/mono_640x192_onnx
  monodepth2 export --format onnx --weights W --out W_onnx --int8 --calibration drive.mcap
  then: InferenceConfig(backend="onnxruntime", precision="int8", onnx_dir="W_onnx")
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export the networks to ONNX (optionally int8), verified against PyTorch",
        description=(
            "Write depth.onnx and pose.onnx (opset >= 17, dynamic batch axis, network-size input in [0, 1]) "
            "and, with --int8, depth.int8.onnx / pose.int8.onnx quantised with calibration frames from a "
            "bag (or rendered synthetic frames). Every file is run with ONNX Runtime on rendered frames "
            "and its largest difference from PyTorch eager fp32 is printed."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--format", default="onnx", choices=FORMATS)
    parser.add_argument("--weights", default=None, help="checkpoint folder or a bundled model's name (default: the bundled default model)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (>= {MIN_OPSET})")
    parser.add_argument("--int8", action="store_true", help="also write int8 (QDQ, per-channel) graphs for the CPU")
    parser.add_argument("--calibration", type=Path, default=None, help="bag whose images calibrate int8 (default: synthetic)")
    parser.add_argument("--image-topic", default=None, help="image topic of the calibration bag")
    parser.add_argument("--calibration-frames", type=int, default=DEFAULT_CALIBRATION_FRAMES)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.opset < MIN_OPSET:
        raise ConfigError(f"--opset {args.opset} is too old; use {MIN_OPSET} or newer")
    checkpoint = load_checkpoint(resolve_weights(args.weights))
    size = (checkpoint.info.height, checkpoint.info.width)
    check_frames = synthetic_frames(_CHECK_FRAMES, *size, seed=1)
    calibration = None
    if args.int8:
        if args.calibration is not None:
            calibration = bag_frames(args.calibration, args.calibration_frames, args.image_topic)
            print(f"calibrating int8 on {len(calibration)} frames of {args.calibration}")
        else:
            calibration = synthetic_frames(args.calibration_frames, *size)
            print(f"calibrating int8 on {len(calibration)} rendered synthetic frames (give --calibration BAG for yours)")
    exported = export_checkpoint(
        checkpoint, args.out, check_frames, opset=args.opset, int8=args.int8, calibration_frames=calibration
    )
    print(f"checked on {len(check_frames)} rendered {size[1]}x{size[0]} frames against PyTorch eager fp32:")
    for model in exported:
        print(f"  {model.path.name:18} {model.network:5} {model.precision:4} max abs diff {model.max_abs_diff:.3e}  ({model.seconds:.1f} s)")
    return 0
