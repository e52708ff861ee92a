"""The synthetic camera: KITTI-like intrinsics, optional plumb_bob distortion, its rays and its mount.

Rays are camera-frame directions with ``z = 1`` (REP 103 optical frame), so the distance a ray travels
in units of its direction *is* the depth along the optical axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.model.geometry import scale_intrinsics

from .config import KITTI_CX, KITTI_CY, KITTI_FX, KITTI_FY, KITTI_HEIGHT, KITTI_WIDTH, PLUMB_BOB_D

__all__ = [
    "CameraModel",
    "kitti_intrinsics",
    "undistort_normalized",
    "distort_normalized",
    "base_to_optical_rotation",
    "mount_transform",
    "fov_intrinsics",
]

_UNDISTORT_ITERATIONS = 50
_UNDISTORT_TOLERANCE = 1e-9


def kitti_intrinsics(height: int = KITTI_HEIGHT, width: int = KITTI_WIDTH) -> np.ndarray:
    """(3, 3) float64 KITTI-like pinhole K for an ``height x width`` image (whole-image resize)."""
    K = np.array([[KITTI_FX, 0.0, KITTI_CX], [0.0, KITTI_FY, KITTI_CY], [0.0, 0.0, 1.0]])
    if (height, width) == (KITTI_HEIGHT, KITTI_WIDTH):
        return K
    return np.asarray(scale_intrinsics(K, (KITTI_HEIGHT, KITTI_WIDTH), (height, width)), dtype=np.float64)


def distort_normalized(x: np.ndarray, y: np.ndarray, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """plumb_bob (k1, k2, p1, p2, k3): undistorted normalised coordinates -> distorted ones."""
    k1, k2, p1, p2, k3 = (float(c) for c in D)
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return xd, yd


def undistort_normalized(xd: np.ndarray, yd: np.ndarray, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Invert :func:`distort_normalized` by fixed-point iteration (exact to ~1e-9 for mild distortion).

    Raises:
        ConfigError: the iteration does not converge (distortion too strong for the field of view).
    """
    k1, k2, p1, p2, k3 = (float(c) for c in D)
    x, y = xd.copy(), yd.copy()
    for _ in range(_UNDISTORT_ITERATIONS):
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dx = 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
        dy = p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
        x = (xd - dx) / radial
        y = (yd - dy) / radial
    rx, ry = distort_normalized(x, y, D)
    residual = float(np.max(np.hypot(rx - xd, ry - yd))) if xd.size else 0.0
    if not residual < _UNDISTORT_TOLERANCE:
        raise ConfigError(
            f"plumb_bob coefficients {tuple(D)} cannot be inverted over the image (residual {residual:.2e})"
        )
    return x, y


def base_to_optical_rotation() -> np.ndarray:
    """R_base_optical: columns are the optical axes in base_link (x fwd, y left, z up), REP 103.

    Optical x (right) = base -y, optical y (down) = base -z, optical z (forward) = base +x.
    """
    return np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def mount_transform(camera_height_m: float, pitch_rad: float = 0.0, roll_rad: float = 0.0) -> np.ndarray:
    """T_base_camera (4, 4): the camera optical frame ``camera_height_m`` above base_link, facing +x,
    tilted ``pitch_rad`` down (about base +y) and rolled ``roll_rad`` (about its forward axis)."""
    T = np.eye(4)
    R = base_to_optical_rotation()
    if pitch_rad or roll_rad:
        cp, sp = np.cos(pitch_rad), np.sin(pitch_rad)
        cr, sr = np.cos(roll_rad), np.sin(roll_rad)
        pitch = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
        roll = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
        R = pitch @ roll @ R
    T[:3, :3] = R
    T[2, 3] = camera_height_m
    return T


def fov_intrinsics(height: int, width: int, horizontal_fov_deg: float) -> np.ndarray:
    """(3, 3) pinhole K with square pixels, the principal point at the image centre and the given
    horizontal field of view (pixel centres at integer coordinates)."""
    fx = 0.5 * width / np.tan(np.deg2rad(horizontal_fov_deg) / 2.0)
    return np.array([[fx, 0.0, 0.5 * (width - 1)], [0.0, fx, 0.5 * (height - 1)], [0.0, 0.0, 1.0]])


def _pixel_rays(K: np.ndarray, D: np.ndarray, height: int, width: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    offsets = (np.arange(k) + 0.5) / k - 0.5
    u = (np.arange(width)[:, None] + offsets[None]).reshape(-1)
    v = (np.arange(height)[:, None] + offsets[None]).reshape(-1)
    uu, vv = np.meshgrid(u, v)
    xd = (uu - K[0, 2]) / K[0, 0]
    yd = (vv - K[1, 2]) / K[1, 1]
    if np.any(D != 0.0):
        return undistort_normalized(xd, yd, D)
    return xd, yd


@dataclass(frozen=True)
class CameraModel:
    """One camera of the rig: size, pinhole K, plumb_bob D and its per-pixel rays.

    Attributes:
        height, width: image size in pixels.
        K: (3, 3) float64 pinhole intrinsics (pixel centres at integer coordinates).
        D: (5,) float64 plumb_bob coefficients (all zero without distortion).
        ray_x, ray_y: (H, W) float64 undistorted normalised coordinates of each pixel's ray; the ray
            direction in the optical frame is ``(ray_x, ray_y, 1)``.
    """

    height: int
    width: int
    K: np.ndarray
    D: np.ndarray
    ray_x: np.ndarray
    ray_y: np.ndarray

    @classmethod
    def create(cls, height: int, width: int, distortion: bool) -> "CameraModel":
        K = kitti_intrinsics(height, width)
        D = np.array(PLUMB_BOB_D if distortion else (0.0,) * 5, dtype=np.float64)
        ray_x, ray_y = _pixel_rays(K, D, height, width, 1)
        return cls(height=height, width=width, K=K, D=D, ray_x=ray_x, ray_y=ray_y)

    @classmethod
    def from_intrinsics(cls, height: int, width: int, K: np.ndarray, D: np.ndarray) -> "CameraModel":
        """Any pinhole K and plumb_bob D (raises ConfigError if D cannot be inverted over the image)."""
        K = np.asarray(K, dtype=np.float64)
        D = np.asarray(D, dtype=np.float64)
        ray_x, ray_y = _pixel_rays(K, D, height, width, 1)
        return cls(height=height, width=width, K=K, D=D, ray_x=ray_x, ray_y=ray_y)

    def subpixel_rays(self, samples_per_side: int) -> tuple[np.ndarray, np.ndarray]:
        """Rays of a ``k x k`` grid of samples inside every pixel, as (k*H, k*W) tables.

        Sample ``(i, j)`` of pixel ``(u, v)`` sits at ``(u + (i + 0.5)/k - 0.5, v + (j + 0.5)/k - 0.5)``
        and is stored at ``[k*v + j, k*u + i]``, so a k x k average pool gives the pixel's mean.
        """
        if samples_per_side == 1:
            return self.ray_x, self.ray_y
        return _pixel_rays(self.K, self.D, self.height, self.width, samples_per_side)

    @property
    def distorted(self) -> bool:
        return bool(np.any(self.D != 0.0))

    def projection_matrix(self, baseline_m: float = 0.0) -> np.ndarray:
        """ROS CameraInfo P (3, 4): ``P[0, 3] = -fx * baseline`` for the right camera of a stereo pair."""
        P = np.zeros((3, 4))
        P[:, :3] = self.K
        P[0, 3] = -self.K[0, 0] * baseline_m if baseline_m else 0.0
        return P
