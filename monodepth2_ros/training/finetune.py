"""Fine-tuning from a checkpoint that cannot end worse than it started.

:class:`FinetuneTrainer` is the :class:`~monodepth2_ros.training.trainer.Trainer` with guards
against the degenerate solutions a slow camera invites (photometric error falling while depth gets
worse):

* the start model is validated before the first step and is ``best/`` until a fine-tuned
  checkpoint beats it on held-back time blocks, by the photometric error plus the disagreement of
  depth between views, paid for by how far its depth moved from the start model's
  (:class:`~monodepth2_ros.training.validation.GuardFigures`), and only while its auto-mask share
  stays near the start model's;
* BatchNorm keeps the start model's statistics: on small batches of a new domain they drift, and
  that alone lowered the photometric error while depth got worse (measured on a slow drive);
* early stopping after ``finetune.patience`` validations without improvement;
* a light loss term pulling the scale-free log depth towards the start model's
  (``finetune.anchor_weight``), against drift where the data carry little parallax;
* a learning rate warmed up linearly over ``finetune.warmup_steps`` (fresh Adam moments on trained
  weights take full-size steps otherwise), decayed for the last quarter of the epochs or of the
  time budget.

:func:`finetune` is the whole run as one call, ending with the before/after report.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from monodepth2_ros.errors import ConfigError, InsufficientDataError
from monodepth2_ros.model.checkpoint import load_checkpoint
from monodepth2_ros.model.geometry import disp_to_depth
from monodepth2_ros.training.batch import Batch
from monodepth2_ros.training.config import TrainConfig, save_config
from monodepth2_ros.training.data import TrainingData, prepare_data
from monodepth2_ros.training.distributed import DistributedContext, init_distributed, shutdown_distributed
from monodepth2_ros.training.finetune_report import FinetuneReport, write_report
from monodepth2_ros.training.objective import LossTerms
from monodepth2_ros.training.run_dir import RunPaths, write_best
from monodepth2_ros.training.trainer import Trainer, TrainResult, reconcile_config, seed_everything
from monodepth2_ros.training.validation import GuardFigures, guard_validate, scale_free_log_depth

__all__ = ["FinetuneTrainer", "FinetuneResult", "finetune", "anchored_loss", "GUARD_CRITERION"]

_LOG = logging.getLogger(__name__)

GUARD_CRITERION = "guarded_photometric"
# The share of the epochs / time budget after which the learning rate is decayed.
_DECAY_AT = 0.75


def anchored_loss(loss_fn, start_depth_net: torch.nn.Module, weight: float, loss_config):
    """``loss_fn`` plus ``weight`` times the mean |scale-free log depth - the start model's|.

    The start network sees the same (augmented) input as the trained one and gets no gradient.
    """

    def loss_with_anchor(predictions, batch: Batch, config) -> LossTerms:
        terms = loss_fn(predictions, batch, config)
        with torch.no_grad():
            start_disp = start_depth_net(batch.target_aug)[0].float()
        _, start_depth = disp_to_depth(start_disp, loss_config.min_depth, loss_config.max_depth)
        _, depth = disp_to_depth(predictions.disparities[0].float(), loss_config.min_depth, loss_config.max_depth)
        anchor = (scale_free_log_depth(depth) - scale_free_log_depth(start_depth)).abs().mean()
        return replace(terms, total=terms.total + weight * anchor)

    return loss_with_anchor


class FinetuneTrainer(Trainer):
    """A :class:`Trainer` for ``model.init`` runs with the guards of the module docstring."""

    def __init__(
        self,
        config: TrainConfig,
        paths: RunPaths,
        data: TrainingData,
        context: DistributedContext | None = None,
        show_progress: bool = False,
    ) -> None:
        if config.model.init is None:
            raise ConfigError("fine-tuning needs a start checkpoint (model.init / --init)")
        if data.val is None:
            raise InsufficientDataError("fine-tuning needs held-back validation samples; the split left none")
        super().__init__(config, paths, data, context, show_progress)
        self.guard = config.finetune
        start = load_checkpoint(config.model.init, load_pose=False)
        self.start_depth_net = start.depth_net.to(self.device).eval()
        for parameter in self.start_depth_net.parameters():
            parameter.requires_grad_(False)
        if self.guard.anchor_weight > 0:
            self.loss_fn = anchored_loss(self.loss_fn, self.start_depth_net, self.guard.anchor_weight, config.loss)
        self.last_figures: GuardFigures | None = None
        self.validation_seconds = 0.0
        self._fit_started = time.monotonic()

    # ------------------------------------------------------------------------------ schedule

    def learning_rate(self) -> float:
        """Warm-up, then the base rate, x ``lr_decay_factor`` for the last quarter (epochs or time)."""
        optim = self.config.optim
        rate = optim.lr
        if self.guard.warmup_steps:
            rate *= min(1.0, (self.step + 1) / self.guard.warmup_steps)
        late_epoch = self.epoch >= optim.lr_decay_epoch
        late_time = False
        if self.deadline is not None:
            total = self.deadline - self._fit_started
            late_time = total > 0 and time.monotonic() - self._fit_started >= _DECAY_AT * total
        if late_epoch or late_time:
            rate *= optim.lr_decay_factor
        return rate

    def train_step(self, batch: Batch) -> LossTerms:
        rate = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        if self.guard.freeze_batchnorm:  # validation switches the model back to train mode
            for module in self.model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return super().train_step(batch)

    # ------------------------------------------------------------------------------ validation

    def _record_start(self, figures: GuardFigures) -> dict[str, Any]:
        return {"score": figures.score(self.guard.consistency_weight, self.guard.drift_weight), **figures.as_dict()}

    def validate(self) -> GuardFigures | None:  # type: ignore[override]
        """Score the model on the held-back blocks; replace ``best/`` only with a healthy improvement."""
        if not self.context.is_main or self._validated_step == self.step:
            return None
        began = time.monotonic()
        start_net = None if self.step == 0 and self.best is None else self.start_depth_net
        figures = guard_validate(
            self.model, start_net, self.val_loader, self.config.loss, self.device, self.config.runtime.max_val_batches
        )
        self.validation_seconds = time.monotonic() - began
        self.last_figures = figures
        score = figures.score(self.guard.consistency_weight, self.guard.drift_weight)
        if self.best is None:  # the start model, before any step
            self.best = {
                "criterion": GUARD_CRITERION,
                "value": score,
                "step": self.step,
                "epoch": self.epoch,
                "start": self._record_start(figures),
                "bad_validations": 0,
                "is_start_model": True,
            }
            write_best(self.paths, self.model.depth_net, self.model.official_pose_net(), self.checkpoint_info, self.best)
            self.logger.record("best", self.step, criterion=GUARD_CRITERION, value=score, epoch=self.epoch)
            self.logger.record("val", self.step, epoch=self.epoch, score=score, **figures.as_dict())
            self._validated_step = self.step
            return figures
        start = self.best["start"]
        healthy = abs(figures.automask_fraction - start["automask_fraction"]) <= self.guard.automask_tolerance
        improved = healthy and score < float(self.best["value"]) * (1.0 - self.guard.min_improvement)
        self.logger.record(
            "val", self.step, epoch=self.epoch, score=score, healthy=healthy, improved=improved, **figures.as_dict()
        )
        if improved:
            self.best = {
                **self.best,
                "value": score,
                "step": self.step,
                "epoch": self.epoch,
                "bad_validations": 0,
                "is_start_model": False,
            }
            write_best(self.paths, self.model.depth_net, self.model.official_pose_net(), self.checkpoint_info, self.best)
            self.logger.record("best", self.step, criterion=GUARD_CRITERION, value=score, epoch=self.epoch)
        else:
            self.best = {**self.best, "bad_validations": int(self.best.get("bad_validations", 0)) + 1}
            if not healthy:
                _LOG.warning(
                    "step %d: auto-mask share %.2f moved more than %.2f from the start model's %.2f: not eligible for best/",
                    self.step, figures.automask_fraction, self.guard.automask_tolerance, start["automask_fraction"],
                )
        self._validated_step = self.step
        return figures

    def stop_reason(self) -> str | None:
        patience = self.guard.patience
        if patience and self.best is not None and int(self.best.get("bad_validations", 0)) >= patience:
            return f"early stop: {patience} validation(s) without improvement on held-back frames"
        return super().stop_reason()

    def fit(self) -> TrainResult:
        """Validate the start model (a fresh run), keep time for the last validation, then train."""
        self._fit_started = time.monotonic()
        if self.best is None:
            self.validate()
        if self.deadline is not None:
            # The last validation and the report run after the loop: keep time for them.
            self.deadline -= 3.0 * self.validation_seconds
        return super().fit()


@dataclass(frozen=True)
class FinetuneResult:
    """A fine-tune's :class:`TrainResult` and its before/after report."""

    train: TrainResult
    report: FinetuneReport


def finetune(
    config: TrainConfig, run_dir: str | Path, show_progress: bool = False, started: float | None = None
) -> FinetuneResult:
    """Fine-tune ``config.model.init`` into ``run_dir`` (or resume), then write the report.

    Args:
        started: ``time.monotonic()`` when the user's command began: ``runtime.max_minutes`` counts
            from there (decoding the bag included).
    Raises:
        InsufficientDataError: the split leaves no held-back validation sample.
        ConfigError: launched under torchrun (fine-tuning runs in one process).
    """
    started = time.monotonic() if started is None else started
    context = init_distributed(config.runtime.device)
    try:
        if context.enabled:
            raise ConfigError("fine-tuning with --init runs in one process; start it without torchrun")
        paths = RunPaths(Path(run_dir))
        config = reconcile_config(paths, config)
        paths.root.mkdir(parents=True, exist_ok=True)
        save_config(config, paths.config)
        seed_everything(config.runtime.seed)
        data = prepare_data(config, paths.cache, context, show_progress=show_progress)
        counts = data.split.counts
        if data.val is None:
            raise InsufficientDataError(
                f"no held-back validation sample: {counts.frames} frames gave {counts.train} training samples and "
                f"none in the held-back time blocks (data.split_block_s={config.data.split_block_s} s, "
                f"{counts.straddling} across the split); fine-tuning needs a longer bag, or a shorter "
                "--set data.split_block_s=..."
            )
        trainer = FinetuneTrainer(config, paths, data, context, show_progress=show_progress)
        trainer.logger.record("data", trainer.step, **asdict(counts))
        if config.runtime.max_minutes is not None:
            trainer.deadline = started + 60.0 * config.runtime.max_minutes
        result = trainer.fit()
        report = write_report(config, paths, data, trainer.device)
        return FinetuneResult(train=result, report=report)
    finally:
        shutdown_distributed(context)
