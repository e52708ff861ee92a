"""Metric scale across the nodes: odometry and camera_height estimates, shared over the scale topic."""

from __future__ import annotations

import numpy as np
import pytest
from nav_msgs.msg import Odometry
from pose_harness import (
    GroundTruthDepthNetwork,
    GroundTruthPoseNetwork,
    feed,
    frame_image,
    pose_node,
    render_frames,
    wait_for_subscribers,
)
from pose_harness import subscribe as subscribe_stamped
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import Inbox, camera_info_msg, depth_node, send_camera_info, wait_until
from std_msgs.msg import Float64

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.ros.pose_messages import ns_to_stamp, pose_message, pose_to_matrix
from monodepth2_ros.ros.pose_scale import scale_qos
from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive

MOUNT_XYZ = [0.0, 0.0, 1.65]
EXACT_STATIC = 1e-6


@pytest.fixture(scope="module")
def drive():
    return SyntheticDrive(SynthConfig(frames=16, width=160, height=48, seed=3))


@pytest.fixture(scope="module")
def frames(drive):
    return render_frames(drive)


def _reference(drive, index: int) -> Odometry:
    msg = Odometry()
    msg.header.stamp = ns_to_stamp(drive.stamp_ns(index))
    msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
    msg.pose.pose = pose_message(drive.T_odom_base(index))
    return msg


def _steps_match(odom, frames, drive, first: int, rel: float) -> None:
    """From frame ``first`` on, every published motion equals the ground truth (in metres)."""
    for i in range(first, len(frames)):
        previous = pose_to_matrix(odom.wait(frames[i - 1].stamp_ns).pose.pose)
        current = pose_to_matrix(odom.wait(frames[i].stamp_ns).pose.pose)
        step = np.linalg.inv(previous) @ current
        expected = np.linalg.inv(drive.T_odom_base(i - 1)) @ drive.T_odom_base(i)
        assert np.linalg.norm(step[:3, 3] - expected[:3, 3]) <= rel * np.linalg.norm(expected[:3, 3]), i


def test_odometry_scale_from_a_reference_topic_is_shared_with_the_depth_node(graph, drive, frames, tiny_checkpoint):
    factor = 4.0  # the "network" translations are metres / 4
    node = pose_node(
        graph, GroundTruthPoseNetwork(frames, factor=factor), camera_to_base_xyz=MOUNT_XYZ, scale_mode="odometry",
        scale_window=5, scale_min_distance=1.0, static_threshold=EXACT_STATIC,
    )
    depth = depth_node(graph, tiny_checkpoint, scale_mode="shared")
    assert depth.scale == 1.0
    odom = subscribe_stamped(graph, "odom", Odometry)
    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    reference = graph.tester.create_publisher(Odometry, "wheel_odom", reliable)
    wait_for_subscribers(node, f"{graph.namespace}/odom")
    assert wait_until(lambda: reference.get_subscription_count() > 0)

    for frame in frames:
        reference.publish(_reference(drive, frame.index))
        feed(graph, node, [frame_image(frame)])
    assert node.scale == pytest.approx(factor, rel=1e-9) and node.scale_source.is_metric
    assert wait_until(lambda: depth.scale == pytest.approx(factor, rel=1e-9))  # over the scale topic
    _steps_match(odom, frames, drive, first=4, rel=1e-6)

    late = Inbox()  # transient local: a node started later still gets the current scale
    graph.tester.create_subscription(Float64, "scale", late, scale_qos())
    assert wait_until(lambda: bool(late.messages))
    assert late.messages[-1].data == pytest.approx(factor, rel=1e-9)


def test_camera_height_scale_of_the_depth_node_drives_the_shared_pose_node(graph, drive, frames):
    factor = 7.3
    network = GroundTruthDepthNetwork.from_frames(frames, factor)
    depth = depth_node(graph, "unused", estimator=network, scale_mode="camera_height", camera_height=1.65)
    node = pose_node(
        graph, GroundTruthPoseNetwork(frames, factor=factor), camera_to_base_xyz=MOUNT_XYZ, scale_mode="shared",
        static_threshold=EXACT_STATIC,
    )
    odom = subscribe_stamped(graph, "odom", Odometry)
    wait_for_subscribers(node, f"{graph.namespace}/odom")
    send_camera_info(graph, depth, camera_info_msg(drive.K, 48, 160))
    # nobody reads depth, but the pose node reads the depth node's scale: the depth network runs for it
    assert wait_until(lambda: depth.count_subscribers(f"{graph.namespace}/scale") >= 1)
    feed(graph, node, [frame_image(frames[0])])
    assert wait_until(lambda: node.scale_source.is_metric)

    feed(graph, node, [frame_image(frame) for frame in frames[1:]])
    assert wait_until(lambda: depth.is_idle) and depth.stats.snapshot().published >= 1
    assert depth.scale == pytest.approx(factor, rel=0.02)
    assert wait_until(lambda: node.scale == depth.scale)  # the very same number
    _steps_match(odom, frames, drive, first=2, rel=0.02)


def test_a_shared_scale_that_arrives_late_is_applied_to_the_first_motions_too(graph, drive, frames):
    factor = 4.0
    node = pose_node(
        graph, GroundTruthPoseNetwork(frames, factor=factor), camera_to_base_xyz=MOUNT_XYZ, scale_mode="shared",
        static_threshold=EXACT_STATIC,
    )
    odom = subscribe_stamped(graph, "odom", Odometry)
    scale = graph.tester.create_publisher(Float64, "scale", scale_qos())
    wait_for_subscribers(node, f"{graph.namespace}/odom")
    assert wait_until(lambda: scale.get_subscription_count() > 0)

    early = 6
    feed(graph, node, [frame_image(frame) for frame in frames[:early]])
    assert node.event_counts.get("deferred") == early and node.event_counts.get("integrated") == early - 1
    assert not node.scale_source.is_metric
    scale.publish(Float64(data=factor))
    assert wait_until(lambda: node.scale_source.is_metric)
    feed(graph, node, [frame_image(frame) for frame in frames[early:]])

    _steps_match(odom, frames, drive, first=1, rel=1e-6)  # also the motions made before the scale came
    assert all(len(odom.at(frame.stamp_ns)) == 1 for frame in frames)
    assert node.event_counts.get("deferred") == early


class _ScaleArrivesDuringTheNetwork(GroundTruthPoseNetwork):
    """The scale message lands while the network runs on the pair of frame ``arrival``: after the
    node decided to defer that frame, before it integrates the motion (the race a loaded CPU shows)."""

    def __init__(self, frames, factor: float, arrival: int) -> None:
        super().__init__(frames, factor=factor)
        self.arrival = arrival
        self.node = None

    def estimate(self, rgb_a, rgb_b):
        motion = super().estimate(rgb_a, rgb_b)
        if self.calls[-1][1] == self.arrival:
            assert self.node.scale_source.update(self.factor)  # what the scale subscription does
        return motion


def test_a_scale_arriving_while_a_deferred_motion_is_computed_scales_it_once(graph, drive, frames):
    factor = 4.0
    network = _ScaleArrivesDuringTheNetwork(frames, factor, arrival=3)
    node = pose_node(graph, network, camera_to_base_xyz=MOUNT_XYZ, scale_mode="shared", static_threshold=EXACT_STATIC)
    network.node = node
    odom = subscribe_stamped(graph, "odom", Odometry)
    wait_for_subscribers(node, f"{graph.namespace}/odom")

    feed(graph, node, [frame_image(frame) for frame in frames])
    assert node.event_counts.get("deferred") == 4  # frames 0..3; frame 4 finds the scale
    _steps_match(odom, frames, drive, first=1, rel=1e-6)


def test_without_a_shared_scale_the_odometry_is_published_in_relative_units_after_the_wait(graph, drive, frames):
    factor = 4.0
    period_s = (frames[1].stamp_ns - frames[0].stamp_ns) / 1e9
    node = pose_node(
        graph, GroundTruthPoseNetwork(frames, factor=factor), camera_to_base_xyz=MOUNT_XYZ, scale_mode="shared",
        static_threshold=EXACT_STATIC, shared_scale_wait=2.5 * period_s,
    )
    odom = subscribe_stamped(graph, "odom", Odometry)
    wait_for_subscribers(node, f"{graph.namespace}/odom")

    feed(graph, node, [frame_image(frame) for frame in frames[:6]])
    assert node.event_counts.get("deferred") == 3  # frames 0..2; frame 3 is 3 periods after frame 0
    assert node.problem_counts.get("scale_wait") == 1
    units = [odom.wait(frame.stamp_ns) for frame in frames[:6]]
    for i in range(1, 6):
        step = np.linalg.inv(pose_to_matrix(units[i - 1].pose.pose)) @ pose_to_matrix(units[i].pose.pose)
        expected = np.linalg.inv(drive.T_odom_base(i - 1)) @ drive.T_odom_base(i)
        # relative units: the mount's 1.65 m is metric, so compare the camera's travel, which is forward
        assert np.linalg.norm(step[:3, 3]) == pytest.approx(np.linalg.norm(expected[:3, 3]) / factor, rel=0.05), i


def test_each_node_refuses_the_mode_whose_input_it_lacks(graph, frames, tiny_checkpoint):
    with pytest.raises(ConfigError, match="needs the depth map.*depth_node.*shared"):
        pose_node(graph, GroundTruthPoseNetwork(frames), scale_mode="camera_height")
    with pytest.raises(ConfigError, match="depth node does not run.*pose_node.*shared"):
        depth_node(graph, tiny_checkpoint, scale_mode="odometry")
    node = pose_node(graph, GroundTruthPoseNetwork(frames), scale_mode="fixed", scale_factor=2.0)
    result = node.set_parameters([Parameter("scale_mode", value="camera_height")])[0]
    assert not result.successful and "needs the depth map" in result.reason
    assert node.set_parameters([Parameter("scale_factor", value=3.0)])[0].successful
    assert node.scale == 3.0
    published = Inbox()
    graph.tester.create_subscription(Float64, "scale", published, scale_qos())
    assert wait_until(lambda: bool(published.messages) and published.messages[-1].data == 3.0)
