"""The pose node's parameters: one typed table for the node, ``config/pose.yaml`` and the docs.

Built with the depth node's machinery (:mod:`monodepth2_ros.ros.parameters`): each field carries
its ROS description, bounds, choices and read-only flag; tests keep the node's declarations, the
YAML file and the table in the README in step. No ROS import here.

Regenerate the YAML and the docs table with::

    python -m monodepth2_ros.ros.pose_parameters --yaml > config/pose.yaml
    python -m monodepth2_ros.ros.pose_parameters --markdown
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.device import PRECISIONS
from monodepth2_ros.inference.estimators import InferenceConfig
from monodepth2_ros.inference.odometry import OPTICAL_RPY, OdometryConfig
from monodepth2_ros.inference.scale import DEFAULT_MIN_DISTANCE_M, ScaleRequest
from monodepth2_ros.model.checkpoint import CheckpointInfo
from monodepth2_ros.ros.parameters import (
    INPUT_TRANSPORTS,
    QOS_RELIABILITIES,
    param,
    parameter_specs,
    parameters_markdown_table,
    parameters_yaml,
    scale_factor_parameter,
    scale_mode_parameter,
    scale_window_parameter,
    values_from_mapping,
)

__all__ = ["PoseNodeParameters", "pose_parameter_specs", "DEFAULT_MOUNT_XYZ", "main"]

DEFAULT_MOUNT_XYZ = (0.0, 0.0, 0.0)
_INFERENCE_DEFAULTS = InferenceConfig()
_ODOMETRY_DEFAULTS = OdometryConfig()
_GAP_BOUNDS = (0.001, 3600.0)
_STD_BOUNDS = (0.0, 1000.0)
_DRIFT_BOUNDS = (0.0, 10.0)
_PATH_BOUNDS = (1, 100000)
_DISTANCE_BOUNDS = (0.0, 10000.0)


@dataclass(frozen=True)
class PoseNodeParameters:
    """Every pose-node parameter with its default; build validated instances with :meth:`from_mapping`."""

    weights: str = param(
        "",
        "Checkpoint folder with the pose network (pose_encoder.pth + pose.pth); empty uses the model "
        "bundled with the package.",
        read_only=True,
    )
    device: str = param(
        _INFERENCE_DEFAULTS.device, "Inference device: auto (CUDA when present), cpu, cuda or cuda:N.", read_only=True
    )
    precision: str = param(
        _INFERENCE_DEFAULTS.precision,
        "Numeric precision of the network (fp16 needs CUDA; non-finite poses are dropped and counted).",
        read_only=True,
        choices=PRECISIONS,
    )
    input_transport: str = param(
        "raw",
        "raw subscribes sensor_msgs/Image on image; compressed subscribes CompressedImage on the "
        "image topic plus /compressed (after remapping, as image_transport does).",
        read_only=True,
        choices=INPUT_TRANSPORTS,
    )
    qos_reliability: str = param(
        "best_effort",
        "Reliability of the image subscription (history keep-last 1); best_effort matches every publisher.",
        read_only=True,
        choices=QOS_RELIABILITIES,
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
        for spec in pose_parameter_specs():
            spec.check(getattr(self, spec.name))
        for name in ("odom_frame", "base_frame", "scale_odometry_topic"):
            if not getattr(self, name).strip():
                raise ConfigError(f"parameter {name!r} must not be empty")
        if self.odom_frame == self.base_frame:
            raise ConfigError(f"odom_frame and base_frame must differ, both are {self.odom_frame!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> PoseNodeParameters:
        """Validated parameters from ``name -> value``; missing names take their defaults.

        Raises:
            ConfigError: an unknown name, a wrong type, a value out of bounds or inconsistent values.
        """
        return cls(**values_from_mapping(cls, values, "pose node"))

    def as_dict(self) -> dict[str, Any]:
        return {spec.name: getattr(self, spec.name) for spec in pose_parameter_specs()}

    def inference_config(self) -> InferenceConfig:
        """How the pose network runs; scale 1 (network units): the node applies the scale source."""
        return InferenceConfig(device=self.device, precision=self.precision, scale=1.0)

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


def pose_parameter_specs():
    """The pose node's table, in declaration order."""
    return parameter_specs(PoseNodeParameters)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the pose node's parameter table.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--yaml", action="store_true", help="the params file (config/pose.yaml)")
    group.add_argument("--markdown", action="store_true", help="the docs table")
    options = parser.parse_args(argv)
    if options.yaml:
        sys.stdout.write(
            parameters_yaml(table=PoseNodeParameters, node="pose_node", module="monodepth2_ros.ros.pose_parameters")
        )
    else:
        sys.stdout.write(parameters_markdown_table(PoseNodeParameters))
    return 0


if __name__ == "__main__":
    sys.exit(main())
