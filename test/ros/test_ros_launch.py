"""The launch plan, the launch file built from it, the RViz config, and in-process bringup."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest
import yaml
from ros_harness import wait_until

from monodepth2_ros.errors import ConfigError, MissingInputError
from monodepth2_ros.ros.launch_plan import DEPTH_LAUNCH_ARGUMENTS, NodeSpec, depth_launch_plan

REPO = Path(__file__).resolve().parents[2]


def test_default_plan_is_the_depth_node_on_the_camera_topics_with_the_package_params():
    (spec,) = depth_launch_plan({})
    assert (spec.package, spec.executable, spec.name, spec.namespace) == ("monodepth2_ros", "depth_node", "depth_node", "")
    assert dict(spec.remappings) == {"image": "/camera/image_raw", "camera_info": "/camera/camera_info"}
    (params_file,) = spec.parameters
    assert Path(params_file).resolve() == (REPO / "config" / "depth.yaml").resolve()


def test_plan_with_pose_rviz_namespace_and_overrides():
    plan = depth_launch_plan(
        {"image": "cam/image_rect", "camera_info": "/cam/info", "weights": "/models/m", "device": "cuda",
         "namespace": "robot1", "use_pose": "true", "rviz": "True", "params_file": "/tmp/mine.yaml"}
    )
    depth, pose, rviz = plan
    assert [spec.executable for spec in plan] == ["depth_node", "pose_node", "rviz2"]
    assert {spec.namespace for spec in plan} == {"robot1"}
    assert depth.parameters == ("/tmp/mine.yaml", {"weights": "/models/m", "device": "cuda"})
    assert pose.parameter_overrides() == {"weights": "/models/m", "device": "cuda"}
    assert dict(pose.remappings) == dict(depth.remappings) == {"image": "cam/image_rect", "camera_info": "/cam/info"}
    assert rviz.arguments[0] == "-d" and Path(rviz.arguments[1]).name == "depth.rviz"
    assert dict(rviz.remappings) == {
        "/image": "/robot1/cam/image_rect",
        "/depth/colored": "/robot1/depth/colored",
        "/points": "/robot1/points",
    }


def test_plan_refuses_unknown_arguments_and_bad_booleans():
    with pytest.raises(ConfigError, match="unknown launch argument.*imgae"):
        depth_launch_plan({"imgae": "/x"})
    with pytest.raises(ConfigError, match="use_pose must be true or false, got 'maybe'"):
        depth_launch_plan({"use_pose": "maybe"})


def test_node_spec_gives_launch_kwargs_and_ros_arguments():
    spec = NodeSpec("pkg", "exe", "name", "ns", ("a.yaml", {"x": 1}), (("image", "/cam"),))
    assert spec.launch_kwargs() == dict(package="pkg", executable="exe", name="name", namespace="ns", output="screen",
                                        parameters=["a.yaml", {"x": 1}], remappings=[("image", "/cam")])
    assert spec.ros_arguments() == ["--ros-args", "--params-file", "a.yaml", "-r", "image:=/cam"]


def test_node_process_command_runs_the_node_module_with_typed_overrides_last(tmp_path):
    from monodepth2_ros.ros.bringup import node_process_command

    spec = NodeSpec("monodepth2_ros", "pose_node", "odometry", "robot", ("pose.yaml", {"frame_buffer": 8, "weights": ""}),
                    (("image", "/cam"),))
    command = node_process_command(spec, tmp_path / "overrides.yaml", ["image:=/front/image_raw"])
    assert command[1:3] == ["-m", "monodepth2_ros.ros.pose_node"]
    assert command[3:] == [
        "--ros-args", "-r", "__node:=odometry", "-r", "__ns:=/robot", "-r", "image:=/front/image_raw",
        "--params-file", "pose.yaml", "-r", "image:=/cam", "--params-file", str(tmp_path / "overrides.yaml"),
    ]
    # typed, and for every node name (an empty string stays a string, 8 an integer)
    assert yaml.safe_load((tmp_path / "overrides.yaml").read_text()) == {
        "/**": {"ros__parameters": {"frame_buffer": 8, "weights": ""}}
    }
    with pytest.raises(ConfigError, match="rviz2"):
        node_process_command(NodeSpec("rviz2", "rviz2", "rviz2"), tmp_path / "rviz.yaml")


def _stub_launch_modules(monkeypatch) -> dict[str, list]:
    """Minimal stand-ins for launch / launch_ros recording what the launch file builds."""
    made: dict[str, list] = {"nodes": [], "arguments": []}

    class Recorder:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    class DeclareLaunchArgument(Recorder):
        def __init__(self, name, **kwargs):
            super().__init__(name, **kwargs)
            made["arguments"].append((name, kwargs))

    class Node(Recorder):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            made["nodes"].append(kwargs)

    class LaunchConfiguration:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context.launch_configurations[self.name]

    modules = {
        "launch": types.SimpleNamespace(LaunchDescription=lambda entities: list(entities)),
        "launch.actions": types.SimpleNamespace(DeclareLaunchArgument=DeclareLaunchArgument, OpaqueFunction=Recorder),
        "launch.substitutions": types.SimpleNamespace(LaunchConfiguration=LaunchConfiguration),
        "launch_ros": types.SimpleNamespace(),
        "launch_ros.actions": types.SimpleNamespace(Node=Node),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return made


def test_launch_file_declares_the_arguments_and_builds_nodes_from_the_plan(monkeypatch):
    made = _stub_launch_modules(monkeypatch)
    spec = importlib.util.spec_from_file_location("depth_launch_under_test", REPO / "launch" / "depth.launch.py")
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)

    entities = launch_file.generate_launch_description()
    assert [name for name, _ in made["arguments"]] == [argument.name for argument in DEPTH_LAUNCH_ARGUMENTS]
    assert all(kwargs["default_value"] == argument.default for (_, kwargs), argument in zip(made["arguments"], DEPTH_LAUNCH_ARGUMENTS))
    opaque = entities[-1]
    values = {argument.name: argument.default for argument in DEPTH_LAUNCH_ARGUMENTS}
    values.update(use_pose="true", namespace="car", image="/front/image_raw")
    context = types.SimpleNamespace(launch_configurations=values)
    opaque.kwargs["function"](context)
    assert made["nodes"] == [spec.launch_kwargs() for spec in depth_launch_plan(values)]
    assert [node["executable"] for node in made["nodes"]] == ["depth_node", "pose_node"]


def test_rviz_config_shows_the_image_the_colored_depth_and_the_points():
    config = yaml.safe_load((REPO / "config" / "depth.rviz").read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "camera_optical"
    displays = {(d["Class"], d.get("Topic", {}).get("Value")) for d in manager["Displays"]}
    assert {
        ("rviz_default_plugins/Image", "/image"),
        ("rviz_default_plugins/Image", "/depth/colored"),
        ("rviz_default_plugins/PointCloud2", "/points"),
    } <= displays
    cloud = next(d for d in manager["Displays"] if d["Class"] == "rviz_default_plugins/PointCloud2")
    assert cloud["Color Transformer"] == "RGB8"


def test_bringup_creates_the_planned_nodes_with_user_remaps_first(graph, tiny_checkpoint, tmp_path):
    from monodepth2_ros.cli.main import build_parser
    from monodepth2_ros.ros.bringup import bringup_plan, create_nodes

    params = tmp_path / "mine.yaml"
    params.write_text("/**:\n  ros__parameters:\n    cloud_stride: 2\n    device: cpu\n")
    options = build_parser().parse_args(
        ["run", "--weights", str(tiny_checkpoint), "--params-file", str(params), "-r", "image:=cam/left/image",
         "--namespace", graph.namespace]
    )
    assert options.func.__module__ == "monodepth2_ros.cli.run"
    nodes = create_nodes(bringup_plan(options), [*options.remap, *graph.ros_arguments()[2::2]], context=graph.context)
    for node in nodes:
        graph.add(node)
    (node,) = nodes
    assert node.get_fully_qualified_name() == f"{graph.namespace}/depth_node"
    assert node.resolve_topic_name("image") == f"{graph.namespace}/cam/left/image"  # the user's rule wins
    assert node.resolve_topic_name("camera_info") == "/camera/camera_info"  # the plan's default
    assert node.parameters.cloud_stride == 2 and node.parameters.weights == str(tiny_checkpoint)
    assert wait_until(lambda: graph.tester.count_subscribers(f"{graph.namespace}/cam/left/image") == 1)


def test_bringup_refuses_a_missing_params_file_and_a_malformed_remap(tmp_path):
    from monodepth2_ros.ros.bringup import bringup_plan
    from monodepth2_ros.cli.main import build_parser

    parser = build_parser()
    with pytest.raises(MissingInputError, match="parameters file not found"):
        bringup_plan(parser.parse_args(["run", "--params-file", str(tmp_path / "none.yaml")]))
    with pytest.raises(ConfigError, match="FROM:=TO"):
        bringup_plan(parser.parse_args(["run", "-r", "image=/x"]))


def test_bringup_main_exits_non_zero_when_the_checkpoint_is_missing(tmp_path, capfd):
    from monodepth2_ros.ros.bringup import main

    assert main(["--weights", str(tmp_path / "nothing"), "--device", "cpu"]) == 2
    assert "nothing" in capfd.readouterr().err
