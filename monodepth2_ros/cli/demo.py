"""``monodepth2 demo``: the whole pipeline on a synthetic drive, in a few minutes on a laptop CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register", "run"]

EXAMPLES = """examples:
  monodepth2 demo                                 bundled model, 80 frames, results in demo_output/
  monodepth2 demo --frames 40 --out /tmp/demo     shorter
  monodepth2 demo --weights ~/models/mono_640x192 --device cuda
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the nodes on a synthetic drive and score them (the README's first command)",
        description=(
            "Render a held-out synthetic drive, replay it into the depth and pose nodes over real DDS, record "
            "their outputs into an MCAP bag and score depth and odometry against ground truth."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="demo_output", help="output folder (its demo files are replaced)")
    parser.add_argument("--weights", default=None, help="checkpoint folder or a bundled model's name (default: the bundled default model)")
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--seed", type=int, default=9, help="drive seed (seeds ending in 9 are never trained on)")
    parser.add_argument(
        "--plain", action="store_true",
        help="the plain street world (fixed camera and looks) instead of a camera and looks drawn from the seed",
    )
    parser.add_argument("--rate", type=float, default=1.0, help="replay speed factor (1 = real time, 10 Hz)")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--backend", default="eager", help="the nodes' network runtime (auto: the fastest accurate one here, measured once)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monodepth2_ros.tools.demo import DemoConfig, run_demo

    config = DemoConfig(
        out_dir=Path(args.out), weights=args.weights, frames=args.frames, width=args.width, height=args.height,
        seed=args.seed, randomize=not args.plain, play_rate=args.rate, device=args.device, backend=args.backend,
    )
    result = run_demo(config)
    print()
    print(result.files["markdown"].read_text())
    print(f"demo finished in {result.figures['wall_time_s']:.0f} s. Results in {config.out_dir}/:")
    for name, path in result.files.items():
        print(f"  {name:10} {path}")
    print(
        "\nLook at them: open the PNGs; open output/ (MCAP) in Foxglove Studio; or on a ROS 2 machine\n"
        "  ros2 launch monodepth2_ros depth.launch.py use_pose:=true scale_mode:=camera_height rviz:=true &\n"
        f"  ros2 bag play {config.out_dir / 'drive'} --clock"
    )
    return 0
