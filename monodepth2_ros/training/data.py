"""From the config's inputs to training and validation datasets (decode, select, split)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from monodepth2_ros.training.config import TrainConfig
from monodepth2_ros.training.dataset import SnippetDataset
from monodepth2_ros.training.distributed import DistributedContext
from monodepth2_ros.training.frame_cache import FrameCache, open_frame_cache
from monodepth2_ros.training.samples import SampleSplit, select_samples

_LOG = logging.getLogger(__name__)

__all__ = ["TrainingData", "prepare_data"]


@dataclass(frozen=True)
class TrainingData:
    """The datasets of a run and how they were formed.

    Attributes:
        cache: the decoded frames.
        split: sample indices and counts (frames, gaps, static, train/val).
        train: augmented training samples.
        val: validation samples (no augmentation, with ground truth when the bags have it), or
            None when the split left none.
    """

    cache: FrameCache
    split: SampleSplit
    train: SnippetDataset
    val: SnippetDataset | None


def prepare_data(
    config: TrainConfig,
    cache_root: str | Path,
    context: DistributedContext | None = None,
    show_progress: bool = False,
) -> TrainingData:
    """Decode (or reuse) the frame cache, select samples and build the datasets.

    In a distributed run rank 0 builds the cache while the others wait, then open it; a failure on
    rank 0 stops them too (:meth:`DistributedContext.run_on_main`).

    Raises:
        DatasetError: a topic is missing, no frame decodes, or no sample can be formed.
    """
    context = context or DistributedContext()
    cache_root = Path(config.data.cache_dir) if config.data.cache_dir is not None else Path(cache_root)

    def build_cache() -> FrameCache:
        with tqdm(desc="decoding frames", unit="frame", disable=not show_progress, leave=False) as bar:
            return open_frame_cache(config.data, cache_root, progress=bar.update)

    cache = context.run_on_main(build_cache, "decoding the frame cache")
    if cache is None:  # ranks > 0, once rank 0 has built it
        cache = open_frame_cache(config.data, cache_root, build=False)
    split = select_samples(cache, config.data, config.model)
    stereo = config.model.uses_stereo
    motion = config.loss.velocity_weight > 0.0
    camera_motion = config.loss.pose_weight > 0.0
    if camera_motion and (cache.camera_poses is None or not np.isfinite(cache.camera_poses).any()):
        _LOG.warning("loss.pose_weight is %g but no frame has a camera pose (it needs --odometry-topic and the "
                     "camera's mounting on /tf_static): training without pose supervision", config.loss.pose_weight)
    train = SnippetDataset(cache, split.train, config.augment, stereo=stereo, with_depth=False, with_motion=motion,
                           with_camera_motion=camera_motion)
    val = None
    if len(split.val):
        val = SnippetDataset(
            cache, split.val, None, stereo=stereo, with_depth=cache.depth is not None, with_motion=motion,
            with_camera_motion=camera_motion,
        )
    return TrainingData(cache=cache, split=split, train=train, val=val)
