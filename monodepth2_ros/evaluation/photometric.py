"""How well a depth + pose prediction explains real frames without ground truth: the paper's error.

The training loss itself, used as a measure on held-back frames: each neighbour is warped into the
target view with the predicted target depth and relative pose, the per-pixel photometric error
(0.85 SSIM + 0.15 L1, Eq. 1) of each warped neighbour is taken, and the minimum over neighbours
(Eq. 4) is kept. Without auto-masking, so a model cannot score well by predicting no motion; the
error of the *unwarped* neighbours (:func:`static_photometric_error`) is the reference a model that
learned nothing reaches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from monodepth2_ros.model.geometry import warp_image
from monodepth2_ros.model.losses import combine_reprojection, photometric_error

__all__ = ["reprojection_error_map", "static_photometric_error"]


def _image_tensor(rgb: np.ndarray) -> torch.Tensor:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].double() / 255.0


def reprojection_error_map(
    target_rgb: np.ndarray,
    source_rgbs: Sequence[np.ndarray],
    target_depth: np.ndarray,
    T_source_target: Sequence[np.ndarray],
    K: np.ndarray,
) -> np.ndarray:
    """Per-pixel minimum over sources of the photometric error of each source warped into the target.

    Args:
        target_rgb: (H, W, 3) uint8 RGB.
        source_rgbs: the neighbours, (H, W, 3) uint8 each, one or more.
        target_depth: (H, W) depth of the target, in the units of the poses' translations, > 0.
        T_source_target: per source, (4, 4) mapping target-camera points into that source's camera.
        K: (3, 3) intrinsics of these H x W images.
    Returns:
        (H, W) float64 error, 0 where a warped source matches the target exactly.
    Raises:
        ValueError: sizes that do not match, no source, or a depth that is not finite and positive.
    """
    if len(source_rgbs) == 0 or len(source_rgbs) != len(T_source_target):
        raise ValueError(f"need one pose per source and at least one source, got {len(source_rgbs)} "
                         f"sources and {len(T_source_target)} poses")
    target = _image_tensor(target_rgb)
    height, width = target.shape[-2:]
    depth = np.asarray(target_depth, dtype=np.float64)
    if depth.shape != (height, width):
        raise ValueError(f"depth {depth.shape} does not match the image {(height, width)}")
    if not np.all(np.isfinite(depth) & (depth > 0)):
        raise ValueError("target depth must be finite and > 0 everywhere")
    depth_t = torch.from_numpy(depth)[None, None]
    K_t = torch.as_tensor(np.asarray(K, dtype=np.float64))[None]
    inv_K = torch.linalg.inv(K_t)
    errors = []
    for source_rgb, pose in zip(source_rgbs, T_source_target, strict=True):
        source = _image_tensor(source_rgb)
        if source.shape != target.shape:
            raise ValueError(f"source {tuple(source.shape[-2:])} and target {(height, width)} sizes differ")
        pose_t = torch.as_tensor(np.asarray(pose, dtype=np.float64))[None]
        warped = warp_image(source, depth_t, pose_t, K_t, inv_K)
        errors.append(photometric_error(warped, target))
    combined = combine_reprojection(torch.cat(errors, dim=1), identity=None, mode="min")
    return combined.loss[0, 0].numpy()


def static_photometric_error(target_rgb: np.ndarray, source_rgbs: Sequence[np.ndarray]) -> np.ndarray:
    """(H, W) per-pixel minimum over sources of the error of the unwarped sources (no motion)."""
    target = _image_tensor(target_rgb)
    errors = torch.cat([photometric_error(_image_tensor(s), target) for s in source_rgbs], dim=1)
    return combine_reprojection(errors, identity=None, mode="min").loss[0, 0].numpy()
