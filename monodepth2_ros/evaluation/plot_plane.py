"""The plane a trajectory is drawn in: the one its motion spans, whatever frame the poses are in.

An x-y "top-down" view is right only for z-up frames (REP 103 odom/map). Ground truth in camera
optical frames (KITTI and TUM pose files, odometry whose child frame is a camera) moves in x-z, so
x-y is a side view that draws a 90-degree turn as a straight line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monodepth2_ros.errors import ConfigError

__all__ = ["PLANE_FRAMES", "MotionPlane", "motion_plane"]

# auto: the two principal axes of the positions; optical: x-z (REP 103 camera frame: x right,
# z forward); z_up: x-y (REP 103 body and world frames).
PLANE_FRAMES = ("auto", "optical", "z_up")
_AXIS_NAMES = ("x", "y", "z")
# Components below this share of an axis are left out of its label.
_LABEL_MIN_WEIGHT = 0.05
# Sign of "up" along each axis when the plane's normal is mostly that axis (optical y points down).
_UP_SIGN = (1.0, -1.0, 1.0)


@dataclass(frozen=True)
class MotionPlane:
    """Two orthonormal axes in the poses' frame and what to call them.

    Attributes:
        axes: (2, 3) the horizontal and vertical axis of the plot, unit vectors in the poses' frame.
        labels: axis labels naming those directions, e.g. ``"z (forward) [m]"`` or
            ``"principal axis 1 = +0.98 x +0.17 z [m]"``.
    """

    axes: np.ndarray
    labels: tuple[str, str]

    def project(self, xyz: np.ndarray) -> np.ndarray:
        """(N, 3) positions -> (N, 2) plot coordinates (metres along each axis)."""
        return np.asarray(xyz, dtype=np.float64) @ self.axes.T


def _describe(axis: np.ndarray) -> str:
    terms = [f"{value:+.2f} {name}" for value, name in zip(axis, _AXIS_NAMES) if abs(value) >= _LABEL_MIN_WEIGHT]
    return " ".join(terms)


def motion_plane(gt_xyz: np.ndarray, frame: str = "auto") -> MotionPlane:
    """The plane to draw trajectories in, from the ground-truth positions.

    ``auto`` takes the two principal axes of the positions (the first along the largest spread,
    signed so that the path runs towards +; the second signed so that the plane is seen from above,
    see the comment in the code); a path without spread falls back to x-y.

    Raises:
        ConfigError: an unknown ``frame``.
    """
    if frame not in PLANE_FRAMES:
        raise ConfigError(f"plot frame {frame!r}; expected one of {', '.join(PLANE_FRAMES)}")
    if frame == "optical":
        return MotionPlane(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), ("x (right) [m]", "z (forward) [m]"))
    if frame == "z_up":
        return MotionPlane(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), ("x [m]", "y [m]"))
    xyz = np.asarray(gt_xyz, dtype=np.float64).reshape(-1, 3)
    centred = xyz - xyz.mean(axis=0)
    if len(xyz) < 2 or not np.any(centred):
        return motion_plane(xyz, "z_up")
    _, _, vt = np.linalg.svd(centred, full_matrices=True)
    first, second = vt[0], vt[1]
    travel = xyz[-1] - xyz[0]
    if first @ travel < 0 or (first @ travel == 0 and first[np.argmax(np.abs(first))] < 0):
        first = -first
    # Look at the plane from "above", so that a turn is not drawn mirrored: the plot's normal
    # (first x second) towards +z when it is mostly z (z-up frames), towards -y when mostly y
    # (camera optical frames, y down), towards +x otherwise.
    normal = np.cross(first, second)
    dominant = int(np.argmax(np.abs(normal)))
    if np.sign(normal[dominant]) != _UP_SIGN[dominant]:
        second = -second
    labels = (f"principal axis 1 = {_describe(first)} [m]", f"principal axis 2 = {_describe(second)} [m]")
    return MotionPlane(np.stack([first, second]), labels)
