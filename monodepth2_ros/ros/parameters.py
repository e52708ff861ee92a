"""The depth node's parameters: one typed table shared by the node, ``config/depth.yaml`` and the docs.

Each field of :class:`DepthNodeParameters` carries its ROS description, bounds, choices and whether it
is read-only (fixed at start-up) in its metadata. The node declares exactly these parameters with
these descriptors, the YAML file holds exactly these defaults, and the README table is generated
from them; tests keep the three in step. This module imports no ROS package, so the CLI and the
tests can read the table anywhere; :func:`parameter_descriptor` imports ``rcl_interfaces`` lazily.
The machinery (:class:`ParameterTable`, :func:`parameter_specs`, :func:`parameters_yaml`,
:func:`declare_parameters`, :func:`parameters_main`, ...) takes the table's dataclass, so other nodes
(the pose node) describe theirs the same way, and the parameters both nodes share are declared once
here (:func:`weights_parameter`, :func:`scale_mode_parameter`, ...).

Regenerate the YAML and the docs table with::

    python -m monodepth2_ros.ros.parameters --yaml > config/depth.yaml
    python -m monodepth2_ros.ros.parameters --markdown
"""

from __future__ import annotations

import argparse
import array
import math
import sys
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.backends import ALL_PRECISIONS, BACKENDS
from monodepth2_ros.inference.camera_input import RECTIFY_MODES
from monodepth2_ros.inference.estimators import InferenceConfig
from monodepth2_ros.inference.ground_plane import GroundPlaneConfig
from monodepth2_ros.inference.laser_scan import ScanConfig
from monodepth2_ros.inference.scale import (
    DEFAULT_CAMERA_HEIGHT_M,
    DEFAULT_SCALE_WINDOW,
    ScaleRequest,
    scale_modes,
)
from monodepth2_ros.model.checkpoint import CheckpointInfo

__all__ = [
    "ParameterSpec",
    "ParameterTable",
    "DepthNodeParameters",
    "DEPTH_NODE_PARAMETERS",
    "parameter_specs",
    "parameter_descriptor",
    "parameters_yaml",
    "parameters_markdown_table",
    "values_from_mapping",
    "declare_parameters",
    "parameters_main",
    "param",
    "weights_parameter",
    "device_parameter",
    "precision_parameter",
    "backend_parameter",
    "onnx_dir_parameter",
    "input_transport_parameter",
    "qos_reliability_parameter",
    "scale_mode_parameter",
    "scale_factor_parameter",
    "scale_window_parameter",
    "SCALE_MODE_HELP",
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
QOS_RELIABILITIES = ("auto", "reliable", "best_effort")

MAX_CLOUD_STRIDE = 16
# Bounds of the depth-like parameters, metres: wide enough for any camera, narrow enough to catch typos.
_DEPTH_BOUNDS = (0.001, 10000.0)
_SCALE_BOUNDS = (1e-6, 1e6)
_RANGE_BOUNDS = (0.0, 10000.0)
_HEIGHT_BOUNDS = (0.01, 100.0)
_TILT_BOUNDS = (1.0, 89.0)
_WINDOW_BOUNDS = (1, 10000)
_SCAN_ROWS_BOUNDS = (1, 4096)
_SCAN_RANGE_BOUNDS = (0.01, 10000.0)

_INFERENCE_DEFAULTS = InferenceConfig()

_Table = TypeVar("_Table", bound="ParameterTable")


@dataclass(frozen=True)
class ParameterSpec:
    """One ROS parameter: name, default (its type is the parameter's type), documentation and checks.

    Attributes:
        name: the parameter name.
        default: default value; bool, int, float, str or a tuple of floats (a fixed-length double
            array, e.g. an xyz position).
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
        """``bool``, ``integer``, ``double``, ``string`` or ``double_array`` (ROS parameter type names)."""
        return _TYPE_NAMES[type(self.default)]

    def check(self, value: Any) -> None:
        """Raise ConfigError naming the parameter when ``value`` has the wrong type or is out of bounds."""
        expected = type(self.default)
        if expected is tuple:
            if not (
                type(value) is tuple
                and len(value) == len(self.default)
                and all(type(item) is float and math.isfinite(item) for item in value)
            ):
                raise ConfigError(
                    f"parameter {self.name!r} must be {len(self.default)} finite doubles, got {value!r}"
                )
            return
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


_TYPE_NAMES = {bool: "bool", int: "integer", float: "double", str: "string", tuple: "double_array"}


def param(
    default: bool | int | float | str | tuple[float, ...],
    description: str,
    *,
    read_only: bool = False,
    bounds: tuple[float, float] | None = None,
    choices: tuple[str, ...] = (),
) -> Any:
    """A dataclass field that is a ROS parameter (see :class:`ParameterSpec` for the arguments)."""
    spec = dict(description=description, read_only=read_only, bounds=bounds, choices=choices)
    return field(default=default, metadata={"parameter": spec})


_param = param


def weights_parameter(folder: str) -> Any:
    """The read-only ``weights`` field; ``folder`` says which files the checkpoint folder holds."""
    return param("", f"{folder}, or the name of a model bundled with the package (synthetic_streets_320x96); empty uses the default bundled model.", read_only=True)


def device_parameter() -> Any:
    return param(
        _INFERENCE_DEFAULTS.device, "Inference device: auto (CUDA when present), cpu, cuda or cuda:N.", read_only=True
    )


def precision_parameter(note: str = "") -> Any:
    """The read-only ``precision`` field; ``note`` is appended to the fp16 remark (``"; ..."``)."""
    return param(
        _INFERENCE_DEFAULTS.precision,
        f"Numeric precision of the network (fp16 needs CUDA{note}; int8 needs the onnxruntime or openvino backend; ignored with backend auto).",
        read_only=True,
        choices=ALL_PRECISIONS,
    )


def backend_parameter() -> Any:
    return param(
        _INFERENCE_DEFAULTS.backend,
        "Network runtime: eager (PyTorch), eager_optimized (BatchNorm folded, channels_last), compile "
        "(torch.compile), onnxruntime (fp32 or int8; CUDA/TensorRT providers when installed), openvino "
        "(CPU: fp32, bf16 or int8), auto (the fastest of these within the accuracy bound here, measured "
        "once and cached; the pick is logged). A backend this machine lacks falls back to eager with a warning.",
        read_only=True,
        choices=BACKENDS,
    )


def onnx_dir_parameter() -> Any:
    return param(
        "",
        "Folder of 'monodepth2 export' ONNX files for the onnxruntime and openvino backends; empty "
        "exports (and, for int8, calibrates) at start-up.",
        read_only=True,
    )


def input_transport_parameter() -> Any:
    return param(
        "raw",
        "raw subscribes sensor_msgs/Image on image; compressed subscribes CompressedImage on the "
        "image topic plus /compressed (after remapping, as image_transport does).",
        read_only=True,
        choices=INPUT_TRANSPORTS,
    )


def qos_reliability_parameter(subscriptions: str) -> Any:
    """The read-only ``qos_reliability`` field; ``subscriptions`` names what it applies to."""
    return param(
        "auto",
        f"Reliability of {subscriptions} (history keep-last 1): auto subscribes reliable while every "
        "publisher offers reliable and best effort once any offers best effort, and follows them when they "
        "change; reliable or best_effort fix it (best_effort matches every publisher but loses large images "
        "between processes).",
        read_only=True,
        choices=QOS_RELIABILITIES,
    )


SCALE_MODE_HELP = (
    "Metres per network unit (depth and pose translation): auto (stereo scale for stereo-trained "
    "checkpoints, else 1), none (relative, 1), fixed (scale_factor), stereo (5.4), shared (the value "
    "another node publishes on scale), camera_height (road plane and camera_height; depth node), "
    "odometry (distance of an external odometry; pose node)."
)


def scale_mode_parameter() -> Any:
    """The ``scale_mode`` field both nodes declare (one description, the registered modes)."""
    return param("auto", SCALE_MODE_HELP, choices=scale_modes())


def scale_factor_parameter() -> Any:
    return param(1.0, "Metres per network unit when scale_mode is fixed.", bounds=_SCALE_BOUNDS)


def scale_window_parameter(what: str) -> Any:
    return param(
        DEFAULT_SCALE_WINDOW,
        f"Frames the estimating scale modes average over ({what}).",
        bounds=_WINDOW_BOUNDS,
    )


class ParameterTable:
    """Base of a node's parameter table: a frozen dataclass whose fields are :func:`param` fields.

    Every field is checked against its spec when an instance is made (a subclass's
    ``__post_init__`` calls this one's, then checks how the values go together).
    """

    # The node, for messages ("depth node").
    NODE: ClassVar[str] = "node"

    def __post_init__(self) -> None:
        for spec in parameter_specs(type(self)):
            spec.check(getattr(self, spec.name))

    @classmethod
    def from_mapping(cls: type[_Table], values: Mapping[str, Any]) -> _Table:
        """Validated parameters from ``name -> value``; missing names take their defaults.

        Integers are accepted for double parameters (YAML writes ``1`` for ``1.0``).

        Raises:
            ConfigError: an unknown name, a wrong type, a value out of bounds or inconsistent values.
        """
        return cls(**values_from_mapping(cls, values, cls.NODE))

    def as_dict(self) -> dict[str, Any]:
        """``name -> value`` of every parameter, in declaration order."""
        return {spec.name: getattr(self, spec.name) for spec in parameter_specs(type(self))}


@dataclass(frozen=True)
class DepthNodeParameters(ParameterTable):
    """Every depth-node parameter with its default; build validated instances with :meth:`from_mapping`."""

    NODE: ClassVar[str] = "depth node"

    weights: str = weights_parameter("Checkpoint folder (encoder.pth + depth.pth)")
    device: str = device_parameter()
    precision: str = precision_parameter()
    backend: str = backend_parameter()
    onnx_dir: str = onnx_dir_parameter()
    post_process: bool = _param(
        _INFERENCE_DEFAULTS.post_process,
        "Flip post-processing of the paper (better borders, twice the network cost).",
        read_only=True,
    )
    input_transport: str = input_transport_parameter()
    qos_reliability: str = qos_reliability_parameter("the image and camera_info subscriptions")
    use_rectified_p: bool = _param(
        False,
        "Take the intrinsics from CameraInfo P (rectified image, e.g. image_rect) instead of K (raw image).",
    )
    rectify: str = _param(
        "auto",
        "Undistort raw images with the CameraInfo (K, D -> P) before the network: auto (when D is non-zero "
        "and use_rectified_p is false), true or false. Rectified outputs are on the rectified grid, with D = 0.",
        choices=RECTIFY_MODES,
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
    scale_mode: str = scale_mode_parameter()
    scale_factor: float = scale_factor_parameter()
    camera_height: float = _param(
        DEFAULT_CAMERA_HEIGHT_M,
        "Height of the camera above the road in metres, for scale_mode camera_height.",
        bounds=_HEIGHT_BOUNDS,
    )
    scale_window: int = scale_window_parameter("camera_height: median of the per-frame estimates")
    ground_max_tilt_deg: float = _param(
        GroundPlaneConfig.max_tilt_deg,
        "camera_height: largest angle in degrees between the road normal and the camera's up (-y) "
        "axis; covers the camera's pitch and roll. Steeper planes are rejected.",
        bounds=_TILT_BOUNDS,
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
    publish_compressed: bool = _param(
        True,
        "Publish depth/compressedDepth (16UC1 PNG in millimetres, needs a metric scale) and "
        "depth/colored/compressed (JPEG), each computed only while subscribed.",
    )
    jpeg_quality: int = _param(90, "JPEG quality of depth/colored/compressed.", bounds=(1, 100))
    publish_scan: bool = _param(
        False,
        "Publish scan (sensor_msgs/LaserScan, needs a metric scale): the nearest depth per column in a "
        "band of rows around the optical centre, for 2-D costmaps and SLAM.",
    )
    scan_height: int = _param(5, "Rows of depth in the scan band.", bounds=_SCAN_ROWS_BOUNDS)
    scan_row_offset: int = _param(
        0,
        "Rows from the optical-centre row to the centre of the scan band (positive: lower in the image).",
        bounds=(-_SCAN_ROWS_BOUNDS[1], _SCAN_ROWS_BOUNDS[1]),
    )
    scan_range_min: float = _param(
        0.3, "Nearest range in scan, metres; nearer returns are -inf (REP 117).", bounds=_RANGE_BOUNDS
    )
    scan_range_max: float = _param(
        8.0,
        "Farthest range in scan, metres; farther returns are +inf. Keep it where the depth error is small "
        "(see the README's Nav2 section).",
        bounds=_SCAN_RANGE_BOUNDS,
    )
    scan_frame_id: str = _param(
        "",
        "frame_id of scan; empty uses the image's. The scan turns about z, so name a frame at the camera "
        "with x forward and z up (e.g. camera_link), not the optical frame.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.min_depth < self.max_depth:
            raise ConfigError(f"min_depth ({self.min_depth}) must be smaller than max_depth ({self.max_depth})")
        if not self.color_min < self.color_max:
            raise ConfigError(f"color_min ({self.color_min}) must be smaller than color_max ({self.color_max})")
        if not self.scan_range_min < self.scan_range_max:
            raise ConfigError(
                f"scan_range_min ({self.scan_range_min}) must be smaller than scan_range_max ({self.scan_range_max})"
            )

    def scale_request(self, info: CheckpointInfo, origin: str = "") -> ScaleRequest:
        """What the scale source is built from (``origin``: the topic shared scales come from)."""
        return ScaleRequest(
            mode=self.scale_mode,
            factor=self.scale_factor,
            info=info,
            camera_height_m=self.camera_height,
            window=self.scale_window,
            max_tilt_deg=self.ground_max_tilt_deg,
            origin=origin,
        )

    def scan_config(self) -> ScanConfig:
        """The band and range limits of the ``scan`` output."""
        return ScanConfig(
            height=self.scan_height,
            row_offset=self.scan_row_offset,
            range_min=self.scan_range_min,
            range_max=self.scan_range_max,
        )

    def inference_config(self) -> InferenceConfig:
        """How the estimator runs. Its scale is 1 (network units); the node applies the scale source."""
        return InferenceConfig(
            device=self.device,
            precision=self.precision,
            backend=self.backend,
            onnx_dir=self.onnx_dir or None,
            post_process=self.post_process,
            scale=1.0,
        )


def parameter_specs(table: type | None = None) -> tuple[ParameterSpec, ...]:
    """The table (default: :class:`DepthNodeParameters`), in declaration order."""
    specs = []
    for item in fields(table or DepthNodeParameters):
        if item.default is MISSING or "parameter" not in item.metadata:
            continue
        specs.append(ParameterSpec(name=item.name, default=item.default, **item.metadata["parameter"]))
    return tuple(specs)


def values_from_mapping(table: type, values: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``name -> value`` converted for ``table``'s constructor: ints for doubles, sequences to tuples.

    Args:
        table: the parameters dataclass.
        values: names and values as ROS gives them (``array('d')`` or lists for double arrays).
        what: the node, for the message (``"pose node"``).
    Raises:
        ConfigError: an unknown name.
    """
    specs = {spec.name: spec for spec in parameter_specs(table)}
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise ConfigError(f"unknown {what} parameter(s) {', '.join(unknown)}; known: {', '.join(specs)}")
    converted = {}
    for name, value in values.items():
        default = specs[name].default
        if isinstance(default, float) and type(value) is int:
            value = float(value)
        elif isinstance(default, tuple) and isinstance(value, (list, tuple, array.array)):
            value = tuple(float(item) if type(item) in (int, float) else item for item in value)
        converted[name] = value
    return converted


def declare_parameters(node: Any, table: type) -> Any:
    """Declare every parameter of ``table`` on an rclpy ``node`` and return the validated values.

    Raises:
        ConfigError: a value of the wrong type (e.g. ``80`` for a double in a params file) or an
            invalid combination, naming the parameter.
    """
    from rclpy.exceptions import ParameterException

    values = {}
    for spec in parameter_specs(table):
        try:
            node.declare_parameter(spec.name, spec.default, parameter_descriptor(spec))
        except ParameterException as err:
            raise ConfigError(
                f"parameter {spec.name!r}: {err} (expected a {spec.type_name}, default {spec.default!r}; "
                "write doubles with a decimal point, e.g. 10.0)"
            ) from err
        values[spec.name] = node.get_parameter(spec.name).value
    return table.from_mapping(values)


DEPTH_NODE_PARAMETERS: tuple[ParameterSpec, ...] = parameter_specs()


def parameter_descriptor(spec: ParameterSpec):
    """The ``rcl_interfaces/ParameterDescriptor`` of a parameter (ranges, read-only, choices in the text)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    types = {
        "bool": ParameterType.PARAMETER_BOOL,
        "integer": ParameterType.PARAMETER_INTEGER,
        "double": ParameterType.PARAMETER_DOUBLE,
        "string": ParameterType.PARAMETER_STRING,
        "double_array": ParameterType.PARAMETER_DOUBLE_ARRAY,
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


def _yaml_scalar(value: bool | int | float | str | tuple[float, ...]) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_yaml_scalar(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # always with a '.', so ROS reads a double, never an integer
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parameters_yaml(
    node_name: str = "/**", table: type | None = None, node: str = "depth_node", module: str = "monodepth2_ros.ros.parameters"
) -> str:
    """The defaults as a ROS 2 params file (``<node>: ros__parameters: ...``), one comment per parameter.

    Args:
        node_name: the YAML key (``/**`` applies to any node name).
        table: the parameters dataclass (default: the depth node's).
        node: the node's name, for the header comment.
        module: the module whose ``--yaml`` regenerates the file, for the header comment.
    """
    lines = [
        f"# Parameters of the monodepth2_ros {node.replace('_', ' ')} (defaults). Generated from",
        f"# {module.replace('.', '/')}.py: python -m {module} --yaml",
        "# Read-only parameters are fixed at start-up; the others can be changed at run time",
        f"# (ros2 param set /{node} <name> <value>).",
        f"{node_name}:",
        "  ros__parameters:",
    ]
    for spec in parameter_specs(table):
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


def parameters_markdown_table(table: type | None = None) -> str:
    """The README table: name, type, default, run-time changeable, meaning (with choices and bounds)."""
    rows = [
        "| Parameter | Type | Default | Changeable at run time | Description |",
        "|---|---|---|---|---|",
    ]
    for spec in parameter_specs(table):
        extra = ""
        if spec.choices:
            extra = " One of: " + ", ".join(f"`{choice}`" for choice in spec.choices) + "."
        elif spec.bounds is not None:
            low, high = spec.bounds
            extra = f" Range: {low:g} .. {high:g}."
        changeable = "no" if spec.read_only else "yes"
        rows.append(f"| `{spec.name}` | {spec.type_name} | {_markdown_default(spec)} | {changeable} | {spec.description}{extra} |")
    return "\n".join(rows) + "\n"


def parameters_main(
    argv: list[str] | None, table: type, node: str, module: str, config_file: str, markdown_help: str
) -> int:
    """The command line of a table's module: print its params file (``--yaml``) or docs table (``--markdown``).

    Args:
        table: the parameters dataclass.
        node: the node's name (``depth_node``).
        module: the module run with ``python -m``, named in the file's header.
        config_file: the params file it regenerates, for the help.
        markdown_help: the help of ``--markdown`` (which table it prints).
    """
    parser = argparse.ArgumentParser(description=f"Print the {node.replace('_', ' ')}'s parameter table.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--yaml", action="store_true", help=f"the params file ({config_file})")
    group.add_argument("--markdown", action="store_true", help=markdown_help)
    options = parser.parse_args(argv)
    if options.yaml:
        sys.stdout.write(parameters_yaml(table=table, node=node, module=module))
    else:
        sys.stdout.write(parameters_markdown_table(table))
    return 0


def main(argv: list[str] | None = None) -> int:
    return parameters_main(
        argv, DepthNodeParameters, "depth_node", "monodepth2_ros.ros.parameters", "config/depth.yaml", "the README table"
    )


if __name__ == "__main__":
    sys.exit(main())
