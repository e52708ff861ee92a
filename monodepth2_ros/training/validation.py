"""Validation: the loss on held-out samples and, with ground-truth depth, the paper's depth metrics."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from monodepth2_ros.errors import DatasetError
from monodepth2_ros.evaluation import DepthEvaluation
from monodepth2_ros.model.constants import STEREO_SCALE
from monodepth2_ros.model.geometry import disp_to_depth
from monodepth2_ros.training.batch import Batch
from monodepth2_ros.training.config import LossConfig
from monodepth2_ros.training.networks import MonodepthModel
from monodepth2_ros.training.objective import compute_losses

__all__ = ["ValidationResult", "validate"]


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
            for predicted, truth in zip(depth[:, 0].cpu().numpy(), batch.gt_depth[:, 0].cpu().numpy(), strict=True):
                try:
                    evaluation.add(truth.astype(np.float64), predicted.astype(np.float64))
                except DatasetError:  # no valid ground-truth pixel in this frame
                    continue
    finally:
        model.train(was_training)
    metrics = evaluation.summary().as_dict() if len(evaluation) else None
    return ValidationResult(
        loss=total / max(count, 1),
        batches=count,
        depth=metrics,
        depth_frames=len(evaluation),
    )
