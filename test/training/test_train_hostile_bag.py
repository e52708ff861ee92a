"""A bag whose metadata lies about its message count: the frame cache allocates for what is there."""

from __future__ import annotations

import re

import numpy as np

from monodepth2_ros.data.bag_reader import BagImageStream
from monodepth2_ros.training.config import DataConfig
from monodepth2_ros.training.frame_cache import open_frame_cache

H, W = 32, 64
FRAMES = 7


def _lie_about_counts(bag, claimed: int) -> None:
    """Rewrite every message count of the bag's metadata.yaml to ``claimed``."""
    metadata = bag / "metadata.yaml"
    text = re.sub(r"message_count: \d+", f"message_count: {claimed}", metadata.read_text())
    metadata.write_text(text)


def _written(bag, tmp_path, image_bag_writer, textured):
    images = [textured(i) for i in range(FRAMES)]
    return image_bag_writer(tmp_path / bag, images, [10**18 + i * 100_000_000 for i in range(FRAMES)])


def test_a_bag_claiming_a_trillion_images_builds_a_cache_of_the_real_ones(tmp_path, image_bag_writer, textured):
    bag = _written("liar", tmp_path, image_bag_writer, textured)
    _lie_about_counts(bag, 10**12)
    assert len(BagImageStream(bag)) == 10**12  # the reader reports what the metadata says...
    cache = open_frame_cache(DataConfig(bags=(str(bag),), height=H, width=W), tmp_path / "cache")
    assert len(cache) == FRAMES  # ...the cache holds what decodes
    images_file = cache.folder / "images.npy"
    # The file was made for a bounded number of frames (sparse), nowhere near 10^12 of them.
    assert images_file.stat().st_size < 4096 * H * W * 3 + 4096
    assert images_file.stat().st_blocks * 512 < 64 * 2**20


def test_a_bag_claiming_fewer_images_than_it_holds_loses_none(tmp_path, image_bag_writer, textured):
    bag = _written("modest", tmp_path, image_bag_writer, textured)
    _lie_about_counts(bag, 1)
    cache = open_frame_cache(DataConfig(bags=(str(bag),), height=H, width=W), tmp_path / "cache")
    assert len(cache) == FRAMES
    assert np.all(np.diff(cache.stamps_ns) == 100_000_000)
    assert cache.images[FRAMES - 1].any()  # the last frame was written after the arrays grew
