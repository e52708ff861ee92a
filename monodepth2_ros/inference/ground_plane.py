"""The ground plane in a predicted depth map: how high the camera sits, in network units.

Monocular depth is known up to a factor. A camera on a vehicle sees the road in the lower part of
the image; fitting a plane to those points gives the camera's height above the road in network
units, and a known mounting height in metres turns that into metres per unit.

The fit is RANSAC on a sample of the back-projected points of the lower image region (using
:func:`monodepth2_ros.model.geometry.backproject`, the training warp's back-projection), followed by
least-squares refits on the inliers. Every threshold is relative to the plane's own distance from
the camera, so the fit behaves the same whatever the unknown depth scale. A plane is rejected when
its normal is not roughly the camera's "up" (-y in the REP 103 optical frame: x right, y down,
z forward) or too few points support it; the caller then keeps its previous scale.

Figures on the synthetic street: :mod:`monodepth2_ros.tools.ground_plane_figures`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.model.geometry import backproject

__all__ = [
    "OPTICAL_UP",
    "GroundPlaneConfig",
    "GroundPlane",
    "PlaneSearch",
    "region_points",
    "fit_ground_plane",
    "find_ground_plane",
]

# "Up" in the REP 103 optical frame of a level camera (y points down).
OPTICAL_UP = np.array([0.0, -1.0, 0.0])

_MIN_SAMPLE = 3  # a plane needs three points
_REFITS = 2  # least-squares refits after RANSAC (inliers are re-selected after each)
_COLLINEAR = 1e-12  # |cross product|^2 below this: the three samples do not span a plane


@dataclass(frozen=True)
class GroundPlaneConfig:
    """How the road plane is searched for.

    Attributes:
        region_fraction: share of image rows, from the bottom, whose points may be road.
        max_tilt_deg: largest angle between the plane normal and the camera's up direction; covers
            the camera's pitch/roll on its mount plus slopes.
        inlier_distance: a point belongs to a plane when its distance to it is below this share of
            the plane's distance from the camera (0.05: 8 cm for a camera 1.65 m up).
        min_inlier_fraction: share of the sampled region points the plane must explain.
        min_inliers: absolute minimum of supporting points.
        samples: region points drawn (at random, seeded) for the fit.
        iterations: RANSAC hypotheses.
        seed: seed of the sampling; equal inputs give equal planes.
    """

    region_fraction: float = 0.4
    max_tilt_deg: float = 20.0
    inlier_distance: float = 0.05
    min_inlier_fraction: float = 0.3
    min_inliers: int = 50
    samples: int = 2000
    iterations: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.region_fraction <= 1.0:
            raise ConfigError(f"ground region_fraction is {self.region_fraction}; expected 0 < x <= 1")
        if not 0.0 < self.max_tilt_deg < 90.0:
            raise ConfigError(f"ground max_tilt_deg is {self.max_tilt_deg}; expected 0 < x < 90 degrees")
        if not 0.0 < self.inlier_distance < 1.0:
            raise ConfigError(f"ground inlier_distance is {self.inlier_distance}; expected 0 < x < 1")
        if not 0.0 < self.min_inlier_fraction <= 1.0:
            raise ConfigError(f"ground min_inlier_fraction is {self.min_inlier_fraction}; expected 0 < x <= 1")
        if self.min_inliers < _MIN_SAMPLE or self.samples < self.min_inliers or self.iterations < 1:
            raise ConfigError(
                f"ground min_inliers {self.min_inliers}, samples {self.samples}, iterations {self.iterations}: "
                f"expected 3 <= min_inliers <= samples and at least one iteration"
            )


@dataclass(frozen=True)
class GroundPlane:
    """A plane ``n . p + d = 0`` in the camera optical frame, with ``n`` pointing up (to the camera).

    Attributes:
        normal: (3,) unit normal, on the camera's side of the plane.
        height: ``d``: the camera's distance above the plane, in the depth map's units.
        tilt_deg: angle between ``normal`` and the expected up direction.
        inliers: points within the inlier distance of the plane.
        points: region points the plane was fitted to.
    """

    normal: np.ndarray
    height: float
    tilt_deg: float
    inliers: int
    points: int

    @property
    def inlier_fraction(self) -> float:
        return self.inliers / self.points if self.points else 0.0


@dataclass(frozen=True)
class PlaneSearch:
    """The outcome of one search: the plane, or why none was accepted.

    Attributes:
        plane: the accepted plane, or None.
        reason: empty when found; otherwise what failed, for logs and diagnostics.
        candidate: the best plane found even when rejected (None when none could be fitted).
    """

    plane: GroundPlane | None
    reason: str = ""
    candidate: GroundPlane | None = None

    @property
    def found(self) -> bool:
        return self.plane is not None


def region_points(
    depth: torch.Tensor, K: np.ndarray, region_fraction: float, max_pixels: int
) -> np.ndarray:
    """Back-project the lower ``region_fraction`` of a depth map, on a regular pixel grid.

    The region is cropped and strided *before* back-projection, with the intrinsics of that
    crop: pixel ``(u', v')`` of the strided crop is pixel ``(s u', r0 + s v')`` of the map, whose
    ray is that of ``K' = [[fx/s, k/s, cx/s], [0, fy/s, (cy - r0)/s], [0, 0, 1]]``.

    Args:
        depth: (1, 1, H, W) or (H, W) depth along the optical axis, any units; NaN/inf/<= 0 invalid.
        K: (3, 3) intrinsics of the map, pixels.
        region_fraction: share of rows, from the bottom.
        max_pixels: roughly the most pixels to back-project (sets the stride).
    Returns:
        (N, 3) float64 points of the valid pixels in the camera optical frame.
    """
    height, width = depth.shape[-2:]
    depth = depth.reshape(1, 1, height, width)
    first_row = min(height - 1, int(math.floor(height * (1.0 - region_fraction))))
    rows = height - first_row
    stride = max(1, int(math.ceil(math.sqrt(rows * width / max(1, max_pixels)))))
    crop = depth[..., first_row::stride, ::stride].double()
    K = np.asarray(K, dtype=np.float64)
    K_crop = np.array(
        [
            [K[0, 0] / stride, K[0, 1] / stride, K[0, 2] / stride],
            [0.0, K[1, 1] / stride, (K[1, 2] - first_row) / stride],
            [0.0, 0.0, 1.0],
        ]
    )
    inv_K = torch.from_numpy(np.linalg.inv(K_crop)).to(device=crop.device, dtype=crop.dtype)[None]
    points = backproject(crop, inv_K)[0].T.cpu().numpy()  # (N, 3)
    valid = np.isfinite(points).all(axis=1) & (points[:, 2] > 0.0)
    return points[valid]


def _orient(normal: np.ndarray, offset: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip planes (rows of ``normal``, ``offset``) so that every normal points along ``up``."""
    sign = np.where(normal @ up < 0.0, -1.0, 1.0)
    return normal * sign[..., None], offset * sign


def _refit(points: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane through ``points``: the centroid and the direction of least spread."""
    centroid = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centroid, full_matrices=False)
    normal = vt[-1]
    if normal @ up < 0.0:
        normal = -normal
    return normal, float(-normal @ centroid)


def _plane(normal: np.ndarray, offset: float, points: np.ndarray, config: GroundPlaneConfig, up: np.ndarray):
    residual = np.abs(points @ normal + offset)
    inliers = residual < config.inlier_distance * max(offset, 0.0)
    tilt = math.degrees(math.acos(float(np.clip(normal @ up, -1.0, 1.0))))
    return GroundPlane(normal=normal, height=offset, tilt_deg=tilt, inliers=int(inliers.sum()), points=len(points)), inliers


def fit_ground_plane(
    points: np.ndarray, config: GroundPlaneConfig | None = None, up: np.ndarray = OPTICAL_UP
) -> PlaneSearch:
    """RANSAC + least-squares ground plane of (N, 3) camera-frame points.

    Only hypotheses whose normal is within ``max_tilt_deg`` of ``up`` and that lie below the
    camera (positive height) are scored, so a facade or a wall never wins over the road.

    Args:
        points: (N, 3) points in the optical frame (from :func:`region_points`).
        config: thresholds (defaults: :class:`GroundPlaneConfig`).
        up: (3,) unit vector "up" in the camera frame (default: -y, a level optical frame).
    """
    config = config or GroundPlaneConfig()
    up = np.asarray(up, dtype=np.float64)
    up = up / np.linalg.norm(up)
    points = np.asarray(points, dtype=np.float64)
    if len(points) < config.min_inliers:
        return PlaneSearch(None, f"only {len(points)} valid points in the lower image region (need {config.min_inliers})")
    rng = np.random.default_rng(config.seed)
    if len(points) > config.samples:
        points = points[rng.choice(len(points), config.samples, replace=False)]

    # All hypotheses at once: (I, 3) triplets -> (I, 3) normals and (I,) offsets.
    triplets = points[np.stack([rng.choice(len(points), _MIN_SAMPLE, replace=False) for _ in range(config.iterations)])]
    normals = np.cross(triplets[:, 1] - triplets[:, 0], triplets[:, 2] - triplets[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    usable = lengths**2 > _COLLINEAR
    normals = normals[usable] / lengths[usable, None]
    offsets = -np.einsum("ij,ij->i", normals, triplets[usable, 0])
    normals, offsets = _orient(normals, offsets, up)
    max_cos_tilt = math.cos(math.radians(config.max_tilt_deg))
    plausible = (normals @ up >= max_cos_tilt) & (offsets > 0.0)
    if not plausible.any():
        return PlaneSearch(None, f"no plane within {config.max_tilt_deg:g} deg of horizontal below the camera")
    normals, offsets = normals[plausible], offsets[plausible]
    residuals = np.abs(points @ normals.T + offsets)  # (N, I)
    scores = (residuals < config.inlier_distance * offsets).sum(axis=0)
    best = int(np.argmax(scores))
    normal, offset = normals[best], float(offsets[best])

    plane, inliers = _plane(normal, offset, points, config, up)
    for _ in range(_REFITS):
        if plane.inliers < _MIN_SAMPLE:
            break
        normal, offset = _refit(points[inliers], up)
        plane, inliers = _plane(normal, offset, points, config, up)

    if plane.height <= 0.0:
        return PlaneSearch(None, "the fitted plane does not lie below the camera", plane)
    if plane.tilt_deg > config.max_tilt_deg:
        return PlaneSearch(
            None, f"plane normal {plane.tilt_deg:.1f} deg from the camera's up (max {config.max_tilt_deg:g})", plane
        )
    if plane.inliers < config.min_inliers or plane.inlier_fraction < config.min_inlier_fraction:
        return PlaneSearch(
            None,
            f"plane explains {plane.inliers} of {plane.points} points ({plane.inlier_fraction:.0%}; need "
            f"{config.min_inlier_fraction:.0%} and {config.min_inliers})",
            plane,
        )
    return PlaneSearch(plane)


def find_ground_plane(
    depth: torch.Tensor, K: np.ndarray, config: GroundPlaneConfig | None = None, up: np.ndarray = OPTICAL_UP
) -> PlaneSearch:
    """:func:`fit_ground_plane` on the lower region of a depth map (see :func:`region_points`)."""
    config = config or GroundPlaneConfig()
    points = region_points(depth, K, config.region_fraction, max_pixels=4 * config.samples)
    return fit_ground_plane(points, config, up)
