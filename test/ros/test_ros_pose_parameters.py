"""The pose node's parameter table, config/pose.yaml, the docs, the launch plan and the benchmark."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from rclpy.parameter import Parameter
from ros_harness import REPO, ROS_PARAMETER_TYPES, wait_until

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.odometry import OPTICAL_RPY
from monodepth2_ros.inference.scale import node_scale_modes, scale_modes
from monodepth2_ros.ros.launch_plan import depth_launch_plan
from monodepth2_ros.ros.parameters import parameters_markdown_table
from monodepth2_ros.ros.pose_parameters import PoseNodeParameters, pose_parameter_specs


def test_pose_yaml_holds_exactly_the_declared_defaults_with_their_types():
    values = yaml.safe_load((REPO / "config" / "pose.yaml").read_text())["/**"]["ros__parameters"]
    expected = {spec.name: spec.default for spec in pose_parameter_specs()}
    assert {name: tuple(v) if isinstance(v, list) else v for name, v in values.items()} == expected
    assert all(type(values[name]) is (list if isinstance(v, tuple) else type(v)) for name, v in expected.items())


def test_pose_docs_table_is_the_generated_parameter_table():
    docs = (REPO / "README.md").read_text()
    assert parameters_markdown_table(PoseNodeParameters) in docs
    assert {spec.name for spec in pose_parameter_specs()} >= {"scale_mode", "camera_to_base_xyz", "max_frame_gap"}
    assert dict((spec.name, spec.choices) for spec in pose_parameter_specs())["scale_mode"] == scale_modes()


def test_pose_node_declares_every_parameter_with_its_descriptor(graph, tiny_checkpoint):
    from monodepth2_ros.ros.pose_node import PoseNode

    node = graph.add(
        PoseNode(
            context=graph.context, namespace=graph.namespace, cli_args=graph.ros_arguments(),
            parameter_overrides=[Parameter("weights", value=str(tiny_checkpoint)), Parameter("device", value="cpu")],
        )
    )
    specs = pose_parameter_specs()
    declared = set(node.list_parameters([], 0).names) - {"use_sim_time", "start_type_description_service"}
    assert declared == {spec.name for spec in specs}
    for spec, descriptor in zip(specs, node.describe_parameters([spec.name for spec in specs])):
        assert descriptor.type == ROS_PARAMETER_TYPES[spec.type_name], spec.name
        assert descriptor.read_only == spec.read_only and descriptor.description == spec.description
    assert node.parameters.camera_to_base_rpy == pytest.approx(OPTICAL_RPY)
    # double arrays change at run time like any other parameter; a wrong length is refused
    assert node.set_parameters([Parameter("camera_to_base_xyz", value=[1.0, 0.0, 1.5])])[0].successful
    assert node.parameters.camera_to_base_xyz == (1.0, 0.0, 1.5)
    refused = node.set_parameters([Parameter("camera_to_base_xyz", value=[1.0, 0.0])])[0]
    assert not refused.successful and "3 finite doubles" in refused.reason
    assert not node.set_parameters([Parameter("weights", value="/x")])[0].successful  # read-only


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_frame_gap": 0.0}, r"max_frame_gap.*within"),
        ({"static_threshold": 2.0}, r"static_threshold.*within"),
        ({"camera_to_base_rpy": (0.0, math.nan, 0.0)}, "3 finite doubles"),
        ({"base_frame": ""}, "base_frame.*empty"),
        ({"scale_mode": "lidar"}, "scale_mode.*one of"),
        ({"path_max_length": 0}, "path_max_length"),
        ({"nonsense": 1}, "unknown pose node parameter"),
    ],
)
def test_invalid_pose_parameters_are_refused_with_the_parameter_named(values, message):
    with pytest.raises(ConfigError, match=message):
        PoseNodeParameters.from_mapping(values)


def test_one_scale_mode_for_both_nodes_in_the_launch_plan():
    assert node_scale_modes("camera_height", True) == ("camera_height", "shared")
    assert node_scale_modes("odometry", True) == ("shared", "odometry")
    assert node_scale_modes("stereo", False) == ("stereo", "stereo")
    with pytest.raises(ConfigError, match="pose node.*--pose"):
        node_scale_modes("odometry", False)
    depth, pose = depth_launch_plan({"use_pose": "true", "scale_mode": "odometry", "device": "cpu"})
    assert depth.parameter_overrides() == {"device": "cpu", "scale_mode": "shared"}
    assert pose.parameter_overrides() == {"device": "cpu", "scale_mode": "odometry"}
    assert Path(pose.parameters[0]).resolve() == (REPO / "config" / "pose.yaml").resolve()


def test_bringup_starts_the_pose_node_with_the_shared_scale(graph, tiny_checkpoint):
    from monodepth2_ros.cli.main import build_parser
    from monodepth2_ros.ros.bringup import bringup_plan, create_nodes

    options = build_parser().parse_args(
        ["run", "--pose", "--weights", str(tiny_checkpoint), "--device", "cpu", "--scale-mode", "camera_height",
         "--namespace", graph.namespace]
    )
    nodes = create_nodes(bringup_plan(options), graph.ros_arguments()[2::2], context=graph.context)
    for node in nodes:
        graph.add(node)
    depth, pose = nodes
    assert type(pose).__name__ == "PoseNode" and pose.get_fully_qualified_name() == f"{graph.namespace}/pose_node"
    assert (depth.parameters.scale_mode, pose.parameters.scale_mode) == ("camera_height", "shared")
    assert wait_until(lambda: depth.count_subscribers(f"{graph.namespace}/scale") == 1)


def test_pose_node_benchmark_reports_node_and_network_latency(tiny_checkpoint, tmp_path, capsys):
    from monodepth2_ros.tools.pose_node_bench import main

    out = tmp_path / "pose_bench.json"
    assert main(["--weights", str(tiny_checkpoint), "--frames", "3", "--width", "120", "--height", "40",
                 "--warmup", "1", "--threads", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["network"] == "96x64 ResNet-18 pose" and result["torch_threads"] == 1
    for key in ("node_latency_ms", "network_latency_ms"):
        assert result[key]["n"] == 3 and 0 < result[key]["p50"] <= result[key]["p95"]
    assert result["poses_integrated"] == 3  # warm-up frame 0 starts the odometry, all measured ones integrate


def test_the_pose_params_yaml_loads_through_the_ros_parser(graph, tiny_checkpoint, tmp_path):
    from monodepth2_ros.ros.pose_node import PoseNode

    text = (REPO / "config" / "pose.yaml").read_text()
    custom = tmp_path / "pose.yaml"
    custom.write_text(
        text.replace("camera_to_base_xyz: [0.0, 0.0, 0.0]", "camera_to_base_xyz: [1.2, 0.0, 1.4]")
        .replace("max_frame_gap: 1.0", "max_frame_gap: 2.5")
        .replace('weights: ""', f'weights: "{tiny_checkpoint}"')
        .replace('device: "auto"', 'device: "cpu"')
    )
    arguments = ["--ros-args", "--params-file", str(custom)]
    node = graph.add(PoseNode(context=graph.context, namespace=graph.namespace, cli_args=arguments))
    assert node.parameters.camera_to_base_xyz == (1.2, 0.0, 1.4) and node.parameters.max_frame_gap == 2.5
    assert not node.parameters.mount_is_default
