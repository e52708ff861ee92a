"""Frames to metric depth and camera motion (no ROS)."""

from monodepth2_ros.inference.device import PRECISIONS, resolve_device, resolve_precision
from monodepth2_ros.inference.estimators import (
    DepthEstimator,
    DepthPrediction,
    InferenceConfig,
    PoseEstimator,
    RelativeMotion,
    checkpoint_scale,
)

__all__ = [
    "PRECISIONS",
    "resolve_device",
    "resolve_precision",
    "DepthEstimator",
    "DepthPrediction",
    "InferenceConfig",
    "PoseEstimator",
    "RelativeMotion",
    "checkpoint_scale",
]
