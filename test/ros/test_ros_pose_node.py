"""The pose node over real DDS on a synthetic drive, with a ground-truth pose network double."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry, Path
from pose_harness import (
    NS,
    GroundTruthPoseNetwork,
    SlowedPoseNetwork,
    feed,
    feed_while_busy,
    frame_image,
    handled,
    pose_node,
    render_frames,
    stamp_ns,
    subscribe,
    wait_for_subscribers,
)
from ros_harness import compressed_msg, wait_until
from std_srvs.srv import Trigger

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.ros.pose_messages import pose_to_matrix, transform_message
from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive

MOUNT_XYZ = [0.0, 0.0, 1.65]  # the synthetic camera: 1.65 m above base_link, optical axes
FRAMES = 50  # seed 8: drives and turns gently for 42 frames, then stands still
STOP = 42
EXACT_STATIC = 1e-6  # only identical images count as static: every real motion is integrated


@pytest.fixture(scope="module")
def drive():
    return SyntheticDrive(SynthConfig(frames=FRAMES, width=160, height=48, seed=8))


@pytest.fixture(scope="module")
def frames(drive):
    return render_frames(drive)


def _gt(drive, i: int, origin: int = 0) -> np.ndarray:
    """T_odom_base of frame i for an odometry that started at frame ``origin``."""
    return np.linalg.inv(drive.T_odom_base(origin)) @ drive.T_odom_base(i)


def _assert_pose(msg: Odometry, expected: np.ndarray, travelled: float = 1.0) -> None:
    T = pose_to_matrix(msg.pose.pose)
    scale = max(travelled, 1.0)
    assert np.linalg.norm(T[:3, 3] - expected[:3, 3]) / scale < 1e-6, (T[:3, 3], expected[:3, 3])
    assert np.abs(T[:3, :3] - expected[:3, :3]).max() < 1e-6


def test_odometry_follows_the_ground_truth_base_trajectory(graph, drive, frames):
    network = GroundTruthPoseNetwork(frames)
    node = pose_node(graph, network, camera_to_base_xyz=MOUNT_XYZ, scale_mode="none", static_threshold=EXACT_STATIC)
    odom, path = subscribe(graph, "odom", Odometry), subscribe(graph, "path", Path)
    wait_for_subscribers(node, f"{graph.namespace}/odom")
    wait_for_subscribers(node, f"{graph.namespace}/path")
    feed(graph, node, [frame_image(frame) for frame in frames])

    distance = 0.0
    for frame in frames:
        msg = odom.wait(frame.stamp_ns)
        assert (msg.header.frame_id, msg.child_frame_id) == ("odom", "base_link")
        i = frame.index
        if i:
            distance += float(np.linalg.norm(_gt(drive, i, i - 1)[:3, 3]))
        _assert_pose(msg, drive.T_odom_base(i), distance)
        pose_cov = np.array(msg.pose.covariance).reshape(6, 6)
        assert np.allclose(pose_cov, np.diag(np.diag(pose_cov))) and np.all(np.diag(pose_cov) > 0)
        assert pose_cov[0, 0] == pytest.approx(max(0.05 * distance, 1e-3) ** 2, rel=1e-6)
        twist = msg.twist.twist
        linear = np.array([twist.linear.x, twist.linear.y, twist.linear.z])
        if i == 0:
            assert np.all(linear == 0) and msg.twist.covariance[0] >= 1e5  # no motion measured yet
        elif i <= STOP:
            step = _gt(drive, i, i - 1)
            np.testing.assert_allclose(linear, step[:3, :3].T @ step[:3, 3] * drive.config.rate_hz, atol=1e-6)
            assert msg.twist.covariance[0] == pytest.approx(0.2**2)
    assert distance > 10.0

    # standing still: the pose stays, the twist is zero, the network is not even asked
    still = [odom.wait(frame.stamp_ns) for frame in frames[STOP + 1 :]]
    held = pose_to_matrix(still[0].pose.pose)
    assert len(still) >= 6 and all(np.array_equal(pose_to_matrix(m.pose.pose), held) for m in still)
    assert all(m.twist.twist.linear.x == 0.0 for m in still)
    assert network.calls[-1] == (STOP - 1, STOP) and len(network.calls) == STOP
    assert node.event_counts["static"] == FRAMES - STOP - 1

    last_path = path.wait(frames[-1].stamp_ns)
    assert last_path.header.frame_id == "odom" and len(last_path.poses) == STOP + 1  # first pose + every motion
    np.testing.assert_allclose(pose_to_matrix(last_path.poses[-1].pose), pose_to_matrix(still[-1].pose.pose))
    assert [stamp_ns(p) for p in last_path.poses] == [frame.stamp_ns for frame in frames[: STOP + 1]]


def test_a_slow_network_integrates_every_adjacent_pair_in_batches(graph, drive, frames):
    # the network takes 0.15 s a call while images come every 20 ms: the 7 or 8 that arrive
    # meanwhile (more on a loaded machine; the buffer keeps up to 32) are kept and their adjacent
    # pairs run as one batch
    network = SlowedPoseNetwork(GroundTruthPoseNetwork(frames), seconds=0.15)
    node = pose_node(graph, network, camera_to_base_xyz=MOUNT_XYZ, static_threshold=EXACT_STATIC, frame_buffer=32)
    odom = subscribe(graph, "odom", Odometry)
    wait_for_subscribers(node, f"{graph.namespace}/odom")
    feed_while_busy(node, [frame_image(frame) for frame in frames], graph.image_pub, period_s=0.02)
    assert wait_until(lambda: node.is_idle and handled(node) == FRAMES, timeout=30.0)

    adjacent = [(i - 1, i) for i in range(1, STOP + 1)]  # the car stands still after STOP
    assert network.network.calls == adjacent
    assert max(network.batch_sizes) > 1 and sum(network.batch_sizes) == len(adjacent)
    assert len(network.batch_sizes) < len(adjacent)  # fewer network calls than pairs
    events = node.event_counts
    assert events["integrated"] == STOP and events.get("overflow", 0) == 0
    assert events["batched_pairs"] > 0 and node.stats.snapshot().dropped == 0
    distance = sum(float(np.linalg.norm(_gt(drive, i, i - 1)[:3, 3])) for i in range(1, FRAMES))
    for frame in frames:
        _assert_pose(odom.wait(frame.stamp_ns), drive.T_odom_base(frame.index), distance)


def test_a_full_frame_buffer_pairs_across_the_dropped_images_and_counts_it(graph, drive, frames):
    network = SlowedPoseNetwork(GroundTruthPoseNetwork(frames), seconds=0.3)
    node = pose_node(
        graph, network, camera_to_base_xyz=MOUNT_XYZ, static_threshold=EXACT_STATIC, frame_buffer=2, max_frame_gap=10.0
    )
    odom = subscribe(graph, "odom", Odometry)
    diagnostics = subscribe(graph, "diagnostics", DiagnosticArray)
    wait_for_subscribers(node, f"{graph.namespace}/odom")
    feed_while_busy(node, [frame_image(frames[i]) for i in range(20)], graph.image_pub)
    assert wait_until(lambda: node.is_idle and handled(node) == 20, timeout=30.0)

    dropped = node.stats.snapshot().dropped
    assert dropped > 0 and node.event_counts["overflow"] > 0 and node.problem_counts["overflow"] >= 1
    calls = network.network.calls
    assert any(b - a > 1 for a, b in calls)  # pairs across the dropped images
    assert sum(b - a for a, b in calls) == 19  # and yet the motions chain from frame 0 to frame 19
    assert max(network.batch_sizes) <= 2
    # the ground-truth double knows the motion across a gap, so the chained pose is still exact
    _assert_pose(odom.wait(frames[19].stamp_ns), drive.T_odom_base(19), 10.0)

    def overflow_value() -> str | None:
        for msg in reversed(diagnostics.messages):
            for status in msg.status:
                found = {kv.key: kv.value for kv in status.values}
                if "pairs over dropped images (buffer overflow)" in found:
                    return found["pairs over dropped images (buffer overflow)"]
        return None

    expected = str(node.event_counts["overflow"])
    assert wait_until(lambda: overflow_value() == expected, timeout=5.0)


def test_older_stamp_resets_gap_restarts_and_duplicates_are_ignored(graph, drive, frames):
    network = GroundTruthPoseNetwork(frames)
    node = pose_node(graph, network, camera_to_base_xyz=MOUNT_XYZ, max_frame_gap=1.0, path_max_length=3)
    odom, path = subscribe(graph, "odom", Odometry), subscribe(graph, "path", Path)
    wait_for_subscribers(node, f"{graph.namespace}/path")
    feed(graph, node, [frame_image(frames[i]) for i in range(6)])
    assert len(path.wait(frames[5].stamp_ns).poses) == 3  # bounded

    # 1.5 s later: the motion across the gap is unknown; the pose stays, then integration resumes
    feed(graph, node, [frame_image(frames[20]), frame_image(frames[21])])
    _assert_pose(odom.wait(frames[20].stamp_ns), drive.T_odom_base(5))
    _assert_pose(odom.wait(frames[21].stamp_ns), drive.T_odom_base(5) @ _gt(drive, 21, 20))
    assert node.event_counts["gap"] == 1 and (20, 21) in network.calls and (5, 20) not in network.calls

    feed(graph, node, [frame_image(frames[21])])  # the same stamp again
    assert len(odom.at(frames[21].stamp_ns)) == 1 and node.problem_counts["duplicate_stamp"] == 1

    # the clock goes back (a looped bag): the odometry starts again at the identity. Stamps 2 and 3
    # were published once already, so wait for the new messages, not the old ones.
    stamp_2, stamp_3 = frames[2].stamp_ns, frames[3].stamp_ns
    seen_odom_2, seen_odom_3, seen_path_3 = len(odom.at(stamp_2)), len(odom.at(stamp_3)), len(path.at(stamp_3))
    feed(graph, node, [frame_image(frames[2]), frame_image(frames[3])])
    _assert_pose(odom.wait(stamp_2, after=seen_odom_2), np.eye(4))
    _assert_pose(odom.wait(stamp_3, after=seen_odom_3), _gt(drive, 3, 2))
    assert node.event_counts["time_jump"] == 1 and node.problem_counts["time_jump"] == 1
    assert len(path.wait(stamp_3, after=seen_path_3).poses) == 2  # the old trajectory is gone


def test_reset_service_restarts_at_the_identity(graph, drive, frames):
    node = pose_node(graph, GroundTruthPoseNetwork(frames), camera_to_base_xyz=MOUNT_XYZ)
    odom = subscribe(graph, "odom", Odometry)
    wait_for_subscribers(node, f"{graph.namespace}/odom")
    feed(graph, node, [frame_image(frames[i]) for i in range(4)])
    assert np.linalg.norm(pose_to_matrix(odom.wait(frames[3].stamp_ns).pose.pose)[:3, 3]) > 1.0

    client = graph.tester.create_client(Trigger, f"{node.get_fully_qualified_name()}/reset")
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(Trigger.Request())
    assert wait_until(future.done)
    response = future.result()
    assert response.success and "identity" in response.message

    feed(graph, node, [frame_image(frames[i]) for i in (4, 5)])
    _assert_pose(odom.wait(frames[4].stamp_ns), np.eye(4))
    _assert_pose(odom.wait(frames[5].stamp_ns), _gt(drive, 5, 4))
    assert node.event_counts["reset"] == 1


def test_non_finite_poses_are_dropped_counted_and_never_integrated(graph, drive, frames):
    network = GroundTruthPoseNetwork(frames, poison=(3,))
    node = pose_node(graph, network, camera_to_base_xyz=MOUNT_XYZ)
    odom = subscribe(graph, "odom", Odometry)
    diagnostics = subscribe(graph, "diagnostics", DiagnosticArray)  # /diagnostics, remapped into the graph
    wait_for_subscribers(node, f"{graph.namespace}/odom")
    feed(graph, node, [frame_image(frames[i]) for i in range(6)])

    assert odom.at(frames[3].stamp_ns) == []
    _assert_pose(odom.wait(frames[4].stamp_ns), drive.T_odom_base(4), 5.0)  # paired with frame 2 instead
    _assert_pose(odom.wait(frames[5].stamp_ns), drive.T_odom_base(5), 5.0)
    assert (2, 4) in network.calls
    assert node.event_counts["nan_pose"] == 1 and node.problem_counts["nan_pose"] == 1

    def values() -> dict[str, str]:
        for msg in reversed(diagnostics.messages):
            for status in msg.status:
                found = {kv.key: kv.value for kv in status.values}
                if status.name.endswith("pose") and found.get("frames published") == "5":
                    return found
        return {}

    assert wait_until(lambda: bool(values()), timeout=5.0)
    report = values()
    assert report["non-finite poses dropped"] == "1" and report["poses integrated"] == "4"
    assert float(report["latency p50 (ms)"]) > 0 and report["scale mode"] == "auto"
    assert report["camera mount"] == "parameters: base_link <- camera_optical"
    assert report["tf broadcast"].startswith("unavailable")


def test_no_network_work_while_nothing_subscribes(graph, frames):
    network = GroundTruthPoseNetwork(frames)
    node = pose_node(graph, network, camera_to_base_xyz=MOUNT_XYZ)
    for i in range(3):
        graph.image_pub.publish(frame_image(frames[i]))
        assert wait_until(lambda: node.stats.snapshot().skipped_idle == i + 1)
    assert network.calls == [] and node.stats.snapshot().published == 0

    odom = subscribe(graph, "odom", Odometry)
    wait_for_subscribers(node, f"{graph.namespace}/odom")
    feed(graph, node, [frame_image(frames[i]) for i in (3, 4)])
    # after the idle stretch the odometry restarts from the last pose (here the start)
    _assert_pose(odom.wait(frames[3].stamp_ns), np.eye(4))
    assert network.calls == [(3, 4)]


def test_missing_mount_warns_once_and_assumes_the_optical_mount(graph, frames):
    node = pose_node(graph, GroundTruthPoseNetwork(frames))
    odom = subscribe(graph, "odom", Odometry)
    wait_for_subscribers(node, f"{graph.namespace}/odom")
    feed(graph, node, [frame_image(frames[i], frame_id="front_camera_optical") for i in range(4)])
    assert node.problem_counts["default_mount"] == 1
    T, source = node.mount
    assert source == "default"
    np.testing.assert_allclose(T[:3, :3], [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-12)
    # a forward-driving camera still gives forward body motion
    assert pose_to_matrix(odom.wait(frames[3].stamp_ns).pose.pose)[0, 3] > 1.0


def _fake_tf2(mount: np.ndarray, sent: list) -> types.ModuleType:
    """A stand-in tf2_ros: a buffer that knows base_link <- camera_optical, a recording broadcaster."""

    class TransformException(Exception):
        pass

    class Buffer:
        def lookup_transform(self, target, source, time):
            if (target, source) != ("base_link", "camera_optical"):
                raise TransformException(f"{target} <- {source} unknown")
            return transform_message(mount, 0, target, source)

    class TransformListener:
        def __init__(self, buffer, node):
            self.buffer = buffer

    class TransformBroadcaster:
        def __init__(self, node):
            pass

        def sendTransform(self, transform):
            sent.append(transform)

    return types.SimpleNamespace(
        Buffer=Buffer, TransformListener=TransformListener, TransformBroadcaster=TransformBroadcaster,
        TransformException=TransformException,
    )


def test_with_tf2_the_mount_comes_from_tf_and_odom_is_broadcast(graph, drive, frames, monkeypatch):
    sent: list = []
    monkeypatch.setitem(sys.modules, "tf2_ros", _fake_tf2(drive.T_base_camera, sent))
    node = pose_node(graph, GroundTruthPoseNetwork(frames))  # mount parameters left at their defaults
    odom = subscribe(graph, "odom", Odometry)
    wait_for_subscribers(node, f"{graph.namespace}/odom")
    feed(graph, node, [frame_image(frames[i]) for i in range(5)])
    assert node.mount[1] == "tf" and "default_mount" not in node.problem_counts
    for i in range(5):
        _assert_pose(odom.wait(frames[i].stamp_ns), drive.T_odom_base(i), 5.0)
    assert [(t.header.frame_id, t.child_frame_id) for t in sent] == [("odom", "base_link")] * 5
    last = sent[-1].transform
    np.testing.assert_allclose([last.translation.x, last.translation.y], drive.T_odom_base(4)[:2, 3], atol=1e-6)
    assert stamp_ns(sent[-1]) == frames[4].stamp_ns


def test_compressed_images_are_integrated_too(graph, drive, frames):
    node = pose_node(graph, GroundTruthPoseNetwork(frames), camera_to_base_xyz=MOUNT_XYZ, input_transport="compressed")
    odom = subscribe(graph, "odom", Odometry)
    wait_for_subscribers(node, f"{graph.namespace}/odom")
    messages = []
    for i in range(3):
        msg = compressed_msg(frames[i].rgb, sec=0)  # PNG: lossless, so the double still finds the frame
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(frames[i].stamp_ns, NS)
        messages.append(msg)
    feed(graph, node, messages, publisher=graph.compressed_pub)
    _assert_pose(odom.wait(frames[2].stamp_ns), drive.T_odom_base(2), 2.0)
    assert handled(node) == 3


def test_bad_parameters_fail_at_start_with_the_reason(graph, frames):
    with pytest.raises(ConfigError, match="odom_frame and base_frame must differ"):
        pose_node(graph, GroundTruthPoseNetwork(frames), odom_frame="base_link")
    with pytest.raises(ConfigError, match="camera_to_base_rpy.*3 finite doubles"):
        pose_node(graph, GroundTruthPoseNetwork(frames), camera_to_base_rpy=[0.0, 1.0])
    with pytest.raises(ConfigError, match="own output"):
        pose_node(graph, GroundTruthPoseNetwork(frames), scale_odometry_topic="odom")
