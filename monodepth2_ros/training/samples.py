"""Which frames make training samples: snippets in time order, gaps, static pairs and the split.

A *sample* is a target frame and its temporal sources (``frame_ids`` times ``stride``, e.g. the
triplet t-1, t, t+1). Its frames must lie in one *segment*: one source (bag or folder) with no
stamp gap above ``max_gap_factor`` times that source's median frame period. A sample is dropped
as static when the camera barely moved between the target and any source (mean absolute image
difference, or odometry distance when an odometry topic is given), and when its frames straddle
the train/validation boundary. The split assigns whole time blocks (``split_block_s``) to
validation, so neighbouring, nearly identical frames never end up on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monodepth2_ros.errors import DatasetError, InsufficientDataError
from monodepth2_ros.evaluation.trajectory import invert_poses
from monodepth2_ros.training.config import DataConfig, ModelConfig
from monodepth2_ros.training.frame_cache import FrameCache
from monodepth2_ros.data.motion import mean_image_difference

__all__ = [
    "SampleCounts",
    "SampleSplit",
    "segment_ids",
    "snippet_indices",
    "time_block_split",
    "image_motion",
    "odometry_motion",
    "camera_motion",
    "select_samples",
    "snippet_span_s",
]

_NS_PER_S = 1_000_000_000
# Static detection compares every 4th pixel in each direction: ample for a mean difference.


@dataclass(frozen=True)
class SampleCounts:
    """How the frames became samples (reported at the start of training).

    Attributes:
        frames: decoded frames.
        skipped_frames: frames the readers could not decode.
        segments: continuous pieces after cutting at gaps and source boundaries.
        gaps: cuts made at stamp gaps (source boundaries not counted).
        candidates: snippets that fit inside a segment.
        static: candidates dropped because the camera did not move.
        no_stereo: candidates dropped for lack of a stereo partner.
        straddling: candidates dropped because they cross the train/validation boundary.
        train, val: samples kept.
    """

    frames: int
    skipped_frames: int
    segments: int
    gaps: int
    candidates: int
    static: int
    no_stereo: int
    straddling: int
    train: int
    val: int


@dataclass(frozen=True)
class SampleSplit:
    """Frame indices of the samples: column 0 the target, then one column per source offset.

    Attributes:
        train, val: (M, 1 + S) int64 frame indices into the cache.
        counts: :class:`SampleCounts`.
    """

    train: np.ndarray
    val: np.ndarray
    counts: SampleCounts


def segment_ids(stamps_ns: np.ndarray, sequence: np.ndarray, max_gap_factor: float) -> tuple[np.ndarray, int]:
    """Label frames with a segment id that changes at a new source or a stamp gap.

    Args:
        stamps_ns: (N,) stamps, sorted within each source.
        sequence: (N,) source index of each frame (contiguous runs).
        max_gap_factor: a gap longer than this times the source's median period starts a segment.
    Returns:
        ``(ids, gaps)``: (N,) int64 segment ids from 0, and the number of cuts made at gaps.
    """
    stamps_ns = np.asarray(stamps_ns, dtype=np.int64)
    sequence = np.asarray(sequence)
    new_segment = np.ones(stamps_ns.size, dtype=bool)
    gaps = 0
    for source in np.unique(sequence):
        where = np.flatnonzero(sequence == source)
        if where.size < 2:
            continue
        steps = np.diff(stamps_ns[where])
        period = float(np.median(steps))
        cut = steps > max_gap_factor * period if period > 0 else np.zeros(steps.size, dtype=bool)
        new_segment[where[1:]] = cut
        gaps += int(cut.sum())
    return np.cumsum(new_segment) - 1, gaps


def snippet_indices(segments: np.ndarray, offsets: tuple[int, ...], stride: int) -> np.ndarray:
    """All snippets (target, target + offset * stride, ...) that stay inside one segment.

    Args:
        segments: (N,) segment id per frame (frames of a segment are contiguous).
        offsets: source offsets in frames, e.g. (-1, 1).
        stride: frames per offset unit.
    Returns:
        (M, 1 + len(offsets)) int64 frame indices, targets in increasing order.
    """
    segments = np.asarray(segments)
    steps = np.asarray(offsets, dtype=np.int64) * stride
    low = int(min(0, steps.min())) if steps.size else 0
    high = int(max(0, steps.max())) if steps.size else 0
    targets = np.arange(max(0, -low), segments.size - max(0, high), dtype=np.int64)
    if targets.size == 0:
        return np.zeros((0, 1 + steps.size), dtype=np.int64)
    # Segments are contiguous runs, so equal ids at both ends mean every frame between is in it.
    inside = (segments[targets + low] == segments[targets]) & (segments[targets + high] == segments[targets])
    targets = targets[inside]
    return np.concatenate([targets[:, None], targets[:, None] + steps[None, :]], axis=1)


def time_block_split(
    stamps_ns: np.ndarray,
    sequence: np.ndarray,
    block_s: float,
    val_fraction: float,
    min_block_s: float = 0.0,
) -> np.ndarray:
    """(N,) bool, True for validation frames: every k-th time block of each source.

    Blocks are counted from each source's first stamp; with ``k = round(1 / val_fraction)`` the
    block in the middle of every run of k is held out. A source shorter than k blocks of
    ``block_s`` gets shorter blocks (its duration / k, but at least ``min_block_s``), so a short
    bag still holds back a block instead of contributing to training only.
    """
    is_val = np.zeros(np.asarray(stamps_ns).size, dtype=bool)
    if val_fraction <= 0.0:
        return is_val
    period = max(2, round(1.0 / val_fraction))
    for source in np.unique(sequence):
        where = np.flatnonzero(sequence == source)
        stamps = np.asarray(stamps_ns, dtype=np.int64)[where]
        duration_s = (stamps.max() - stamps.min()) / _NS_PER_S
        source_block_s = max(min(block_s, duration_s / period), min_block_s, 1e-9)
        blocks = (stamps - stamps.min()) // max(1, int(source_block_s * _NS_PER_S))
        is_val[where] = blocks % period == period // 2
    return is_val


def image_motion(images: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Mean absolute difference in [0, 1] of each image pair (subsampled pixels).

    Args:
        images: (N, H, W, 3) uint8.
        pairs: (P, 2) frame indices.
    """
    return np.array([mean_image_difference(images[a], images[b]) for a, b in pairs], dtype=np.float64)


def odometry_motion(positions: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Distance in metres between the odometry positions of each pair (NaN: unknown)."""
    return np.linalg.norm(positions[pairs[:, 0]] - positions[pairs[:, 1]], axis=1)


def camera_motion(camera_poses: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """(P, 4, 4) ``T_source_target`` of each ``(target, source)`` pair from camera poses ``T_odom_camera``.

    NaN where either pose is unknown.
    """
    return invert_poses(camera_poses[pairs[:, 1]]) @ camera_poses[pairs[:, 0]]  # closed form: NaN stays NaN


def _static(cache: FrameCache, snippets: np.ndarray, config: DataConfig) -> np.ndarray:
    """(M,) bool: the target and at least one source are static."""
    static = np.zeros(len(snippets), dtype=bool)
    if snippets.shape[1] < 2:
        return static
    for column in range(1, snippets.shape[1]):
        pairs = snippets[:, [0, column]]
        if cache.positions is not None:
            distance = odometry_motion(cache.positions, pairs)
            static |= np.nan_to_num(distance, nan=np.inf) < config.static_min_motion_m
        elif config.static_threshold > 0.0:
            static |= image_motion(cache.images, pairs) < config.static_threshold
    return static


def snippet_span_s(cache: FrameCache, data: DataConfig, model: ModelConfig) -> float:
    """Seconds a sample spans at the median frame period: the shortest sensible split block."""
    span_frames = (max(model.frame_ids) - min(model.frame_ids)) * data.stride
    steps = np.diff(np.asarray(cache.stamps_ns, dtype=np.int64))
    steps = steps[steps > 0]
    period_s = float(np.median(steps)) / _NS_PER_S if steps.size else 0.0
    return span_frames * period_s


def _largest_motion(cache: FrameCache, snippets: np.ndarray) -> float:
    return float(max(image_motion(cache.images, snippets[:, [0, c]]).max() for c in range(1, snippets.shape[1])))


def select_samples(cache: FrameCache, data: DataConfig, model: ModelConfig) -> SampleSplit:
    """Split the cached frames into training and validation samples.

    Raises:
        InsufficientDataError: not even one sample can be formed (too few frames for the stride,
            or the camera never moves).
        DatasetError: stereo training without right images.
    """
    segments, gaps = segment_ids(cache.stamps_ns, cache.sequence, data.max_gap_factor)
    snippets = snippet_indices(segments, model.source_offsets, data.stride)
    span = (max(model.frame_ids) - min(model.frame_ids)) * data.stride + 1
    if len(snippets) == 0:
        raise InsufficientDataError(
            f"too few frames for one training sample: {len(cache)} frame(s) in "
            f"{int(segments.max()) + 1 if len(segments) else 0} continuous segment(s) "
            f"(sources: {', '.join(cache.sources)}); a sample with frame_ids {list(model.frame_ids)} and "
            f"stride {data.stride} needs {span} consecutive frames without a gap"
        )
    static = _static(cache, snippets, data)
    no_stereo = np.zeros(len(snippets), dtype=bool)
    if model.uses_stereo:
        if cache.has_right is None:
            raise DatasetError("stereo training needs right images, but the frame cache has none")
        no_stereo = ~cache.has_right[snippets[:, 0]]
    keep = ~static & ~no_stereo
    # Blocks shorter than two sample spans would lose most of their samples to the boundary.
    min_block_s = 2.0 * snippet_span_s(cache, data, model)
    is_val = time_block_split(cache.stamps_ns, cache.sequence, data.split_block_s, data.val_fraction, min_block_s)
    frame_val = is_val[snippets]
    straddling = keep & (frame_val.any(axis=1) != frame_val.all(axis=1))
    keep &= ~straddling
    train = snippets[keep & ~frame_val[:, 0]]
    val = snippets[keep & frame_val[:, 0]]
    counts = SampleCounts(
        frames=len(cache),
        skipped_frames=cache.skipped,
        segments=int(segments.max()) + 1,
        gaps=gaps,
        candidates=len(snippets),
        static=int(static.sum()),
        no_stereo=int((no_stereo & ~static).sum()),
        straddling=int(straddling.sum()),
        train=len(train),
        val=len(val),
    )
    if counts.static and counts.static == counts.candidates:
        raise InsufficientDataError(
            f"the camera never moves: all {counts.candidates} frame pairs {data.stride} frame(s) apart in "
            f"{', '.join(cache.sources)} differ by less than the static threshold "
            + (
                f"(data.static_min_motion_m={data.static_min_motion_m} m of odometry)"
                if cache.positions is not None
                else f"(mean image difference {data.static_threshold}; largest found "
                f"{_largest_motion(cache, snippets):.4f})"
            )
            + "; self-supervised training needs a camera that moves between frames (record while "
            "driving or walking, or lower the threshold with --set data.static_threshold=...)"
        )
    if len(train) == 0:
        raise InsufficientDataError(
            f"no training sample left from {len(snippets)} candidate(s): {counts.static} static "
            f"(data.static_threshold={data.static_threshold}), {counts.no_stereo} without a stereo "
            f"partner, {counts.straddling} across the split, {counts.val} for validation"
        )
    return SampleSplit(train=train, val=val, counts=counts)
