"""Sample selection: time order, gaps and source boundaries, stride, static frames, the time-block split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monodepth2_ros.errors import DatasetError, InsufficientDataError
from monodepth2_ros.training.config import DataConfig, ModelConfig
from monodepth2_ros.training.frame_cache import FrameCache
from monodepth2_ros.training.samples import (
    segment_ids,
    select_samples,
    snippet_indices,
    time_block_split,
)

MS = 1_000_000
PERIOD = 100 * MS


def _cache(stamps_ms, sequence=None, images=None, positions=None) -> FrameCache:
    stamps = np.asarray(stamps_ms, dtype=np.int64) * MS
    count = stamps.size
    if images is None:  # every frame different: nothing static
        images = np.stack([np.full((8, 8, 3), (40 * i) % 256, dtype=np.uint8) for i in range(count)])
    return FrameCache(
        images=images,
        stamps_ns=stamps,
        sequence=np.zeros(count, np.int32) if sequence is None else np.asarray(sequence, np.int32),
        K_normalized=np.tile(np.eye(3), (count, 1, 1)),
        right=None,
        has_right=None,
        baseline_m=None,
        depth=None,
        has_depth=None,
        positions=positions,
        sources=("a.mcap", "b.mcap"),
        skipped=0,
        folder=Path("."),
    )


def test_a_gap_longer_than_the_factor_times_the_median_period_starts_a_segment():
    stamps = np.array([0, 100, 200, 300, 560, 660, 760]) * MS  # 260 ms > 2.5 x 100 ms
    ids, gaps = segment_ids(stamps, np.zeros(7), max_gap_factor=2.5)
    assert ids.tolist() == [0, 0, 0, 0, 1, 1, 1] and gaps == 1
    ids, gaps = segment_ids(stamps, np.zeros(7), max_gap_factor=3.0)  # 260 ms < 300 ms: no cut
    assert ids.tolist() == [0] * 7 and gaps == 0


def test_a_new_source_starts_a_segment_even_without_a_gap():
    stamps = np.arange(6) * PERIOD
    ids, gaps = segment_ids(stamps, np.array([0, 0, 0, 1, 1, 1]), max_gap_factor=2.5)
    assert ids.tolist() == [0, 0, 0, 1, 1, 1] and gaps == 0


def test_triplets_never_cross_a_segment_boundary():
    segments = np.array([0, 0, 0, 0, 1, 1, 1])
    assert snippet_indices(segments, (-1, 1), stride=1).tolist() == [[1, 0, 2], [2, 1, 3], [5, 4, 6]]


def test_stride_spaces_the_sources_and_offsets_keep_their_order():
    segments = np.zeros(7, dtype=int)
    assert snippet_indices(segments, (-1, 1), stride=2).tolist() == [[2, 0, 4], [3, 1, 5], [4, 2, 6]]
    assert snippet_indices(segments, (1, -1), stride=3).tolist() == [[3, 6, 0]]


def test_time_blocks_go_to_validation_as_whole_blocks():
    stamps = np.arange(40) * PERIOD  # 4 s in 1 s blocks; val_fraction 0.5: every second block, the odd ones
    is_val = time_block_split(stamps, np.zeros(40), block_s=1.0, val_fraction=0.5)
    assert is_val.reshape(4, 10).all(axis=1).tolist() == [False, True, False, True]
    assert is_val.reshape(4, 10).any(axis=1).tolist() == [False, True, False, True]
    assert not time_block_split(stamps, np.zeros(40), 1.0, 0.0).any()


def test_select_samples_drops_triplets_across_the_split_and_reports_counts():
    cache = _cache(np.arange(40) * 100)
    split = select_samples(cache, DataConfig(val_fraction=0.5, split_block_s=1.0, static_threshold=0), ModelConfig())
    counts = split.counts
    # 38 candidate triplets; each of the 3 block boundaries cuts 2 of them.
    assert (counts.candidates, counts.straddling, counts.train, counts.val) == (38, 6, 16, 16)
    train_targets = set(split.train[:, 0].tolist())
    val_targets = set(split.val[:, 0].tolist())
    assert not train_targets & val_targets
    assert all(10 <= t < 20 or 30 <= t < 40 for t in val_targets)
    assert all(np.all(np.abs(row[1:] - row[0]) == 1) for row in split.train)


def test_static_frames_by_image_difference_are_removed_and_counted():
    images = np.stack([np.full((8, 8, 3), 10 * i, np.uint8) for i in range(8)])
    images[4] = images[3]  # the camera stopped between frames 3 and 4: triplets centred on 3 and 4 are static
    cache = _cache(np.arange(8) * 100, images=images)
    split = select_samples(cache, DataConfig(val_fraction=0.0, static_threshold=0.01), ModelConfig())
    assert split.counts.static == 2
    assert sorted(split.train[:, 0].tolist()) == [1, 2, 5, 6]


def test_static_frames_by_odometry_distance_when_positions_are_known():
    positions = np.array([[0.0, 0, 0], [0.5, 0, 0], [1.0, 0, 0], [1.01, 0, 0], [1.5, 0, 0], [2.0, 0, 0]])
    images = np.zeros((6, 8, 8, 3), np.uint8)  # identical images: only odometry can tell motion
    cache = _cache(np.arange(6) * 100, images=images, positions=positions)
    split = select_samples(cache, DataConfig(val_fraction=0.0, static_min_motion_m=0.05), ModelConfig())
    assert split.counts.static == 2  # targets 2 and 3 have a source 1 cm away
    assert sorted(split.train[:, 0].tolist()) == [1, 4]


def test_too_few_frames_for_one_triplet_is_insufficient_data():
    with pytest.raises(InsufficientDataError, match=r"too few frames for one training sample: 2 frame\(s\).*needs 3 consecutive"):
        select_samples(_cache([0, 100]), DataConfig(), ModelConfig())
    gapped = _cache([0, 100, 1000, 1100, 3000, 3100])  # no three frames without a gap
    with pytest.raises(DatasetError, match=r"3 continuous segment\(s\)"):
        select_samples(gapped, DataConfig(), ModelConfig())


def test_a_camera_that_never_moves_is_insufficient_data_naming_the_threshold():
    cache = _cache(np.arange(6) * 100, images=np.zeros((6, 8, 8, 3), np.uint8))
    with pytest.raises(InsufficientDataError, match=r"the camera never moves: all 4 frame pairs 1 frame\(s\) apart .*mean image difference 0.01; largest found 0.0000\); self-supervised training needs a camera that moves"):
        select_samples(cache, DataConfig(val_fraction=0.0), ModelConfig())
