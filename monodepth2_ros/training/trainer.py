"""The training loop: AMP, DistributedDataParallel, checkpoints and resume (and nothing else).

Networks come from :mod:`.networks`, data from :mod:`.data`, the loss from :mod:`.objective`;
:class:`Trainer` only steps, logs, validates and saves. :func:`train` is the whole run as one call.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.device import autocast_context, resolve_precision
from monodepth2_ros.model.checkpoint import CheckpointInfo
from monodepth2_ros.model.constants import NUM_SCALES
from monodepth2_ros.training.batch import Batch
from monodepth2_ros.training.config import TrainConfig, config_differences, config_from_dict, config_to_dict, save_config
from monodepth2_ros.training.data import TrainingData, prepare_data
from monodepth2_ros.training.dataset import make_loader, usable_workers
from monodepth2_ros.training.distributed import DistributedContext, init_distributed, shutdown_distributed
from monodepth2_ros.training.metrics_log import MetricsLogger
from monodepth2_ros.training.networks import MonodepthModel, build_model
from monodepth2_ros.training.objective import LossTerms, compute_losses, losses_from_predictions
from monodepth2_ros.training.run_dir import (
    ResumePoint,
    RunPaths,
    capture_rng_state,
    find_resume_point,
    restore_rng_state,
    write_best,
    write_checkpoint,
)
from monodepth2_ros.training.samples import SampleCounts
from monodepth2_ros.training.validation import ValidationResult, validate

__all__ = ["Trainer", "TrainResult", "train", "reconcile_config", "RESUMABLE_KEYS", "seed_everything"]

_LOG = logging.getLogger(__name__)

# Settings a resumed run may change (train longer, another device or loader); any other difference
# from the recorded config.yaml is refused, since the checkpoint was trained under it.
RESUMABLE_KEYS = ("optim.epochs", "optim.max_steps")
_RESUMABLE_SECTIONS = ("runtime",)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def reconcile_config(paths: RunPaths, config: TrainConfig) -> TrainConfig:
    """Check a re-run against the run folder's recorded ``config.yaml``.

    Returns ``config`` for a run folder without checkpoints (a run that failed before its first
    checkpoint may be re-run with corrected settings); for one with checkpoints, ``config`` if it
    differs from the recorded one only in :data:`RESUMABLE_KEYS` and the ``runtime`` section.

    Raises:
        ConfigError: the run folder holds checkpoints trained with other settings.
    """
    has_checkpoint = paths.last.exists() or paths.previous.exists()
    if not paths.config.is_file() or not has_checkpoint:
        return config
    import yaml

    try:
        recorded = config_from_dict(yaml.safe_load(paths.config.read_text()))
    except (ConfigError, yaml.YAMLError) as err:
        raise ConfigError(f"{paths.config} cannot be read back: {err}") from err
    changed = [
        key
        for key in config_differences(recorded, config)
        if key not in RESUMABLE_KEYS and key.split(".")[0] not in _RESUMABLE_SECTIONS
    ]
    if changed:
        before, after = config_to_dict(recorded), config_to_dict(config)
        details = ", ".join(
            f"{key} ({before[key.split('.')[0]][key.split('.')[1]]!r} -> {after[key.split('.')[0]][key.split('.')[1]]!r})"
            for key in changed
        )
        raise ConfigError(
            f"{paths.root} was trained with other settings: {details}; use a new --out, or set them back "
            f"(recorded in {paths.config})"
        )
    return config


@dataclass(frozen=True)
class TrainResult:
    """How a run ended.

    Attributes:
        run_dir: the run folder.
        steps: optimiser steps done in total (counting those before a resume).
        epochs_completed: whole epochs done.
        skipped_steps: steps skipped by the NaN/Inf gradient guard.
        last_loss: loss of the last step.
        resumed_from_step: the step the run resumed from, or None for a fresh start.
        best: ``best/best.json``'s content, or None when no best checkpoint was written.
        counts: how frames became samples.
        stop_reason: why the run ended before its epochs or steps (time budget, early stopping), or None.
    """

    run_dir: Path
    steps: int
    epochs_completed: int
    skipped_steps: int
    last_loss: float
    resumed_from_step: int | None
    best: dict[str, Any] | None
    counts: SampleCounts
    stop_reason: str | None = None


def _is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "not enough memory" in text)


class Trainer:
    """Owns the loop, mixed precision, DDP and resume of one run.

    Args:
        config: the run's settings.
        paths: the run folder.
        data: datasets from :func:`~monodepth2_ros.training.data.prepare_data`.
        context: this process's place in a distributed job (single process by default).
        show_progress: a tqdm bar on rank 0.
    """

    def __init__(
        self,
        config: TrainConfig,
        paths: RunPaths,
        data: TrainingData,
        context: DistributedContext | None = None,
        show_progress: bool = False,
    ) -> None:
        self.config = config
        self.paths = paths
        self.data = data
        self.context = context or DistributedContext()
        self.device = self.context.device
        self.show_progress = show_progress
        runtime = config.runtime
        self.precision = resolve_precision(runtime.precision, self.device)
        resume = find_resume_point(paths)
        # Weights come from the checkpoint on resume: skip (and do not require) the initial ones.
        model_config = config.model if resume is None else replace(config.model, pretrained=None, init=None)
        self.model: MonodepthModel = build_model(model_config, output_scales=config.loss.scales)
        if resume is not None:
            self._load_weights(resume)
        self.model.to(self.device)
        if runtime.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.nets: torch.nn.Module = self.model
        if self.context.enabled:
            self.nets = DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=config.loss.scales < NUM_SCALES,
            )
        self.loss_fn = losses_from_predictions
        if runtime.compile == "all":
            self.nets = torch.compile(self.nets)
        if runtime.compile in ("loss", "all"):
            self.loss_fn = torch.compile(losses_from_predictions)
        self.parameters = [p for p in self.model.parameters() if p.requires_grad]
        self._statistics = list(self.model.buffers())  # BatchNorm running statistics and counts
        optim = config.optim
        self.optimizer = torch.optim.Adam(self.parameters, lr=optim.lr, weight_decay=optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=[optim.lr_decay_epoch], gamma=optim.lr_decay_factor
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        pin = runtime.pin_memory and self.device.type == "cuda"
        workers = usable_workers(runtime.num_workers)
        if workers != runtime.num_workers:
            _LOG.info("data loading with %d worker(s), not runtime.num_workers=%d: this machine has too few cores", workers, runtime.num_workers)
        self.loader, self.sampler = make_loader(
            data.train,
            optim.batch_size,
            shuffle=True,
            num_workers=workers,
            pin_memory=pin,
            seed=runtime.seed,
            num_replicas=self.context.world_size,
            rank=self.context.rank,
        )
        self.val_loader = None
        if data.val is not None and self.context.is_main:
            self.val_loader, _ = make_loader(
                data.val, optim.batch_size, shuffle=False, num_workers=workers, pin_memory=pin, seed=runtime.seed
            )
        self.logger = MetricsLogger(paths.metrics, enabled=self.context.is_main)
        self.step = 0
        self.epoch = 0
        self.last_loss = math.nan  # the last step's loss, read on the host with its finiteness check
        self.batch_in_epoch = 0
        self.skipped_steps = 0
        self.best: dict[str, Any] | None = None
        self.resumed_from_step: int | None = None
        self._saved_at = (-1, -1)
        self._validated_step = -1
        self._epoch_loss = (0.0, 0)
        self._last_batch: Batch | None = None
        # runtime.max_minutes: the loop stops at this time.monotonic() (a subclass may move it).
        self.deadline: float | None = None
        if runtime.max_minutes is not None:
            self.deadline = time.monotonic() + 60.0 * runtime.max_minutes
        if resume is not None:
            self._load_state(resume)

    # ------------------------------------------------------------------------------ resume

    def _load_weights(self, resume: ResumePoint) -> None:
        self.model.depth_net.load_state_dict(resume.checkpoint.depth_net.state_dict())
        official_pose = self.model.official_pose_net()
        if official_pose is not None and resume.checkpoint.pose_net is not None:
            official_pose.load_state_dict(resume.checkpoint.pose_net.state_dict())
        extra = resume.state.get("extra_pose")
        if extra is not None and self.model.pose_net is not None:
            self.model.pose_net.load_state_dict(extra)

    def _follow_epochs(self, optim) -> None:
        """The schedule of this run's ``epochs``: a resumed run may train longer than the saved one
        planned, and its decay then starts later (the saved scheduler keeps only its position; the
        base rate cannot change on resume)."""
        self.scheduler.milestones = Counter([optim.lr_decay_epoch])
        decayed = self.scheduler.last_epoch >= optim.lr_decay_epoch
        for group in self.optimizer.param_groups:
            group["lr"] = optim.lr * (optim.lr_decay_factor if decayed else 1.0)

    def _load_state(self, resume: ResumePoint) -> None:
        state = resume.state
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._follow_epochs(self.config.optim)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.best = state.get("best")
        if self.context.is_main:
            restore_rng_state(state["rng"])
        else:  # the other ranks' generators were not saved: derive fresh, distinct ones
            seed_everything(self.config.runtime.seed + 1000 * self.context.rank + self.step)
        self.resumed_from_step = self.step
        self._saved_at = (self.step, self.epoch)
        _LOG.info("resumed from %s at step %d (epoch %d, batch %d)", resume.folder, self.step, self.epoch, self.batch_in_epoch)
        self.logger.record("resume", self.step, epoch=self.epoch, batch_in_epoch=self.batch_in_epoch, folder=str(resume.folder))

    def _training_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "skipped_steps": self.skipped_steps,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "rng": capture_rng_state(),
            "config": config_to_dict(self.config),
            "best": self.best,
            "extra_pose": self.model.extra_pose_state(),
            "world_size": self.context.world_size,
        }

    @property
    def checkpoint_info(self) -> CheckpointInfo:
        return CheckpointInfo(
            height=self.config.data.height,
            width=self.config.data.width,
            use_stereo=self.config.model.uses_stereo,
            num_layers=self.config.model.num_layers,
            has_pose=self.model.official_pose_net() is not None,
        )

    def save(self) -> None:
        """Write ``last/`` (rank 0 only; once per step)."""
        if not self.context.is_main or self._saved_at == (self.step, self.epoch):
            return
        write_checkpoint(
            self.paths, self.model.depth_net, self.model.official_pose_net(), self.checkpoint_info, self._training_state()
        )
        self._saved_at = (self.step, self.epoch)
        self.logger.record("checkpoint", self.step, epoch=self.epoch, folder=str(self.paths.last))

    # ------------------------------------------------------------------------------ steps

    def _autocast(self):
        return autocast_context(self.device, self.precision)

    def _gradients_finite(self) -> bool:
        """One host sync: every gradient's largest magnitude (``_foreach_norm``, inf-norm: no
        overflow of a sum of squares, NaN kept) is finite."""
        grads = [p.grad for p in self.parameters if p.grad is not None]
        if not grads:
            return True
        return bool(torch.isfinite(torch.stack(torch._foreach_norm(grads, float("inf")))).all())

    def train_step(self, batch: Batch) -> LossTerms:
        """One optimiser step (skipped, and counted, when a gradient is NaN or Inf).

        The host waits for the device twice: once for the loss (finite on every rank? and its value,
        read together into :attr:`last_loss`), once for the gradients' finiteness (GradScaler's own
        check follows it, when the queue is already empty).
        """
        batch = batch.to(self.device, channels_last=self.config.runtime.channels_last)
        self.optimizer.zero_grad(set_to_none=True)
        # The forward pass updates BatchNorm's running statistics: keep a copy to undo a bad step.
        statistics = [buffer.clone() for buffer in self._statistics]
        try:
            with self._autocast():
                terms = compute_losses(self.nets, batch, self.config.loss, self.loss_fn)
            finite = self.context.all_true_tensor(torch.isfinite(terms.total.detach()))
            ok, self.last_loss = torch.stack([finite.float(), terms.total.detach().float()]).tolist()
            if not ok:
                self._skip_step("NaN/Inf loss or prediction", statistics)
                return terms
            self.scaler.scale(terms.total).backward()
        except (RuntimeError, torch.OutOfMemoryError) as err:
            if _is_out_of_memory(err):
                data = self.config.data
                raise ConfigError(
                    f"out of memory on {self.device} at batch size {self.config.optim.batch_size} and "
                    f"{data.width}x{data.height}: lower --batch-size or --height/--width, or use "
                    "--precision bf16 (fp16 on CUDA)"
                ) from err
            raise
        self.scaler.unscale_(self.optimizer)
        if self.config.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.config.optim.grad_clip)
        if self._gradients_finite():
            self.scaler.step(self.optimizer)
        else:
            self._skip_step("NaN/Inf gradient", statistics)
        self.scaler.update()
        return terms

    def _skip_step(self, reason: str, statistics: list[torch.Tensor]) -> None:
        """Count a skipped step, drop its gradients and restore the BatchNorm statistics."""
        self.skipped_steps += 1
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for buffer, saved in zip(self._statistics, statistics, strict=True):
                buffer.copy_(saved)
        _LOG.warning("step %d: %s, step skipped (%d so far)", self.step + 1, reason, self.skipped_steps)
        self.logger.record("skipped_step", self.step + 1, reason=reason, skipped_steps=self.skipped_steps)

    # ------------------------------------------------------------------------------ validation

    def validate(self) -> ValidationResult | None:
        """Validate on rank 0 and update ``best/``; the other ranks wait (and stop if it fails)."""
        return self.context.run_on_main(self._validate_on_main, "validating")

    def _validate_on_main(self) -> ValidationResult | None:
        result = None
        if self._validated_step != self.step:
            epoch_sum, epoch_batches = self._epoch_loss
            if self.val_loader is not None:
                result = validate(
                    self.model,
                    self.val_loader,
                    self.config.loss,
                    self.device,
                    autocast=self._autocast,
                    stereo=self.config.model.uses_stereo,
                    max_batches=self.config.runtime.max_val_batches,
                    channels_last=self.config.runtime.channels_last,
                )
                name, value = result.criterion
                self.logger.record(
                    "val", self.step, epoch=self.epoch, loss=result.loss, depth_frames=result.depth_frames, **(result.depth or {})
                )
            elif epoch_batches:
                name, value = "train_loss", epoch_sum / epoch_batches  # no validation split: best by training loss
            else:
                name, value = "", math.nan
            if name and math.isfinite(value) and (self.best is None or value < float(self.best["value"])):
                self.best = {"criterion": name, "value": value, "step": self.step, "epoch": self.epoch}
                write_best(self.paths, self.model.depth_net, self.model.official_pose_net(), self.checkpoint_info, self.best)
                self.logger.record("best", self.step, criterion=name, value=value, epoch=self.epoch)
            self._validated_step = self.step
        return result

    # ------------------------------------------------------------------------------ loop

    def _log_train(self, terms: LossTerms, samples_per_s: float) -> None:
        self.logger.record(
            "train",
            self.step,
            epoch=self.epoch,
            lr=self.optimizer.param_groups[0]["lr"],
            samples_per_s=samples_per_s,
            skipped_steps=self.skipped_steps,
            **terms.log_values(),
        )
        if (
            self.logger.has_tensorboard
            and self._last_batch is not None
            and self.step % self.config.runtime.image_log_interval == 0
        ):
            disparity = terms.disparity[0]
            self.logger.images(
                self.step,
                {
                    "frames/target": self._last_batch.target[0],
                    "outputs/disparity": disparity / disparity.max().clamp(min=1e-6),
                    "outputs/automask": terms.automask[0],
                },
            )

    def _end_epoch(self) -> None:
        self.validate()
        self.scheduler.step()
        self.epoch += 1
        self.batch_in_epoch = 0
        self._epoch_loss = (0.0, 0)
        self.save()

    def stop_reason(self) -> str | None:
        """Why the run should stop now before its epochs or steps are done, or None to go on."""
        if self.deadline is None:
            return None
        over = time.monotonic() >= self.deadline
        if self.context.enabled:  # every rank stops at the same step: stop when any rank is over
            over = not self.context.all_true(not over)
        return f"time budget of {self.config.runtime.max_minutes:g} min used" if over else None

    def fit(self) -> TrainResult:
        """Train until ``optim.epochs`` or ``optim.max_steps``; returns how it ended."""
        optim, runtime = self.config.optim, self.config.runtime
        max_steps = optim.max_steps if optim.max_steps is not None else math.inf
        self.sampler.set_position(self.epoch, 0)
        steps_per_epoch = len(self.loader)
        total = int(min(max_steps, optim.epochs * steps_per_epoch))
        samples_per_step = optim.batch_size * self.context.world_size
        last_loss = math.nan
        bar = tqdm(
            total=total, initial=min(self.step, total), unit="step", disable=not (self.show_progress and self.context.is_main)
        )
        window_start, window_steps = time.perf_counter(), 0
        try:
            stop_reason = self.stop_reason()
            while self.epoch < optim.epochs and self.step < max_steps and stop_reason is None:
                self.sampler.set_position(self.epoch, self.batch_in_epoch * optim.batch_size)
                for batch in self.loader:
                    self._last_batch = batch
                    terms = self.train_step(batch)
                    self.step += 1
                    self.batch_in_epoch += 1
                    window_steps += 1
                    loss = self.last_loss
                    last_loss = loss
                    epoch_sum, epoch_batches = self._epoch_loss
                    if math.isfinite(loss):
                        self._epoch_loss = (epoch_sum + loss, epoch_batches + 1)
                    if self.step % runtime.log_interval == 0 or self.step == 1:
                        elapsed = time.perf_counter() - window_start
                        rate = samples_per_step * window_steps / max(elapsed, 1e-9)
                        self._log_train(terms, rate)
                        bar.set_postfix(loss=f"{loss:.4f}", samples_per_s=f"{rate:.1f}", epoch=self.epoch)
                        window_start, window_steps = time.perf_counter(), 0
                    bar.update(1)
                    if self.step % runtime.checkpoint_interval == 0:
                        self.save()
                    stop_reason = self.stop_reason()
                    if self.step >= max_steps or stop_reason is not None:
                        break
                if self.batch_in_epoch >= steps_per_epoch:
                    self._end_epoch()
                    stop_reason = stop_reason or self.stop_reason()
                elif self.step < max_steps and stop_reason is None:  # pragma: no cover - the loader ended early
                    raise RuntimeError(f"epoch {self.epoch} ended after {self.batch_in_epoch} of {steps_per_epoch} batches")
            self.validate()
            self.save()
        finally:
            bar.close()
            self.logger.close()
        return TrainResult(
            run_dir=self.paths.root,
            steps=self.step,
            epochs_completed=self.epoch,
            skipped_steps=self.skipped_steps,
            last_loss=last_loss,
            resumed_from_step=self.resumed_from_step,
            best=self.best,
            counts=self.data.split.counts,
            stop_reason=stop_reason,
        )


def train(config: TrainConfig, run_dir: str | Path, show_progress: bool = False) -> TrainResult:
    """Run (or resume) training into ``run_dir``; under ``torchrun`` one call per process.

    Re-running with the same ``run_dir`` after an interruption continues from ``last/`` (or
    ``previous/`` when ``last/`` is damaged).

    Raises:
        ConfigError, DatasetError, CheckpointError, MissingInputError: see the modules involved.
    """
    context = init_distributed(config.runtime.device)
    try:
        paths = RunPaths(Path(run_dir))
        config = reconcile_config(paths, config)
        if context.is_main:
            paths.root.mkdir(parents=True, exist_ok=True)
            save_config(config, paths.config)
        seed_everything(config.runtime.seed + context.rank)
        data = prepare_data(config, paths.cache, context, show_progress=show_progress)
        if context.is_main:
            counts = data.split.counts
            _LOG.info(
                "%d frames (%d unreadable skipped), %d segments (%d gaps): %d candidate samples, %d static "
                "removed, %d without stereo partner, %d across the split; %d train / %d val",
                counts.frames, counts.skipped_frames, counts.segments, counts.gaps, counts.candidates,
                counts.static, counts.no_stereo, counts.straddling, counts.train, counts.val,
            )
        trainer = Trainer(config, paths, data, context, show_progress=show_progress)
        if context.is_main:
            trainer.logger.record("data", trainer.step, **asdict(data.split.counts))
        return trainer.fit()
    finally:
        shutdown_distributed(context)
