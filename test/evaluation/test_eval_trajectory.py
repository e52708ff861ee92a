"""Umeyama alignment, ATE, snippet ATE and RPE against known transforms and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.evaluation import (
    align_trajectory,
    ate,
    integrate_relative,
    relative_pose_error,
    relative_steps,
    snippet_ate,
    trajectory_ate,
    umeyama_alignment,
)
from monodepth2_ros.evaluation.trajectory import apply_similarity, invert_poses, rotation_angle


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def pose(rotation: np.ndarray, translation) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = translation
    return out


def random_trajectory(rng: np.random.Generator, n: int) -> np.ndarray:
    steps = np.stack(
        [pose(random_rotation(rng) if k % 2 else rot_z(0.1), rng.normal(size=3)) for k in range(n - 1)]
    )
    return integrate_relative(steps)


def test_umeyama_recovers_a_known_similarity_exactly():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(20, 3))
    rotation, scale, translation = random_rotation(rng), 2.5, np.array([1.0, -3.0, 0.5])
    dst = scale * src @ rotation.T + translation
    s, r, t = umeyama_alignment(src, dst)
    assert s == pytest.approx(scale)
    np.testing.assert_allclose(r, rotation, atol=1e-12)
    np.testing.assert_allclose(t, translation, atol=1e-12)


def test_umeyama_without_scale_fits_rigid_motion():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(10, 3))
    rotation, translation = random_rotation(rng), np.array([0.2, 0.0, -1.0])
    s, r, t = umeyama_alignment(src, src @ rotation.T + translation, with_scale=False)
    assert s == 1.0
    np.testing.assert_allclose(r, rotation, atol=1e-12)
    np.testing.assert_allclose(t, translation, atol=1e-12)


def test_umeyama_returns_a_rotation_not_a_reflection():
    # Planar points mirrored in x: the reflection diag(-1, 1, 1) fits, but so does the proper
    # rotation by pi about y, diag(-1, 1, -1), which the reflection fix must return.
    src = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [3.0, 1.0, 0.0], [-1.0, -2.0, 0.0]])
    dst = src * np.array([-1.0, 1.0, 1.0])
    s, r, t = umeyama_alignment(src, dst)
    assert np.linalg.det(r) == pytest.approx(1.0)
    np.testing.assert_allclose(r, np.diag([-1.0, 1.0, -1.0]), atol=1e-12)
    assert s == pytest.approx(1.0)
    np.testing.assert_allclose(s * src @ r.T + t, dst, atol=1e-12)


def test_umeyama_on_a_mirrored_solid_still_gives_a_proper_rotation():
    rng = np.random.default_rng(3)
    src = rng.normal(size=(30, 3)) * np.array([3.0, 2.0, 1.0])
    dst = src * np.array([1.0, 1.0, -1.0])
    _, r, _ = umeyama_alignment(src, dst, with_scale=False)
    assert np.linalg.det(r) == pytest.approx(1.0)


def test_umeyama_rejects_coincident_points_when_fitting_scale():
    with pytest.raises(ValueError, match="coincide"):
        umeyama_alignment(np.ones((4, 3)), np.zeros((4, 3)))


def test_relative_steps_and_integration_round_trip():
    rng = np.random.default_rng(4)
    poses = random_trajectory(rng, 6)
    start = pose(random_rotation(rng), [5.0, 1.0, 2.0])
    moved = start @ poses
    steps = relative_steps(moved)
    assert steps.shape == (5, 4, 4)
    np.testing.assert_allclose(integrate_relative(steps, initial=moved[0]), moved, atol=1e-12)
    np.testing.assert_allclose(
        invert_poses(moved) @ moved, np.broadcast_to(np.eye(4), moved.shape), atol=1e-12
    )


def test_sim3_alignment_undoes_a_similarity_of_the_trajectory():
    rng = np.random.default_rng(5)
    gt = random_trajectory(rng, 12)
    pred = apply_similarity(gt, 0.3, random_rotation(rng), np.array([4.0, -2.0, 1.0]))
    alignment = align_trajectory(pred, gt, mode="sim3")
    np.testing.assert_allclose(alignment.poses, gt, atol=1e-10)
    assert alignment.scale == pytest.approx(1.0 / 0.3)
    result = trajectory_ate(pred, gt)
    assert result.stats.rmse == pytest.approx(0.0, abs=1e-10)


def test_se3_and_scale_modes_fit_only_their_parameters():
    rng = np.random.default_rng(6)
    gt = random_trajectory(rng, 8)
    rotated = apply_similarity(gt, 1.0, random_rotation(rng), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(align_trajectory(rotated, gt, mode="se3").poses, gt, atol=1e-10)
    halved = apply_similarity(gt, 0.5, np.eye(3), np.zeros(3))
    scaled = align_trajectory(halved, gt, mode="scale")
    assert scaled.scale == pytest.approx(2.0)
    np.testing.assert_allclose(scaled.poses, gt, atol=1e-12)
    assert trajectory_ate(halved, gt, mode="se3").stats.rmse > 0.1


def test_unknown_alignment_mode_is_a_config_error():
    poses = np.broadcast_to(np.eye(4), (3, 4, 4))
    with pytest.raises(ConfigError, match="unknown alignment mode 'affine'"):
        align_trajectory(poses, poses, mode="affine")


def test_ate_statistics_by_hand():
    gt = np.zeros((3, 3))
    pred = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
    stats = ate(pred, gt)  # errors 0, 3, 4
    assert stats.rmse == pytest.approx(math.sqrt(25.0 / 3.0))
    assert stats.mean == pytest.approx(7.0 / 3.0)
    assert stats.median == pytest.approx(3.0)
    assert stats.std == pytest.approx(
        math.sqrt(((0 - 7 / 3) ** 2 + (3 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 3)
    )
    assert stats.max == 4.0
    assert stats.count == 3


def test_snippet_ate_is_zero_for_a_scaled_copy_of_ground_truth():
    rng = np.random.default_rng(7)
    gt_steps = relative_steps(random_trajectory(rng, 10))
    pred_steps = gt_steps.copy()
    pred_steps[:, :3, 3] *= 0.3
    result = snippet_ate(pred_steps, gt_steps)
    assert result.num_snippets == 10 - 5 + 1
    assert result.mean == pytest.approx(0.0, abs=1e-12)
    assert result.std == pytest.approx(0.0, abs=1e-12)


def test_snippet_ate_hand_checked_on_a_perturbed_example():
    x = pose(np.eye(3), [1.0, 0.0, 0.0])
    xy = pose(np.eye(3), [1.0, 1.0, 0.0])
    gt_steps = np.stack([x, x, x])
    pred_steps = np.stack([x, xy, x])
    # Snippet 0: gt (0,1,2) on x, pred (0,0),(1,0),(2,1): s = 5/6, squared error 30/36.
    # Snippet 1: pred (0,0),(1,1),(2,1): s = 5/7, squared error 70/49.
    expected = np.array([math.sqrt(30 / 36), math.sqrt(70 / 49)])
    paper = snippet_ate(pred_steps, gt_steps, snippet_length=3)
    np.testing.assert_allclose(paper.errors, expected / 3.0)
    assert paper.mean == pytest.approx(np.mean(expected / 3.0))
    assert paper.std == pytest.approx(np.std(expected / 3.0))
    rmse = snippet_ate(pred_steps, gt_steps, snippet_length=3, normalization="rmse")
    np.testing.assert_allclose(rmse.errors, expected / math.sqrt(3.0))


def test_snippet_ate_expresses_each_snippet_in_its_first_frame():
    # A turn before the snippet must not matter: the same local motion after a 90 degree yaw
    # (in the predicted steps only) gives the same error as without it.
    forward = pose(np.eye(3), [1.0, 0.0, 0.0])
    gt_steps = np.stack([forward] * 4)
    pred_steps = gt_steps.copy()
    pred_steps[0] = pose(rot_z(math.pi / 2), [1.0, 0.0, 0.0])
    errors = snippet_ate(pred_steps, gt_steps, snippet_length=3).errors
    assert errors[0] > 0.0  # the turn is inside snippet 0
    assert errors[1] == pytest.approx(0.0, abs=1e-12)
    assert errors[2] == pytest.approx(0.0, abs=1e-12)


def test_snippet_ate_needs_enough_steps():
    steps = np.broadcast_to(np.eye(4), (3, 4, 4))
    with pytest.raises(ValueError, match="needs 4 steps"):
        snippet_ate(steps, steps, snippet_length=5)


def test_rpe_of_identical_trajectories_is_zero():
    rng = np.random.default_rng(8)
    gt = random_trajectory(rng, 9)
    result = relative_pose_error(gt, gt.copy(), delta=2)
    assert result.translation.rmse == pytest.approx(0.0, abs=1e-10)
    assert result.rotation_deg.max == pytest.approx(0.0, abs=1e-6)
    assert result.translation.count == 7


def test_rpe_by_hand_for_one_wrong_step():
    forward = pose(np.eye(3), [1.0, 0.0, 0.0])
    gt = integrate_relative(np.stack([forward] * 3))
    wrong = pose(rot_z(math.radians(10.0)), [2.0, 0.0, 0.0])
    pred = integrate_relative(np.stack([forward, wrong, forward]))
    result = relative_pose_error(pred, gt, delta=1, mode="none")
    # Step errors: 0, 1 m and 10 degrees, 0.
    assert result.translation.rmse == pytest.approx(math.sqrt(1.0 / 3.0))
    assert result.translation.max == pytest.approx(1.0)
    assert result.rotation_deg.max == pytest.approx(10.0)
    assert result.rotation_deg.mean == pytest.approx(10.0 / 3.0)


def test_rpe_alignment_removes_monocular_scale():
    rng = np.random.default_rng(9)
    gt = random_trajectory(rng, 7)
    pred = apply_similarity(gt, 0.5, random_rotation(rng), np.zeros(3))
    assert relative_pose_error(pred, gt, mode="sim3").translation.rmse == pytest.approx(0.0, abs=1e-10)
    assert relative_pose_error(pred, gt, mode="none").translation.rmse > 0.1


def test_rotation_angle_is_accurate_near_zero_and_pi():
    angles = np.array([1e-9, 0.3, math.pi - 1e-9])
    np.testing.assert_allclose(rotation_angle(np.stack([rot_z(a) for a in angles])), angles, rtol=1e-6)
