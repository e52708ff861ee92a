"""The Nav2 recipe: its launch plan, the launch file built from it, the costmap example, and the
planned depth node over real DDS publishing its scan where the costmap listens."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import numpy as np
import pytest
import yaml
from rclpy.parameter import Parameter
from ros_harness import REPO, camera_info_msg, image_msg, pinhole_K, send_camera_info
from sensor_msgs.msg import LaserScan
from test_ros_launch import _stub_launch_modules

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.ros.launch_plan import NAV2_DEPTH_LAUNCH_ARGUMENTS, nav2_depth_launch_plan
from monodepth2_ros.ros.parameters import DepthNodeParameters

DEFAULTS = {argument.name: argument.default for argument in NAV2_DEPTH_LAUNCH_ARGUMENTS}


def test_default_plan_is_a_metric_depth_node_with_scan_and_a_sparse_cloud_on_the_costmap_topics():
    (spec,) = nav2_depth_launch_plan({})
    assert (spec.package, spec.executable, spec.name) == ("monodepth2_ros", "depth_node", "depth_node")
    assert dict(spec.remappings) == {
        "image": "/camera/image_raw", "camera_info": "/camera/camera_info",
        "scan": "/camera/scan", "points": "/camera/points",
    }
    params_file, overrides = spec.parameters
    assert Path(params_file).name == "depth.yaml"
    assert overrides["scale_mode"] == "camera_height" and overrides["publish_scan"] is True
    assert overrides["scan_frame_id"] == "camera_link"
    assert overrides["scan_range_max"] == overrides["cloud_max_range"] == 8.0
    assert overrides["cloud_organized"] is False
    # every override is a valid depth-node parameter of the right type
    params = DepthNodeParameters.from_mapping(overrides)
    assert params.scan_config().range_max == 8.0


def test_managed_plan_starts_the_lifecycle_node_and_nav2s_lifecycle_manager_without_bond():
    depth, manager = nav2_depth_launch_plan({"lifecycle_manager": "true", "namespace": "/robot1", "camera_height": "0.4"})
    assert depth.executable == "depth_lifecycle_node" and depth.namespace == "robot1"
    assert depth.parameter_overrides()["camera_height"] == 0.4
    assert (manager.package, manager.executable, manager.namespace) == ("nav2_lifecycle_manager", "lifecycle_manager", "robot1")
    assert manager.parameter_overrides() == {"node_names": ["depth_node"], "autostart": True, "bond_timeout": 0.0}
    (alone,) = nav2_depth_launch_plan({"use_lifecycle": "true"})
    assert alone.executable == "depth_lifecycle_node"


def test_plan_refuses_a_relative_scale_bad_numbers_and_unknown_arguments():
    with pytest.raises(ConfigError, match="scale_mode 'none' does not give metres"):
        nav2_depth_launch_plan({"scale_mode": "none"})
    with pytest.raises(ConfigError, match="scan_range_max must be a positive number of metres, got '-3'"):
        nav2_depth_launch_plan({"scan_range_max": "-3"})
    with pytest.raises(ConfigError, match="camera_height must be a number of metres, got 'high'"):
        nav2_depth_launch_plan({"camera_height": "high"})
    with pytest.raises(ConfigError, match="unknown launch argument.*rviz"):
        nav2_depth_launch_plan({"rviz": "true"})


def test_launch_file_declares_the_arguments_and_builds_nodes_from_the_plan(monkeypatch):
    made = _stub_launch_modules(monkeypatch)
    spec = importlib.util.spec_from_file_location("nav2_launch_under_test", REPO / "launch" / "nav2_depth.launch.py")
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)

    entities = launch_file.generate_launch_description()
    assert [name for name, _ in made["arguments"]] == list(DEFAULTS)
    values = {**DEFAULTS, "lifecycle_manager": "true", "image": "/front/image_raw"}
    entities[-1].kwargs["function"](types.SimpleNamespace(launch_configurations=values))
    assert made["nodes"] == [spec.launch_kwargs() for spec in nav2_depth_launch_plan(values)]
    assert [node["executable"] for node in made["nodes"]] == ["depth_lifecycle_node", "lifecycle_manager"]


def test_costmap_example_listens_to_the_launch_topics_within_the_scan_range():
    document = yaml.safe_load((REPO / "config" / "nav2_costmap_example.yaml").read_text())
    costmap = document["local_costmap"]["local_costmap"]["ros__parameters"]
    scan_layer, voxel_layer = costmap["camera_scan_layer"], costmap["camera_voxel_layer"]
    assert scan_layer["plugin"] == "nav2_costmap_2d::ObstacleLayer"
    assert voxel_layer["plugin"] == "nav2_costmap_2d::VoxelLayer"
    assert set(costmap["plugins"]) >= {"camera_scan_layer", "camera_voxel_layer"}
    scan = scan_layer[scan_layer["observation_sources"]]
    points = voxel_layer[voxel_layer["observation_sources"]]
    assert (scan["topic"], scan["data_type"]) == (DEFAULTS["scan_topic"], "LaserScan")
    assert (points["topic"], points["data_type"]) == (DEFAULTS["points_topic"], "PointCloud2")
    scan_range_max = float(DEFAULTS["scan_range_max"])
    node_defaults = DepthNodeParameters()
    for source in (scan, points):
        assert source["marking"] and source["clearing"]
        assert source["obstacle_min_range"] >= node_defaults.scan_range_min
        # mark well inside the node's range; clear no more than a metre beyond the mark
        assert source["obstacle_max_range"] <= 0.7 * scan_range_max
        assert source["obstacle_max_range"] < source["raytrace_max_range"] <= source["obstacle_max_range"] + 1.0
        assert source["raytrace_max_range"] <= scan_range_max
    assert scan["inf_is_valid"] is True
    assert points["min_obstacle_height"] > 0.0  # the floor is not an obstacle


def test_the_planned_node_publishes_its_scan_where_the_costmap_listens(graph, tiny_checkpoint, make_image):
    from monodepth2_ros.ros.depth_node import DepthNode

    # relative topics keep the node inside this test's namespace
    (spec,) = nav2_depth_launch_plan({"image": "image", "camera_info": "camera_info", "scan_topic": "camera/scan",
                                      "points_topic": "camera/points", "scale_mode": "fixed"})
    node = graph.add(
        DepthNode(
            namespace=graph.namespace,
            context=graph.context,
            cli_args=spec.ros_arguments() + ["-r", f"/diagnostics:={graph.namespace}/diagnostics"],
            parameter_overrides=[Parameter(name, value=value) for name, value in
                                 {**spec.parameter_overrides(), "weights": str(tiny_checkpoint), "device": "cpu",
                                  "scale_factor": 10.0}.items()],
        )
    )
    assert node.parameters.publish_scan and node.parameters.scan_frame_id == "camera_link"
    scan_inbox = graph.subscribe("camera/scan", LaserScan)
    send_camera_info(graph, node, camera_info_msg(pinhole_K(48, 160), 48, 160))
    graph.image_pub.publish(image_msg(make_image(48, 160, 1), sec=21))
    scan = scan_inbox.wait_stamp(21)
    assert scan.header.frame_id == "camera_link" and len(scan.ranges) == 160
    assert scan.range_max == np.float32(8.0)
    ranges = np.array(scan.ranges)
    assert np.all(np.isnan(ranges) | np.isinf(ranges) | ((ranges >= 0.3) & (ranges <= 8.0)))
