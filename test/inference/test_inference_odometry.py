"""Odometry integration: mount, direction convention against the synthetic world, time rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.estimators import RelativeMotion
from monodepth2_ros.inference.odometry import (
    OPTICAL_RPY,
    FrameCheck,
    OdometryConfig,
    OdometryIntegrator,
    camera_motion_to_base,
    interpolate_pose,
    mean_image_difference,
    mount_transform,
    rpy_to_matrix,
    scale_motion,
    twist_from_motion,
)
from monodepth2_ros.model.geometry import warp_image
from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive
from monodepth2_ros.synthetic import mount_transform as synthetic_mount

NS = 1_000_000_000


@pytest.fixture(autouse=True)
def single_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pose(yaw: float, xyz, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = rpy_to_matrix(roll, pitch, yaw)
    T[:3, 3] = xyz
    return T


def test_default_mount_is_the_rep103_optical_frame_at_the_given_position():
    np.testing.assert_allclose(mount_transform((0.0, 0.0, 1.65)), synthetic_mount(1.65), atol=1e-15)
    R = mount_transform((0.3, 0.0, 1.0))[:3, :3]
    # optical x (right) = base -y, optical y (down) = base -z, optical z (forward) = base +x
    np.testing.assert_allclose(R[:, 0], [0, -1, 0], atol=1e-15)
    np.testing.assert_allclose(R[:, 1], [0, 0, -1], atol=1e-15)
    np.testing.assert_allclose(R[:, 2], [1, 0, 0], atol=1e-15)


def test_rpy_are_fixed_axis_angles_with_positive_pitch_looking_down():
    pitch = 0.2
    np.testing.assert_allclose(rpy_to_matrix(0.0, pitch, 0.0) @ [1, 0, 0], [math.cos(pitch), 0, -math.sin(pitch)])
    np.testing.assert_allclose(rpy_to_matrix(0.0, 0.0, math.pi / 2) @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(rpy_to_matrix(math.pi / 2, 0.0, 0.0) @ [0, 1, 0], [0, 0, 1], atol=1e-15)
    # yaw is applied last, about the fixed z axis
    roll, yaw = 0.3, 0.5
    expected = rpy_to_matrix(0, 0, yaw) @ rpy_to_matrix(roll, 0, 0)
    np.testing.assert_allclose(rpy_to_matrix(roll, 0.0, yaw), expected)
    with pytest.raises(ConfigError, match="3 finite xyz"):
        mount_transform((0.0, 1.0))
    with pytest.raises(ConfigError, match="3 finite xyz"):
        mount_transform((0.0, 1.0, float("nan")))


def test_ground_truth_relative_motion_warps_the_previous_frame_onto_the_current_one():
    """The convention the node composes (T_a_b = pose of b in a) is the training warp's T_source_target."""
    drive = SyntheticDrive(SynthConfig(frames=3, width=320, height=96, seed=2))
    a, b = drive.frame(0), drive.frame(1)
    T_b_a = np.linalg.inv(b.T_world_camera) @ a.T_world_camera
    motion = RelativeMotion(T_b_a=T_b_a, axis_angle=np.zeros(3), translation=T_b_a[:3, 3])
    np.testing.assert_allclose(motion.T_a_b, np.linalg.inv(a.T_world_camera) @ b.T_world_camera, atol=1e-12)
    assert motion.T_a_b[2, 3] > 0.3  # the car drives forward: b is ahead of a along a's optical z

    K = torch.from_numpy(drive.K)[None].float()
    source = torch.from_numpy(a.rgb).permute(2, 0, 1)[None].float() / 255.0
    target = torch.from_numpy(b.rgb).permute(2, 0, 1)[None].float() / 255.0
    depth = torch.from_numpy(b.depth)[None, None].float()

    def error(T_source_target: np.ndarray) -> float:
        T = torch.from_numpy(T_source_target)[None].float()
        warped = warp_image(source, depth, T, K, torch.linalg.inv(K), padding_mode="zeros")
        return float((warped - target).abs()[..., : 64, 40:-40].mean())

    right, wrong = error(motion.T_a_b), error(motion.T_b_a)
    assert right < 0.03 and wrong > 2 * right


def test_body_motion_through_a_lever_arm_mount_matches_the_ground_truth():
    mount = mount_transform((1.2, -0.3, 1.4), (OPTICAL_RPY[0] + 0.05, 0.1, OPTICAL_RPY[2] - 0.02))
    T_w_b0 = _pose(0.3, (5.0, 2.0, 0.1), pitch=0.02)
    T_w_b1 = _pose(0.45, (5.8, 2.4, 0.12), pitch=0.01, roll=-0.03)
    T_c0_c1 = np.linalg.inv(T_w_b0 @ mount) @ (T_w_b1 @ mount)
    np.testing.assert_allclose(camera_motion_to_base(T_c0_c1, mount), np.linalg.inv(T_w_b0) @ T_w_b1, atol=1e-12)


def test_integrating_ground_truth_camera_motions_reproduces_the_base_trajectory():
    drive = SyntheticDrive(SynthConfig(frames=60, width=160, height=48, seed=8))
    poses = drive.poses()  # T_world_camera, no rendering
    integrator = OdometryIntegrator()
    first = integrator.start(drive.stamp_ns(0), integrator.check(drive.stamp_ns(0)))
    assert first.check is FrameCheck.FIRST and not first.twist_known
    distance = 0.0
    for i in range(1, len(poses)):
        stamp = drive.stamp_ns(i)
        assert integrator.check(stamp) is FrameCheck.STEP
        T_camprev_camcurr = np.linalg.inv(poses[i - 1]) @ poses[i]
        estimate = integrator.step(stamp, T_camprev_camcurr, drive.T_base_camera)
        expected = drive.T_odom_base(i)
        np.testing.assert_allclose(estimate.T_odom_base, expected, atol=1e-9)
        T_step = np.linalg.inv(drive.T_odom_base(i - 1)) @ expected
        distance += float(np.linalg.norm(T_step[:3, 3]))
        # the twist is the chord over dt, in the current base frame: x forward, no sideways speed
        dt = 1.0 / drive.config.rate_hz
        np.testing.assert_allclose(estimate.linear, T_step[:3, :3].T @ T_step[:3, 3] / dt, atol=1e-9)
        mean_speed = (drive.state(i - 1).speed + drive.state(i).speed) / 2
        assert estimate.linear[0] == pytest.approx(mean_speed, rel=0.02, abs=0.02)
        assert abs(estimate.linear[1]) < 0.05 and abs(estimate.angular[2] - drive.state(i).yaw_rate) < 0.01
    assert integrator.distance_m == pytest.approx(distance, rel=1e-12)
    assert distance > 10.0


def test_time_rules_start_step_duplicate_gap_and_backwards():
    integrator = OdometryIntegrator(OdometryConfig(max_frame_gap_s=0.5))
    mount = mount_transform((0.0, 0.0, 1.0))
    forward = np.eye(4)
    forward[2, 3] = 1.0  # one metre along the optical axis = base +x
    assert integrator.check(10 * NS) is FrameCheck.FIRST
    integrator.start(10 * NS, FrameCheck.FIRST)
    step = integrator.step(10 * NS + NS // 10, forward, mount)
    np.testing.assert_allclose(step.T_odom_base[:3, 3], [1.0, 0.0, 0.0], atol=1e-12)
    assert step.linear[0] == pytest.approx(10.0) and step.moved

    assert integrator.check(10 * NS + NS // 10) is FrameCheck.DUPLICATE
    later = 10 * NS + NS // 10 + NS  # one second later: more than the 0.5 s gap
    assert integrator.check(later) is FrameCheck.GAP
    gap = integrator.start(later, FrameCheck.GAP)
    np.testing.assert_allclose(gap.T_odom_base, step.T_odom_base)  # no jump, no motion across the gap
    assert not gap.twist_known and not gap.moved

    held = integrator.hold(later + NS // 10)  # static frame: pose and reference stay
    np.testing.assert_allclose(held.T_odom_base, step.T_odom_base)
    assert held.twist_known and not held.moved and np.all(held.linear == 0)
    integrator.skip(later + 2 * NS // 10)  # e.g. a NaN pose
    assert integrator.reference_stamp == later
    resumed = integrator.step(later + 3 * NS // 10, forward, mount)
    np.testing.assert_allclose(resumed.T_odom_base[:3, 3], [2.0, 0.0, 0.0], atol=1e-12)
    assert resumed.linear[0] == pytest.approx(1.0 / 0.3)  # averaged since the reference frame

    assert integrator.check(5 * NS) is FrameCheck.BACKWARDS
    restarted = integrator.start(5 * NS, FrameCheck.BACKWARDS)
    np.testing.assert_allclose(restarted.T_odom_base, np.eye(4))
    assert restarted.distance_m == 0.0 and restarted.moved

    integrator.step(5 * NS + NS // 10, forward, mount)
    integrator.pause()  # frames unseen (idle): the pose stays, the next frame starts again from it
    assert integrator.check(6 * NS) is FrameCheck.FIRST
    again = integrator.start(6 * NS, FrameCheck.FIRST)
    np.testing.assert_allclose(again.T_odom_base[:3, 3], [1.0, 0.0, 0.0], atol=1e-12)
    assert not again.moved and not again.twist_known
    integrator.pause()
    with pytest.raises(ValueError, match="reference"):
        integrator.step(6 * NS, forward, mount)


def _run_rules(integrator, motions, mount, start_ns):
    """Feed a fixed sequence through every integrator call; returns the estimates made."""
    estimates = [integrator.start(start_ns, FrameCheck.FIRST)]
    stamp = start_ns
    for i, motion in enumerate(motions):
        stamp += NS // 10
        if i == 2:
            estimates.append(integrator.hold(stamp))  # a static frame
        elif i == 4:
            integrator.skip(stamp)  # a NaN pose
        elif i == 6:
            integrator.pause()  # frames unseen
            estimates.append(integrator.start(stamp, FrameCheck.FIRST))
        else:
            estimates.append(integrator.step(stamp, motion, mount))
    return estimates


def test_deferred_motions_are_replayed_with_the_scale_that_came_later():
    drive = SyntheticDrive(SynthConfig(frames=12, width=160, height=48, seed=8))
    poses = drive.poses()
    metres = [np.linalg.inv(poses[i - 1]) @ poses[i] for i in range(1, len(poses))]
    factor = 4.0
    units = [scale_motion(T, 1.0 / factor) for T in metres]
    mount = mount_transform((1.2, 0.0, 1.65))  # a lever arm: metric, so units and metres do not commute

    expected = _run_rules(OdometryIntegrator(), metres, mount, 3 * NS)

    integrator = OdometryIntegrator()
    integrator.defer_scale()
    assert integrator.deferring and integrator.deferred_seconds(3 * NS) == 0.0
    in_units = _run_rules(integrator, units[:8], mount, 3 * NS)
    assert integrator.deferred_seconds(3 * NS + 8 * NS // 10) == pytest.approx(0.8)
    assert not np.allclose(in_units[-1].T_odom_base, expected[len(in_units) - 1].T_odom_base, atol=1e-3)
    replayed = integrator.apply_scale(factor)
    assert not integrator.deferring and integrator.apply_scale(factor) == []
    assert [e.stamp_ns for e in replayed] == [e.stamp_ns for e in in_units]
    after = [integrator.step(e.stamp_ns, T, mount) for e, T in zip(expected[len(replayed):], metres[8:])]
    for got, want in zip(replayed + after, expected):
        np.testing.assert_allclose(got.T_odom_base, want.T_odom_base, atol=1e-9)
        np.testing.assert_allclose(got.linear, want.linear, atol=1e-9)
        assert (got.check, got.moved, got.twist_known) == (want.check, want.moved, want.twist_known)
    assert integrator.distance_m == pytest.approx(expected[-1].distance_m, rel=1e-12)
    with pytest.raises(ValueError, match="finite and positive"):
        integrator.apply_scale(0.0)


def test_non_finite_motion_is_refused():
    integrator = OdometryIntegrator()
    integrator.start(NS, FrameCheck.FIRST)
    bad = np.eye(4)
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        integrator.step(2 * NS, bad, np.eye(4))
    np.testing.assert_allclose(integrator.pose, np.eye(4))


def test_pose_uncertainty_grows_linearly_with_distance_from_a_floor():
    config = OdometryConfig(translation_drift=0.05, rotation_drift=0.01, min_pose_std=0.001)
    assert config.pose_std(0.0) == (0.001, 0.001)
    assert config.pose_std(100.0) == pytest.approx((5.0, 1.0))
    with pytest.raises(ConfigError, match="max_frame_gap"):
        OdometryConfig(max_frame_gap_s=0.0)
    with pytest.raises(ConfigError, match="translation_drift"):
        OdometryConfig(translation_drift=-1.0)


def test_scale_motion_and_twist_of_a_turn():
    T = _pose(0.1, (2.0, 0.1, 0.0))
    scaled = scale_motion(T, 3.0)
    np.testing.assert_allclose(scaled[:3, 3], [6.0, 0.3, 0.0])
    np.testing.assert_allclose(scaled[:3, :3], T[:3, :3])
    linear, angular = twist_from_motion(T, 0.5)
    np.testing.assert_allclose(angular, [0.0, 0.0, 0.2], atol=1e-12)
    np.testing.assert_allclose(linear, T[:3, :3].T @ [4.0, 0.2, 0.0])


def test_interpolated_pose_is_halfway_in_position_and_angle():
    T0, T1 = _pose(0.2, (0.0, 0.0, 0.0)), _pose(0.6, (2.0, 4.0, 0.0))
    middle = interpolate_pose(T0, T1, 0.5)
    np.testing.assert_allclose(middle, _pose(0.4, (1.0, 2.0, 0.0)), atol=1e-12)
    np.testing.assert_allclose(interpolate_pose(T0, T1, 1.0), T1, atol=1e-12)


def test_mean_image_difference_is_the_training_static_frame_measure(make_image):
    from monodepth2_ros.training.samples import image_motion

    a, b = make_image(48, 160, 0), make_image(48, 160, 1)
    expected = image_motion(np.stack([a, b]), np.array([[0, 1]]))[0]
    assert mean_image_difference(a, b) == pytest.approx(expected, abs=1e-12)
    assert mean_image_difference(a, a.copy()) == 0.0
    assert mean_image_difference(a, a[:24]) == 1.0
