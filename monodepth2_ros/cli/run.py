"""``monodepth2 run``: the depth node (and the pose node) in one process, without ``ros2 launch``."""

from __future__ import annotations

import argparse

from monodepth2_ros.ros.bringup import EXAMPLES, add_arguments

__all__ = ["register", "run"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="start the ROS 2 depth node (and pose node) in one process",
        description=(
            "Start the Monodepth2 ROS 2 nodes in one process with a multi-threaded executor: the same "
            "nodes, parameters and remappings as 'ros2 launch monodepth2_ros depth.launch.py'."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monodepth2_ros.ros.bringup import run_bringup  # imports rclpy only when the nodes start

    return run_bringup(args)
