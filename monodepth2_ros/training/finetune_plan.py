"""Fine-tuning defaults chosen from the data: network size, frame stride, validation split, schedule.

``monodepth2 train --bag robot.mcap --init default`` should work without knowing Monodepth2's
settings. Every setting the user did not give explicitly is chosen here from the start model and
the bag, and each choice comes with the reason printed to the user:

* **network size** from the camera's aspect ratio, at about the start model's pixel count
  (multiples of 32): the start model saw objects at that scale;
* **frame stride** from the measured image motion (dense optical flow on the decoded frames): a
  slow handheld or indoor camera barely moves between adjacent frames, and without parallax the
  photometric loss cannot tell depths apart, so the neighbours are taken further apart;
* **validation split**: held-back time blocks sized to the bag, so a 30 s bag has one too;
* **schedule**: a learning rate a fifth of the from-scratch one, a short warm-up, and a limit on
  epochs that early stopping and ``--minutes`` usually cut earlier.

Bad input is found here, before anything is trained: frames without a camera_info, too few
frames for the chosen stride, a camera that never moves (:class:`InsufficientDataError`).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from monodepth2_ros.data import BagImageStream, FolderImageStream, camera_info_topic_for
from monodepth2_ros.errors import InsufficientDataError
from monodepth2_ros.model.checkpoint import load_checkpoint
from monodepth2_ros.training.config import NETWORK_STRIDE, TrainConfig, apply_overrides
from monodepth2_ros.training.frame_cache import FrameCache, SourceSpec, list_sources, open_frame_cache
from monodepth2_ros.training.samples import segment_ids, snippet_indices, snippet_span_s

__all__ = [
    "FinetunePlan",
    "FINETUNE_LR",
    "FINETUNE_EPOCHS",
    "TARGET_FLOW_FRACTION",
    "MAX_AUTO_STRIDE",
    "check_cameras",
    "choose_network_size",
    "mean_flow_fraction",
    "stride_motion",
    "choose_stride",
    "choose_split",
    "plan_finetune",
]

# A fifth of the paper's from-scratch rate: the start model is already in a good basin.
FINETUNE_LR = 2e-5
# An upper limit; early stopping and --minutes usually end a fine-tune before it.
FINETUNE_EPOCHS = 10
# Mean optical flow between a target and its neighbours, as a share of the image width, that
# gives the photometric loss parallax to work with (KITTI at 10 Hz: about 0.02-0.04).
TARGET_FLOW_FRACTION = 0.01
MAX_AUTO_STRIDE = 8
# Frames sampled along the bag to measure the motion (enough for a stable median, cheap).
_MOTION_SAMPLES = 24
# A stride is only a candidate while it leaves this many samples (or all there are at stride 1).
_MIN_SAMPLES = 32
# Validation: every 5th time block (a fifth of the time; a third for short bags), at most 10 s each.
_SPLIT_PERIODS = (5, 3)
_MAX_BLOCK_S = 10.0
_NS_PER_S = 1_000_000_000


@dataclass
class FinetunePlan:
    """The settings chosen for a run and why (one line per choice, printed by the CLI)."""

    overrides: dict[str, object] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def choose(self, key: str, value: object, reason: str) -> None:
        self.overrides[key] = value
        self.reasons.append(f"{key}={value}: {reason}")


def _camera_size(source: SourceSpec, config: TrainConfig) -> tuple[int, int]:
    """(width, height) of the source's camera; raises when a bag's frames have no camera_info."""
    data = config.data
    if source.kind == "folder":
        camera = FolderImageStream(source.path, rate_hz=data.folder_rate_hz).camera
        return int(camera.width), int(camera.height)
    stream = BagImageStream(source.path, data.image_topic, data.camera_info_topic, require_camera_info=False)
    if stream.camera is None:
        looked_for = data.camera_info_topic or camera_info_topic_for(stream.image_topic)
        raise InsufficientDataError(
            f"{source.path}: {len(stream)} image(s) on {stream.image_topic} but no CameraInfo on {looked_for}; "
            "training needs the camera's intrinsics with the frames: record the camera's camera_info "
            "topic together with the images, or name it with --camera-info-topic"
        )
    return int(stream.camera.width), int(stream.camera.height)


def check_cameras(config: TrainConfig) -> tuple[int, int]:
    """Every source has a calibrated camera; returns the first source's (width, height).

    Raises:
        InsufficientDataError: a bag's image topic has no camera_info.
        DatasetError, MissingInputError: the inputs cannot be read.
    """
    sizes = [_camera_size(source, config) for source in list_sources(config.data)]
    return sizes[0]


def choose_network_size(camera_width: int, camera_height: int, pixels: int) -> tuple[int, int]:
    """(height, width), multiples of 32 with about ``pixels`` pixels and the camera's aspect ratio.

    Among the sizes within a factor 2 of ``pixels``, the one closest to the aspect ratio and the
    pixel count (both compared on a log scale) wins.
    """
    aspect = camera_width / camera_height
    best: tuple[float, int, int] | None = None
    limit = int(math.sqrt(4 * pixels * max(aspect, 1 / aspect))) // NETWORK_STRIDE + 2
    for rows in range(1, limit):
        for cols in range(1, limit):
            height, width = rows * NETWORK_STRIDE, cols * NETWORK_STRIDE
            size_error = abs(math.log(height * width / pixels))
            if size_error > math.log(2.0):
                continue
            error = abs(math.log(width / height / aspect)) + 0.25 * size_error
            if best is None or error < best[0]:
                best = (error, height, width)
    if best is None:  # fewer pixels than one 32x32 block: the smallest network
        return NETWORK_STRIDE, NETWORK_STRIDE
    return best[1], best[2]


def mean_flow_fraction(rgb_a: np.ndarray, rgb_b: np.ndarray) -> float:
    """Mean dense optical-flow length between two uint8 images, as a share of the image width."""
    gray_a = cv2.cvtColor(np.ascontiguousarray(rgb_a), cv2.COLOR_RGB2GRAY)
    gray_b = cv2.cvtColor(np.ascontiguousarray(rgb_b), cv2.COLOR_RGB2GRAY)
    flow = cv2.calcOpticalFlowFarneback(gray_a, gray_b, None, 0.5, 5, 15, 3, 5, 1.2, 0)
    return float(np.linalg.norm(flow, axis=-1).mean() / gray_a.shape[1])


def stride_motion(
    cache: FrameCache, offsets: tuple[int, ...], strides: Collection[int], max_gap_factor: float
) -> dict[int, float]:
    """Median mean-flow share between targets and their furthest neighbour, for each stride.

    Targets are sampled evenly over the snippets that exist at that stride; a stride without a
    single snippet is left out.
    """
    segments, _ = segment_ids(cache.stamps_ns, cache.sequence, max_gap_factor)
    motion: dict[int, float] = {}
    for stride in strides:
        snippets = snippet_indices(segments, offsets, stride)
        if len(snippets) == 0:
            continue
        chosen = snippets[np.unique(np.linspace(0, len(snippets) - 1, _MOTION_SAMPLES).round().astype(int))]
        column = 1 + int(np.argmax([abs(o) for o in offsets]))
        flows = [mean_flow_fraction(cache.images[int(row[0])], cache.images[int(row[column])]) for row in chosen]
        motion[stride] = float(np.median(flows))
    return motion


def choose_stride(motion: dict[int, float], target: float = TARGET_FLOW_FRACTION) -> tuple[int, str]:
    """The smallest stride whose median motion reaches ``target``, else the one that moves most."""
    if not motion:
        raise ValueError("no stride has a snippet")
    for stride in sorted(motion):
        if motion[stride] >= target:
            return stride, (
                f"median image motion {100 * motion[stride]:.1f}% of the width between neighbours "
                f"(>= {100 * target:.1f}% gives parallax; stride 1: {100 * motion[min(motion)]:.2f}%)"
            )
    stride = max(motion, key=motion.get)
    return stride, (
        f"little parallax: even {stride} frames apart the median image motion is only "
        f"{100 * motion[stride]:.2f}% of the width (wanted {100 * target:.1f}%); the start-model anchor "
        "and validation guard against drift"
    )


def choose_split(cache: FrameCache, span_s: float) -> tuple[float, float, str]:
    """(val_fraction, split_block_s, reason): about ten blocks per source with a fifth held back,
    or for a short bag a third held back in blocks of at least two sample spans."""
    durations = []
    for source in np.unique(cache.sequence):
        stamps = cache.stamps_ns[cache.sequence == source]
        durations.append((int(stamps.max()) - int(stamps.min())) / _NS_PER_S)
    shortest = min(durations)
    for period in _SPLIT_PERIODS:
        block_s = min(_MAX_BLOCK_S, max(shortest / (2 * period), 2.0 * span_s, 1e-3))
        if (period // 2 + 1) * block_s <= shortest:
            break
    return 1.0 / period, round(block_s, 3), (
        f"1 in {period} time blocks of {block_s:.2f} s held back for validation (shortest source {shortest:.1f} s)"
    )


def _start_pixels(config: TrainConfig) -> int:
    info = load_checkpoint(config.model.init, load_pose=False).info
    return int(info.height) * int(info.width)


def plan_finetune(
    config: TrainConfig, explicit: Collection[str], cache_root: str | Path
) -> tuple[TrainConfig, FinetunePlan]:
    """Fill in every setting not in ``explicit`` (``section.key`` names the user gave) from the data.

    Builds the frame cache the run will use (under ``cache_root``, reused by the run).

    Raises:
        InsufficientDataError: no camera_info, too few frames for a sample, or a camera that never moves.
        DatasetError, MissingInputError, CheckpointError: unreadable inputs or start model.
    """
    plan = FinetunePlan()
    camera_width, camera_height = check_cameras(config)
    if "data.height" not in explicit or "data.width" not in explicit:
        pixels = _start_pixels(config)
        height, width = choose_network_size(camera_width, camera_height, pixels)
        if "data.height" in explicit:
            height = config.data.height
            width = max(NETWORK_STRIDE, round(height * camera_width / camera_height / NETWORK_STRIDE) * NETWORK_STRIDE)
        elif "data.width" in explicit:
            width = config.data.width
            height = max(NETWORK_STRIDE, round(width * camera_height / camera_width / NETWORK_STRIDE) * NETWORK_STRIDE)
        aspect = camera_width / camera_height
        reason = f"camera {camera_width}x{camera_height} (aspect {aspect:.2f}), start model {pixels} pixels"
        plan.choose("data.height", height, reason)
        plan.choose("data.width", width, reason)
    if "optim.lr" not in explicit:
        plan.choose("optim.lr", FINETUNE_LR, "a fifth of the from-scratch rate, after a linear warm-up")
    if "optim.epochs" not in explicit:
        plan.choose("optim.epochs", FINETUNE_EPOCHS, "an upper limit: early stopping on validation ends sooner")
    config = apply_overrides(config, plan.overrides)
    cache = open_frame_cache(config.data, cache_root)
    if len(cache) < 3:
        raise InsufficientDataError(
            f"{len(cache)} decodable frame(s) in {', '.join(cache.sources)}; fine-tuning needs a moving "
            "camera's frames, at least 3 in a row and a few hundred for a useful fine-tune"
        )
    offsets = config.model.source_offsets
    if "data.stride" not in explicit and offsets:
        # Strides that leave too few samples on a short bag are not candidates.
        counts = {s: _snippet_count(cache, config, s) for s in range(1, MAX_AUTO_STRIDE + 1)}
        candidates = [s for s in counts if counts[s] >= min(_MIN_SAMPLES, counts[1])]
        motion = stride_motion(cache, offsets, candidates, config.data.max_gap_factor) if counts[1] else {}
        if not motion:
            raise InsufficientDataError(
                f"too few frames for one training sample: {len(cache)} frame(s) in {', '.join(cache.sources)}; "
                f"frame_ids {list(config.model.frame_ids)} need {max(offsets) - min(min(offsets), 0) + 1} "
                "consecutive frames without a gap"
            )
        stride, reason = choose_stride(motion)
        plan.choose("data.stride", stride, reason)
    config = apply_overrides(config, {k: v for k, v in plan.overrides.items() if k == "data.stride"})
    if "data.val_fraction" not in explicit and "data.split_block_s" not in explicit:
        fraction, block_s, reason = choose_split(cache, snippet_span_s(cache, config.data, config.model))
        plan.choose("data.val_fraction", fraction, reason)
        plan.choose("data.split_block_s", block_s, reason)
    return apply_overrides(config, plan.overrides), plan


def _snippet_count(cache: FrameCache, config: TrainConfig, stride: int) -> int:
    segments, _ = segment_ids(cache.stamps_ns, cache.sequence, config.data.max_gap_factor)
    return len(snippet_indices(segments, config.model.source_offsets, stride))
