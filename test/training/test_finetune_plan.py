"""Fine-tuning defaults from the data: network size, stride from image motion, a split for short bags."""

from __future__ import annotations

import numpy as np
import pytest

from monodepth2_ros.training.finetune_plan import (
    TARGET_FLOW_FRACTION,
    choose_network_size,
    choose_split,
    choose_stride,
    mean_flow_fraction,
    stride_motion,
)
from monodepth2_ros.training.frame_cache import FrameCache
from monodepth2_ros.training.samples import time_block_split

NS = 1_000_000_000


def _cache(images: np.ndarray, rate_hz: float) -> FrameCache:
    count = len(images)
    return FrameCache(
        images=images,
        stamps_ns=(np.arange(count) * NS / rate_hz).astype(np.int64),
        sequence=np.zeros(count, np.int32),
        K_normalized=np.tile(np.eye(3), (count, 1, 1)),
        right=None, has_right=None, baseline_m=None, depth=None, has_depth=None, positions=None,
        sources=("test",), skipped=0, folder=None,
    )


@pytest.mark.parametrize(
    ("camera", "pixels", "expected"),
    [
        ((1242, 375), 320 * 96, (96, 320)),  # KITTI into the bundled model's pixel count
        ((640, 480), 320 * 96, (160, 224)),  # 4:3 robot camera: 1.4 at about the same count
        ((1920, 1080), 640 * 192, (256, 448)),  # 16:9 (1.75) at the official models' count
        ((96, 64), 96 * 64, (64, 96)),
    ],
)
def test_the_network_size_keeps_the_aspect_ratio_at_about_the_start_models_pixel_count(camera, pixels, expected):
    height, width = choose_network_size(*camera, pixels)
    assert (height, width) == expected
    assert height % 32 == 0 and width % 32 == 0
    assert 0.5 <= height * width / pixels <= 2.0


def test_mean_flow_measures_how_far_the_image_moved(make_image):
    scene = make_image(96, 192, seed=4)
    base, shifted = scene[:, 20:148], scene[:, 24:152]  # the camera panned by 4 pixels
    assert mean_flow_fraction(base, shifted) == pytest.approx(4 / 128, rel=0.25)
    assert mean_flow_fraction(base, base) < 1e-3


def test_a_slow_camera_gets_a_longer_stride_and_a_fast_one_stride_one(make_image):
    scene = make_image(64, 400, seed=2)
    slow = np.stack([scene[:, i // 4 : i // 4 + 96] for i in range(0, 200, 4)])  # 0.25 px per frame... x4 = 1 px
    fast = np.stack([scene[:, 3 * i : 3 * i + 96] for i in range(50)])  # 3 px per frame
    slow_motion = stride_motion(_cache(slow, 30.0), (-1, 1), range(1, 9), 2.5)
    fast_motion = stride_motion(_cache(fast, 30.0), (-1, 1), range(1, 9), 2.5)
    slow_stride, slow_reason = choose_stride(slow_motion)
    fast_stride, _ = choose_stride(fast_motion)
    assert fast_stride == 1
    assert slow_stride > 1 and slow_motion[slow_stride] >= TARGET_FLOW_FRACTION > slow_motion[slow_stride - 1]
    assert "parallax" in slow_reason
    # Never enough motion: the stride that moves most, and the reason says so.
    still = stride_motion(_cache(np.repeat(slow[:1], 30, axis=0), 30.0), (-1, 1), range(1, 5), 2.5)
    stride, reason = choose_stride(still)
    assert "little parallax" in reason and stride in still


def test_a_30_s_bag_gets_held_back_time_blocks():
    cache = _cache(np.zeros((300, 8, 8, 3), np.uint8), 10.0)  # 29.9 s at 10 Hz
    fraction, block_s, reason = choose_split(cache, span_s=0.2)
    assert fraction == 0.2 and block_s == pytest.approx(2.99) and "held back" in reason
    is_val = time_block_split(cache.stamps_ns, cache.sequence, block_s, fraction)
    assert 0.15 <= is_val.mean() <= 0.25  # today's defaults (10 s blocks, 1 in 10) held back nothing
    # A 1.4 s bag: a third, in blocks of at least two sample spans.
    short = _cache(np.zeros((15, 8, 8, 3), np.uint8), 10.0)
    fraction, block_s, _ = choose_split(short, span_s=0.3)
    assert fraction == pytest.approx(1 / 3) and block_s == pytest.approx(0.6)


def test_a_short_source_still_holds_back_a_block_with_the_default_split():
    stamps = (np.arange(300) * NS / 10).astype(np.int64)  # 30 s: shorter than 10 blocks of 10 s
    is_val = time_block_split(stamps, np.zeros(300), block_s=10.0, val_fraction=0.1)
    assert is_val.any() and is_val.mean() == pytest.approx(0.1, abs=0.02)
    # Blocks never shrink below min_block_s: a 1 s source with 2 s blocks keeps all for training.
    assert not time_block_split(stamps[:10], np.zeros(10), 10.0, 0.1, min_block_s=2.0).any()
