"""Ground truth from bags: depth images matched to frames, and camera poses from odometry + TF.

Odometry gives ``T_odom_base``; the camera's poses need the mount ``T_base_camera``, which a bag
carries on ``/tf_static`` (possibly as a chain, e.g. base_link -> camera_link -> camera_optical).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monodepth2_ros.data.bag_reader import iter_messages, list_topics
from monodepth2_ros.data.image_codec import depth_image_to_metres
from monodepth2_ros.data.stamps import header_stamp_ns, stamp_to_ns
from monodepth2_ros.errors import DatasetError
from monodepth2_ros.evaluation.pose_io import quaternion_to_matrix

__all__ = [
    "stamp_ns",
    "transform_to_matrix",
    "pose_to_matrix",
    "StaticTransforms",
    "read_static_transforms",
    "read_odometry",
    "camera_poses_at",
    "match_by_stamp",
    "iter_gt_depth",
]

_LOG = logging.getLogger(__name__)
TF_STATIC_TOPIC = "/tf_static"


def stamp_ns(header) -> int:
    """Nanoseconds of a std_msgs/Header."""
    return stamp_to_ns(header.stamp)


def _matrix(translation, rotation) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix(np.array([rotation.x, rotation.y, rotation.z, rotation.w], dtype=np.float64))
    T[:3, 3] = [translation.x, translation.y, translation.z]
    return T


def transform_to_matrix(transform) -> np.ndarray:
    """geometry_msgs/Transform -> (4, 4)."""
    return _matrix(transform.translation, transform.rotation)


def pose_to_matrix(pose) -> np.ndarray:
    """geometry_msgs/Pose -> (4, 4)."""
    return _matrix(pose.position, pose.orientation)


@dataclass
class StaticTransforms:
    """The static TF tree: child frame -> (parent frame, ``T_parent_child``)."""

    edges: dict[str, tuple[str, np.ndarray]]

    def lookup(self, parent: str, child: str) -> np.ndarray | None:
        """``T_parent_child`` by walking up from ``child``; None when ``parent`` is not an ancestor."""
        T = np.eye(4)
        frame = child.lstrip("/")
        parent = parent.lstrip("/")
        for _ in range(len(self.edges) + 1):
            if frame == parent:
                return T
            if frame not in self.edges:
                return None
            up, T_up_frame = self.edges[frame]
            T = T_up_frame @ T
            frame = up
        return None


def read_static_transforms(paths: Sequence[Path]) -> StaticTransforms:
    """All ``/tf_static`` transforms of the bags (empty when the topic is absent)."""
    if TF_STATIC_TOPIC not in {t.name for t in list_topics(paths)}:
        return StaticTransforms({})
    edges = {}
    for message in iter_messages(paths, TF_STATIC_TOPIC):
        for stamped in message.msg.transforms:
            edges[stamped.child_frame_id.lstrip("/")] = (
                stamped.header.frame_id.lstrip("/"),
                transform_to_matrix(stamped.transform),
            )
    return StaticTransforms(edges)


@dataclass(frozen=True)
class OdometryTrack:
    """Poses of an odometry topic: stamps (N,) ns, ``T_parent_child`` (N, 4, 4), and the frames."""

    stamps_ns: np.ndarray
    poses: np.ndarray
    frame_id: str
    child_frame_id: str


def read_odometry(paths: Sequence[Path], topic: str) -> OdometryTrack:
    """The topic's poses in header-stamp order (the bag's record time where a header stamp is zero).

    Raises:
        DatasetError: the topic has no messages.
    """
    stamps, poses, frame_id, child = [], [], "", ""
    for message in iter_messages(paths, topic):
        stamps.append(header_stamp_ns(message.msg, message.stamp_ns))
        poses.append(pose_to_matrix(message.msg.pose.pose))
        frame_id, child = message.msg.header.frame_id, message.msg.child_frame_id
    if not stamps:
        raise DatasetError(f"{', '.join(map(str, paths))}: odometry topic {topic!r} has no messages")
    order = np.argsort(stamps, kind="stable")
    return OdometryTrack(np.asarray(stamps)[order], np.stack(poses)[order], frame_id, child)


def camera_poses_at(
    track: OdometryTrack, stamps_ns: Sequence[int], T_base_camera: np.ndarray, tolerance_ns: int
) -> np.ndarray:
    """Camera poses ``T_odom_camera`` at the given stamps (nearest odometry message).

    Raises:
        DatasetError: a stamp has no odometry message within ``tolerance_ns``.
    """
    poses = []
    for stamp in stamps_ns:
        index = int(np.argmin(np.abs(track.stamps_ns - stamp)))
        if abs(int(track.stamps_ns[index]) - int(stamp)) > tolerance_ns:
            raise DatasetError(f"no odometry within {tolerance_ns / 1e6:.0f} ms of frame stamp {stamp}")
        poses.append(track.poses[index] @ T_base_camera)
    return np.stack(poses)


def iter_gt_depth(paths: Sequence[Path], topic: str) -> Iterator[tuple[int, np.ndarray]]:
    """(header stamp ns, depth in metres with NaN where invalid) of a depth image topic."""
    for message in iter_messages(paths, topic):
        yield stamp_ns(message.msg.header), depth_image_to_metres(message.msg)


def match_by_stamp(items: Iterable, stamped: Iterator[tuple[int, object]], key, tolerance_ns: int):
    """Join two streams sorted by time: yields ``(item, value)`` for items with a value within tolerance.

    Args:
        items: e.g. frames, each with a stamp given by ``key(item)``.
        stamped: ``(stamp_ns, value)`` pairs in stamp order.
    """
    pending = next(stamped, None)
    for item in items:
        stamp = key(item)
        while pending is not None and pending[0] < stamp - tolerance_ns:
            pending = next(stamped, None)
        if pending is not None and abs(pending[0] - stamp) <= tolerance_ns:
            yield item, pending[1]
