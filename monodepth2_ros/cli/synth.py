"""``monodepth2 synth``: render a synthetic street drive with ground truth into a ROS bag."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.synthetic import STORAGE_FORMATS, SynthConfig, SyntheticDrive, write_drive_bag

__all__ = ["register", "run"]

EXAMPLES = """examples:
  monodepth2 synth --out data/drive0                     # 200 frames, 1242x375, MCAP
  monodepth2 synth --out data/small --frames 50 --width 640 --height 192 --seed 3
  monodepth2 synth --out data/stereo.bag --format rosbag1 --stereo --distortion --force
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="render a synthetic street drive with ground-truth depth and poses into a bag",
        description=(
            "Render a seeded procedural street drive (camera images, ground-truth depth, odometry, tf) "
            "by exact ray casting and write it as a rosbag2 (MCAP or SQLite 3) or ROS 1 bag."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = SynthConfig()
    parser.add_argument("--out", required=True, help="bag to write: a folder (rosbag2) or a .bag file (rosbag1)")
    parser.add_argument("--frames", type=int, default=defaults.frames, help="number of frames (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="world and drive seed (default %(default)s)")
    parser.add_argument("--width", type=int, default=defaults.width, help="image width (default %(default)s)")
    parser.add_argument("--height", type=int, default=defaults.height, help="image height (default %(default)s)")
    parser.add_argument("--rate", type=float, default=defaults.rate_hz, help="frame rate in Hz (default %(default)s)")
    parser.add_argument("--format", choices=STORAGE_FORMATS, default="mcap", help="bag storage (default %(default)s)")
    parser.add_argument("--stereo", action="store_true", help="also render a right camera (0.54 m baseline)")
    parser.add_argument("--distortion", action="store_true", help="render through plumb_bob lens distortion")
    parser.add_argument("--antialias", type=int, default=defaults.antialias,
                        help="rays per pixel side for colours (default %(default)s; 2 = 2x2, ~4x slower)")
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, cuda:1 (default %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 is fastest when other jobs share the CPU)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if (out.exists() or out.is_symlink()) and not args.force:
        raise ConfigError(f"{out} exists already; use --force to replace it")
    config = SynthConfig(
        frames=args.frames,
        seed=args.seed,
        width=args.width,
        height=args.height,
        rate_hz=args.rate,
        stereo=args.stereo,
        distortion=args.distortion,
        antialias=args.antialias,
        device=args.device,
    )
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads is {args.threads}; expected at least 1")
        torch.set_num_threads(args.threads)
    drive = SyntheticDrive(config)
    start = time.perf_counter()
    with tqdm(total=config.frames, unit="frame", desc="synth", disable=not sys.stderr.isatty()) as bar:
        path = write_drive_bag(config, out, args.format, overwrite=args.force, on_frame=lambda _: bar.update(1),
                               drive=drive)
    elapsed = time.perf_counter() - start
    print(f"{config.frames} frames ({config.width}x{config.height}, seed {config.seed}) -> {path}")
    print(f"{config.frames / elapsed:.1f} frames/s (rendering and writing, device {drive.device})")
    return 0
