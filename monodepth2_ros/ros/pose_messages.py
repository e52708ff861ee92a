"""numpy <-> the pose node's messages: Odometry, PoseStamped (Path), TransformStamped, stamps.

Quaternions come from :func:`monodepth2_ros.evaluation.pose_io.matrix_to_quaternion` (x, y, z, w,
``w >= 0``), the package's one conversion. Covariances are the row-major 6 x 6 matrices of
``nav_msgs/Odometry``: (x, y, z, rotation about x, y, z); the pose part about the parent frame's
fixed axes, the twist part in the child frame (REP 105).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseStamped, TransformStamped
from nav_msgs.msg import Odometry

from monodepth2_ros.data.stamps import stamp_to_ns
from monodepth2_ros.evaluation.pose_io import matrix_to_quaternion, quaternion_to_matrix
from monodepth2_ros.inference.odometry import NS_PER_S, OdometryEstimate

__all__ = [
    "UNKNOWN_VARIANCE",
    "stamp_to_ns",
    "ns_to_stamp",
    "pose_message",
    "pose_to_matrix",
    "diagonal_covariance",
    "odometry_message",
    "pose_stamped_message",
    "transform_message",
    "transform_to_matrix",
]

# Variance reported for a quantity that was not measured (the twist at a first frame or after a
# gap): large enough that any filter ignores it, small enough to stay finite in float64 maths.
UNKNOWN_VARIANCE = 1e6


def ns_to_stamp(stamp_ns: int) -> Time:
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)


def pose_message(T: np.ndarray) -> Pose:
    """(4, 4) rigid transform -> geometry_msgs/Pose."""
    x, y, z, w = (float(value) for value in matrix_to_quaternion(T[:3, :3]))
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(value) for value in T[:3, 3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = x, y, z, w
    return pose


def pose_to_matrix(pose: Any) -> np.ndarray:
    """geometry_msgs/Pose -> (4, 4)."""
    T = np.eye(4)
    q = pose.orientation
    T[:3, :3] = quaternion_to_matrix(np.array([q.x, q.y, q.z, q.w], dtype=np.float64))
    T[:3, 3] = [pose.position.x, pose.position.y, pose.position.z]
    return T


def diagonal_covariance(linear_std: float, angular_std: float) -> np.ndarray:
    """(36,) row-major 6 x 6 covariance with ``linear_std**2`` on x, y, z and ``angular_std**2`` on rotations."""
    return np.diag([linear_std**2] * 3 + [angular_std**2] * 3).reshape(-1)


def odometry_message(
    estimate: OdometryEstimate,
    odom_frame: str,
    base_frame: str,
    pose_covariance: np.ndarray,
    twist_covariance: np.ndarray,
) -> Odometry:
    """The odometry of one frame: pose of ``base_frame`` in ``odom_frame``, twist in ``base_frame``."""
    msg = Odometry()
    msg.header.stamp = ns_to_stamp(estimate.stamp_ns)
    msg.header.frame_id = odom_frame
    msg.child_frame_id = base_frame
    msg.pose.pose = pose_message(estimate.T_odom_base)
    msg.pose.covariance = np.asarray(pose_covariance, dtype=np.float64)
    twist = msg.twist.twist
    twist.linear.x, twist.linear.y, twist.linear.z = (float(value) for value in estimate.linear)
    twist.angular.x, twist.angular.y, twist.angular.z = (float(value) for value in estimate.angular)
    msg.twist.covariance = np.asarray(twist_covariance, dtype=np.float64)
    return msg


def pose_stamped_message(estimate: OdometryEstimate, odom_frame: str) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp = ns_to_stamp(estimate.stamp_ns)
    msg.header.frame_id = odom_frame
    msg.pose = pose_message(estimate.T_odom_base)
    return msg


def transform_message(T: np.ndarray, stamp_ns: int, parent: str, child: str) -> TransformStamped:
    """``T_parent_child`` as the TransformStamped tf2 broadcasts (``child`` expressed in ``parent``)."""
    msg = TransformStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = parent
    msg.child_frame_id = child
    translation, rotation = msg.transform.translation, msg.transform.rotation
    translation.x, translation.y, translation.z = (float(value) for value in T[:3, 3])
    rotation.x, rotation.y, rotation.z, rotation.w = (float(value) for value in matrix_to_quaternion(T[:3, :3]))
    return msg


def transform_to_matrix(transform: Any) -> np.ndarray:
    """geometry_msgs/Transform -> (4, 4) ``T_parent_child``."""
    T = np.eye(4)
    q = transform.rotation
    T[:3, :3] = quaternion_to_matrix(np.array([q.x, q.y, q.z, q.w], dtype=np.float64))
    T[:3, 3] = [transform.translation.x, transform.translation.y, transform.translation.z]
    return T
