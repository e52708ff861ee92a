"""``monodepth2 synth``: render a synthetic drive (street, indoor, warehouse, table top, yard) with
ground truth into a ROS bag."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.synthetic import STORAGE_FORMATS, SynthConfig, SyntheticDrive, write_drive_bag
from monodepth2_ros.synthetic.families import FAMILY_CHOICES

__all__ = ["register", "run"]

EXAMPLES = """examples:
  monodepth2 synth --out data/drive0                     # 200 frames, 1242x375, MCAP
  monodepth2 synth --out data/small --frames 50 --width 640 --height 192 --seed 3
  monodepth2 synth --out data/stereo.bag --format rosbag1 --stereo --distortion --force
  monodepth2 synth --out data/room3 --family indoor --seed 3 --width 320 --height 96
  monodepth2 synth --out data/any12 --family random --seed 12   # the family drawn from the seed
  monodepth2 synth --out data/plain --family warehouse --no-randomize --no-sensor-effects
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="render a synthetic drive with ground-truth depth and poses into a bag",
        description=(
            "Render a seeded procedural drive (camera images, ground-truth depth, odometry, tf) by exact ray "
            "casting and write it as a rosbag2 (MCAP or SQLite 3) or ROS 1 bag. Scene families: a street "
            "(the default), indoor rooms and corridors, warehouse aisles, table tops seen from 0.3-1.5 m and "
            "open yards; every family but an explicit street draws its camera (field of view, height, pitch, "
            "roll, lens distortion), carrier (car, ground robot, drone, handheld), lighting and sensor "
            "effects from the seed."
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
    parser.add_argument("--family", choices=FAMILY_CHOICES, default=defaults.family,
                        help="scene family; random draws it from the seed (default %(default)s)")
    parser.add_argument("--randomize", action=argparse.BooleanOptionalAction, default=None,
                        help="draw camera, carrier and lighting from the seed (default: on for every family "
                             "but street; --distortion and the street's 1.65 m camera apply without it)")
    parser.add_argument("--sensor-effects", action=argparse.BooleanOptionalAction, default=None,
                        help="exposure, white balance, vignetting, noise and motion blur on the images, never "
                             "on the ground truth (default: as --randomize)")
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
        family=args.family,
        randomize=args.randomize,
        sensor_effects=args.sensor_effects,
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
    if config.family != "street" or config.randomized:
        fov = 2.0 * np.degrees(np.arctan(0.5 * config.width / drive.K[0, 0]))
        print(f"family {drive.family}, carried by a {drive.carrier}, horizontal field of view {fov:.0f} deg"
              f"{', lens distortion' if drive.camera.distorted else ''}"
              f"{', sensor effects' if drive.effects is not None else ''}")
    print(f"{config.frames / elapsed:.1f} frames/s (rendering and writing, device {drive.device})")
    return 0
