"""How different two frames look: the static-frame measure shared by training and the pose node."""

from __future__ import annotations

import numpy as np

__all__ = ["MOTION_SUBSAMPLE", "mean_image_difference"]

# Every 4th pixel in each direction: a 16x cheaper estimate, plenty for a mean.
MOTION_SUBSAMPLE = 4
_MAX_PIXEL = 255.0


def mean_image_difference(rgb_a: np.ndarray, rgb_b: np.ndarray, subsample: int = MOTION_SUBSAMPLE) -> float:
    """Mean absolute difference in [0, 1] of two uint8 images on every ``subsample``-th pixel.

    Training drops triplets whose frames differ less than its ``static_threshold`` (the camera
    stood still, so the photometric loss says nothing about depth); the pose node keeps its pose
    still below the same threshold. Images of different sizes count as different (1.0).
    """
    if rgb_a.shape != rgb_b.shape:
        return 1.0
    first = rgb_a[::subsample, ::subsample].astype(np.int16)
    second = rgb_b[::subsample, ::subsample].astype(np.int16)
    return float(np.abs(first - second).mean() / _MAX_PIXEL)
