"""A stand-in camera driver for another process: images and CameraInfo at a fixed rate, with a
chosen reliability, as a robot's camera would publish them to the nodes.

The node benchmarks' cross-process mode and the transport tests run it as a subprocess, so frames
cross a real process boundary (DDS transports, not intra-process delivery). Stamps are the wall
clock at publishing (as a driver stamps them), so the receiving process on the same machine reads
the transport latency off the stamp. It waits for a subscriber before each phase, and prints a JSON
summary on stdout.

    python -m monodepth2_ros.tools.camera_publisher --width 1242 --height 375 --rate 5 --frames 40
    python -m monodepth2_ros.tools.camera_publisher --reliability best_effort --frames 20 \\
        --then reliable --then-frames 20 --ros-args -r image:=/camera/image_raw
"""

from __future__ import annotations

import argparse
import array
import json
import sys
import time
from typing import Any

__all__ = ["PUBLISHER_RELIABILITIES", "main"]

PUBLISHER_RELIABILITIES = ("reliable", "best_effort")
# The ROS default history of a publisher (rclpy's qos_profile_default, image_transport's): keep last 10.
_PUBLISHER_DEPTH = 10
_WAIT_SUBSCRIBER_S = 20.0
_POLL_S = 0.02
_FRAMES_DISTINCT = 4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=1242)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--rate", type=float, default=5.0, help="frames per second")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--reliability", choices=PUBLISHER_RELIABILITIES, default="reliable",
                        help="offered reliability (default reliable, the ROS default)")
    parser.add_argument("--then", choices=PUBLISHER_RELIABILITIES, default=None,
                        help="then publish again with this reliability (new publishers: a driver restarted)")
    parser.add_argument("--then-frames", type=int, default=0)
    parser.add_argument("--compressed", action="store_true", help="publish CompressedImage (JPEG) on image/compressed")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds to wait after a subscriber matched, before publishing (lets it settle)")
    parser.add_argument("--linger", type=float, default=1.0,
                        help="seconds the publishers stay up after a phase's last frame (reliable: until acknowledged)")
    return parser


def _frames(height: int, width: int) -> list[Any]:
    import numpy as np

    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for index in range(_FRAMES_DISTINCT):
        channels = [127 + 100 * np.sin(u / (9 + 5 * c) + index) * np.cos(v / (7 + 3 * c) - index) for c in range(3)]
        frames.append(np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8))
    return frames


def _messages(options: argparse.Namespace) -> tuple[list[Any], Any]:
    """The image messages (cycled) and the CameraInfo."""
    import numpy as np
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from monodepth2_ros.data.image_codec import rgb_to_compressed, rgb_to_image_fields

    height, width = options.height, options.width
    images = []
    for rgb in _frames(height, width):
        if options.compressed:
            data, fmt = rgb_to_compressed(rgb, "jpeg")
            msg = CompressedImage(format=fmt)
        else:
            data, step = rgb_to_image_fields(rgb, "rgb8")
            msg = Image(height=height, width=width, encoding="rgb8", step=step, is_bigendian=False)
        msg.data = array.array("B", data)
        msg.header.frame_id = "camera_optical"
        images.append(msg)
    focal = 0.58 * width
    K = np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    info = CameraInfo(height=height, width=width, distortion_model="plumb_bob")
    info.header.frame_id = "camera_optical"
    info.d = [0.0] * 5
    info.k = K.reshape(-1)
    info.r = np.eye(3).reshape(-1)
    info.p = np.hstack([K, np.zeros((3, 1))]).reshape(-1)
    return images, info


def _publish_phase(node: Any, options: argparse.Namespace, reliability: str, frames: int, images: list[Any], info: Any) -> dict:
    from rclpy.duration import Duration
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    policy = ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    qos = QoSProfile(depth=_PUBLISHER_DEPTH, reliability=policy)
    topic, kind = ("image/compressed", CompressedImage) if options.compressed else ("image", Image)
    image_pub = node.create_publisher(kind, topic, qos)
    info_pub = node.create_publisher(CameraInfo, "camera_info", qos)
    deadline = time.monotonic() + _WAIT_SUBSCRIBER_S
    while image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    matched = image_pub.get_subscription_count() > 0
    time.sleep(max(options.settle, 0.0))
    period = 1.0 / options.rate
    begin = time.monotonic()
    first_ns = None
    for index in range(frames):
        delay = begin + index * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now_ns = time.time_ns()
        first_ns = now_ns if first_ns is None else first_ns
        msg = images[index % len(images)]
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)
        info.header.stamp = msg.header.stamp
        info_pub.publish(info)
        image_pub.publish(msg)
    seconds = time.monotonic() - begin
    # Publishing hands the frame to the middleware, which may still be sending its fragments (and a
    # reliable writer repairing them): keep the writers until then, as a running driver would.
    if reliability == "reliable":
        image_pub.wait_for_all_acked(Duration(seconds=max(options.linger, 0.0)))
    else:
        time.sleep(max(options.linger, 0.0))
    summary = {
        "reliability": reliability,
        "sent": frames,
        "matched": matched,
        "first_stamp_ns": first_ns,
        "seconds": seconds,
    }
    node.destroy_publisher(image_pub)
    node.destroy_publisher(info_pub)
    return summary


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from rclpy.utilities import remove_ros_args

    argv = list(sys.argv[1:] if argv is None else argv)
    options = _parser().parse_args(remove_ros_args(["camera_publisher", *argv])[1:])
    rclpy.init(args=["camera_publisher", *argv])
    node = rclpy.create_node("camera_publisher")
    try:
        images, info = _messages(options)
        phases = [_publish_phase(node, options, options.reliability, options.frames, images, info)]
        if options.then is not None and options.then_frames > 0:
            phases.append(_publish_phase(node, options, options.then, options.then_frames, images, info))
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    size = len(images[0].data)
    print(json.dumps({"image_bytes": size, "width": options.width, "height": options.height, "phases": phases}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
