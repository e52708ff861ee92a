"""Which nodes the depth launch starts, with which parameters and remappings, as plain data.

``launch/depth.launch.py`` turns the plan into ``launch_ros`` Node actions and ``monodepth2 run``
(:mod:`monodepth2_ros.ros.bringup`) into nodes in one process, so both start the same graph. This
module imports neither ``launch`` nor ``rclpy``: tests and the CLI read the plan anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monodepth2_ros.errors import ConfigError

__all__ = [
    "PACKAGE",
    "LaunchArgument",
    "DEPTH_LAUNCH_ARGUMENTS",
    "NodeSpec",
    "config_path",
    "parse_bool",
    "depth_launch_plan",
    "NAV2_DEPTH_LAUNCH_ARGUMENTS",
    "NAV2_COSTMAP_EXAMPLE",
    "nav2_depth_launch_plan",
]

PACKAGE = "monodepth2_ros"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent

# Topics RViz's config (config/depth.rviz) displays, remapped onto the launched graph.
RVIZ_IMAGE_TOPIC = "/image"
RVIZ_COLORED_TOPIC = "/depth/colored"
RVIZ_POINTS_TOPIC = "/points"

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


@dataclass(frozen=True)
class LaunchArgument:
    """One ``ros2 launch`` argument: name, default (a string, as launch has it) and meaning."""

    name: str
    default: str
    description: str


DEPTH_LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("image", "/camera/image_raw", "Camera image topic (sensor_msgs/Image); with input_transport "
                   "compressed, '<image>/compressed' is subscribed."),
    LaunchArgument("camera_info", "/camera/camera_info", "CameraInfo topic of that camera."),
    LaunchArgument("weights", "", "Checkpoint folder or a bundled model's name; empty keeps the params file's value (default: the bundled default model)."),
    LaunchArgument("device", "", "auto, cpu, cuda or cuda:N; empty keeps the params file's value."),
    LaunchArgument("params_file", "", "Parameters YAML of the depth node; empty uses the package's config/depth.yaml."),
    LaunchArgument("namespace", "", "Namespace of the nodes (their outputs become <namespace>/depth, ...)."),
    LaunchArgument("use_pose", "false", "Also start pose_node on the same camera."),
    LaunchArgument("scale_mode", "", "Metric scale of both nodes: camera_height (depth_node estimates, pose_node "
                   "shares), odometry (pose_node estimates, depth_node shares) or any other scale_mode for both; "
                   "empty keeps the params files' values."),
    LaunchArgument("rviz", "false", "Also start RViz2 with config/depth.rviz."),
)


@dataclass(frozen=True)
class NodeSpec:
    """One node to start, in the vocabulary of ``launch_ros.actions.Node``.

    Attributes:
        parameters: params-file paths and ``{name: value}`` overrides, applied in order (later wins).
        remappings: ``(from, to)`` topic pairs.
        arguments: extra command-line arguments (e.g. RViz's ``-d config``).
    """

    package: str
    executable: str
    name: str
    namespace: str = ""
    parameters: tuple[str | Mapping[str, Any], ...] = ()
    remappings: tuple[tuple[str, str], ...] = ()
    arguments: tuple[str, ...] = ()
    output: str = "screen"

    def launch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``launch_ros.actions.Node`` (APIs available since ROS 2 Foxy)."""
        kwargs: dict[str, Any] = dict(
            package=self.package,
            executable=self.executable,
            name=self.name,
            namespace=self.namespace,
            output=self.output,
        )
        if self.parameters:
            kwargs["parameters"] = [dict(item) if isinstance(item, Mapping) else item for item in self.parameters]
        if self.remappings:
            kwargs["remappings"] = list(self.remappings)
        if self.arguments:
            kwargs["arguments"] = list(self.arguments)
        return kwargs

    def ros_arguments(self) -> list[str]:
        """The remappings and params files as node ``--ros-args`` (what bringup passes as ``cli_args``)."""
        args = ["--ros-args"]
        for item in self.parameters:
            if not isinstance(item, Mapping):
                args += ["--params-file", str(item)]
        for source, target in self.remappings:
            args += ["-r", f"{source}:={target}"]
        return args

    def parameter_overrides(self) -> dict[str, Any]:
        """The ``{name: value}`` parameters, merged in order."""
        merged: dict[str, Any] = {}
        for item in self.parameters:
            if isinstance(item, Mapping):
                merged.update(item)
        return merged


def config_path(name: str) -> Path:
    """``config/<name>`` of the installed package (ament index), else of this source tree."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return _SOURCE_ROOT / "config" / name
    try:
        installed = Path(get_package_share_directory(PACKAGE)) / "config" / name
    except (PackageNotFoundError, ValueError, LookupError, OSError):  # not installed, or no AMENT_PREFIX_PATH
        return _SOURCE_ROOT / "config" / name
    return installed if installed.exists() else _SOURCE_ROOT / "config" / name


def parse_bool(value: str | bool, name: str = "argument") -> bool:
    """A launch-style boolean (``true``/``false``/``1``/``0``/...)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _resolve(namespace: str, topic: str) -> str:
    """The absolute name a node in ``namespace`` gives ``topic`` (absolute topics stay as they are)."""
    if topic.startswith("/"):
        return topic
    prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{prefix}/{topic}"


def depth_launch_plan(args: Mapping[str, str]) -> list[NodeSpec]:
    """The nodes of ``depth.launch.py`` for the given launch arguments.

    Args:
        args: values of :data:`DEPTH_LAUNCH_ARGUMENTS` by name; missing ones take their defaults.
    Returns:
        depth_node, then pose_node when ``use_pose``, then rviz2 when ``rviz``.
    Raises:
        ConfigError: an unknown argument, a malformed boolean, or a scale_mode the nodes cannot run.
    """
    defaults = {argument.name: argument.default for argument in DEPTH_LAUNCH_ARGUMENTS}
    unknown = sorted(set(args) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown launch argument(s) {', '.join(unknown)}; known: {', '.join(defaults)}")
    values = {**defaults, **{key: str(value) for key, value in args.items()}}
    namespace = values["namespace"].strip().strip("/")
    params_files: tuple[str, ...] = ()
    if values["params_file"].strip():
        params_files = (values["params_file"].strip(),)
    elif config_path("depth.yaml").exists():  # else the node's built-in defaults, which are the same
        params_files = (str(config_path("depth.yaml")),)
    overrides = {key: values[key] for key in ("weights", "device") if values[key].strip()}
    camera = (("image", values["image"]), ("camera_info", values["camera_info"]))
    use_pose = parse_bool(values["use_pose"], "use_pose")
    depth_overrides, pose_overrides = dict(overrides), dict(overrides)
    if values["scale_mode"].strip():
        from monodepth2_ros.inference.scale import node_scale_modes  # torch: only when a scale mode is asked for

        depth_overrides["scale_mode"], pose_overrides["scale_mode"] = node_scale_modes(values["scale_mode"].strip(), use_pose)

    plan = [
        NodeSpec(
            package=PACKAGE,
            executable="depth_node",
            name="depth_node",
            namespace=namespace,
            parameters=params_files + ((depth_overrides,) if depth_overrides else ()),
            remappings=camera,
        )
    ]
    if use_pose:
        pose_params: list[str | Mapping[str, Any]] = []
        pose_file = config_path("pose.yaml")
        if pose_file.exists():
            pose_params.append(str(pose_file))
        if pose_overrides:
            pose_params.append(pose_overrides)
        plan.append(
            NodeSpec(
                package=PACKAGE,
                executable="pose_node",
                name="pose_node",
                namespace=namespace,
                parameters=tuple(pose_params),
                remappings=camera,
            )
        )
    if parse_bool(values["rviz"], "rviz"):
        plan.append(
            NodeSpec(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                namespace=namespace,
                arguments=("-d", str(config_path("depth.rviz"))),
                remappings=(
                    (RVIZ_IMAGE_TOPIC, _resolve(namespace, values["image"])),
                    (RVIZ_COLORED_TOPIC, _resolve(namespace, RVIZ_COLORED_TOPIC.lstrip("/"))),
                    (RVIZ_POINTS_TOPIC, _resolve(namespace, RVIZ_POINTS_TOPIC.lstrip("/"))),
                ),
            )
        )
    return plan


# ----------------------------------------------------------------------------------------------
# The Nav2 recipe: launch/nav2_depth.launch.py and config/nav2_costmap_example.yaml

NAV2_COSTMAP_EXAMPLE = "nav2_costmap_example.yaml"
# Scale modes that give a costmap metres; none is relative and odometry belongs to the pose node.
NAV2_SCALE_MODES = ("camera_height", "stereo", "fixed", "shared", "auto")

NAV2_DEPTH_LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("image", "/camera/image_raw", "Camera image topic (sensor_msgs/Image)."),
    LaunchArgument("camera_info", "/camera/camera_info", "CameraInfo topic of that camera."),
    LaunchArgument("weights", "", "Checkpoint folder or a bundled model's name; empty keeps the params file's value (default: the bundled default model)."),
    LaunchArgument("device", "", "auto, cpu, cuda or cuda:N; empty keeps the params file's value."),
    LaunchArgument("params_file", "", "Parameters YAML of the depth node; empty uses the package's config/depth.yaml."),
    LaunchArgument("namespace", "", "Namespace of the nodes."),
    LaunchArgument("scale_mode", "camera_height", "Metric scale (a costmap needs metres): camera_height, stereo, "
                   "fixed, shared or auto (a stereo-trained checkpoint)."),
    LaunchArgument("camera_height", "", "Height of the camera above the floor in metres for scale_mode "
                   "camera_height; empty keeps the params file's value."),
    LaunchArgument("scan_frame_id", "camera_link", "frame_id of the scan: at the camera, x forward, z up."),
    LaunchArgument("scan_range_max", "8.0", "Farthest range in scan and points, metres (see the README's Nav2 section)."),
    LaunchArgument("scan_topic", "/camera/scan", "Topic the node's scan is remapped to (the ObstacleLayer source)."),
    LaunchArgument("points_topic", "/camera/points", "Topic the node's points are remapped to (the VoxelLayer source)."),
    LaunchArgument("use_lifecycle", "false", "Start depth_lifecycle_node (unconfigured until a lifecycle manager "
                   "configures and activates it) instead of depth_node."),
    LaunchArgument("lifecycle_manager", "false", "Also start nav2_lifecycle_manager for the depth node (autostart, "
                   "no bond); implies use_lifecycle."),
)


def _positive_metres(value: str, name: str) -> float:
    try:
        metres = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of metres, got {value!r}") from None
    if not metres > 0.0 or metres == float("inf"):
        raise ConfigError(f"{name} must be a positive number of metres, got {value!r}")
    return metres


def nav2_depth_launch_plan(args: Mapping[str, str]) -> list[NodeSpec]:
    """The nodes of ``nav2_depth.launch.py``: the depth node with a metric scale, ``scan`` and a
    sparse ``points`` for Nav2's costmap layers, optionally managed by nav2_lifecycle_manager.

    Args:
        args: values of :data:`NAV2_DEPTH_LAUNCH_ARGUMENTS` by name; missing ones take their defaults.
    Raises:
        ConfigError: an unknown argument, a malformed boolean or number, or a non-metric scale_mode.
    """
    defaults = {argument.name: argument.default for argument in NAV2_DEPTH_LAUNCH_ARGUMENTS}
    unknown = sorted(set(args) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown launch argument(s) {', '.join(unknown)}; known: {', '.join(defaults)}")
    values = {**defaults, **{key: str(value).strip() for key, value in args.items()}}
    if values["scale_mode"] not in NAV2_SCALE_MODES:
        raise ConfigError(
            f"scale_mode {values['scale_mode']!r} does not give metres; a costmap needs one of "
            f"{', '.join(NAV2_SCALE_MODES)}"
        )
    range_max = _positive_metres(values["scan_range_max"], "scan_range_max")
    overrides: dict[str, Any] = {key: values[key] for key in ("weights", "device") if values[key]}
    overrides.update(
        scale_mode=values["scale_mode"],
        publish_scan=True,
        scan_frame_id=values["scan_frame_id"],
        scan_range_max=range_max,
        # A costmap wants few, valid points: every second pixel, no NaN holes, nothing beyond the scan's range.
        cloud_stride=2,
        cloud_organized=False,
        cloud_max_range=range_max,
    )
    if values["camera_height"]:
        overrides["camera_height"] = _positive_metres(values["camera_height"], "camera_height")
    params_files: tuple[str, ...] = ()
    if values["params_file"]:
        params_files = (values["params_file"],)
    elif config_path("depth.yaml").exists():
        params_files = (str(config_path("depth.yaml")),)
    manager = parse_bool(values["lifecycle_manager"], "lifecycle_manager")
    managed = manager or parse_bool(values["use_lifecycle"], "use_lifecycle")
    namespace = values["namespace"].strip("/")
    plan = [
        NodeSpec(
            package=PACKAGE,
            executable="depth_lifecycle_node" if managed else "depth_node",
            name="depth_node",
            namespace=namespace,
            parameters=params_files + (overrides,),
            remappings=(
                ("image", values["image"]),
                ("camera_info", values["camera_info"]),
                ("scan", values["scan_topic"]),
                ("points", values["points_topic"]),
            ),
        )
    ]
    if manager:
        plan.append(
            NodeSpec(
                package="nav2_lifecycle_manager",
                executable="lifecycle_manager",
                name="lifecycle_manager_depth",
                namespace=namespace,
                # No bond: the Python node does not run Nav2's bond heartbeat.
                parameters=({"node_names": ["depth_node"], "autostart": True, "bond_timeout": 0.0},),
            )
        )
    return plan
