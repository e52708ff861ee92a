"""``monodepth2 play``: replay a bag into ROS 2 at its recorded pace (for machines without ``ros2 bag``)."""

from __future__ import annotations

import argparse
import time

from monodepth2_ros.errors import ConfigError

__all__ = ["register", "run"]

EXAMPLES = """examples:
  monodepth2 play drive.mcap                        all topics, real time, with /clock
  monodepth2 play drive.mcap --rate 0.5 --topics /camera/image_raw /camera/camera_info
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "play",
        help="replay a bag into ROS 2 (with /clock)",
        description=(
            "Publish a bag's topics at their recorded pace, plus /clock for use_sim_time. Every topic is "
            "reliable (keep last 10), so nodes in other processes receive every frame, however large."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bag", nargs="+", help="bag file(s) or folder(s)")
    parser.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1)")
    parser.add_argument("--topics", nargs="+", default=None, help="only these topics")
    parser.add_argument("--no-clock", action="store_true", help="do not publish /clock")
    parser.add_argument("--wait", type=float, default=1.0, help="seconds to let subscribers connect first")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import rclpy
    except ImportError as err:
        raise ConfigError("monodepth2 play needs rclpy: source a ROS 2 install or run 'make env'") from err
    from monodepth2_ros.ros.player import QOS_NOTE, BagPlayer

    rclpy.init(args=[])
    try:
        player = BagPlayer(args.bag, topics=args.topics, rate=args.rate, publish_clock=not args.no_clock)
        print(f"playing {len(player.topics)} topic(s) ({QOS_NOTE}): {', '.join(player.topics)}")
        time.sleep(max(args.wait, 0.0))
        stats = player.play()
        total = sum(stats.published.values())
        print(f"published {total} messages in {stats.duration_s:.1f} s (max lateness {stats.max_lateness_s * 1e3:.0f} ms)")
        player.destroy_node()
    except KeyboardInterrupt:
        return 130
    finally:
        if rclpy.ok():
            rclpy.shutdown()
    return 0
