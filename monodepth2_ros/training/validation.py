"""Validation: the loss on held-out samples and, with ground-truth depth, the paper's depth metrics."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from monodepth2_ros.errors import DatasetError
from monodepth2_ros.evaluation import DepthEvaluation
from monodepth2_ros.model.constants import STEREO_SCALE
from monodepth2_ros.model.geometry import backproject, disp_to_depth, pixels_to_sampling_grid, project
from monodepth2_ros.training.batch import Batch
from monodepth2_ros.training.config import LossConfig
from monodepth2_ros.training.networks import MonodepthModel
from monodepth2_ros.training.objective import compute_losses, identity_errors, reprojection_errors

__all__ = [
    "ValidationResult",
    "validate",
    "GuardFigures",
    "guard_validate",
    "depth_inconsistency",
    "scale_free_log_depth",
]


@dataclass(frozen=True)
class ValidationResult:
    """Figures of one validation pass.

    Attributes:
        loss: mean total loss over the validation batches.
        batches: batches evaluated.
        depth: ``DepthSummary.as_dict()``: mean ``abs_rel``, ``sq_rel``, ``rmse``, ``rmse_log``,
            ``a1..a3`` and the scale-ratio figures, or None without ground truth.
        depth_frames: frames with usable ground truth.
    """

    loss: float
    batches: int
    depth: dict[str, float | int | bool] | None
    depth_frames: int

    @property
    def criterion(self) -> tuple[str, float]:
        """What ``best/`` is chosen by: ``abs_rel`` when ground truth exists, else the loss."""
        if self.depth is not None:
            return "abs_rel", float(self.depth["abs_rel"])
        return "val_loss", self.loss


def _add_frames(evaluation: DepthEvaluation, depth: torch.Tensor, gt_depth: torch.Tensor) -> None:
    """Score each (B, 1, H, W) prediction against its ground truth; frames without a valid pixel are skipped."""
    for predicted, truth in zip(depth[:, 0].cpu().numpy(), gt_depth[:, 0].cpu().numpy(), strict=True):
        try:
            evaluation.add(truth.astype(np.float64), predicted.astype(np.float64))
        except DatasetError:  # no valid ground-truth pixel in this frame
            continue


@torch.no_grad()
def validate(
    model: MonodepthModel,
    batches: Iterable[Batch],
    loss_config: LossConfig,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    stereo: bool = False,
    max_batches: int | None = None,
    channels_last: bool = False,
) -> ValidationResult:
    """Evaluate ``model`` (switched to eval mode for the pass, then back) on validation batches.

    Depth from the scale-0 disparity is compared with the ground truth by the Eigen protocol of
    :mod:`monodepth2_ros.evaluation` (median scaling for monocular models; stereo models are
    scaled by ``STEREO_SCALE`` instead).
    """
    was_training = model.training
    model.eval()
    evaluation = DepthEvaluation(median_scaling=not stereo)
    total, count = 0.0, 0
    try:
        for batch in batches:
            if max_batches is not None and count >= max_batches:
                break
            batch = batch.to(device, channels_last=channels_last)
            with autocast():
                terms = compute_losses(model, batch, loss_config)
            total += float(terms.total)
            count += 1
            if batch.gt_depth is None:
                continue
            _, depth = disp_to_depth(terms.disparity, loss_config.min_depth, loss_config.max_depth)
            if stereo:
                depth = depth * STEREO_SCALE
            _add_frames(evaluation, depth, batch.gt_depth)
    finally:
        model.train(was_training)
    metrics = evaluation.summary().as_dict() if len(evaluation) else None
    return ValidationResult(
        loss=total / max(count, 1),
        batches=count,
        depth=metrics,
        depth_frames=len(evaluation),
    )


@dataclass(frozen=True)
class GuardFigures:
    """Figures of a fine-tune validation pass that together catch a degenerating model.

    Attributes:
        photometric: mean per-pixel minimum photometric reprojection error over the sources
            (scale 0, no auto-mask): how well depth and pose explain the held-back frames.
        consistency: mean ``|z - D_s| / (z + D_s)`` between the target's depth moved into each
            source view (``z``) and the source's own predicted depth there (``D_s``); 0 when the
            views agree on the scene, large for depth that only fits one frame.
        automask_fraction: share of pixels where a warped source beats every unwarped one.
        drift: mean absolute difference of the scale-free log depth from the start model's.
        frames: target frames evaluated.
        abs_rel: median-scaled abs_rel against the bag's ground-truth depth, when it has one (a
            depth camera): logged beside the guard's figures, never used to choose ``best/``.
    """

    photometric: float
    consistency: float
    automask_fraction: float
    drift: float
    frames: int
    abs_rel: float | None = None

    def score(self, consistency_weight: float, drift_weight: float = 0.0) -> float:
        """The figure ``best/`` and early stopping go by (lower is better)."""
        return (self.photometric + consistency_weight * self.consistency) * (1.0 + drift_weight * self.drift)

    def as_dict(self) -> dict[str, float]:
        figures = {
            "photometric": self.photometric,
            "consistency": self.consistency,
            "automask_fraction": self.automask_fraction,
            "drift": self.drift,
            "frames": self.frames,
        }
        if self.abs_rel is not None:
            figures["abs_rel"] = self.abs_rel
        return figures


def scale_free_log_depth(depth: torch.Tensor) -> torch.Tensor:
    """``log depth`` minus its per-image mean: compares depth maps up to a scale factor."""
    log_depth = torch.log(depth.clamp(min=1e-6))
    return log_depth - log_depth.mean(dim=(-2, -1), keepdim=True)


def depth_inconsistency(
    target_depth: torch.Tensor, source_depth: torch.Tensor, T_source_target: torch.Tensor, K: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel disagreement of two views' depth, and where it is defined.

    Args:
        target_depth, source_depth: (B, 1, H, W).
        T_source_target: (B, 4, 4).
        K: (B, 3, 3).
    Returns:
        ``(difference, valid)``: (B, 1, H, W) ``|z - D_s| / (z + D_s)`` and a bool mask of pixels
        that land inside the source image in front of its camera.
    """
    height, width = target_depth.shape[-2:]
    points = backproject(target_depth, torch.linalg.inv(K))
    pixels, z = project(points, K, T_source_target)
    grid = torch.nan_to_num(pixels_to_sampling_grid(pixels, height, width), nan=2.0, posinf=2.0, neginf=-2.0)
    sampled = F.grid_sample(source_depth, grid, mode="bilinear", padding_mode="border", align_corners=True)
    z = z.reshape(target_depth.shape)
    inside = (grid.abs() <= 1.0).all(dim=-1).unsqueeze(1) & (z > 0)
    difference = (z - sampled).abs() / (z.clamp(min=0) + sampled).clamp(min=1e-6)
    return difference, inside


@torch.no_grad()
def guard_validate(
    model: MonodepthModel,
    start_depth_net: torch.nn.Module | None,
    batches: Iterable[Batch],
    loss_config: LossConfig,
    device: torch.device,
    max_batches: int | None = None,
) -> GuardFigures:
    """The :class:`GuardFigures` of ``model`` on validation batches (eval mode for the pass).

    ``start_depth_net`` None gives a drift of 0 (the model *is* the start model).
    """
    was_training = model.training
    model.eval()
    sums = {"photometric": 0.0, "consistency": 0.0, "automask_fraction": 0.0, "drift": 0.0}
    frames = batches_done = 0
    evaluation = DepthEvaluation(median_scaling=True)
    try:
        for batch in batches:
            if max_batches is not None and batches_done >= max_batches:
                break
            batch = batch.to(device)
            predictions = model(batch.target, batch.sources)
            if predictions.T_source_target is None:
                raise ValueError("fine-tune validation needs temporal sources (frame_ids beyond 0)")
            _, depth = disp_to_depth(predictions.disparities[0].float(), loss_config.min_depth, loss_config.max_depth)
            sources, transforms, K = batch.sources.float(), predictions.T_source_target, batch.K.float()
            errors = reprojection_errors(batch.target.float(), sources, depth, transforms, K, loss_config)
            identity = identity_errors(batch.target.float(), sources, loss_config)
            best_error = errors.min(dim=1).values
            num_sources = sources.shape[1]
            source_disp = model.depth_net(sources.flatten(0, 1))[0].float()
            _, source_depth = disp_to_depth(source_disp, loss_config.min_depth, loss_config.max_depth)
            source_depth = source_depth.view(batch.target.shape[0], num_sources, 1, *depth.shape[-2:])
            inconsistency = []
            for index in range(num_sources):
                difference, valid = depth_inconsistency(depth, source_depth[:, index], transforms[:, index], K)
                inconsistency.append(torch.where(valid, difference, torch.nan))
            per_pixel = torch.stack(inconsistency).nanmean(dim=0)
            drift = torch.zeros(())
            if start_depth_net is not None:
                start_disp = start_depth_net(batch.target)[0].float()
                _, start_depth = disp_to_depth(start_disp, loss_config.min_depth, loss_config.max_depth)
                drift = (scale_free_log_depth(depth) - scale_free_log_depth(start_depth)).abs().mean()
            if batch.gt_depth is not None:
                _add_frames(evaluation, depth, batch.gt_depth)
            count = batch.target.shape[0]
            sums["photometric"] += float(best_error.mean()) * count
            sums["consistency"] += float(torch.nan_to_num(per_pixel, nan=0.0).sum() / per_pixel.isfinite().sum().clamp(min=1)) * count
            sums["automask_fraction"] += float((best_error < identity.min(dim=1).values).float().mean()) * count
            sums["drift"] += float(drift) * count
            frames += count
            batches_done += 1
    finally:
        model.train(was_training)
    if frames == 0:
        raise DatasetError("fine-tune validation got no held-back sample")
    abs_rel = float(evaluation.summary().as_dict()["abs_rel"]) if len(evaluation) else None
    return GuardFigures(**{key: value / frames for key, value in sums.items()}, frames=frames, abs_rel=abs_rel)
