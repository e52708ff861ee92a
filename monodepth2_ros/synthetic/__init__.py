"""The project's ground-truth worlds: a procedural street and four more scene families (indoor,
warehouse, table top, yard) with randomised cameras, carriers and looks, ray cast exactly in torch.

A :class:`SyntheticDrive` renders a seeded drive (images, depth, poses, odometry) for a
:class:`SynthConfig`; :func:`write_drive_bag` writes it as a ROS bag with ground-truth topics.

Example:
    >>> from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive
    >>> drive = SyntheticDrive(SynthConfig(frames=20, width=320, height=96, seed=3))
    >>> frame = drive.frame(5)
    >>> frame.rgb.shape, frame.depth.shape, drive.K.shape
    ((96, 320, 3), (96, 320), (3, 3))
"""

from __future__ import annotations

from .bag import (
    FRAME_BASE,
    FRAME_CAMERA,
    FRAME_ODOM,
    FRAME_RIGHT_CAMERA,
    STORAGE_FORMATS,
    TOPIC_CAMERA_INFO,
    TOPIC_DEPTH,
    TOPIC_IMAGE,
    TOPIC_ODOM,
    TOPIC_RIGHT_CAMERA_INFO,
    TOPIC_RIGHT_IMAGE,
    TOPIC_TF,
    TOPIC_TF_STATIC,
    rotation_to_quaternion,
    write_drive_bag,
)
from .camera import CameraModel, distort_normalized, kitti_intrinsics, mount_transform, undistort_normalized
from .config import PLUMB_BOB_D, START_STAMP_NS, SynthConfig
from .drive import SynthFrame, SyntheticDrive
from .families import FAMILIES, FAMILY_CHOICES, HELD_OUT_FAMILY, TRAINING_FAMILIES, is_held_out, resolve_family

__all__ = [
    "SynthConfig",
    "SynthFrame",
    "SyntheticDrive",
    "write_drive_bag",
    "FAMILIES",
    "FAMILY_CHOICES",
    "TRAINING_FAMILIES",
    "HELD_OUT_FAMILY",
    "is_held_out",
    "resolve_family",
    "CameraModel",
    "kitti_intrinsics",
    "mount_transform",
    "distort_normalized",
    "undistort_normalized",
    "rotation_to_quaternion",
    "PLUMB_BOB_D",
    "START_STAMP_NS",
    "STORAGE_FORMATS",
    "TOPIC_IMAGE",
    "TOPIC_CAMERA_INFO",
    "TOPIC_RIGHT_IMAGE",
    "TOPIC_RIGHT_CAMERA_INFO",
    "TOPIC_DEPTH",
    "TOPIC_ODOM",
    "TOPIC_TF",
    "TOPIC_TF_STATIC",
    "FRAME_ODOM",
    "FRAME_BASE",
    "FRAME_CAMERA",
    "FRAME_RIGHT_CAMERA",
]
