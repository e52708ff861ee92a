"""JSON and Markdown reports, depth colouring, and the PNG figures."""

from __future__ import annotations

import json

import matplotlib
import matplotlib.image
import numpy as np
import pytest

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.evaluation import (
    COLORMAPS,
    DepthMetrics,
    colorize_depth,
    colormap_lut,
    depth_metrics_table,
    markdown_table,
    plot_depth_panels,
    plot_trajectories,
    relative_pose_error,
    trajectory_ate,
    write_json,
)


def test_write_json_converts_numpy_and_dataclasses_and_replaces_atomically(tmp_path):
    path = tmp_path / "out" / "metrics.json"
    metrics = DepthMetrics(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    write_json(
        path,
        {"depth": metrics, "count": np.int64(3), "ratios": np.array([1.5, 2.0]), "bad": float("nan")},
    )
    write_json(
        path,
        {"depth": metrics, "count": np.int64(4), "ratios": np.array([1.5]), "bad": np.float32("inf")},
    )
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == {"depth": metrics.as_dict(), "count": 4, "ratios": [1.5], "bad": None}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temporary left behind


def test_markdown_table_formats_floats_and_blanks():
    rows = [{"name": "a", "x": 0.12345, "n": 3}, {"name": "b|c", "x": None}]
    table = markdown_table(rows, ["name", "x", "n"], headers=["model", "X", "N"])
    assert table == ("| model | X | N |\n|---|---:|---:|\n| a | 0.123 | 3 |\n| b\\|c |  |  |\n")


def test_depth_metrics_table_uses_paper_column_order():
    rows = [
        ("monodepth2", DepthMetrics(0.115, 0.903, 4.863, 0.193, 0.877, 0.959, 0.981)),
        (
            "baseline",
            {
                "abs_rel": 0.2,
                "sq_rel": 1.0,
                "rmse": 6.0,
                "rmse_log": 0.3,
                "a1": 0.7,
                "a2": 0.9,
                "a3": 0.95,
            },
        ),
    ]
    lines = depth_metrics_table(rows, name_header="model").splitlines()
    assert lines[0] == "| model | abs_rel | sq_rel | rmse | rmse_log | δ<1.25 | δ<1.25² | δ<1.25³ |"
    assert lines[2] == "| monodepth2 | 0.115 | 0.903 | 4.863 | 0.193 | 0.877 | 0.959 | 0.981 |"
    assert lines[3].startswith("| baseline | 0.200 | 1.000 | 6.000 |")


@pytest.mark.parametrize("name", COLORMAPS)
def test_colorize_maps_range_ends_to_colormap_ends(name):
    reference = np.round(matplotlib.colormaps[name]([0.0, 1.0])[:, :3] * 255).astype(np.uint8)
    depth = np.array([[2.0, 50.0]])
    inverse = colorize_depth(depth, vmin=2.0, vmax=50.0, cmap=name, inverse=True)
    np.testing.assert_array_equal(inverse[0, 0], reference[1])  # near = high disparity = top
    np.testing.assert_array_equal(inverse[0, 1], reference[0])
    linear = colorize_depth(depth, vmin=2.0, vmax=50.0, cmap=name, inverse=False)
    np.testing.assert_array_equal(linear[0, 0], reference[0])
    np.testing.assert_array_equal(linear[0, 1], reference[1])


def test_colorize_paints_invalid_pixels_black_and_saturates_outside_range():
    lut = colormap_lut("viridis")
    depth = np.array([[np.nan, 0.0, -1.0, np.inf, 0.5, 100.0]])
    rgb = colorize_depth(depth, vmin=1.0, vmax=10.0, cmap="viridis", inverse=False)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 6, 3)
    np.testing.assert_array_equal(rgb[0, :4], np.zeros((4, 3), dtype=np.uint8))
    np.testing.assert_array_equal(rgb[0, 4], lut[0])
    np.testing.assert_array_equal(rgb[0, 5], lut[255])


def test_colorize_inverse_depth_rounds_to_the_nearest_table_entry():
    lut = colormap_lut("gray")
    # Disparity range [0.1, 1] over 255 steps; disparity 0.1 + 0.9 * 100.2 / 255 is step 100.2,
    # which rounds to entry 100 (and 0.1 + 0.9 * 100.7 / 255 to 101).
    for step, entry in ((100.2, 100), (100.7, 101)):
        disparity = 0.1 + 0.9 * step / 255.0
        rgb = colorize_depth(np.array([[1.0 / disparity]]), vmin=1.0, vmax=10.0, cmap="gray")
        np.testing.assert_array_equal(rgb[0, 0], lut[entry])


def test_colorize_auto_range_uses_robust_percentiles():
    depth = np.linspace(1.0, 100.0, 101).reshape(1, -1)
    depth[0, 50] = np.nan
    rgb = colorize_depth(depth, cmap="magma", inverse=False)
    lut = colormap_lut("magma")
    np.testing.assert_array_equal(rgb[0, 0], lut[0])  # below the 5th percentile: saturates
    np.testing.assert_array_equal(rgb[0, -1], lut[255])
    np.testing.assert_array_equal(rgb[0, 50], [0, 0, 0])


def test_unknown_colormap_and_bad_range_are_config_errors():
    with pytest.raises(ConfigError, match="unknown colormap 'rainbow'"):
        colorize_depth(np.ones((2, 2)), cmap="rainbow")
    with pytest.raises(ConfigError, match="0 < vmin <= vmax"):
        colorize_depth(np.ones((2, 2)), vmin=5.0, vmax=1.0)


def assert_non_trivial_png(path):
    assert path.is_file()
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50
    flat = image.reshape(-1, image.shape[2])
    assert len(np.unique(flat, axis=0)) > 10


def test_plot_trajectories_writes_a_png(tmp_path):
    t = np.linspace(0.0, 2.0 * np.pi, 50)
    gt = np.stack([10 * np.cos(t), 5 * np.sin(t), np.zeros_like(t)], axis=1)
    pred = gt + np.array([0.5, -0.3, 0.0])
    path = tmp_path / "plots" / "trajectory.png"
    plot_trajectories(gt, pred, path, title="sequence 09")
    assert_non_trivial_png(path)
    plot_trajectories(None, pred, tmp_path / "pred_only.png")
    assert_non_trivial_png(tmp_path / "pred_only.png")


def test_plot_depth_panels_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    rgb = (rng.uniform(size=(24, 32, 3)) * 255).astype(np.uint8)
    gt = np.tile(np.linspace(2.0, 40.0, 32), (24, 1))
    gt[:8] = np.nan  # no ground truth in the sky
    pred = gt[::2, ::2].copy()
    pred[np.isnan(pred)] = 80.0
    pred *= rng.uniform(0.8, 1.2, size=pred.shape)
    path = tmp_path / "panels.png"
    plot_depth_panels(
        [(rgb, pred, gt), (rgb.astype(np.float32) / 255.0, pred, None)], path, title="qualitative"
    )
    assert_non_trivial_png(path)


def test_trajectory_results_serialise_without_pose_arrays(tmp_path):
    gt = np.tile(np.eye(4), (4, 1, 1))
    gt[:, 0, 3] = np.arange(4.0)
    pred = gt.copy()
    pred[:, :3, 3] *= 0.5
    path = tmp_path / "trajectory.json"
    write_json(path, {"ate": trajectory_ate(pred, gt), "rpe": relative_pose_error(pred, gt)})
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["ate"]["alignment"]["scale"] == pytest.approx(2.0)
    assert "poses" not in data["ate"]["alignment"]
    assert data["rpe"]["translation"]["count"] == 3
