"""The training batch: one dataclass of named tensors (not a dict keyed by tuples)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import torch

__all__ = ["Sample", "Batch", "collate_samples"]

_UINT8_MAX = 255.0


@dataclass(frozen=True)
class Sample:
    """One training sample as a dataset worker produces it (images uint8, CHW).

    Attributes:
        target: (3, H, W) frame 0 as recorded; the loss compares against it.
        sources: (S, 3, H, W) the temporal source frames, in ``ModelConfig.source_offsets`` order.
        target_aug, sources_aug: the same frames colour-jittered: the networks' input.
        K: (3, 3) float32 pixel intrinsics at (H, W), flipped with the images.
        stereo: (3, H, W) the stereo partner of frame 0, or None.
        T_stereo: (4, 4) float32 known transform from frame 0 into the stereo camera, or None.
        gt_depth: (1, H, W) float32 ground-truth depth in metres (NaN unknown), or None.
        source_distance_m: (S,) float32 distance the odometry moved between frame 0 and each source
            (NaN unknown), or None without an odometry topic.
        index: the sample's position in its dataset.
        source_motion: (S, 4, 4) float32 ``T_source_target`` the odometry and the camera's mounting
            measured (mirrored with a flipped sample; NaN unknown), or None without pose supervision.
    """

    target: torch.Tensor
    sources: torch.Tensor
    target_aug: torch.Tensor
    sources_aug: torch.Tensor
    K: torch.Tensor
    stereo: torch.Tensor | None
    T_stereo: torch.Tensor | None
    gt_depth: torch.Tensor | None
    index: int
    source_distance_m: torch.Tensor | None = None
    source_motion: torch.Tensor | None = None


@dataclass(frozen=True)
class Batch:
    """A batch of :class:`Sample`; images are float in [0, 1] after :meth:`to`.

    Attributes:
        target: (B, 3, H, W) frame 0 as recorded (the photometric loss's reference).
        sources: (B, S, 3, H, W) temporal source frames as recorded (warped by the loss).
        target_aug: (B, 3, H, W) network input of frame 0 (colour-jittered).
        sources_aug: (B, S, 3, H, W) network input of the sources (pose network).
        K: (B, 3, 3) pixel intrinsics at (H, W).
        stereo: (B, 3, H, W) stereo partner of frame 0, or None.
        T_stereo: (B, 4, 4) ``T_stereo_target``, known from the calibration, or None.
        gt_depth: (B, 1, H, W) ground-truth depth in metres (NaN unknown), or None.
        index: (B,) int64 sample indices.
        source_distance_m: (B, S) odometry distance between frame 0 and each source in metres (NaN
            unknown), or None.
        source_motion: (B, S, 4, 4) measured ``T_source_target`` (NaN unknown), or None.
    """

    target: torch.Tensor
    sources: torch.Tensor
    target_aug: torch.Tensor
    sources_aug: torch.Tensor
    K: torch.Tensor
    stereo: torch.Tensor | None = None
    T_stereo: torch.Tensor | None = None
    gt_depth: torch.Tensor | None = None
    index: torch.Tensor | None = None
    source_distance_m: torch.Tensor | None = None
    source_motion: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.target.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the images."""
        return int(self.target.shape[-2]), int(self.target.shape[-1])

    def pin_memory(self) -> Batch:
        """Page-locked copies (called by ``DataLoader(pin_memory=True)``)."""
        return replace(
            self,
            **{f.name: value.pin_memory() for f in fields(self) if isinstance(value := getattr(self, f.name), torch.Tensor)},
        )

    def to(self, device: torch.device | str, channels_last: bool = False) -> Batch:
        """Move to ``device``; uint8 images become float in [0, 1] there (4x less to transfer).

        Args:
            channels_last: store the 4-D images in channels-last memory format (faster convolutions
                on recent GPUs and on CPUs with oneDNN).
        """
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, torch.Tensor):
                moved[f.name] = value
                continue
            value = value.to(device, non_blocking=True)
            if value.dtype == torch.uint8:
                value = value.float().div_(_UINT8_MAX)
            if channels_last and value.dim() == 4 and f.name in ("target", "target_aug", "stereo"):
                value = value.contiguous(memory_format=torch.channels_last)
            moved[f.name] = value
        return Batch(**moved)


def _stack_optional(values: Sequence[torch.Tensor | None], name: str) -> torch.Tensor | None:
    present = [v is not None for v in values]
    if not any(present):
        return None
    if not all(present):
        raise ValueError(f"some samples of the batch have {name} and some do not")
    return torch.stack(list(values))  # type: ignore[arg-type]


def collate_samples(samples: Sequence[Sample]) -> Batch:
    """Stack samples into a :class:`Batch` (the DataLoader's ``collate_fn``)."""
    return Batch(
        target=torch.stack([s.target for s in samples]),
        sources=torch.stack([s.sources for s in samples]),
        target_aug=torch.stack([s.target_aug for s in samples]),
        sources_aug=torch.stack([s.sources_aug for s in samples]),
        K=torch.stack([s.K for s in samples]),
        stereo=_stack_optional([s.stereo for s in samples], "stereo"),
        T_stereo=_stack_optional([s.T_stereo for s in samples], "T_stereo"),
        gt_depth=_stack_optional([s.gt_depth for s in samples], "gt_depth"),
        index=torch.tensor([s.index for s in samples], dtype=torch.int64),
        source_distance_m=_stack_optional([s.source_distance_m for s in samples], "source_distance_m"),
        source_motion=_stack_optional([s.source_motion for s in samples], "source_motion"),
    )
