"""The depth node's outputs for a robot: ``scan``, ``depth/compressedDepth`` and ``depth/colored/compressed``.

Each is computed only while it is enabled and has a subscriber, from what the depth node already
has for the frame (the metric depth, the colour view, the intrinsics of the output size). Problems
that depend on the frame (a scan band outside the image, compressedDepth asked for on a relative
scale) are reported, throttled, through the node's reporter; the other outputs are published as usual.
"""

from __future__ import annotations

import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sensor_msgs.msg import CompressedImage, LaserScan

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.laser_scan import Scan, depth_to_scan, scan_rows
from monodepth2_ros.ros.compressed_depth import (
    COLORED_JPEG_FORMAT,
    COMPRESSED_DEPTH_FORMAT,
    encode_compressed_depth,
    encode_jpeg,
)

__all__ = [
    "TOPIC_SCAN",
    "TOPIC_COMPRESSED_DEPTH",
    "TOPIC_COLORED_COMPRESSED",
    "RobotWanted",
    "RobotOutputs",
    "laser_scan_message",
]

TOPIC_SCAN = "scan"
TOPIC_COMPRESSED_DEPTH = "depth/compressedDepth"
TOPIC_COLORED_COMPRESSED = "depth/colored/compressed"


@dataclass(frozen=True)
class RobotWanted:
    """Which of these outputs the current frame must produce."""

    scan: bool = False
    compressed_depth: bool = False
    colored_compressed: bool = False

    @property
    def any(self) -> bool:
        return self.scan or self.compressed_depth or self.colored_compressed

    @property
    def needs_host_depth(self) -> bool:
        """The whole depth map is needed on the host (the scan copies only its band)."""
        return self.compressed_depth or self.colored_compressed


def laser_scan_message(scan: Scan, header: Any, frame_id: str) -> LaserScan:
    """A ``sensor_msgs/LaserScan`` of ``scan`` with the image's stamp in ``frame_id``."""
    msg = LaserScan()
    msg.header.stamp = header.stamp
    msg.header.frame_id = frame_id
    msg.angle_min = float(scan.angle_min)
    msg.angle_max = float(scan.angle_max)
    msg.angle_increment = float(scan.angle_increment)
    msg.time_increment = 0.0  # every column is exposed at once
    msg.scan_time = 0.0
    msg.range_min = float(scan.range_min)
    msg.range_max = float(scan.range_max)
    msg.ranges = array.array("f", np.ascontiguousarray(scan.ranges, dtype=np.float32).tobytes())
    return msg


class RobotOutputs:
    """The publishers of ``scan``, ``depth/compressedDepth`` and ``depth/colored/compressed`` of one node.

    Args:
        node: the depth node (publishers, logger).
        qos: the node's output QoS.
        report: ``report(kind, message)``, the node's throttled problem reporter.
    """

    def __init__(self, node: Any, qos: Any, report: Callable[[str, str], None]) -> None:
        self._node = node
        self._report = report
        self._scan_pub = node.create_publisher(LaserScan, TOPIC_SCAN, qos)
        self._compressed_depth_pub = node.create_publisher(CompressedImage, TOPIC_COMPRESSED_DEPTH, qos)
        self._colored_compressed_pub = node.create_publisher(CompressedImage, TOPIC_COLORED_COMPRESSED, qos)
        self._warned_optical_frame = False

    def wanted(self, params: Any, metric: bool) -> RobotWanted:
        """What the next frame must produce for the current subscribers and ``params``.

        compressedDepth and scan on a relative scale are reported (millimetres and ranges need
        metres) and left out.
        """
        compressed_depth = params.publish_compressed and self._compressed_depth_pub.get_subscription_count() > 0
        if compressed_depth and not metric:
            self._report(
                "compressed_depth_relative",
                f"not publishing {self._compressed_depth_pub.topic_name}: the depth scale is relative "
                f"(scale_mode {params.scale_mode!r} has no metric scale yet) and compressedDepth carries "
                "millimetres; use a metric scale_mode (camera_height, stereo, fixed or shared) or subscribe to depth",
            )
            compressed_depth = False
        scan = params.publish_scan and self._scan_pub.get_subscription_count() > 0
        if scan and not metric:
            # A costmap would place obstacles at the wrong distance: no scan until the scale is metric.
            self._report(
                "scan_relative",
                f"not publishing {self._scan_pub.topic_name}: the depth scale is relative (scale_mode "
                f"{params.scale_mode!r} has no metric scale yet) and a LaserScan is in metres; use a metric scale_mode",
            )
            scan = False
        return RobotWanted(
            scan=scan,
            compressed_depth=compressed_depth,
            colored_compressed=params.publish_compressed and self._colored_compressed_pub.get_subscription_count() > 0,
        )

    def publish(
        self,
        wanted: RobotWanted,
        depth: torch.Tensor,
        depth_host: np.ndarray | None,
        colored_bgr: np.ndarray | None,
        K: np.ndarray,
        header: Any,
        params: Any,
    ) -> None:
        """Publish what ``wanted`` asks for.

        Args:
            depth: (1, 1, H, W) metric depth on the inference device (NaN invalid).
            depth_host: the same on the host, when the node copied it (else None).
            colored_bgr: the colour view (H, W, 3) uint8 BGR, when ``colored_compressed``.
            K: intrinsics of the depth size.
            header: the image's header.
        """
        if wanted.scan:
            self._publish_scan(depth, depth_host, K, header, params)
        if wanted.compressed_depth and depth_host is not None:
            msg = CompressedImage(header=header, format=COMPRESSED_DEPTH_FORMAT)
            msg.data = array.array("B", encode_compressed_depth(depth_host))
            self._compressed_depth_pub.publish(msg)
        if wanted.colored_compressed and colored_bgr is not None:
            msg = CompressedImage(header=header, format=COLORED_JPEG_FORMAT)
            msg.data = array.array("B", encode_jpeg(colored_bgr, params.jpeg_quality))
            self._colored_compressed_pub.publish(msg)

    def _publish_scan(
        self, depth: torch.Tensor, depth_host: np.ndarray | None, K: np.ndarray, header: Any, params: Any
    ) -> None:
        config = params.scan_config()
        height = int(depth.shape[-2])
        try:
            start, stop = scan_rows(height, float(K[1, 2]), config)
        except ConfigError as err:
            self._report("scan_band", f"not publishing {self._scan_pub.topic_name}: {err}")
            return
        if depth_host is not None:
            band = depth_host[start:stop]
        else:
            band = depth[0, 0, start:stop].float().cpu().numpy()
        scan = depth_to_scan(band, float(K[0, 0]), float(K[0, 2]), config)
        frame_id = params.scan_frame_id or header.frame_id
        if not self._warned_optical_frame and "optical" in frame_id:
            self._warned_optical_frame = True
            self._node.get_logger().warning(
                f"{self._scan_pub.topic_name} is published in {frame_id!r}, which looks like an optical frame "
                "(z forward); a LaserScan turns about z, so set scan_frame_id to the camera's body frame "
                "(x forward, z up, e.g. camera_link)"
            )
        self._scan_pub.publish(laser_scan_message(scan, header, frame_id))
