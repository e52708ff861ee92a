"""Start the depth node (and the pose node) in one process, without ``ros2 launch``.

    python -m monodepth2_ros.ros.bringup --weights ~/models/mono+stereo_640x192 -r image:=/cam/image_raw
    monodepth2 run --pose -r image:=/cam/image_raw -r camera_info:=/cam/camera_info

The nodes, their parameters files and remappings come from the same plan as ``depth.launch.py``
(:func:`monodepth2_ros.ros.launch_plan.depth_launch_plan`); ``-r`` rules given here take precedence
over the plan's. All nodes share one executor (:func:`~monodepth2_ros.ros.node_common.callback_executor`).
rclpy is imported only when nodes start, so building the command line needs no ROS.

Transport: the nodes share this process's DDS participant (with the depth node's Fast DDS profile,
:mod:`~monodepth2_ros.ros.dds_profile`), so what one publishes for the other (the scale) never
leaves the process. The camera driver is another process: the nodes' qos_reliability
auto subscribes reliable to a reliable driver (every frame arrives with the default transports) and
best effort to a best-effort one, which needs FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA in the driver's
process and this one for large images (README: Large images over DDS).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monodepth2_ros.errors import ConfigError, MissingInputError, Monodepth2Error
from monodepth2_ros.ros.launch_plan import PACKAGE, NodeSpec, depth_launch_plan

__all__ = [
    "NODE_CLASSES", "add_arguments", "bringup_plan", "create_nodes", "node_process_command", "run_bringup", "main",
]  # fmt: skip

# executable name -> "module:Class" of the nodes this package can start in-process.
NODE_CLASSES = {
    "depth_node": "monodepth2_ros.ros.depth_node:DepthNode",
    "pose_node": "monodepth2_ros.ros.pose_node:PoseNode",
}

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

EXAMPLES = """examples:
  monodepth2 run -r image:=/camera/image_raw -r camera_info:=/camera/camera_info
  monodepth2 run --pose --weights ~/models/mono_640x192 --params-file my_depth.yaml
  monodepth2 run --pose --scale-mode camera_height -r image:=/camera/image_raw
  python -m monodepth2_ros.ros.bringup --device cuda -r image:=/zed/left/image_rect_color
  FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA monodepth2 run ...   (a best-effort camera driver started the same way)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bringup options (shared by ``monodepth2 run`` and ``python -m monodepth2_ros.ros.bringup``)."""
    parser.add_argument("--pose", action="store_true", help="also start the pose node")
    parser.add_argument("--weights", metavar="DIR", default="", help="checkpoint folder or a bundled model's name (default: the params file's, else the bundled default model)")
    parser.add_argument("--device", default="", help="auto, cpu, cuda or cuda:N (default: the params file's)")
    parser.add_argument("--params-file", metavar="FILE", default="", help="depth node parameters YAML (default: config/depth.yaml)")
    parser.add_argument("--namespace", default="", help="namespace of the nodes")
    parser.add_argument(
        "--scale-mode",
        default="",
        help="metric scale of both nodes, e.g. camera_height (the depth node estimates it, the pose node shares it) "
        "or odometry (needs --pose); default: the params files'",
    )
    parser.add_argument(
        "-r",
        "--remap",
        metavar="FROM:=TO",
        action="append",
        default=[],
        help="topic remapping for every node, as in --ros-args -r (repeatable); e.g. image:=/cam/image_raw",
    )


def bringup_plan(options: argparse.Namespace) -> list[NodeSpec]:
    """The launch plan of these options (RViz excluded: it is a separate program)."""
    for rule in options.remap:
        source, sep, target = rule.partition(":=")
        if not sep or not source or not target:
            raise ConfigError(f"remapping {rule!r} is not of the form FROM:=TO (e.g. image:=/camera/image_raw)")
    plan = depth_launch_plan(
        {
            "weights": options.weights,
            "device": options.device,
            "params_file": options.params_file,
            "namespace": options.namespace,
            "use_pose": "true" if options.pose else "false",
            "scale_mode": getattr(options, "scale_mode", ""),
        }
    )
    if options.params_file and not Path(options.params_file).expanduser().is_file():
        raise MissingInputError(f"parameters file not found: {options.params_file}")
    return [spec for spec in plan if spec.package == PACKAGE]


def _node_class(executable: str) -> type:
    target = NODE_CLASSES.get(executable)
    if target is None:
        raise ConfigError(f"no in-process node for executable {executable!r}; known: {', '.join(NODE_CLASSES)}")
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            raise ConfigError(f"{executable} is not available in this install (no module {module_name})") from err
        raise
    return getattr(module, class_name)


def create_nodes(plan: Sequence[NodeSpec], remaps: Sequence[str] = (), context: Any = None) -> list:
    """Construct the plan's nodes in this process; on a failure, destroy the ones already made.

    Args:
        remaps: ``FROM:=TO`` rules applied to every node before the plan's own.
        context: the rclpy context (None: the default one).
    """
    from rclpy.parameter import Parameter

    nodes = []
    try:
        for spec in plan:
            node_class = _node_class(spec.executable)
            cli_args = ["--ros-args"]
            for rule in remaps:
                cli_args += ["-r", rule]
            cli_args += spec.ros_arguments()[1:]
            overrides = [Parameter(name, value=value) for name, value in spec.parameter_overrides().items()]
            nodes.append(
                node_class(
                    node_name=spec.name,
                    namespace=spec.namespace or None,
                    context=context,
                    cli_args=cli_args,
                    parameter_overrides=overrides,
                )
            )
    except BaseException:
        for node in nodes:
            node.destroy_node()
        raise
    return nodes


def node_process_command(spec: NodeSpec, overrides_file: Path, remaps: Sequence[str] = ()) -> list[str]:
    """The command line that runs ``spec`` as its own process, as ``ros2 launch`` would start it.

    ``overrides_file`` receives the plan's ``{name: value}`` parameters as a params file (typed YAML,
    unlike ``-p`` strings); it is passed last, so it wins over the plan's params files as the
    overrides do in :func:`create_nodes`. ``remaps`` come before the plan's own (first match wins).
    """
    import yaml

    module = NODE_CLASSES.get(spec.executable, "").partition(":")[0]
    if not module:
        raise ConfigError(f"no node module for executable {spec.executable!r}; known: {', '.join(NODE_CLASSES)}")
    overrides_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": spec.parameter_overrides()}}))
    command = [sys.executable, "-m", module, "--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace:
        command += ["-r", f"__ns:=/{spec.namespace.strip('/')}"]
    for rule in remaps:
        command += ["-r", rule]
    return command + spec.ros_arguments()[1:] + ["--params-file", str(overrides_file)]


def run_bringup(options: argparse.Namespace) -> int:
    """Start the nodes and spin them until Ctrl-C or shutdown. Library errors propagate (the CLI reports)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from monodepth2_ros.ros.node_common import callback_executor, init_node_process

    plan = bringup_plan(options)
    # not sys.argv: rcl would read our own -r options as (deprecated) remap rules
    init_node_process([], "monodepth2_bringup", large_outputs=True)
    nodes = []
    executor = None
    try:
        nodes = create_nodes(plan, options.remap)
        executor = callback_executor()
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if executor is not None:
            executor.shutdown()
        for node in nodes:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monodepth2_ros.ros.bringup",
        description="Start the Monodepth2 depth node (and pose node) in one process.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    options = parser.parse_args(argv)
    try:
        return run_bringup(options)
    except Monodepth2Error as err:
        import rclpy.logging

        rclpy.logging.get_logger("monodepth2_bringup").error(f"cannot start: {err}")
        return EXIT_USAGE if isinstance(err, MissingInputError) else EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
