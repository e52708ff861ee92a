"""Helpers for the pose-node tests: ground-truth network doubles, stamped inboxes, feeding frames.

The doubles stand in for the *networks* only (the node, DDS and the integration are real): they
find a frame by its pixels in the synthetic drive and answer with the world's exact geometry.
"""

from __future__ import annotations

import array
import threading
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import WAIT_S, wait_until
from sensor_msgs.msg import Image

from monodepth2_ros.data.image_codec import rgb_to_image_fields
from monodepth2_ros.inference.estimators import RelativeMotion
from monodepth2_ros.model.checkpoint import CheckpointInfo
from monodepth2_ros.synthetic import SynthFrame

NS = 1_000_000_000


class GroundTruthPoseNetwork:
    """A test double of :class:`PoseEstimator`: the synthetic world's motion between two frames.

    Args:
        frames: the rendered frames it may be asked about (identical images share one pose:
            the car stands still).
        factor: translations are divided by it, like a network with an unknown scale.
        poison: frame indices for which the "network" overflows (NaN pose).
    """

    def __init__(self, frames: list[SynthFrame], factor: float = 1.0, poison: tuple[int, ...] = ()) -> None:
        height, width = frames[0].rgb.shape[:2]
        self._frames: dict[bytes, SynthFrame] = {}
        for frame in frames:  # a standing car renders identical images: the first of them answers
            self._frames.setdefault(frame.rgb.tobytes(), frame)
        self.factor = factor
        self.poison = set(poison)
        self.info = CheckpointInfo(height=height, width=width)
        self.scale = 1.0
        self.device = torch.device("cpu")
        self.precision = "fp32"
        self.calls: list[tuple[int, int]] = []

    def estimate(self, rgb_a: np.ndarray, rgb_b: np.ndarray) -> RelativeMotion:
        a, b = self._frames[rgb_a.tobytes()], self._frames[rgb_b.tobytes()]
        self.calls.append((a.index, b.index))
        T_b_a = np.linalg.inv(b.T_world_camera) @ a.T_world_camera
        T_b_a[:3, 3] /= self.factor
        if b.index in self.poison:
            T_b_a = np.full((4, 4), np.nan)
        return RelativeMotion(T_b_a=T_b_a, axis_angle=np.zeros(3), translation=T_b_a[:3, 3].copy())


class GroundTruthDepthNetwork:
    """A test double of :class:`DepthEstimator` for the depth node: ground-truth depth / ``factor``.

    It answers the two calls the node makes: ``predict_disparity`` (returns 1 / depth units, found
    by the frame's pixels) and ``disparity_to_depth`` (inverts and resizes it).
    """

    def __init__(self, frames: list[SynthFrame], factor: float) -> None:
        height, width = frames[0].rgb.shape[:2]
        self._depth = {frame.rgb.tobytes(): frame.depth / factor for frame in frames}
        self.info = CheckpointInfo(height=height, width=width)
        self.scale = 1.0
        self.device = torch.device("cpu")
        self.precision = "fp32"

    @property
    def network_size(self) -> tuple[int, int]:
        return self.info.height, self.info.width

    def predict_disparity(self, images: torch.Tensor) -> torch.Tensor:
        rgb = (images[0].permute(1, 2, 0) * 255.0).round().to(torch.uint8).numpy()
        return torch.from_numpy(1.0 / self._depth[rgb.tobytes()]).float()[None, None]

    def disparity_to_depth(self, disparity: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        if disparity.shape[-2:] != tuple(output_size):
            disparity = F.interpolate(disparity, size=output_size, mode="bilinear", align_corners=False)
        return 1.0 / disparity


def frame_image(frame: SynthFrame, stamp_ns: int | None = None, frame_id: str = "camera_optical") -> Image:
    """An rgb8 Image of a synthetic frame stamped with its capture time (or ``stamp_ns``)."""
    data, step = rgb_to_image_fields(frame.rgb, "rgb8")
    msg = Image(height=frame.rgb.shape[0], width=frame.rgb.shape[1], encoding="rgb8", step=step, is_bigendian=False)
    msg.data = array.array("B", data)
    sec, nanosec = divmod(frame.stamp_ns if stamp_ns is None else stamp_ns, NS)
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    msg.header.frame_id = frame_id
    return msg


def stamp_ns(msg: Any) -> int:
    return msg.header.stamp.sec * NS + msg.header.stamp.nanosec


class StampedInbox:
    """Messages of one topic by their full stamp (nanoseconds), with waits."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.messages: list[Any] = []

    def __call__(self, msg: Any) -> None:
        with self._lock:
            self.messages.append(msg)
            self._lock.notify_all()

    def at(self, stamp: int) -> list[Any]:
        with self._lock:
            return [m for m in self.messages if stamp_ns(m) == stamp]

    def wait(self, stamp: int, timeout: float = WAIT_S) -> Any:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [m for m in self.messages if stamp_ns(m) == stamp]
                if found:
                    return found[-1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no message stamped {stamp} within {timeout} s (got {len(self.messages)})")
                self._lock.wait(remaining)


def subscribe(graph: Any, topic: str, msg_type: Any, depth: int = 100) -> StampedInbox:
    inbox = StampedInbox()
    graph.tester.create_subscription(msg_type, topic, inbox, QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE))
    return inbox


def pose_node(graph: Any, estimator: Any, **params: Any) -> Any:
    """A PoseNode on CPU in ``graph`` with the given network double and parameter overrides."""
    from monodepth2_ros.ros.pose_node import PoseNode

    values = {"device": "cpu", **params}
    node = PoseNode(
        context=graph.context,
        namespace=graph.namespace,
        cli_args=graph.ros_arguments(),
        parameter_overrides=[Parameter(name, value=value) for name, value in values.items()],
        estimator=estimator,
    )
    return graph.add(node)


def handled(node: Any) -> int:
    """Images the node has finished with (published, rejected, skipped or replaced)."""
    stats = node.stats.snapshot()
    return stats.published + stats.rejected + stats.skipped_idle + stats.dropped


def feed(graph: Any, node: Any, messages: list[Image], publisher: Any = None) -> None:
    """Publish images one at a time, each after the node has finished with the previous one."""
    publisher = publisher or graph.image_pub
    for msg in messages:
        before = handled(node)
        publisher.publish(msg)
        if not wait_until(lambda: handled(node) > before):
            raise TimeoutError(f"the node did not handle the image stamped {stamp_ns(msg)}")


def wait_for_subscribers(node: Any, topic: str, count: int = 1) -> None:
    if not wait_until(lambda: node.count_subscribers(topic) >= count):
        raise TimeoutError(f"no subscriber on {topic}")
