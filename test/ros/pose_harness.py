"""Helpers for the pose-node tests: ground-truth network doubles, rendered frames, feeding frames.

The graph, inboxes and message builders are :mod:`ros_harness`'s.

The doubles stand in for the *networks* only (the node, DDS and the integration are real): they
find a frame by its pixels in the synthetic drive and answer with the world's exact geometry.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from ros_harness import Inbox, image_msg, stamp_ns, wait_until
from sensor_msgs.msg import Image

from monodepth2_ros.inference.estimators import RelativeMotion
from monodepth2_ros.model.checkpoint import CheckpointInfo
from monodepth2_ros.synthetic import SyntheticDrive, SynthFrame

__all__ = [
    "NS",
    "GroundTruthPoseNetwork",
    "SlowedPoseNetwork",
    "GroundTruthDepthNetwork",
    "render_frames",
    "frame_image",
    "stamp_ns",
    "subscribe",
    "pose_node",
    "handled",
    "feed",
    "feed_while_busy",
    "wait_for_subscribers",
]

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


class SlowedPoseNetwork:
    """A pose network double that takes ``seconds`` per call, single or batched, like a busy CPU.

    Wraps a :class:`GroundTruthPoseNetwork` (the answers stay exact) and records the batch sizes.
    """

    def __init__(self, network: GroundTruthPoseNetwork, seconds: float) -> None:
        self.network = network
        self.seconds = seconds
        self.batch_sizes: list[int] = []
        self.info, self.scale, self.device, self.precision = network.info, network.scale, network.device, network.precision

    def estimate(self, rgb_a: np.ndarray, rgb_b: np.ndarray) -> RelativeMotion:
        return self.estimate_pairs([(rgb_a, rgb_b)])[0]

    def estimate_pairs(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[RelativeMotion]:
        time.sleep(self.seconds)
        self.batch_sizes.append(len(pairs))
        return [self.network.estimate(a, b) for a, b in pairs]


class GroundTruthDepthNetwork:
    """A test double of :class:`DepthEstimator` for the depth node: ground-truth depth / ``factor``.

    It answers the two calls the node makes: ``predict_disparity`` (returns 1 / depth units, found
    by the frame's pixels) and ``disparity_to_depth`` (inverts and resizes it).
    """

    def __init__(self, depth_by_image: dict[bytes, np.ndarray], size: tuple[int, int]) -> None:
        self._depth = dict(depth_by_image)
        self.info = CheckpointInfo(height=size[0], width=size[1])
        self.scale = 1.0
        self.device = torch.device("cpu")
        self.precision = "fp32"
        self.inputs: list[torch.Tensor] = []  # every network input it was shown

    @classmethod
    def from_frames(cls, frames: list[SynthFrame], factor: float) -> GroundTruthDepthNetwork:
        """Ground-truth depth / ``factor`` for each rendered frame."""
        depth = {frame.rgb.tobytes(): frame.depth / factor for frame in frames}
        return cls(depth, frames[0].rgb.shape[:2])

    @property
    def network_size(self) -> tuple[int, int]:
        return self.info.height, self.info.width

    def predict_disparity(self, images: torch.Tensor) -> torch.Tensor:
        self.inputs.append(images.clone())
        rgb = (images[0].permute(1, 2, 0) * 255.0).round().to(torch.uint8).numpy()
        return torch.from_numpy(1.0 / self._depth[rgb.tobytes()]).float()[None, None]

    def disparity_to_depth(self, disparity: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        if disparity.shape[-2:] != tuple(output_size):
            disparity = F.interpolate(disparity, size=output_size, mode="bilinear", align_corners=False)
        return 1.0 / disparity


def render_frames(drive: SyntheticDrive) -> list[SynthFrame]:
    """Every frame of ``drive``, rendered on one torch thread (the machine's cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return list(drive.iter_frames())
    finally:
        torch.set_num_threads(threads)


def frame_image(frame: SynthFrame, stamp_ns: int | None = None, frame_id: str = "camera_optical") -> Image:
    """An rgb8 Image of a synthetic frame stamped with its capture time (or ``stamp_ns``)."""
    sec, nanosec = divmod(frame.stamp_ns if stamp_ns is None else stamp_ns, NS)
    return image_msg(frame.rgb, sec, "rgb8", frame_id, nanosec)


def subscribe(graph: Any, topic: str, msg_type: Any, depth: int = 100) -> Inbox:
    """An inbox of ``topic`` keeping up to ``depth`` messages in the queue (the pose tests read them all)."""
    return graph.subscribe(topic, msg_type, depth)


def pose_node(graph: Any, estimator: Any, **params: Any) -> Any:
    """A PoseNode on CPU in ``graph`` with the given network double and parameter overrides."""
    from monodepth2_ros.ros.pose_node import PoseNode

    return graph.add_node(PoseNode, estimator, {"device": "cpu", **params})


def handled(node: Any) -> int:
    """Images the node has finished with (published, rejected, skipped, replaced, or deferred until
    a shared scale arrives)."""
    stats = node.stats.snapshot()
    deferred = node.event_counts.get("deferred", 0) if hasattr(node, "event_counts") else 0
    return stats.published + stats.rejected + stats.skipped_idle + stats.dropped + deferred


def feed(graph: Any, node: Any, messages: list[Image], publisher: Any = None) -> None:
    """Publish images one at a time, each after the node has finished with the previous one."""
    publisher = publisher or graph.image_pub
    for msg in messages:
        before = handled(node)
        publisher.publish(msg)
        if not wait_until(lambda: handled(node) > before):
            raise TimeoutError(f"the node did not handle the image stamped {stamp_ns(msg)}")


def feed_while_busy(node: Any, messages: list[Image], publisher: Any, period_s: float = 0.0) -> None:
    """Publish images like a camera faster than the network: one every ``period_s`` (0: at once),
    each once the node has *received* the previous one, busy or not, so no image is lost in DDS
    and what the node drops is its own doing."""
    start = time.monotonic()
    for index, msg in enumerate(messages):
        delay = start + index * period_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        before = node.stats.snapshot().received
        publisher.publish(msg)
        if not wait_until(lambda: node.stats.snapshot().received > before):
            raise TimeoutError(f"the node did not receive the image stamped {stamp_ns(msg)}")


def wait_for_subscribers(node: Any, topic: str, count: int = 1) -> None:
    if not wait_until(lambda: node.count_subscribers(topic) >= count):
        raise TimeoutError(f"no subscriber on {topic}")
