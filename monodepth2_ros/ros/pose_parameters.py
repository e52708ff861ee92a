"""The pose node's parameters: one typed table for the node, ``config/pose.yaml`` and the docs.

Built with the depth node's machinery (:mod:`monodepth2_ros.ros.parameters`): each field carries
its ROS description, bounds, choices and read-only flag; tests keep the node's declarations, the
YAML file and the table in the README in step. No ROS import here.

Regenerate the YAML and the docs table with::

    python -m monodepth2_ros.ros.pose_parameters --yaml > config/pose.yaml
    python -m monodepth2_ros.ros.pose_parameters --markdown
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import ClassVar

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.camera_input import RECTIFY_MODES
from monodepth2_ros.inference.estimators import InferenceConfig
from monodepth2_ros.inference.odometry import OPTICAL_RPY, OdometryConfig
from monodepth2_ros.inference.scale import DEFAULT_MIN_DISTANCE_M, ScaleRequest
from monodepth2_ros.model.checkpoint import CheckpointInfo
from monodepth2_ros.ros.parameters import (
    ParameterSpec,
    ParameterTable,
    backend_parameter,
    device_parameter,
    input_transport_parameter,
    onnx_dir_parameter,
    param,
    parameter_specs,
    parameters_main,
    precision_parameter,
    qos_reliability_parameter,
    scale_factor_parameter,
    scale_mode_parameter,
    scale_window_parameter,
    weights_parameter,
)

__all__ = ["PoseNodeParameters", "pose_parameter_specs", "DEFAULT_MOUNT_XYZ", "main"]

DEFAULT_MOUNT_XYZ = (0.0, 0.0, 0.0)
_ODOMETRY_DEFAULTS = OdometryConfig()
_GAP_BOUNDS = (0.001, 3600.0)
_STD_BOUNDS = (0.0, 1000.0)
_DRIFT_BOUNDS = (0.0, 10.0)
_PATH_BOUNDS = (1, 100000)
_FRAME_BUFFER_BOUNDS = (1, 64)
_DISTANCE_BOUNDS = (0.0, 10000.0)
_WAIT_BOUNDS = (0.0, 3600.0)


@dataclass(frozen=True)
class PoseNodeParameters(ParameterTable):
    """Every pose-node parameter with its default; build validated instances with :meth:`from_mapping`."""

    NODE: ClassVar[str] = "pose node"

    weights: str = weights_parameter("Checkpoint folder with the pose network (pose_encoder.pth + pose.pth)")
    device: str = device_parameter()
    precision: str = precision_parameter("; non-finite poses are dropped and counted")
    backend: str = backend_parameter()
    onnx_dir: str = onnx_dir_parameter()
    input_transport: str = input_transport_parameter()
    qos_reliability: str = qos_reliability_parameter("the image and camera_info subscriptions")
    rectify: str = param(
        "auto",
        "Undistort raw images with camera_info (K, D -> P) before the network, as the depth node and training "
        "do: auto (when D is non-zero), true or false (set false for image_rect input). Without camera_info "
        "images are used as they are.",
        choices=RECTIFY_MODES,
    )
    odom_frame: str = param("odom", "Odometry frame (REP 105): header frame of odom and path, parent of the TF.")
    base_frame: str = param(
        "base_link", "Robot body frame (REP 105): child frame of odom and of the TF; the mount is looked up to it."
    )
    publish_tf: bool = param(
        True,
        "Broadcast odom_frame -> base_frame on /tf (needs tf2_ros; without it nothing is broadcast and "
        "the diagnostics say so).",
    )
    camera_to_base_xyz: tuple[float, ...] = param(
        DEFAULT_MOUNT_XYZ,
        "Camera position in base_frame, metres, used while TF has no base_frame <- image frame_id "
        "transform (or tf2_ros is not installed).",
    )
    camera_to_base_rpy: tuple[float, ...] = param(
        tuple(OPTICAL_RPY),
        "Camera orientation in base_frame (roll, pitch, yaw in rad, fixed axes), used with "
        "camera_to_base_xyz; the default is the REP 103 optical frame of a camera looking along +x.",
    )
    max_frame_gap: float = param(
        _ODOMETRY_DEFAULTS.max_frame_gap_s,
        "Seconds between frames above which the odometry restarts from the last pose without "
        "integrating the unknown motion across the gap.",
        bounds=_GAP_BOUNDS,
    )
    static_threshold: float = param(
        0.01,
        "Mean absolute image difference (0..1, as the training's static-frame filter) below which a "
        "frame counts as no motion: the pose stays still and the network does not run; 0 disables.",
        bounds=(0.0, 1.0),
    )
    path_max_length: int = param(1000, "Most poses kept in path (the oldest are dropped).", bounds=_PATH_BOUNDS)
    frame_buffer: int = param(
        8,
        "Most images kept while the network is busy; they are then run as one batch of adjacent pairs, "
        "so no motion is lost. Beyond it the oldest is dropped and one pair spans the gap (counted in the "
        "diagnostics); 1 keeps only the newest image. The image subscription keeps as deep a history "
        "(set at start-up), so frames are not replaced while callbacks wait.",
        bounds=_FRAME_BUFFER_BOUNDS,
    )
    pose_translation_drift: float = param(
        _ODOMETRY_DEFAULTS.translation_drift,
        "Position standard deviation per metre travelled (pose covariance grows linearly with distance).",
        bounds=_DRIFT_BOUNDS,
    )
    pose_rotation_drift: float = param(
        _ODOMETRY_DEFAULTS.rotation_drift,
        "Orientation standard deviation in rad per metre travelled.",
        bounds=_DRIFT_BOUNDS,
    )
    twist_linear_std: float = param(0.2, "Standard deviation of the twist's linear velocity, m/s.", bounds=_STD_BOUNDS)
    twist_angular_std: float = param(0.05, "Standard deviation of the twist's angular velocity, rad/s.", bounds=_STD_BOUNDS)
    scale_mode: str = scale_mode_parameter()
    scale_factor: float = scale_factor_parameter()
    scale_window: int = scale_window_parameter("odometry: motions in the distance ratio")
    shared_scale_wait: float = param(
        5.0,
        "shared: seconds of frames the odometry is held back, unpublished, until the first value on scale "
        "arrives; the held motions are then integrated with it. After that long, odometry is published in "
        "relative units until a value arrives; 0 publishes at once.",
        bounds=_WAIT_BOUNDS,
    )
    scale_odometry_topic: str = param(
        "wheel_odom",
        "nav_msgs/Odometry of base_frame (wheels, GNSS) whose travelled distance gives the scale in "
        "scale_mode odometry; relative names follow the node's namespace.",
        read_only=True,
    )
    scale_min_distance: float = param(
        DEFAULT_MIN_DISTANCE_M,
        "odometry: metres the reference must travel within the window before the scale is updated.",
        bounds=_DISTANCE_BOUNDS,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("odom_frame", "base_frame", "scale_odometry_topic"):
            if not getattr(self, name).strip():
                raise ConfigError(f"parameter {name!r} must not be empty")
        if self.odom_frame == self.base_frame:
            raise ConfigError(f"odom_frame and base_frame must differ, both are {self.odom_frame!r}")

    def inference_config(self) -> InferenceConfig:
        """How the pose network runs; scale 1 (network units): the node applies the scale source."""
        return InferenceConfig(
            device=self.device, precision=self.precision, backend=self.backend, onnx_dir=self.onnx_dir or None, scale=1.0
        )

    def odometry_config(self) -> OdometryConfig:
        return OdometryConfig(
            max_frame_gap_s=self.max_frame_gap,
            translation_drift=self.pose_translation_drift,
            rotation_drift=self.pose_rotation_drift,
        )

    def scale_request(self, info: CheckpointInfo, origin: str = "") -> ScaleRequest:
        """What the scale source is built from (``origin``: the topic its values come from)."""
        return ScaleRequest(
            mode=self.scale_mode,
            factor=self.scale_factor,
            info=info,
            window=self.scale_window,
            min_distance_m=self.scale_min_distance,
            origin=origin,
        )

    @property
    def mount_is_default(self) -> bool:
        """The mount parameters were left at their defaults (so probably not configured)."""
        return self.camera_to_base_xyz == DEFAULT_MOUNT_XYZ and self.camera_to_base_rpy == tuple(OPTICAL_RPY)


def pose_parameter_specs() -> tuple[ParameterSpec, ...]:
    """The pose node's table, in declaration order."""
    return parameter_specs(PoseNodeParameters)


def main(argv: list[str] | None = None) -> int:
    return parameters_main(
        argv, PoseNodeParameters, "pose_node", "monodepth2_ros.ros.pose_parameters", "config/pose.yaml", "the docs table"
    )


if __name__ == "__main__":
    sys.exit(main())
