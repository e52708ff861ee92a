"""The training objective: networks + batch -> :class:`LossTerms` (paper Sec. 3, Eq. 1-5).

Per scale s, the disparity is turned into depth (``disp_to_depth``), every source frame is warped
into the target view with its ``T_source_target`` (the pose network's for temporal sources, the
calibration's for the stereo partner), and the per-pixel minimum photometric error over sources,
auto-masked by the error of the unwarped sources, is averaged. In the paper's
``full_resolution`` mode every scale's disparity is first upsampled to the input size; in the
``per_scale`` mode images and intrinsics are downsampled to the disparity instead. Each scale
adds ``smoothness_weight / 2**s`` times the edge-aware smoothness of its mean-normalised
disparity against the target at that scale; the total is the mean over scales. With an odometry
topic (``batch.source_distance_m``) the total adds ``velocity_weight`` times the velocity error of
the temporal motions (:func:`~monodepth2_ros.model.losses.velocity_error`, not in the paper),
and with ``pose_weight`` and the camera's measured motion (``batch.source_motion``) that weight
times the pose error (:func:`~monodepth2_ros.model.losses.pose_error`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from monodepth2_ros.model.geometry import disp_to_depth, invert_intrinsics, scale_intrinsics, warp_image
from monodepth2_ros.model.losses import (
    ReprojectionResult,
    combine_reprojection,
    edge_aware_smoothness,
    normalize_disparity,
    photometric_error,
    pose_error,
    velocity_error,
)
from monodepth2_ros.training.batch import Batch
from monodepth2_ros.training.config import LossConfig
from monodepth2_ros.training.networks import Predictions

__all__ = [
    "LossTerms",
    "compute_losses",
    "losses_from_predictions",
    "reprojection_errors",
    "identity_errors",
    "view_synthesis",
    "downsample",
]


@dataclass(frozen=True)
class LossTerms:
    """The loss of one batch and the parts worth logging.

    Attributes:
        total: 0-dim differentiable loss (mean over scales).
        photometric: per-scale mean photometric term (detached), scale 0 first.
        smoothness: per-scale edge-aware smoothness before weighting (detached).
        automask_fraction: share of scale-0 pixels kept by auto-masking (1 without it).
        disparity: (B, 1, H, W) scale-0 sigmoid disparity (detached).
        automask: (B, 1, H, W) scale-0 auto-mask, 1 = learned from (detached).
        velocity: the velocity error before weighting (detached), or None without odometry.
        pose: the pose error before weighting (detached), or None without pose supervision.
    """

    total: torch.Tensor
    photometric: tuple[torch.Tensor, ...]
    smoothness: tuple[torch.Tensor, ...]
    automask_fraction: torch.Tensor
    disparity: torch.Tensor
    automask: torch.Tensor
    velocity: torch.Tensor | None = None
    pose: torch.Tensor | None = None

    def log_values(self) -> dict[str, float]:
        """Flat ``name -> float`` for the metrics log (one host sync for all values)."""
        extra = [t for t in (self.velocity, self.pose) if t is not None]
        values = torch.stack(
            [self.total.detach(), self.automask_fraction, *self.photometric, *self.smoothness, *extra]
        ).float().cpu().tolist()
        scales = len(self.photometric)
        out = {"loss": values[0], "automask_fraction": values[1]}
        out.update({f"photometric/scale{s}": values[2 + s] for s in range(scales)})
        out.update({f"smoothness/scale{s}": values[2 + scales + s] for s in range(scales)})
        named = iter(values[2 + 2 * scales:])
        if self.velocity is not None:
            out["velocity_m"] = next(named)
        if self.pose is not None:
            out["pose_error"] = next(named)
        return out


def downsample(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Box-filter resize to ``size`` (exact 2x2 means at the decoder's power-of-two scales)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="area")


def view_synthesis(
    sources: torch.Tensor,
    depth: torch.Tensor,
    T_source_target: torch.Tensor,
    K: torch.Tensor,
    inv_K: torch.Tensor | None = None,
) -> torch.Tensor:
    """Every source warped into the target view.

    Args:
        sources: (B, N, 3, H, W) source images.
        depth: (B, 1, H, W) target depth.
        T_source_target: (B, N, 4, 4).
        K: (B, 3, 3) intrinsics for H x W.
        inv_K: its inverse when the caller has it (computed in closed form otherwise).
    Returns:
        (B, N, 3, H, W).
    """
    if inv_K is None:
        inv_K = invert_intrinsics(K)
    warped = [
        warp_image(sources[:, i], depth, T_source_target[:, i], K, inv_K) for i in range(sources.shape[1])
    ]
    return torch.stack(warped, dim=1)


def reprojection_errors(
    target: torch.Tensor,
    sources: torch.Tensor,
    depth: torch.Tensor,
    T_source_target: torch.Tensor,
    K: torch.Tensor,
    config: LossConfig,
    inv_K: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, N, H, W) photometric error of each warped source against the target (B, 3, H, W)."""
    warped = view_synthesis(sources, depth, T_source_target, K, inv_K)
    return torch.cat(
        [photometric_error(warped[:, i], target, config.ssim_weight, config.use_ssim) for i in range(warped.shape[1])],
        dim=1,
    )


def identity_errors(target: torch.Tensor, sources: torch.Tensor, config: LossConfig) -> torch.Tensor:
    """(B, N, H, W) photometric error of each *unwarped* source: auto-masking's reference."""
    return torch.cat(
        [photometric_error(sources[:, i], target, config.ssim_weight, config.use_ssim) for i in range(sources.shape[1])],
        dim=1,
    )


def _all_sources(batch: Batch, predictions: Predictions) -> tuple[torch.Tensor, torch.Tensor]:
    """Temporal sources plus the stereo partner, with their ``T_source_target``."""
    images, transforms = [], []
    if predictions.T_source_target is not None:
        images.append(batch.sources)
        transforms.append(predictions.T_source_target)
    if batch.stereo is not None and batch.T_stereo is not None:
        images.append(batch.stereo.unsqueeze(1))
        transforms.append(batch.T_stereo.unsqueeze(1).float())
    if not images:
        raise ValueError("the batch has no source frame to reproject (no temporal source and no stereo partner)")
    return torch.cat(images, dim=1), torch.cat(transforms, dim=1)


def _predictions_finite(predictions: Predictions) -> torch.Tensor:
    """0-dim bool tensor: every disparity and pose is finite (no host sync; the caller reads it once)."""
    checks = [torch.isfinite(d).all() for d in predictions.disparities]
    if predictions.T_source_target is not None:
        checks.append(torch.isfinite(predictions.T_source_target).all())
    return torch.stack(checks).all()


def losses_from_predictions(predictions: Predictions, batch: Batch, config: LossConfig) -> LossTerms:
    """The loss of given predictions (runs in float32 even inside an autocast region).

    Expects finite predictions (see :func:`compute_losses`). Pure tensor code without host
    synchronisation, so ``torch.compile`` can fuse it into a few kernels.
    """
    with torch.autocast(device_type=batch.target.device.type, enabled=False):
        target = batch.target.float()
        sources, T_source_target = _all_sources(batch, predictions)
        sources = sources.float()
        size = batch.image_size
        full_identity = identity_errors(target, sources, config) if config.automask else None
        K_full = batch.K.float()
        inv_K_full = invert_intrinsics(K_full)  # once per batch, in closed form (no host sync)

        totals, photometric, smoothness = [], [], []
        first: ReprojectionResult | None = None
        for scale in range(config.scales):
            disparity = predictions.disparities[scale].float()
            scale_size = tuple(disparity.shape[-2:])
            if config.multiscale == "full_resolution":
                disp_warp = F.interpolate(disparity, size=size, mode="bilinear", align_corners=False)
                target_s, sources_s, K_s, inv_K_s, identity = target, sources, K_full, inv_K_full, full_identity
            else:
                disp_warp = disparity
                target_s = downsample(target, scale_size)
                sources_s = downsample(sources.flatten(0, 1), scale_size).view(*sources.shape[:3], *scale_size)
                K_s = scale_intrinsics(K_full, size, scale_size)
                inv_K_s = invert_intrinsics(K_s)
                identity = identity_errors(target_s, sources_s, config) if config.automask else None
            _, depth = disp_to_depth(disp_warp, config.min_depth, config.max_depth)
            errors = reprojection_errors(target_s, sources_s, depth, T_source_target, K_s, config, inv_K_s)
            result = combine_reprojection(errors, identity, config.reprojection)
            if first is None:
                first = result
            photo = result.loss.mean()
            smooth = edge_aware_smoothness(normalize_disparity(disparity), downsample(target, scale_size))
            totals.append(photo + config.smoothness_weight * smooth / (2**scale))
            photometric.append(photo.detach())
            smoothness.append(smooth.detach())
        total = torch.stack(totals).mean()
        velocity = None
        distance, motion = batch.source_distance_m, predictions.T_source_target
        if config.velocity_weight > 0 and distance is not None and motion is not None:
            velocity = velocity_error(motion.float(), distance.float())
            total = total + config.velocity_weight * velocity
            velocity = velocity.detach()
        pose = None
        if config.pose_weight > 0 and batch.source_motion is not None and motion is not None:
            pose = pose_error(motion.float(), batch.source_motion.float())
            total = total + config.pose_weight * pose
            pose = pose.detach()
        return LossTerms(
            total=total,
            photometric=tuple(photometric),
            smoothness=tuple(smoothness),
            automask_fraction=first.automask.mean().detach(),  # type: ignore[union-attr]
            disparity=predictions.disparities[0].detach().float(),
            automask=first.automask.detach(),  # type: ignore[union-attr]
            velocity=velocity,
            pose=pose,
        )


def compute_losses(
    nets: nn.Module,
    batch: Batch,
    config: LossConfig,
    loss_fn: Callable[[Predictions, Batch, LossConfig], LossTerms] = losses_from_predictions,
) -> LossTerms:
    """Run the networks on the batch's (augmented) input and compute the loss.

    Non-finite predictions give a NaN ``total``, and the caller must skip the step (not call
    ``backward``): back-propagating through ``grid_sample`` with NaN sampling positions is
    undefined (it crashes the process on the CPU), and auto-masking could hide the NaN from the
    loss value. The check is folded into ``total`` on the device, so the caller's one read of
    ``isfinite(total)`` is the step's only host synchronisation before ``backward``.

    Args:
        nets: a :class:`~monodepth2_ros.training.networks.MonodepthModel`, possibly wrapped by
            DistributedDataParallel or torch.compile.
        batch: on the networks' device, images float in [0, 1].
        config: the loss settings.
        loss_fn: :func:`losses_from_predictions` or a compiled version of it.
    """
    predictions = nets(batch.target_aug, batch.sources_aug)
    terms = loss_fn(predictions, batch, config)
    finite = _predictions_finite(predictions)
    return replace(terms, total=torch.where(finite, terms.total, torch.full_like(terms.total, float("nan"))))
