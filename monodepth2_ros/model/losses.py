"""The Monodepth2 training losses as small pure functions (Godard et al., ICCV 2019, Sec. 3).

Every function takes batch-first tensors and returns a tensor; none keeps state, so each can be
checked on 4x4 inputs. Images are RGB in [0, 1]; per-pixel error maps are (B, 1, H, W).

* :func:`ssim_dissimilarity`: ``(1 - SSIM) / 2`` over 3x3 windows (Wang et al. 2004), reflection
  padded so the border pixels have full windows.
* :func:`photometric_error`: ``alpha (1 - SSIM) / 2 + (1 - alpha) |a - b|``, Eq. 1 of the paper.
* :func:`combine_reprojection`: per-pixel minimum (or mean) over source frames (Eq. 4) and
  auto-masking by the error of the unwarped sources (Eq. 5).
* :func:`edge_aware_smoothness`: ``|dx d*| e^{-|dx I|} + |dy d*| e^{-|dy I|}`` on the
  mean-normalised disparity ``d* = d / mean(d)`` (Eq. 3).

Not in the paper, and used only when a bag has odometry:

* :func:`velocity_error`: ``| ||t|| - d |``, the weak velocity supervision of PackNet-SfM
  (Guizilini et al., CVPR 2020, Sec. 3.3): the pose network's translation against the distance an
  odometry measured, which fixes the scale to metres and the motion's length where parallax is weak.
* :func:`pose_error`: rotation angle plus translation L1 between the pose network's motion and the
  camera motion the odometry and the camera's mounting give. Off unless asked for: a fifth of a
  degree of rotation error moves a 200 px-focal image by a pixel, as much as the parallax of a wall
  3 m behind a table seen from a camera moving 2 cm, and the depth network then fits that wall at
  infinity to the pose network's error.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "SSIM_C1",
    "SSIM_C2",
    "SSIM_WEIGHT",
    "SMOOTHNESS_WEIGHT",
    "IDENTITY_TIE_BREAK",
    "REPROJECTION_MODES",
    "ReprojectionResult",
    "ssim_dissimilarity",
    "photometric_error",
    "combine_reprojection",
    "normalize_disparity",
    "edge_aware_smoothness",
    "VELOCITY_WEIGHT",
    "velocity_error",
    "pose_error",
]

# SSIM stabilisers for a dynamic range of 1: (0.01 L)^2 and (0.03 L)^2, Wang et al. 2004.
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2
# Weight of the SSIM term in the photometric error (alpha = 0.85 in the paper, after Godard et al. 2017).
SSIM_WEIGHT = 0.85
# Edge-aware smoothness weight lambda = 1e-3 (paper Sec. 4); divided by 2**scale per scale.
SMOOTHNESS_WEIGHT = 1e-3
# Weight of the velocity term: PackNet-SfM's published default (0.1).
VELOCITY_WEIGHT = 0.1
# Standard deviation of the noise added to the identity error to break ties with the reprojection
# error (a static pixel that reprojects perfectly would otherwise be kept or masked arbitrarily).
IDENTITY_TIE_BREAK = 1e-5
# Guards a division by a mean disparity of zero.
_NORMALIZE_EPS = 1e-7

REPROJECTION_MODES = ("min", "avg")

_SSIM_WINDOW = 3


def _window_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over 3x3 windows of a reflection-padded input: same spatial size as ``x``."""
    pad = _SSIM_WINDOW // 2
    return F.avg_pool2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), _SSIM_WINDOW, stride=1)


def ssim_dissimilarity(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(1 - SSIM(x, y)) / 2`` per pixel and channel, clamped to [0, 1].

    Args:
        x, y: (B, C, H, W) images in [0, 1], H and W at least 2 (reflection padding).
    Returns:
        (B, C, H, W); 0 where the two images agree over the 3x3 window.
    """
    mu_x = _window_mean(x)
    mu_y = _window_mean(y)
    sigma_x = _window_mean(x * x) - mu_x * mu_x
    sigma_y = _window_mean(y * y) - mu_y * mu_y
    sigma_xy = _window_mean(x * y) - mu_x * mu_y
    numerator = (2.0 * mu_x * mu_y + SSIM_C1) * (2.0 * sigma_xy + SSIM_C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return torch.clamp((1.0 - numerator / denominator) / 2.0, 0.0, 1.0)


def photometric_error(
    prediction: torch.Tensor,
    target: torch.Tensor,
    ssim_weight: float = SSIM_WEIGHT,
    use_ssim: bool = True,
) -> torch.Tensor:
    """The paper's photometric reconstruction error ``pe`` (Eq. 1), averaged over channels.

    Args:
        prediction, target: (B, C, H, W) images in [0, 1].
        ssim_weight: alpha, the weight of the SSIM term (the L1 term gets ``1 - alpha``).
        use_ssim: False gives the plain L1 error (the paper's "no SSIM" ablation).
    Returns:
        (B, 1, H, W) error per pixel.
    """
    l1 = (prediction - target).abs().mean(dim=1, keepdim=True)
    if not use_ssim:
        return l1
    ssim = ssim_dissimilarity(prediction, target).mean(dim=1, keepdim=True)
    return ssim_weight * ssim + (1.0 - ssim_weight) * l1


@dataclass(frozen=True)
class ReprojectionResult:
    """What :func:`combine_reprojection` gives per pixel.

    Attributes:
        loss: (B, 1, H, W) the error to minimise (for masked pixels: the identity error, which
            does not depend on the networks and so gives them no gradient).
        automask: (B, 1, H, W) float, 1 where a warped source beats every unwarped source (the
            pixel is learned from), 0 where it is masked; all ones without auto-masking.
        source_index: (B, 1, H, W) int64 index of the source with the smallest reprojection
            error (``min`` mode), -1 in ``avg`` mode.
    """

    loss: torch.Tensor
    automask: torch.Tensor
    source_index: torch.Tensor


def combine_reprojection(
    reprojection: torch.Tensor,
    identity: torch.Tensor | None = None,
    mode: str = "min",
    tie_break: float = IDENTITY_TIE_BREAK,
) -> ReprojectionResult:
    """Per-pixel minimum (or mean) reprojection over sources, with optional auto-masking.

    Args:
        reprojection: (B, N, H, W) photometric error of each of N warped source frames.
        identity: (B, N, H, W) error of the *unwarped* sources against the target, or None to
            switch auto-masking off. A pixel is kept where the (min or mean) reprojection error is
            smaller than the (min or mean) identity error: where the scene moves with the camera,
            or nothing moves at all, the unwarped source already matches and the pixel is masked.
        mode: ``"min"`` (the paper) or ``"avg"`` (the baseline it is compared with).
        tie_break: std of the Gaussian noise added to the identity error so exact ties (a static
            frame) resolve randomly instead of always one way; 0 disables it.
    Returns:
        :class:`ReprojectionResult`.
    Raises:
        ValueError: an unknown ``mode`` or mismatched shapes.
    """
    if mode not in REPROJECTION_MODES:
        raise ValueError(f"reprojection mode {mode!r}; expected one of {REPROJECTION_MODES}")
    if reprojection.dim() != 4:
        raise ValueError(f"reprojection errors must be (B, N, H, W), got {tuple(reprojection.shape)}")
    if mode == "min":
        reprojection_best, source_index = reprojection.min(dim=1, keepdim=True)
    else:
        reprojection_best = reprojection.mean(dim=1, keepdim=True)
        source_index = torch.full_like(reprojection_best, -1, dtype=torch.int64)
    if identity is None:
        return ReprojectionResult(reprojection_best, torch.ones_like(reprojection_best), source_index)
    if identity.shape != reprojection.shape:
        raise ValueError(
            f"identity errors {tuple(identity.shape)} must match reprojection errors {tuple(reprojection.shape)}"
        )
    identity_best = identity.min(dim=1, keepdim=True)[0] if mode == "min" else identity.mean(dim=1, keepdim=True)
    if tie_break > 0:
        identity_best = identity_best + tie_break * torch.randn_like(identity_best)
    keep = reprojection_best < identity_best
    loss = torch.where(keep, reprojection_best, identity_best)
    return ReprojectionResult(loss, keep.to(reprojection.dtype), source_index)


def normalize_disparity(disparity: torch.Tensor) -> torch.Tensor:
    """``d / mean(d)`` per image, so smoothness cannot be lowered by shrinking the depth scale.

    Args:
        disparity: (B, 1, H, W).
    """
    return disparity / (disparity.mean(dim=(2, 3), keepdim=True) + _NORMALIZE_EPS)


def edge_aware_smoothness(disparity: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware first-order smoothness (Eq. 3), a scalar.

    Disparity gradients are down-weighted by ``exp(-|image gradient|)`` (the image gradient
    averaged over channels), so depth may jump where the image has an edge.

    Args:
        disparity: (B, 1, H, W), normally :func:`normalize_disparity` of the prediction.
        image: (B, C, H, W) the target image at the same size, in [0, 1].
    Returns:
        0-dim tensor: mean x-term plus mean y-term.
    """
    disp_dx = (disparity[:, :, :, :-1] - disparity[:, :, :, 1:]).abs()
    disp_dy = (disparity[:, :, :-1, :] - disparity[:, :, 1:, :]).abs()
    image_dx = (image[:, :, :, :-1] - image[:, :, :, 1:]).abs().mean(dim=1, keepdim=True)
    image_dy = (image[:, :, :-1, :] - image[:, :, 1:, :]).abs().mean(dim=1, keepdim=True)
    return (disp_dx * torch.exp(-image_dx)).mean() + (disp_dy * torch.exp(-image_dy)).mean()


def velocity_error(T_source_target: torch.Tensor, distance_m: torch.Tensor) -> torch.Tensor:
    """Mean ``| ||t|| - d |`` over the pairs whose odometry distance ``d`` is known (0-dim; 0 if none).

    Args:
        T_source_target: (B, S, 4, 4) predicted motions; ``||t||`` is the distance between the two
            camera centres.
        distance_m: (B, S) distances the odometry measured between the frames (NaN unknown).
    """
    translation = T_source_target[..., :3, 3].norm(dim=-1)
    known = torch.isfinite(distance_m)
    error = torch.where(known, (translation - torch.nan_to_num(distance_m)).abs(), torch.zeros_like(translation))
    return error.sum() / known.sum().clamp(min=1)


def pose_error(T_source_target: torch.Tensor, T_measured: torch.Tensor) -> torch.Tensor:
    """Mean rotation angle (rad) plus translation L1 (m) over the pairs whose motion is known (0-dim; 0 if none).

    Args:
        T_source_target: (B, S, 4, 4) predicted motions.
        T_measured: (B, S, 4, 4) the camera motions measured for the same pairs (NaN unknown).
    """
    known = torch.isfinite(T_measured).flatten(-2).all(dim=-1)
    measured = torch.where(known[..., None, None], T_measured, torch.eye(4, dtype=T_measured.dtype,
                                                                       device=T_measured.device))
    relative = T_source_target[..., :3, :3].transpose(-1, -2) @ measured[..., :3, :3]
    # acos has an infinite slope at 1: keep the cosine just inside so a perfect rotation still has a gradient.
    cosine = ((relative.diagonal(dim1=-2, dim2=-1).sum(dim=-1) - 1.0) / 2.0).clamp(-1.0 + 1e-6, 1.0 - 1e-6)
    translation = (T_source_target[..., :3, 3] - measured[..., :3, 3]).abs().sum(dim=-1)
    error = torch.where(known, torch.acos(cosine) + translation, torch.zeros_like(translation))
    return error.sum() / known.sum().clamp(min=1)
