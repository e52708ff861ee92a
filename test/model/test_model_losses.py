"""The loss terms against values worked out by hand on 4x4 tensors."""

from __future__ import annotations

import math

import pytest
import torch

from monodepth2_ros.model.losses import (
    SSIM_C1,
    combine_reprojection,
    edge_aware_smoothness,
    normalize_disparity,
    photometric_error,
    pose_error,
    ssim_dissimilarity,
    velocity_error,
)


def _constant(value: float, channels: int = 3) -> torch.Tensor:
    # float64: E[x^2] - E[x]^2 cancels to ~1e-8 in float32, which C2 = 9e-4 magnifies to ~2e-5.
    return torch.full((1, channels, 4, 4), value, dtype=torch.float64)


def test_ssim_of_identical_images_is_one_so_dissimilarity_and_error_are_zero():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 4, 4)
    assert torch.allclose(ssim_dissimilarity(image, image), torch.zeros_like(image), atol=1e-6)
    assert torch.allclose(photometric_error(image, image), torch.zeros(2, 1, 4, 4), atol=1e-6)


def test_ssim_of_two_flat_images_reduces_to_the_luminance_term():
    # With zero variance SSIM = (2ab + C1) / (a^2 + b^2 + C1): the contrast term is C2 / C2.
    a, b = 0.2, 0.6
    expected = (1 - (2 * a * b + SSIM_C1) / (a * a + b * b + SSIM_C1)) / 2
    result = ssim_dissimilarity(_constant(a), _constant(b))
    assert torch.allclose(result, torch.full_like(result, expected), atol=1e-9)


def test_photometric_error_weights_ssim_and_l1_as_in_the_paper():
    a, b = 0.2, 0.6
    dssim = (1 - (2 * a * b + SSIM_C1) / (a * a + b * b + SSIM_C1)) / 2
    result = photometric_error(_constant(a), _constant(b))
    assert result.shape == (1, 1, 4, 4)
    assert torch.allclose(result, torch.full_like(result, 0.85 * dssim + 0.15 * 0.4), atol=1e-9)


def test_photometric_error_without_ssim_is_the_channel_mean_l1():
    prediction = torch.zeros(1, 3, 4, 4)
    target = torch.zeros(1, 3, 4, 4)
    target[:, 0] = 0.3  # only the red channel differs: channel mean 0.1
    result = photometric_error(prediction, target, use_ssim=False)
    assert torch.allclose(result, torch.full((1, 1, 4, 4), 0.1), atol=1e-7)


def test_ssim_dissimilarity_is_clamped_to_unit_range():
    x = torch.zeros(1, 1, 4, 4)
    x[..., ::2, ::2] = 1.0
    y = 1.0 - x  # anti-correlated: SSIM < 0 in places
    result = ssim_dissimilarity(x, y)
    assert float(result.min()) >= 0.0 and float(result.max()) <= 1.0
    assert float(result.max()) > 0.5


def test_minimum_reprojection_picks_the_source_with_the_smaller_error_per_pixel():
    errors = torch.zeros(1, 2, 4, 4)
    errors[:, 0] = 0.5
    errors[:, 1] = 0.2
    errors[:, 1, 0, 0] = 0.9  # source 0 is better only at the top-left pixel
    result = combine_reprojection(errors, identity=None, mode="min")
    expected = torch.full((1, 1, 4, 4), 0.2)
    expected[..., 0, 0] = 0.5
    assert torch.allclose(result.loss, expected)
    assert int(result.source_index[0, 0, 0, 0]) == 0
    assert int(result.source_index[0, 0, 1, 1]) == 1
    assert torch.all(result.automask == 1)


def test_average_reprojection_takes_the_mean_over_sources():
    errors = torch.stack([torch.full((4, 4), 0.5), torch.full((4, 4), 0.1)]).unsqueeze(0)
    result = combine_reprojection(errors, identity=None, mode="avg")
    assert torch.allclose(result.loss, torch.full((1, 1, 4, 4), 0.3))


def test_automask_masks_a_static_pixel_and_keeps_a_moving_one():
    reprojection = torch.full((1, 2, 4, 4), 0.1)
    identity = torch.full((1, 2, 4, 4), 0.4)  # the unwarped sources do worse: keep
    identity[:, 1, 2, 3] = 0.0  # one source matches this pixel without warping: static, mask it
    result = combine_reprojection(reprojection, identity, mode="min", tie_break=0.0)
    assert float(result.automask[0, 0, 2, 3]) == 0.0
    assert float(result.automask.sum()) == 15.0
    # A masked pixel contributes its identity error, which has no gradient path to the networks.
    assert float(result.loss[0, 0, 2, 3]) == 0.0
    assert float(result.loss[0, 0, 0, 0]) == pytest.approx(0.1)


def test_automask_tie_break_splits_exact_ties_randomly():
    torch.manual_seed(0)
    errors = torch.full((1, 1, 64, 64), 0.25)
    without_noise = combine_reprojection(errors, errors.clone(), tie_break=0.0)
    assert float(without_noise.automask.sum()) == 0.0
    with_noise = combine_reprojection(errors, errors.clone())
    kept = float(with_noise.automask.mean())
    assert 0.3 < kept < 0.7


def test_combine_reprojection_rejects_unknown_mode():
    with pytest.raises(ValueError, match="reprojection mode 'median'"):
        combine_reprojection(torch.zeros(1, 2, 4, 4), mode="median")


def test_smoothness_of_a_constant_disparity_is_zero():
    torch.manual_seed(0)
    disparity = torch.full((1, 1, 4, 4), 0.3)
    assert float(edge_aware_smoothness(normalize_disparity(disparity), torch.rand(1, 3, 4, 4))) == 0.0


def test_smoothness_of_a_step_is_one_third_and_an_image_edge_weights_it_by_exp_minus_one():
    disparity = torch.ones(1, 1, 4, 4)
    disparity[..., 2:] = 2.0  # a step of 1 between columns 1 and 2: one of three x-differences
    flat_image = torch.zeros(1, 3, 4, 4)
    edge_image = torch.zeros(1, 3, 4, 4)
    edge_image[..., 2:] = 1.0  # the image has its edge at the same place
    flat = float(edge_aware_smoothness(disparity, flat_image))
    edge = float(edge_aware_smoothness(disparity, edge_image))
    assert flat == pytest.approx(1.0 / 3.0)
    assert edge == pytest.approx(math.exp(-1.0) / 3.0)


def test_normalized_disparity_is_invariant_to_the_depth_scale():
    torch.manual_seed(0)
    disparity = torch.rand(2, 1, 4, 4) + 0.1
    image = torch.rand(2, 3, 4, 4)
    loss = edge_aware_smoothness(normalize_disparity(disparity), image)
    scaled = edge_aware_smoothness(normalize_disparity(disparity * 7.0), image)
    assert float(loss) == pytest.approx(float(scaled), rel=1e-5)
    assert torch.allclose(normalize_disparity(disparity).mean(dim=(2, 3)), torch.ones(2, 1), atol=1e-5)


def _motions(translations) -> torch.Tensor:
    """(1, S, 4, 4) identity rotations with the given (S, 3) translations."""
    T = torch.eye(4).repeat(1, len(translations), 1, 1)
    T[0, :, :3, 3] = torch.tensor(translations, dtype=torch.float32)
    return T


def test_velocity_error_compares_the_translation_length_with_the_odometry_distance():
    T = _motions([[0.3, 0.0, 0.4], [0.0, -0.1, 0.0]])  # lengths 0.5 and 0.1 m
    assert float(velocity_error(T, torch.tensor([[0.5, 0.1]]))) == pytest.approx(0.0, abs=1e-6)
    assert float(velocity_error(T, torch.tensor([[0.2, 0.3]]))) == pytest.approx((0.3 + 0.2) / 2)


def test_velocity_error_skips_unknown_distances_and_is_zero_without_any():
    T = _motions([[0.0, 0.0, 1.0], [0.0, 0.0, 5.0]])
    assert float(velocity_error(T, torch.tensor([[0.5, float("nan")]]))) == pytest.approx(0.5)
    assert float(velocity_error(T, torch.full((1, 2), float("nan")))) == 0.0


def test_velocity_error_pulls_a_short_translation_towards_the_odometry_distance():
    translation = torch.tensor([0.0, 0.0, 0.2], requires_grad=True)  # the network's: too short
    T = torch.eye(4).clone()
    T[:3, 3] = translation
    velocity_error(T[None, None], torch.tensor([[1.0]])).backward()
    assert translation.grad[2] < 0  # descending the gradient lengthens it


def _turn(angle_rad: float, translation=(0.0, 0.0, 0.0)) -> torch.Tensor:
    """(4, 4) rotation by ``angle_rad`` about the camera's y axis (a pan), then the translation."""
    T = torch.eye(4)
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    T[0, 0], T[0, 2], T[2, 0], T[2, 2] = c, s, -s, c
    T[:3, 3] = torch.tensor(translation)
    return T


def test_pose_error_adds_the_rotation_angle_and_the_translation_l1():
    predicted = torch.stack([_turn(0.02, (0.1, 0.0, 0.5)), _turn(0.0, (0.0, 0.0, 1.0))])[None]
    measured = torch.stack([_turn(0.05, (0.0, 0.2, 0.5)), _turn(0.0, (0.0, 0.0, 1.0))])[None]
    # pair 1: 0.03 rad + 0.1 + 0.2 m; pair 2 exact
    assert float(pose_error(predicted, measured)) == pytest.approx((0.03 + 0.3) / 2, abs=1e-3)
    assert float(pose_error(measured, measured)) == pytest.approx(0.0, abs=2e-3)  # the acos clamp's floor


def test_pose_error_skips_unknown_motions_and_is_zero_without_any():
    predicted = torch.stack([_turn(0.0, (0.0, 0.0, 1.0)), _turn(0.0, (0.0, 0.0, 9.0))])[None]
    measured = torch.stack([_turn(0.0, (0.0, 0.0, 0.5)), torch.full((4, 4), float("nan"))])[None]
    assert float(pose_error(predicted, measured)) == pytest.approx(0.5, abs=2e-3)
    assert float(pose_error(predicted, torch.full_like(measured, float("nan")))) == 0.0


def test_pose_error_turns_the_predicted_rotation_towards_the_measured_one():
    angle = torch.tensor(0.01, requires_grad=True)  # the network's pan: too small
    c, s = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros(()), torch.ones(())
    R = torch.stack([torch.stack([c, zero, s]), torch.stack([zero, one, zero]), torch.stack([-s, zero, c])])
    T = torch.eye(4).clone()
    T[:3, :3] = R
    pose_error(T[None, None], _turn(0.05)[None, None]).backward()
    assert angle.grad < 0  # descending the gradient turns it further
