"""The pose node rectifies raw frames with camera_info like the depth node and training, over real DDS."""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from pose_harness import feed, pose_node, subscribe, wait_for_subscribers
from ros_harness import image_msg, wait_until
from test_ros_rectify import info_msg, raw_frame

from monodepth2_ros.data.camera import CameraModel
from monodepth2_ros.inference.camera_input import CameraInput
from monodepth2_ros.inference.estimators import RelativeMotion
from monodepth2_ros.model.checkpoint import CheckpointInfo


class RecordingPoseNetwork:
    """A pose network double: keeps the frame pairs it is given, answers 1 m forward each time."""

    def __init__(self) -> None:
        self.info = CheckpointInfo(height=32, width=64)
        self.scale = 1.0
        self.device = "cpu"
        self.precision = "fp32"
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []

    def estimate(self, rgb_a: np.ndarray, rgb_b: np.ndarray) -> RelativeMotion:
        self.pairs.append((rgb_a.copy(), rgb_b.copy()))
        T_b_a = np.eye(4)
        T_b_a[2, 3] = -1.0
        return RelativeMotion(T_b_a=T_b_a, axis_angle=np.zeros(3), translation=T_b_a[:3, 3].copy())


def _images(count: int, height: int, width: int, start_sec: int):
    return [image_msg(raw_frame(height, width, seed=7 * i), sec=start_sec + i, encoding="rgb8") for i in range(count)]


def test_pose_node_rectifies_and_follows_a_camera_change(graph):
    network = RecordingPoseNetwork()
    node = pose_node(graph, network, static_threshold=0.0)
    diagnostics = graph.subscribe("diagnostics", DiagnosticArray)
    odom = subscribe(graph, "odom", Odometry)
    wait_for_subscribers(node, "odom")
    first_info = info_msg()
    graph.info_pub.publish(first_info)
    assert wait_until(lambda: node.rectifier.camera == CameraModel.from_camera_info(first_info))
    camera_input = CameraInput(CameraModel.from_camera_info(first_info), (48, 80), rectify=True)
    feed(graph, node, _images(3, 48, 80, 100))
    assert len(network.pairs) == 2
    for index, (rgb_a, rgb_b) in enumerate(network.pairs):  # both frames of each pair rectified
        np.testing.assert_array_equal(rgb_a, camera_input.rectify_image(raw_frame(48, 80, seed=7 * index)))
        np.testing.assert_array_equal(rgb_b, camera_input.rectify_image(raw_frame(48, 80, seed=7 * (index + 1))))

    # The camera changes: size and lens. The odometry restarts from the last pose, no motion is
    # computed between frames of the two geometries.
    pairs_before = len(network.pairs)
    second_info = info_msg("equidistant", [0.05, -0.01, 0.002, -0.0005],
                           [[70.0, 0.0, 47.5], [0.0, 70.0, 31.5], [0.0, 0.0, 1.0]],
                           [[55.0, 0.0, 47.0, 0.0], [0.0, 55.0, 31.0, 0.0], [0.0, 0.0, 1.0, 0.0]], 64, 96)
    graph.info_pub.publish(second_info)
    feed(graph, node, _images(2, 64, 96, 200))
    assert node.rectifier.geometry_changes == 1
    new_pairs = network.pairs[pairs_before:]
    assert len(new_pairs) == 1 and all(a.shape == b.shape == (64, 96, 3) for a, b in new_pairs)
    second_input = CameraInput(CameraModel.from_camera_info(second_info), (64, 96), rectify=True)
    np.testing.assert_array_equal(new_pairs[0][1], second_input.rectify_image(raw_frame(64, 96, seed=7)))
    assert wait_until(lambda: any(m.header.stamp.sec == 201 for m in odom.messages))
    assert wait_until(lambda: any(
        {kv.key: kv.value for s in m.status for kv in s.values}.get("rectification", "").startswith("on (equidistant")
        for m in list(diagnostics.messages)
    ), timeout=5.0)


def test_pose_node_skips_frames_of_an_invalid_camera_info(graph):
    network = RecordingPoseNetwork()
    node = pose_node(graph, network, static_threshold=0.0)
    subscribe(graph, "odom", Odometry)
    wait_for_subscribers(node, "odom")
    bad = info_msg()
    bad.d = [-0.3, float("nan"), 0.0, 0.0, 0.0]
    graph.info_pub.publish(bad)
    assert wait_until(lambda: node.problem_counts.get("bad_camera_info", 0) >= 1)
    feed(graph, node, _images(2, 48, 80, 300))
    assert network.pairs == [] and node.stats.snapshot().rejected >= 2
    graph.info_pub.publish(info_msg())
    assert wait_until(lambda: node.rectifier.camera is not None)
    feed(graph, node, _images(2, 48, 80, 310))
    assert len(network.pairs) == 1 and node.rectifier.camera_input is not None
