"""Depth metrics and the per-frame protocol against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monodepth2_ros.errors import DatasetError
from monodepth2_ros.evaluation import (
    DepthEvaluation,
    compute_depth_metrics,
    evaluate_depth_frame,
    garg_crop_mask,
    resize_depth_via_disparity,
)


def test_prediction_equal_to_ground_truth_scores_perfectly():
    gt = np.array([1.0, 2.5, 10.0, 42.0])
    metrics = compute_depth_metrics(gt, gt.copy())
    assert metrics.abs_rel == 0.0
    assert metrics.sq_rel == 0.0
    assert metrics.rmse == 0.0
    assert metrics.rmse_log == 0.0
    assert (metrics.a1, metrics.a2, metrics.a3) == (1.0, 1.0, 1.0)


def test_prediction_twice_ground_truth_gives_hand_computed_metrics():
    gt = np.array([1.0, 2.0, 4.0])
    metrics = compute_depth_metrics(gt, 2.0 * gt)
    # |2g - g| / g = 1; (2g - g)^2 / g = g -> mean 7/3; sqrt(mean g^2) = sqrt(21/3); log ratio ln 2.
    assert metrics.abs_rel == pytest.approx(1.0)
    assert metrics.sq_rel == pytest.approx(7.0 / 3.0)
    assert metrics.rmse == pytest.approx(math.sqrt(7.0))
    assert metrics.rmse_log == pytest.approx(math.log(2.0))
    # ratio 2 is above 1.25, 1.5625 and 1.953125.
    assert (metrics.a1, metrics.a2, metrics.a3) == (0.0, 0.0, 0.0)


def test_delta_thresholds_count_each_band():
    gt = np.ones(4)
    pred = np.array([1.2, 1.5, 1.9, 3.0])  # below 1.25, 1.25^2, 1.25^3, none
    metrics = compute_depth_metrics(gt, pred)
    assert (metrics.a1, metrics.a2, metrics.a3) == (0.25, 0.5, 0.75)
    # The ratio is symmetric: a prediction too small by the same factor scores the same.
    assert compute_depth_metrics(gt, 1.0 / pred).a2 == 0.5


def test_as_dict_follows_paper_column_order():
    metrics = compute_depth_metrics(np.ones(2), np.ones(2))
    assert list(metrics.as_dict()) == ["abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"]


def test_mismatched_arrays_are_rejected():
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        compute_depth_metrics(np.ones(3), np.ones(4))


def test_median_scaling_recovers_a_scaled_prediction_exactly():
    rng = np.random.default_rng(0)
    gt = rng.uniform(2.0, 60.0, size=(6, 8))
    result = evaluate_depth_frame(gt, gt / 3.7, median_scaling=True)
    assert result.scale_ratio == pytest.approx(3.7)
    assert result.metrics.abs_rel == pytest.approx(0.0, abs=1e-12)
    assert result.metrics.a1 == 1.0
    assert result.valid_pixels == 48


def test_without_median_scaling_the_ratio_is_reported_but_not_applied():
    gt = np.full((2, 2), 10.0)
    result = evaluate_depth_frame(gt, np.full((2, 2), 5.0), median_scaling=False)
    assert result.scale_ratio == pytest.approx(2.0)
    assert result.metrics.abs_rel == pytest.approx(0.5)


def test_invalid_ground_truth_pixels_are_masked_out():
    gt = np.array([[np.nan, 0.0, 5e-4, 80.0], [100.0, 2.0, 10.0, 79.0]])
    pred = np.array([[1000.0, 1000.0, 1000.0, 1000.0], [1000.0, 2.0, 10.0, 79.0]])
    result = evaluate_depth_frame(gt, pred, median_scaling=False)
    # NaN, 0, below min (1e-3), == max (80, exclusive) and above max are dropped.
    assert result.valid_pixels == 3
    assert result.metrics.abs_rel == 0.0


def test_custom_depth_range_masks_and_clamps():
    gt = np.array([[0.5, 1.5, 50.0]])
    pred = np.array([[0.5, 1.5, 200.0]])
    result = evaluate_depth_frame(gt, pred, min_depth=1.0, max_depth=60.0, median_scaling=False)
    assert result.valid_pixels == 2
    # 200 is clamped to 60: abs rel of that pixel 10/50, mean over 2 pixels 0.1.
    assert result.metrics.abs_rel == pytest.approx(0.1)


def test_prediction_is_clamped_to_max_depth_after_scaling():
    gt = np.array([[50.0]])
    result = evaluate_depth_frame(gt, np.array([[200.0]]), median_scaling=False)
    assert result.metrics.abs_rel == pytest.approx(30.0 / 50.0)


def test_garg_crop_bounds_on_a_kitti_sized_frame():
    mask = garg_crop_mask(375, 1242)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    # int(0.40810811*375)=153, int(0.99189189*375)=371 (exclusive), int(0.03594771*1242)=44,
    # int(0.96405229*1242)=1197 (exclusive).
    assert (rows[0], rows[-1]) == (153, 370)
    assert (cols[0], cols[-1]) == (44, 1196)
    assert mask.sum() == (371 - 153) * (1197 - 44)


def test_garg_crop_restricts_evaluated_pixels():
    gt = np.full((100, 100), 10.0)
    pred = np.full((100, 100), 10.0)
    crop = garg_crop_mask(100, 100)
    pred[~crop] = 40.0  # wrong everywhere outside the crop
    result = evaluate_depth_frame(gt, pred, median_scaling=False, garg_crop=True)
    # rows 40..98, cols 3..95: 59 * 93 pixels.
    assert result.valid_pixels == 59 * 93
    assert result.metrics.abs_rel == 0.0
    assert evaluate_depth_frame(gt, pred, median_scaling=False).metrics.abs_rel > 0.0


def test_resize_interpolates_disparity_not_depth():
    pred = np.array([[1.0, 2.0]])
    resized = resize_depth_via_disparity(pred, (1, 4))
    # Disparities [1, 0.5] upsampled with pixel-centre bilinear: [1, 0.875, 0.625, 0.5].
    np.testing.assert_allclose(resized, [[1.0, 1.0 / 0.875, 1.0 / 0.625, 2.0]])


def test_evaluation_resizes_a_smaller_prediction_to_ground_truth_size():
    gt = np.array([[1.0, 1.0 / 0.875, 1.0 / 0.625, 2.0]] * 2)
    pred = np.array([[1.0, 2.0]])
    result = evaluate_depth_frame(gt, pred, median_scaling=False)
    assert result.valid_pixels == 8
    assert result.metrics.abs_rel == pytest.approx(0.0, abs=1e-12)


def test_frame_without_valid_ground_truth_raises():
    with pytest.raises(DatasetError, match="no pixel inside"):
        evaluate_depth_frame(np.zeros((3, 3)), np.ones((3, 3)))


def test_non_positive_prediction_is_rejected():
    with pytest.raises(ValueError, match="finite and > 0"):
        evaluate_depth_frame(np.ones((2, 2)), np.array([[1.0, 0.0], [1.0, 1.0]]))


def test_summary_averages_per_frame_not_per_pixel():
    evaluation = DepthEvaluation(median_scaling=False)
    evaluation.add(np.array([[4.0]]), np.array([[8.0]]))  # abs rel 1 on one pixel
    evaluation.add(np.full((1, 3), 4.0), np.full((1, 3), 4.0))  # abs rel 0 on three pixels
    summary = evaluation.summary()
    assert summary.num_frames == 2
    assert summary.metrics.abs_rel == pytest.approx(0.5)  # pooled over pixels it would be 0.25
    assert summary.metrics.a1 == pytest.approx(0.5)
    assert summary.median_scaling is False


def test_summary_reports_scale_ratio_median_and_spread():
    evaluation = DepthEvaluation(median_scaling=True)
    gt = np.array([[5.0, 10.0, 20.0]])
    evaluation.add(gt, gt / 2.0)
    evaluation.add(gt, gt / 4.0)
    summary = evaluation.summary()
    assert summary.metrics.abs_rel == pytest.approx(0.0, abs=1e-12)
    assert summary.scale_ratio_median == pytest.approx(3.0)
    assert summary.scale_ratio_std == pytest.approx(1.0)
    assert summary.scale_ratio_std_normalized == pytest.approx(1.0 / 3.0)
    assert summary.as_dict()["num_frames"] == 2


def test_empty_summary_raises():
    with pytest.raises(DatasetError, match="no frame was evaluated"):
        DepthEvaluation().summary()
