"""A stand-in for the depth node that answers every image with ready-made outputs: the DDS floor.

For each image on ``image`` it publishes ``depth`` (32FC1), ``points`` (x y z rgb) and
``depth/colored`` (bgr8) of one fixed size, in the depth node's order, with its QoS, its message
conversions and its process's Fast DDS profile, and computes nothing. The depth node benchmark
(``--transport-floor``) times this round trip beside the node's, so the share of the node's latency
that is moving megabytes between processes is measured rather than guessed.

    python -m monodepth2_ros.tools.output_echo --width 1242 --height 375
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from rclpy.node import Node
from sensor_msgs.msg import Image, PointCloud2

from monodepth2_ros.inference.pointcloud import POINT_STEP, fill_cloud
from monodepth2_ros.ros.conversions import MessageBuffer, image_message_from_buffer, point_cloud_message
from monodepth2_ros.ros.depth_node import TOPIC_COLORED, TOPIC_DEPTH, TOPIC_POINTS, output_qos
from monodepth2_ros.ros.node_common import TOPIC_IMAGE, input_qos, run_node

__all__ = ["NODE_NAME", "OutputEcho", "main"]

NODE_NAME = "output_echo"


class OutputEcho(Node):
    """Answers each image with a depth image, a cloud and a colour image of ``height x width``."""

    def __init__(self, height: int, width: int, reliability: str = "reliable", **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._size = (height, width)
        self._depth = MessageBuffer()
        self._depth.view(self._size, np.float32)[:] = 1.0
        self._colored = MessageBuffer()
        self._colored.view((height, width, 3), np.uint8)[:] = 128
        self._cloud_buffer = MessageBuffer()
        cloud_floats = self._cloud_buffer.view((height * width * POINT_STEP // 4,), np.float32)
        self._cloud = fill_cloud(torch.ones(height, width, 3), np.zeros((height, width, 3), np.uint8), out=cloud_floats)
        qos = output_qos()
        self._depth_pub = self.create_publisher(Image, TOPIC_DEPTH, qos)
        self._points_pub = self.create_publisher(PointCloud2, TOPIC_POINTS, qos)
        self._colored_pub = self.create_publisher(Image, TOPIC_COLORED, qos)
        self.answered = 0
        self.create_subscription(Image, TOPIC_IMAGE, self._on_image, input_qos(reliability))

    def _on_image(self, msg: Image) -> None:
        header = msg.header
        self._depth_pub.publish(image_message_from_buffer(self._depth, *self._size, "32FC1", header))
        self._points_pub.publish(point_cloud_message(self._cloud, header, self._cloud_buffer))
        self._colored_pub.publish(image_message_from_buffer(self._colored, *self._size, "bgr8", header))
        self.answered += 1


def main(argv: list[str] | None = None) -> int:
    """Spin until Ctrl-C; ROS arguments (``--ros-args ...``) pass through."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, required=True, help="outputs' width, pixels")
    parser.add_argument("--height", type=int, required=True, help="outputs' height, pixels")
    parser.add_argument("--reliability", choices=("reliable", "best_effort"), default="reliable",
                        help="the image subscription's reliability")
    options, ros_args = parser.parse_known_args(argv)
    if options.width <= 0 or options.height <= 0:
        parser.error(f"--width and --height must be positive, got {options.width}x{options.height}")
    return run_node(
        lambda: OutputEcho(options.height, options.width, options.reliability),
        NODE_NAME,
        [sys.argv[0], *ros_args],
        large_outputs=True,
    )


if __name__ == "__main__":
    sys.exit(main())
