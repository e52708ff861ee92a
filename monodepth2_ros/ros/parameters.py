"""The depth node's parameters: one typed table shared by the node, ``config/depth.yaml`` and the docs.

Each field of :class:`DepthNodeParameters` carries its ROS description, bounds, choices and whether it
is read-only (fixed at start-up) in its metadata. The node declares exactly these parameters with
these descriptors, the YAML file holds exactly these defaults, and the README table is generated
from them; tests keep the three in step. This module imports no ROS package, so the CLI and the
tests can read the table anywhere; :func:`parameter_descriptor` imports ``rcl_interfaces`` lazily.

Regenerate the YAML and the docs table with::

    python -m monodepth2_ros.ros.parameters --yaml > config/depth.yaml
    python -m monodepth2_ros.ros.parameters --markdown
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.device import PRECISIONS
from monodepth2_ros.inference.estimators import InferenceConfig
from monodepth2_ros.inference.scale import scale_modes

__all__ = [
    "ParameterSpec",
    "DepthNodeParameters",
    "DEPTH_NODE_PARAMETERS",
    "parameter_specs",
    "parameter_descriptor",
    "parameters_yaml",
    "parameters_markdown_table",
    "COLORMAP_NAMES",
    "OUTPUT_SIZES",
    "COLOR_RANGE_MODES",
    "INPUT_TRANSPORTS",
    "QOS_RELIABILITIES",
    "MAX_CLOUD_STRIDE",
]

# Kept in step with monodepth2_ros.evaluation.colorize.COLORMAPS (a test checks); named here so that
# reading the table does not import matplotlib.
COLORMAP_NAMES = ("magma", "turbo", "viridis", "jet", "gray")
OUTPUT_SIZES = ("input", "network")
COLOR_RANGE_MODES = ("auto", "fixed")
INPUT_TRANSPORTS = ("raw", "compressed")
QOS_RELIABILITIES = ("best_effort", "reliable")

MAX_CLOUD_STRIDE = 16
# Bounds of the depth-like parameters, metres: wide enough for any camera, narrow enough to catch typos.
_DEPTH_BOUNDS = (0.001, 10000.0)
_SCALE_BOUNDS = (1e-6, 1e6)
_RANGE_BOUNDS = (0.0, 10000.0)

_INFERENCE_DEFAULTS = InferenceConfig()


@dataclass(frozen=True)
class ParameterSpec:
    """One ROS parameter: name, default (its type is the parameter's type), documentation and checks.

    Attributes:
        name: the parameter name.
        default: default value; bool, int, float or str.
        description: one sentence for ``ros2 param describe`` and the README.
        read_only: fixed once the node has started (set it from a params file or the command line).
        bounds: inclusive (min, max) for numbers.
        choices: allowed values for strings (empty: any string).
    """

    name: str
    default: bool | int | float | str
    description: str
    read_only: bool = False
    bounds: tuple[float, float] | None = None
    choices: tuple[str, ...] = ()

    @property
    def type_name(self) -> str:
        """``bool``, ``integer``, ``double`` or ``string`` (the ROS parameter type names)."""
        return _TYPE_NAMES[type(self.default)]

    def check(self, value: Any) -> None:
        """Raise ConfigError naming the parameter when ``value`` has the wrong type or is out of bounds."""
        expected = type(self.default)
        if type(value) is not expected:
            raise ConfigError(
                f"parameter {self.name!r} must be a {self.type_name}, got {value!r} ({type(value).__name__})"
            )
        if self.choices and value not in self.choices:
            raise ConfigError(f"parameter {self.name!r} must be one of {', '.join(self.choices)}, got {value!r}")
        if self.bounds is not None:
            low, high = self.bounds
            if not (math.isfinite(value) and low <= value <= high):
                raise ConfigError(f"parameter {self.name!r} must be within [{low:g}, {high:g}], got {value!r}")


_TYPE_NAMES = {bool: "bool", int: "integer", float: "double", str: "string"}


def _param(
    default: bool | int | float | str,
    description: str,
    *,
    read_only: bool = False,
    bounds: tuple[float, float] | None = None,
    choices: tuple[str, ...] = (),
) -> Any:
    spec = dict(description=description, read_only=read_only, bounds=bounds, choices=choices)
    return field(default=default, metadata={"parameter": spec})


@dataclass(frozen=True)
class DepthNodeParameters:
    """Every depth-node parameter with its default; build validated instances with :meth:`from_mapping`."""

    weights: str = _param(
        "",
        "Checkpoint folder (encoder.pth + depth.pth); empty uses the model bundled with the package.",
        read_only=True,
    )
    device: str = _param(
        _INFERENCE_DEFAULTS.device,
        "Inference device: auto (CUDA when present), cpu, cuda or cuda:N.",
        read_only=True,
    )
    precision: str = _param(
        _INFERENCE_DEFAULTS.precision,
        "Numeric precision of the network (fp16 needs CUDA).",
        read_only=True,
        choices=PRECISIONS,
    )
    post_process: bool = _param(
        _INFERENCE_DEFAULTS.post_process,
        "Flip post-processing of the paper (better borders, twice the network cost).",
        read_only=True,
    )
    input_transport: str = _param(
        "raw",
        "raw subscribes sensor_msgs/Image on image; compressed subscribes CompressedImage on the "
        "image topic plus /compressed (after remapping, as image_transport does).",
        read_only=True,
        choices=INPUT_TRANSPORTS,
    )
    qos_reliability: str = _param(
        "best_effort",
        "Reliability of the image and camera_info subscriptions (history keep-last 1); best_effort "
        "matches every publisher.",
        read_only=True,
        choices=QOS_RELIABILITIES,
    )
    use_rectified_p: bool = _param(
        False,
        "Take the intrinsics from CameraInfo P (rectified image, e.g. image_rect) instead of K (raw image).",
    )
    wait_for_camera_info: bool = _param(
        True,
        "Drop images until a CameraInfo arrives; false processes them with the default intrinsics.",
    )
    output_size: str = _param(
        "input",
        "Size of the depth, colour and cloud outputs: input (the image size) or network (cheaper).",
        choices=OUTPUT_SIZES,
    )
    min_depth: float = _param(
        _INFERENCE_DEFAULTS.min_depth,
        "Nearest published depth in metres; nearer pixels are NaN in depth and points.",
        bounds=_DEPTH_BOUNDS,
    )
    max_depth: float = _param(
        _INFERENCE_DEFAULTS.max_depth,
        "Farthest published depth in metres; farther pixels are NaN in depth and points.",
        bounds=_DEPTH_BOUNDS,
    )
    scale_mode: str = _param(
        "auto",
        "Metres per network unit: auto (stereo scale for stereo-trained checkpoints, else 1), none "
        "(relative depth, 1), fixed (scale_factor) or stereo (5.4).",
        choices=scale_modes(),
    )
    scale_factor: float = _param(
        1.0,
        "Metres per network unit when scale_mode is fixed.",
        bounds=_SCALE_BOUNDS,
    )
    colormap: str = _param(
        "magma",
        "Colour map of depth/colored (near is bright, following inverse depth).",
        choices=COLORMAP_NAMES,
    )
    color_range_mode: str = _param(
        "auto",
        "auto: colour range from each frame's 5th-95th depth percentiles; fixed: color_min..color_max.",
        choices=COLOR_RANGE_MODES,
    )
    color_min: float = _param(
        0.5,
        "Depth in metres drawn with the nearest colour when color_range_mode is fixed.",
        bounds=_DEPTH_BOUNDS,
    )
    color_max: float = _param(
        50.0,
        "Depth in metres drawn with the farthest colour when color_range_mode is fixed.",
        bounds=_DEPTH_BOUNDS,
    )
    cloud_stride: int = _param(
        1,
        "Keep every n-th row and column in points (1 = every pixel).",
        bounds=(1, MAX_CLOUD_STRIDE),
    )
    cloud_max_range: float = _param(
        0.0,
        "Points farther than this (Euclidean, metres) are NaN or dropped; 0 = no limit beyond max_depth.",
        bounds=_RANGE_BOUNDS,
    )
    cloud_organized: bool = _param(
        True,
        "Publish points as an organised image-shaped cloud with NaN holes (true) or only the valid points (false).",
    )
    publish_depth: bool = _param(True, "Publish depth (32FC1, metres).")
    publish_colored: bool = _param(True, "Publish depth/colored (bgr8).")
    publish_points: bool = _param(True, "Publish points (PointCloud2 x y z rgb).")
    publish_camera_info: bool = _param(True, "Publish depth/camera_info (intrinsics of the depth image).")

    def __post_init__(self) -> None:
        for spec in parameter_specs():
            spec.check(getattr(self, spec.name))
        if not self.min_depth < self.max_depth:
            raise ConfigError(f"min_depth ({self.min_depth}) must be smaller than max_depth ({self.max_depth})")
        if not self.color_min < self.color_max:
            raise ConfigError(f"color_min ({self.color_min}) must be smaller than color_max ({self.color_max})")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DepthNodeParameters:
        """Validated parameters from ``name -> value``; missing names take their defaults.

        Integers are accepted for double parameters (YAML writes ``1`` for ``1.0``).

        Raises:
            ConfigError: an unknown name, a wrong type, a value out of bounds or inconsistent values.
        """
        specs = {spec.name: spec for spec in parameter_specs()}
        unknown = sorted(set(values) - set(specs))
        if unknown:
            raise ConfigError(f"unknown depth node parameter(s) {', '.join(unknown)}; known: {', '.join(specs)}")
        converted = {}
        for name, value in values.items():
            if isinstance(specs[name].default, float) and type(value) is int:
                value = float(value)
            converted[name] = value
        return cls(**converted)

    def inference_config(self) -> InferenceConfig:
        """How the estimator runs. Its scale is 1 (network units); the node applies the scale source."""
        return InferenceConfig(
            device=self.device,
            precision=self.precision,
            post_process=self.post_process,
            scale=1.0,
        )

    def as_dict(self) -> dict[str, Any]:
        return {spec.name: getattr(self, spec.name) for spec in parameter_specs()}


def parameter_specs() -> tuple[ParameterSpec, ...]:
    """The table, in declaration order."""
    specs = []
    for item in fields(DepthNodeParameters):
        if item.default is MISSING:
            continue
        specs.append(ParameterSpec(name=item.name, default=item.default, **item.metadata["parameter"]))
    return tuple(specs)


DEPTH_NODE_PARAMETERS: tuple[ParameterSpec, ...] = parameter_specs()


def parameter_descriptor(spec: ParameterSpec):
    """The ``rcl_interfaces/ParameterDescriptor`` of a parameter (ranges, read-only, choices in the text)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    types = {
        "bool": ParameterType.PARAMETER_BOOL,
        "integer": ParameterType.PARAMETER_INTEGER,
        "double": ParameterType.PARAMETER_DOUBLE,
        "string": ParameterType.PARAMETER_STRING,
    }
    descriptor = ParameterDescriptor(
        name=spec.name,
        type=types[spec.type_name],
        description=spec.description,
        read_only=spec.read_only,
    )
    if spec.choices:
        descriptor.additional_constraints = "one of: " + ", ".join(spec.choices)
    if spec.bounds is not None:
        low, high = spec.bounds
        if isinstance(spec.default, int):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    return descriptor


def _yaml_scalar(value: bool | int | float | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # always with a '.', so ROS reads a double, never an integer
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parameters_yaml(node_name: str = "/**") -> str:
    """The defaults as a ROS 2 params file (``<node>: ros__parameters: ...``), one comment per parameter."""
    lines = [
        "# Parameters of the monodepth2_ros depth node (defaults). Generated from",
        "# monodepth2_ros/ros/parameters.py: python -m monodepth2_ros.ros.parameters --yaml",
        "# Read-only parameters are fixed at start-up; the others can be changed at run time",
        "# (ros2 param set /depth_node <name> <value>).",
        f"{node_name}:",
        "  ros__parameters:",
    ]
    for spec in parameter_specs():
        note = " (read-only)" if spec.read_only else ""
        if spec.choices:
            note += f" [{' | '.join(spec.choices)}]"
        lines.append(f"    # {spec.description}{note}")
        lines.append(f"    {spec.name}: {_yaml_scalar(spec.default)}")
    return "\n".join(lines) + "\n"


def _markdown_default(spec: ParameterSpec) -> str:
    if isinstance(spec.default, str):
        return f'`"{spec.default}"`'
    return f"`{_yaml_scalar(spec.default)}`"


def parameters_markdown_table() -> str:
    """The README table: name, type, default, run-time changeable, meaning (with choices and bounds)."""
    rows = [
        "| Parameter | Type | Default | Changeable at run time | Description |",
        "|---|---|---|---|---|",
    ]
    for spec in parameter_specs():
        extra = ""
        if spec.choices:
            extra = " One of: " + ", ".join(f"`{choice}`" for choice in spec.choices) + "."
        elif spec.bounds is not None:
            low, high = spec.bounds
            extra = f" Range: {low:g} .. {high:g}."
        changeable = "no" if spec.read_only else "yes"
        rows.append(f"| `{spec.name}` | {spec.type_name} | {_markdown_default(spec)} | {changeable} | {spec.description}{extra} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the depth node's parameter table.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--yaml", action="store_true", help="the params file (config/depth.yaml)")
    group.add_argument("--markdown", action="store_true", help="the README table")
    options = parser.parse_args(argv)
    sys.stdout.write(parameters_yaml() if options.yaml else parameters_markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
