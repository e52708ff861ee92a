"""Trajectory plots draw the plane the motion spans: an L driven in a camera optical frame is an L."""

from __future__ import annotations

import numpy as np
import pytest

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.evaluation.plot_plane import motion_plane
from monodepth2_ros.evaluation.report import plot_trajectories


def _optical_l_path() -> np.ndarray:
    """A camera (optical frame: x right, y down, z forward) drives 10 m ahead, turns right, drives 5 m."""
    ahead = np.stack([np.zeros(21), np.zeros(21), np.linspace(0.0, 10.0, 21)], axis=1)
    right = np.stack([np.linspace(0.25, 5.0, 20), np.zeros(20), np.full(20, 10.0)], axis=1)
    path = np.concatenate([ahead, right])
    path[:, 1] += 0.02 * np.sin(np.arange(len(path)))  # a little bounce, off the plane
    return path


def _legs_as_drawn(line) -> tuple[np.ndarray, np.ndarray]:
    drawn = np.asarray(line.get_xydata())
    return drawn[:21], drawn[20:]


def _assert_is_an_l(first_leg: np.ndarray, second_leg: np.ndarray) -> None:
    one = first_leg[-1] - first_leg[0]
    two = second_leg[-1] - second_leg[0]
    assert np.linalg.norm(one) == pytest.approx(10.0, abs=0.01)
    assert np.linalg.norm(two) == pytest.approx(4.99 + 0.01, abs=0.01)
    cosine = one @ two / (np.linalg.norm(one) * np.linalg.norm(two))
    assert abs(cosine) < 0.01  # a right angle
    # Each leg is straight in the plot.
    for leg in (first_leg, second_leg):
        direction = (leg[-1] - leg[0]) / np.linalg.norm(leg[-1] - leg[0])
        offsets = (leg - leg[0]) @ np.array([-direction[1], direction[0]])
        assert np.max(np.abs(offsets)) < 0.03
    # A right turn is drawn as a right turn (not mirrored): the cross product is negative.
    assert one[0] * two[1] - one[1] * two[0] < 0


@pytest.mark.parametrize("frame", ["optical", "auto"])
def test_an_l_shaped_optical_frame_path_is_drawn_as_an_l(tmp_path, frame):
    gt = _optical_l_path()
    figure = plot_trajectories(gt, gt + 0.1, tmp_path / "trajectory.png", frame=frame)
    assert (tmp_path / "trajectory.png").stat().st_size > 1000
    axes = figure.axes[0]
    _assert_is_an_l(*_legs_as_drawn(axes.lines[0]))
    xlabel, ylabel = axes.get_xlabel(), axes.get_ylabel()
    if frame == "optical":
        assert (xlabel, ylabel) == ("x (right) [m]", "z (forward) [m]")
    else:
        # The principal axes lie in x-z (mostly along the 10 m leg, z); the labels say which.
        assert xlabel.startswith("principal axis 1 = ") and ylabel.startswith("principal axis 2 = ")
        assert "+0.94 z" in xlabel and " y" not in xlabel + ylabel


def test_the_old_top_down_view_of_an_optical_path_is_not_an_l(tmp_path):
    """x-y of an optical-frame path (the old plot) collapses the 10 m leg: the reason for the change."""
    gt = _optical_l_path()
    figure = plot_trajectories(gt, gt, tmp_path / "trajectory.png", frame="z_up")
    first_leg, _ = _legs_as_drawn(figure.axes[0].lines[0])
    assert np.linalg.norm(first_leg[-1] - first_leg[0]) < 0.1


def test_a_z_up_drive_keeps_the_top_down_view_and_left_turns_stay_left():
    t = np.linspace(0.0, np.pi / 2, 30)
    gt = np.stack([20 * np.sin(t), 20 * (1 - np.cos(t)), np.zeros_like(t)], axis=1)  # a left turn in odom
    plane = motion_plane(gt)
    assert abs(np.cross(*plane.axes)[2]) == pytest.approx(1.0)
    drawn = plane.project(gt)
    heading_start, heading_end = drawn[1] - drawn[0], drawn[-1] - drawn[-2]
    assert heading_start[0] * heading_end[1] - heading_start[1] * heading_end[0] > 0  # turns left


def test_unknown_plot_frame_is_refused():
    with pytest.raises(ConfigError, match="plot frame"):
        motion_plane(np.zeros((3, 3)), "sideways")
