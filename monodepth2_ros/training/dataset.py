"""The training and validation datasets over a :class:`FrameCache`, and their loaders."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from monodepth2_ros.model.constants import STEREO_SCALE
from monodepth2_ros.model.geometry import denormalize_intrinsics
from monodepth2_ros.training.augment import apply_color_jitter, flip_normalized_intrinsics, sample_color_jitter
from monodepth2_ros.training.batch import Sample, collate_samples
from monodepth2_ros.training.config import AugmentConfig
from monodepth2_ros.training.frame_cache import FrameCache
from monodepth2_ros.training.samples import camera_motion, odometry_motion

__all__ = ["SnippetDataset", "ResumableSampler", "make_loader", "usable_workers", "batches_per_epoch", "stereo_transform", "mirror_motion"]


def stereo_transform(baseline_m: float, flipped: bool) -> torch.Tensor:
    """(4, 4) ``T_right_left`` in network units: the right camera sits ``B`` along the left's +x.

    The translation is ``-B / STEREO_SCALE``, so depths come out in the official stereo models'
    units (``depth * STEREO_SCALE`` is metric, which is what ``use_stereo`` in the checkpoint
    tells the nodes). A flipped pair mirrors the geometry: the partner then sits at ``-x``.
    """
    T = torch.eye(4, dtype=torch.float32)
    T[0, 3] = (1.0 if flipped else -1.0) * baseline_m / STEREO_SCALE
    return T


def mirror_motion(T: torch.Tensor) -> torch.Tensor:
    """(..., 4, 4) camera motions as seen in horizontally mirrored images: x negated on both sides."""
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=T.dtype))
    return mirror @ T @ mirror


class SnippetDataset(Dataset):
    """Samples (target + sources, optional stereo partner and ground truth) from a frame cache.

    Args:
        cache: the decoded frames.
        snippets: (M, 1 + S) frame indices, column 0 the target (see ``samples.select_samples``).
        augment: augmentation settings, or None for none (validation).
        stereo: add each target's stereo partner and its known transform.
        with_depth: add ground-truth depth (when the cache has it).
        with_motion: add the odometry distance from the target to each source (when the cache has
            odometry positions), for the loss's velocity supervision.
        with_camera_motion: add the measured camera motion to each source (when the cache has camera
            poses), for the loss's pose supervision.
    """

    def __init__(
        self,
        cache: FrameCache,
        snippets: np.ndarray,
        augment: AugmentConfig | None,
        stereo: bool = False,
        with_depth: bool = False,
        with_motion: bool = False,
        with_camera_motion: bool = False,
    ) -> None:
        self.cache = cache
        self.snippets = np.asarray(snippets, dtype=np.int64)
        self.augment = augment
        self.stereo = stereo
        self.with_depth = with_depth and cache.depth is not None
        # (M, S) odometry distance from each target to its sources, once for all epochs (or None).
        # (M, S, 4, 4) measured T_source_target, likewise (or None).
        self.source_distance_m: np.ndarray | None = None
        self.source_motion: np.ndarray | None = None
        distances = with_motion and cache.positions is not None
        motions = with_camera_motion and cache.camera_poses is not None
        if distances or motions:
            targets, sources = self.snippets[:, :1], self.snippets[:, 1:]
            pairs = np.stack(np.broadcast_arrays(targets, sources), axis=-1).reshape(-1, 2)
            if distances:
                self.source_distance_m = odometry_motion(cache.positions, pairs).reshape(sources.shape).astype(np.float32)
            if motions:
                self.source_motion = (camera_motion(cache.camera_poses, pairs).reshape(*sources.shape, 4, 4)
                                      .astype(np.float32))
        # A sample's flip and jitter depend only on (seed, epoch, index), never on what ran before:
        # a run resumed from a checkpoint augments exactly as the uninterrupted run would have.
        self.augmentation_seed = 0
        self.epoch = 0
        if stereo and (cache.right is None or cache.baseline_m is None):
            raise ValueError("stereo samples need a frame cache with right images")

    def __len__(self) -> int:
        return len(self.snippets)

    @staticmethod
    def _chw(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(image)).permute(2, 0, 1)  # a copy: the cache is read-only

    def __getitem__(self, index: int) -> Sample:
        frames = self.snippets[index]
        target_index = int(frames[0])
        height, width = self.cache.size
        images = torch.stack([self._chw(self.cache.images[int(i)]) for i in frames])  # (1+S, 3, H, W)
        stereo = self._chw(self.cache.right[target_index]).unsqueeze(0) if self.stereo else None
        depth = None
        if self.with_depth:
            depth = torch.from_numpy(np.array(self.cache.depth[target_index], dtype=np.float32)).unsqueeze(0)
        distance = None
        if self.source_distance_m is not None:  # a mirror image moves as far: the flip leaves it alone
            distance = torch.from_numpy(self.source_distance_m[index].copy())
        motion = None
        if self.source_motion is not None:
            motion = torch.from_numpy(self.source_motion[index].copy())
        K_normalized = self.cache.K_normalized[target_index]
        flipped = False
        augmented = images
        if self.augment is not None:
            entropy = np.random.SeedSequence([self.augmentation_seed, self.epoch, int(index)]).generate_state(1)[0]
            generator = torch.Generator().manual_seed(int(entropy))
            flipped = bool(torch.rand((), generator=generator) < self.augment.flip_probability)
            if flipped:
                images = images.flip(-1)
                stereo = stereo.flip(-1) if stereo is not None else None
                depth = depth.flip(-1) if depth is not None else None
                motion = mirror_motion(motion) if motion is not None else None
                K_normalized = flip_normalized_intrinsics(K_normalized)
            jitter = sample_color_jitter(self.augment, generator)
            augmented = apply_color_jitter(images, jitter) if jitter is not None else images
        K = torch.from_numpy(denormalize_intrinsics(np.array(K_normalized), height, width)).float()
        T_stereo = None
        if self.stereo:
            T_stereo = stereo_transform(float(self.cache.baseline_m[target_index]), flipped)
        return Sample(
            target=images[0],
            sources=images[1:],
            target_aug=augmented[0],
            sources_aug=augmented[1:],
            K=K,
            stereo=stereo[0] if stereo is not None else None,
            T_stereo=T_stereo,
            gt_depth=depth,
            index=int(index),
            source_distance_m=distance,
            source_motion=motion,
        )


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can start an epoch part-way, to resume after an interruption.

    The order of an epoch depends only on ``seed`` and the epoch, so skipping the samples already
    seen reproduces the rest of an interrupted epoch exactly. Works without a process group
    (pass ``num_replicas=1, rank=0``).
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, shuffle: bool, seed: int, drop_last: bool):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        """Iterate epoch ``epoch`` from this rank's ``start``-th sample on."""
        self.set_epoch(epoch)
        self.start = int(start)
        if isinstance(self.dataset, SnippetDataset):
            self.dataset.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start :])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)


def usable_workers(requested: int) -> int:
    """Loader workers worth starting: at most one per core beside the training process's own.

    On a 2-core robot computer four workers only compete with the training step for the CPU.
    """
    if requested <= 0:
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return min(requested, max(1, cores - 1))


def make_loader(
    dataset: SnippetDataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int,
    pin_memory: bool,
    seed: int,
    num_replicas: int = 1,
    rank: int = 0,
) -> tuple[DataLoader, ResumableSampler]:
    """A DataLoader of :class:`~monodepth2_ros.training.batch.Batch` and its sampler.

    The last incomplete batch is dropped when training (BatchNorm dislikes a batch of one and the
    step count per epoch stays fixed), unless the dataset is smaller than one batch per rank.
    """
    drop_last = shuffle and len(dataset) >= batch_size * num_replicas
    dataset.augmentation_seed = int(seed)
    sampler = ResumableSampler(dataset, num_replicas, rank, shuffle=shuffle, seed=seed, drop_last=False)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_samples,
        pin_memory=pin_memory,
        drop_last=drop_last,
        persistent_workers=False,
        # Starting an epoch draws worker seeds from this generator, not the global one, which the
        # loss's tie-break noise uses and a checkpoint restores: resuming then replays it exactly.
        generator=torch.Generator().manual_seed(int(seed)),
    )
    return loader, sampler


def batches_per_epoch(num_samples: int, batch_size: int, num_replicas: int, drop_last: bool) -> int:
    """Optimiser steps in one epoch on each rank."""
    per_rank = math.ceil(num_samples / num_replicas)
    return per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)
