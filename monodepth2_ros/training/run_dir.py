"""The run folder: official-format checkpoints plus one resume file, written so a kill loses little.

Layout of ``RUN_DIR``::

    config.yaml           the run's TrainConfig (read back on resume)
    last/                 newest checkpoint: the official files + training_state.pt
    previous/             the checkpoint before it (fallback when last/ is damaged)
    best/                 lowest validation figure so far: the official files + best.json
    metrics.jsonl         one JSON object per log line
    cache/                decoded frames (see frame_cache)

``last/`` holds exactly the files the official code and our nodes load (``encoder.pth``,
``depth.pth``, ``pose_encoder.pth``, ``pose.pth``) and one extra, ``training_state.pt`` (optimiser,
scheduler, scaler, epoch, step, RNG states, config; nanoGPT style). A new checkpoint is written
completely into a staging folder and then rotated in (``last`` -> ``previous``, staging -> ``last``),
so at every moment at least one complete checkpoint exists.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from monodepth2_ros.errors import CheckpointError, MissingInputError
from monodepth2_ros.model.checkpoint import (
    CheckpointInfo,
    LoadedCheckpoint,
    atomic_torch_save,
    load_checkpoint,
    read_state_dict,
    save_checkpoint,
)

__all__ = [
    "CONFIG_FILE",
    "STATE_FILE",
    "BEST_FILE",
    "METRICS_FILE",
    "RunPaths",
    "ResumePoint",
    "write_checkpoint",
    "write_best",
    "find_resume_point",
    "capture_rng_state",
    "restore_rng_state",
]

_LOG = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
STATE_FILE = "training_state.pt"
BEST_FILE = "best.json"
METRICS_FILE = "metrics.jsonl"
_STAGING = ".last.staging"
_RETIRED = ".previous.retired"


@dataclass(frozen=True)
class RunPaths:
    """The files and folders of one run folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def last(self) -> Path:
        return self.root / "last"

    @property
    def previous(self) -> Path:
        return self.root / "previous"

    @property
    def best(self) -> Path:
        return self.root / "best"

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def cache(self) -> Path:
        return self.root / "cache"


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states, in types ``weights_only`` loads."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states only when the GPU count matches)."""
    random.setstate(_as_tuples(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("cuda")
    if cuda_states is not None and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)


def _as_tuples(value: Any) -> Any:
    """``random.setstate`` wants tuples; a round trip through some loaders gives lists."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    return value


def write_checkpoint(
    paths: RunPaths,
    depth_net: nn.Module,
    pose_net: nn.Module | None,
    info: CheckpointInfo,
    training_state: dict[str, Any],
) -> Path:
    """Write a complete checkpoint as ``last/`` and keep the one it replaces as ``previous/``.

    Args:
        depth_net, pose_net: networks to store in the official files (pose_net None: no pose files).
        info: size and stereo flag stored in ``encoder.pth``.
        training_state: what resuming needs, saved as ``training_state.pt`` beside the official files.
    Returns:
        The ``last/`` folder.
    """
    staging = paths.root / _STAGING
    if staging.exists():
        shutil.rmtree(staging)
    _remove_leftovers(paths.root, staging.name)
    shutil.rmtree(paths.root / _RETIRED, ignore_errors=True)
    try:
        save_checkpoint(staging, depth_net, pose_net, info)
        atomic_torch_save(training_state, staging / STATE_FILE)
    except OSError as err:  # a full disk, a quota, a read-only file system
        shutil.rmtree(staging, ignore_errors=True)
        raise _write_error(paths, err) from err
    # Folders are only ever renamed into place; the one retired is renamed away before it is deleted,
    # so a kill during the deletion leaves a hidden leftover, never a half-deleted previous/.
    retired = paths.root / _RETIRED
    if paths.last.exists():
        if paths.previous.exists():
            os.replace(paths.previous, retired)
        os.replace(paths.last, paths.previous)
    os.replace(staging, paths.last)
    shutil.rmtree(retired, ignore_errors=True)
    return paths.last


def write_best(
    paths: RunPaths, depth_net: nn.Module, pose_net: nn.Module | None, info: CheckpointInfo, record: dict[str, Any]
) -> Path:
    """Replace ``best/`` with these networks and ``best.json`` (the figure, its name, step, epoch)."""
    _remove_leftovers(paths.root, paths.best.name)
    try:
        folder = save_checkpoint(paths.best, depth_net, pose_net, info)
        tmp = folder / f".{BEST_FILE}.tmp"
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, folder / BEST_FILE)
    except OSError as err:
        raise _write_error(paths, err) from err
    return folder


def _remove_leftovers(root: Path, name: str) -> None:
    """Delete what a killed writer of ``root/name`` left: its staging copy and save_checkpoint's temporaries."""
    for leftover in sorted(root.glob(f".{name}.*")):
        shutil.rmtree(leftover, ignore_errors=True)


def _write_error(paths: RunPaths, err: OSError) -> CheckpointError:
    kept = [folder.name + "/" for folder in (paths.last, paths.previous, paths.best) if folder.is_dir()]
    return CheckpointError(
        f"cannot write a checkpoint in {paths.root}: {err.strerror or err}; "
        + (f"the complete checkpoints {', '.join(kept)} are kept" if kept else "no earlier checkpoint exists")
        + " (free some space and run the same command again to resume)"
    )


@dataclass(frozen=True)
class ResumePoint:
    """A checkpoint that loaded completely: its networks and its training state."""

    folder: Path
    checkpoint: LoadedCheckpoint
    state: dict[str, Any]


def _read_resume_point(folder: Path) -> ResumePoint:
    state = read_state_dict(folder / STATE_FILE)
    for key in ("step", "epoch", "batch_in_epoch", "optimizer", "scheduler", "rng"):
        if key not in state:
            raise CheckpointError(f"{folder / STATE_FILE} has no '{key}' entry; it is not a training state")
    checkpoint = load_checkpoint(folder, load_pose=None)
    return ResumePoint(folder=folder, checkpoint=checkpoint, state=state)


def find_resume_point(paths: RunPaths) -> ResumePoint | None:
    """The newest checkpoint of the run that loads: ``last/``, else ``previous/`` (with a warning).

    Returns:
        None when the run folder has no checkpoint yet (a fresh run).
    Raises:
        CheckpointError: checkpoints exist but none of them loads.
    """
    candidates = [folder for folder in (paths.last, paths.previous) if folder.exists()]
    problems = []
    for folder in candidates:
        try:
            point = _read_resume_point(folder)
        except (CheckpointError, MissingInputError) as err:
            _LOG.warning("checkpoint %s cannot be resumed from (%s); trying an older one", folder, err)
            problems.append(f"{folder.name}/: {err}")
            continue
        if problems:
            _LOG.warning("resuming from %s instead", folder)
        return point
    if problems:
        raise CheckpointError(
            f"no usable checkpoint in {paths.root}: " + "; ".join(problems) + " (start a new run with another --out)"
        )
    return None
