"""Depth predictors that learn nothing: the floor a trained model has to beat."""

from __future__ import annotations

import numpy as np

__all__ = ["flat_ground_depth", "constant_depth", "constant_forward_steps", "PRIOR_FAR_DEPTH_M"]

# Depth the prior assigns to everything at or above the horizon.
PRIOR_FAR_DEPTH_M = 20.0


def flat_ground_depth(
    K: np.ndarray, height: int, width: int, camera_height_m: float, far_depth_m: float = PRIOR_FAR_DEPTH_M
) -> np.ndarray:
    """Depth of a world that is a flat road seen from a level camera, and a wall ``far_depth_m`` away.

    Below the horizon each pixel's ray meets the ground plane ``camera_height_m`` under the optical
    centre (y points down in the optical frame): depth ``z = h / y_ray``; the rest gets the constant.

    Returns:
        (height, width) float32 metres.
    """
    v = np.arange(height, dtype=np.float64)[:, None]
    y_ray = (v - K[1, 2]) / K[1, 1]  # y of the ray through row v at z = 1
    with np.errstate(divide="ignore"):
        ground = np.where(y_ray > 0, camera_height_m / np.where(y_ray > 0, y_ray, 1.0), np.inf)
    depth = np.minimum(ground, far_depth_m)
    return np.broadcast_to(depth, (height, width)).astype(np.float32)


def constant_depth(height: int, width: int) -> np.ndarray:
    """A flat depth map (one value per frame): after median scaling it is ``median(gt)`` everywhere.

    The prior a model must beat to show it sees any structure at all. Returns (height, width) float32 ones.
    """
    return np.ones((height, width), dtype=np.float32)


def constant_forward_steps(count: int, step: float = 1.0) -> np.ndarray:
    """``count`` relative steps ``T_prev_curr`` of a camera moving at constant speed along its optical axis.

    The odometry prior: no rotation, ``step`` along +z per frame (scale-free once a snippet's scale
    is fitted). Returns (count, 4, 4) float64.
    """
    steps = np.broadcast_to(np.eye(4), (count, 4, 4)).copy()
    steps[:, 2, 3] = step
    return steps
