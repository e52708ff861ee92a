"""The before/after report of a fine-tune, on the held-back frames of its validation split.

``RUN_DIR/report/``::

    report.json       photometric reprojection error (and the other guard figures) of the start
                      model, of best/ and of last/, on the same held-back samples; with a
                      ground-truth depth topic (data.depth_topic), also the median-scaled
                      abs_rel of the start model, best/ and last/ on those frames
    depth_strip.png   rows of held-back frames: image | start model depth | best/ depth
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from monodepth2_ros.errors import DatasetError
from monodepth2_ros.evaluation.colorize import colorize_depth
from monodepth2_ros.evaluation.depth_metrics import DepthEvaluation
from monodepth2_ros.evaluation.report import write_bytes_atomic, write_json
from monodepth2_ros.model.geometry import disp_to_depth
from monodepth2_ros.training.config import TrainConfig
from monodepth2_ros.training.data import TrainingData
from monodepth2_ros.training.dataset import make_loader
from monodepth2_ros.training.networks import MonodepthModel, build_model
from monodepth2_ros.training.run_dir import RunPaths
from monodepth2_ros.training.validation import GuardFigures, guard_validate

__all__ = ["FinetuneReport", "write_report", "REPORT_DIR", "STRIP_ROWS"]

REPORT_DIR = "report"
STRIP_ROWS = 4
_STRIP_GAP = 2


@dataclass(frozen=True)
class FinetuneReport:
    """Start model versus ``best/`` on the held-back frames.

    Attributes:
        start, best: guard figures of each (``photometric`` is the headline).
        last: guard figures of ``last/`` (the newest checkpoint, accepted or not), or None.
        best_is_start: ``best/`` is still the start model (fine-tuning never beat it).
        frames: held-back target frames evaluated.
        folder: where report.json and depth_strip.png are.
    """

    start: GuardFigures
    best: GuardFigures
    last: GuardFigures | None
    best_is_start: bool
    frames: int
    folder: Path
    depth: dict[str, Any] | None = None

    @property
    def abs_rel_change(self) -> float | None:
        """Relative change of the median-scaled abs_rel (negative: better), when ground truth exists."""
        if self.depth is None:
            return None
        return self.depth["fine_tuned"]["abs_rel"] / max(self.depth["start_model"]["abs_rel"], 1e-12) - 1.0

    @property
    def photometric_change(self) -> float:
        """Relative change of the photometric error (negative: lower after fine-tuning)."""
        return self.best.photometric / max(self.start.photometric, 1e-12) - 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "held_back_frames": self.frames,
            "start_model": self.start.as_dict(),
            "fine_tuned": self.best.as_dict(),
            "last_checkpoint": self.last.as_dict() if self.last is not None else None,
            "photometric_change": self.photometric_change,
            "best_is_start_model": self.best_is_start,
            "depth": None if self.depth is None else {**self.depth, "abs_rel_change": self.abs_rel_change},
        }


def _load(config: TrainConfig, folder: str | Path, device: torch.device) -> MonodepthModel:
    model = build_model(replace(config.model, pretrained=None, init=str(folder)))
    return model.to(device).eval()


@torch.no_grad()
def _depth(model: MonodepthModel, image: np.ndarray, config: TrainConfig, device: torch.device) -> np.ndarray:
    tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1).unsqueeze(0).float().div(255.0).to(device)
    _, depth = disp_to_depth(model.depth_net(tensor)[0].float(), config.loss.min_depth, config.loss.max_depth)
    return depth[0, 0].cpu().numpy()


def ground_truth_figures(
    models: dict[str, MonodepthModel], images: list[np.ndarray], truths: list[np.ndarray],
    config: TrainConfig, device: torch.device,
) -> dict[str, Any] | None:
    """Median-scaled depth metrics of each named model on the held-back frames that have ground truth."""
    evaluations = {name: DepthEvaluation(median_scaling=True) for name in models}
    for image, truth in zip(images, truths, strict=True):
        if not np.isfinite(truth).any():
            continue
        for name, model in models.items():
            try:
                evaluations[name].add(truth.astype(np.float64), _depth(model, image, config, device).astype(np.float64))
            except DatasetError:  # no valid ground-truth pixel in this frame: none of the models is scored on it
                break
    counts = {len(evaluation) for evaluation in evaluations.values()}
    if len(counts) != 1 or 0 in counts:
        return None
    figures = {name: evaluation.summary().as_dict() for name, evaluation in evaluations.items()}
    return {**figures, "frames": counts.pop()}


def depth_strip(images: list[np.ndarray], start: list[np.ndarray], best: list[np.ndarray]) -> np.ndarray:
    """(rows, 3 columns) mosaic: image, start depth, fine-tuned depth; each depth map coloured by its
    own range (a monocular model's scale is arbitrary), near bright."""
    rows = []
    for image, depth_a, depth_b in zip(images, start, best, strict=True):
        gap = np.full((image.shape[0], _STRIP_GAP, 3), 255, np.uint8)
        rows.append(np.concatenate([image, gap, colorize_depth(depth_a), gap, colorize_depth(depth_b)], axis=1))
        rows.append(np.full((_STRIP_GAP, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def write_report(config: TrainConfig, paths: RunPaths, data: TrainingData, device: torch.device) -> FinetuneReport:
    """Score the start model and ``best/`` on the validation samples; write ``RUN_DIR/report``."""
    if data.val is None:
        raise ValueError("the report needs held-back validation samples")
    loader, _ = make_loader(data.val, config.optim.batch_size, shuffle=False, num_workers=0, pin_memory=False, seed=0)
    start_model = _load(config, config.model.init, device)
    best_model = _load(config, paths.best, device)
    max_batches = config.runtime.max_val_batches
    start = guard_validate(start_model, None, loader, config.loss, device, max_batches)
    best = guard_validate(best_model, start_model.depth_net, loader, config.loss, device, max_batches)
    last = None
    last_model = None
    if (paths.last / "encoder.pth").is_file():
        last_model = _load(config, paths.last, device)
        last = guard_validate(last_model, start_model.depth_net, loader, config.loss, device, max_batches)
    best_record = {}
    best_json = paths.best / "best.json"
    if best_json.is_file():
        import json

        best_record = json.loads(best_json.read_text())
    folder = paths.root / REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    targets = data.val.snippets[:, 0]
    depth = None
    if data.cache.depth is not None:
        evaluated = targets[: start.frames]  # the frames guard_validate scored (unshuffled, in order)
        models = {"start_model": start_model, "fine_tuned": best_model}
        if last_model is not None:
            models["last_checkpoint"] = last_model
        depth = ground_truth_figures(
            models, [np.asarray(data.cache.images[int(i)]) for i in evaluated],
            [np.asarray(data.cache.depth[int(i)]) for i in evaluated], config, device,
        )
    picks = targets[np.unique(np.linspace(0, len(targets) - 1, min(STRIP_ROWS, len(targets))).round().astype(int))]
    images = [np.asarray(data.cache.images[int(i)]) for i in picks]
    strip = depth_strip(
        images,
        [_depth(start_model, image, config, device) for image in images],
        [_depth(best_model, image, config, device) for image in images],
    )
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    if ok:
        write_bytes_atomic(folder / "depth_strip.png", encoded.tobytes())
    report = FinetuneReport(
        start=start,
        best=best,
        last=last,
        best_is_start=bool(best_record.get("is_start_model", False)),
        frames=start.frames,
        folder=folder,
        depth=depth,
    )
    write_json(folder / "report.json", report.as_dict())
    return report
