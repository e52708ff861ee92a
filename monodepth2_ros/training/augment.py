"""The paper's augmentation: random horizontal flips and colour jitter (Sec. 4.1).

Colour jitter draws one set of factors per sample and applies it to every frame of the sample, so
the frames stay photometrically consistent with each other; it changes only the network input,
never the images the loss compares. A flip mirrors all frames and the intrinsics with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms import functional as TF

from monodepth2_ros.training.config import AugmentConfig

__all__ = ["ColorJitter", "sample_color_jitter", "apply_color_jitter", "flip_normalized_intrinsics"]

_OPERATIONS = ("brightness", "contrast", "saturation", "hue")


@dataclass(frozen=True)
class ColorJitter:
    """One draw of the jitter: factors (1 = unchanged), hue shift (0 = unchanged), and the order."""

    brightness: float
    contrast: float
    saturation: float
    hue: float
    order: tuple[int, ...]


def sample_color_jitter(config: AugmentConfig, generator: torch.Generator | None = None) -> ColorJitter | None:
    """Draw the jitter of one sample, or None (with probability ``1 - jitter_probability``)."""

    def uniform(low: float, high: float) -> float:
        return float(low + (high - low) * torch.rand((), generator=generator))

    if float(torch.rand((), generator=generator)) >= config.jitter_probability:
        return None
    return ColorJitter(
        brightness=uniform(1.0 - config.brightness, 1.0 + config.brightness),
        contrast=uniform(1.0 - config.contrast, 1.0 + config.contrast),
        saturation=uniform(1.0 - config.saturation, 1.0 + config.saturation),
        hue=uniform(-config.hue, config.hue),
        order=tuple(int(i) for i in torch.randperm(len(_OPERATIONS), generator=generator)),
    )


def apply_color_jitter(images: torch.Tensor, jitter: ColorJitter) -> torch.Tensor:
    """Apply one jitter draw to every image.

    Args:
        images: (..., 3, H, W) uint8 or float in [0, 1]; the frames of one sample.
    Returns:
        Same shape and dtype.
    """
    adjust = {
        0: lambda x: TF.adjust_brightness(x, jitter.brightness),
        1: lambda x: TF.adjust_contrast(x, jitter.contrast),
        2: lambda x: TF.adjust_saturation(x, jitter.saturation),
        3: lambda x: TF.adjust_hue(x, jitter.hue),
    }
    out = images
    for operation in jitter.order:
        out = adjust[operation](out)
    return out


def flip_normalized_intrinsics(K_normalized: np.ndarray) -> np.ndarray:
    """Intrinsics of the horizontally mirrored image: ``cx' = 1 - cx`` (normalised), i.e.
    ``W - 1 - cx`` in pixels under the pixel-centre convention of ``model.geometry``; the skew
    changes sign."""
    flipped = np.array(K_normalized, dtype=np.float64, copy=True)
    flipped[..., 0, 2] = 1.0 - flipped[..., 0, 2]
    flipped[..., 0, 1] = -flipped[..., 0, 1]
    return flipped
