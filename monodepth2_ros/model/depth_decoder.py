"""U-Net depth decoder of Monodepth2: sigmoid disparity at four scales."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from monodepth2_ros.model.constants import DECODER_CHANNELS, NUM_SCALES

__all__ = ["DepthDecoder", "ConvBlock", "reflect_conv3x3"]


def reflect_conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3x3 convolution over a reflection-padded input: no dark border in the disparity."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, padding_mode="reflect")


class ConvBlock(nn.Module):
    """Reflection-padded 3x3 convolution followed by ELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = reflect_conv3x3(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(self.conv(x))


class DecoderStage(nn.Module):
    """One upsampling step: reduce channels, upsample x2 (nearest), join the skip feature, fuse."""

    def __init__(self, in_channels: int, out_channels: int, skip_channels: int) -> None:
        super().__init__()
        self.reduce = ConvBlock(in_channels, out_channels)
        self.fuse = ConvBlock(out_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(self.reduce(x), scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.fuse(x)


class DepthDecoder(nn.Module):
    """Decoder from the encoder's five features to disparities at 1, 1/2, 1/4 and 1/8 of the input.

    Stage ``i`` (run from 4 down to 0) works at 1/2**i of the input size and joins encoder feature
    ``i - 1`` (the stem at 1/2 for i = 1; no skip at full resolution). Disparity head ``s`` reads
    the output of stage ``s``.

    Args:
        encoder_channels: channels of the five encoder features (``ResnetEncoder.feature_channels``).
    """

    def __init__(self, encoder_channels: Sequence[int]) -> None:
        super().__init__()
        if len(encoder_channels) != 5:
            raise ValueError(f"expected 5 encoder feature channels, got {list(encoder_channels)}")
        self.encoder_channels = tuple(encoder_channels)
        stages = []
        in_channels = encoder_channels[4]
        for level in range(4, -1, -1):  # deepest first
            skip_channels = encoder_channels[level - 1] if level > 0 else 0
            stages.append(DecoderStage(in_channels, DECODER_CHANNELS[level], skip_channels))
            in_channels = DECODER_CHANNELS[level]
        self.stages = nn.ModuleList(stages)
        self.disp_heads = nn.ModuleList(
            reflect_conv3x3(DECODER_CHANNELS[scale], 1) for scale in range(NUM_SCALES)
        )

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Sigmoid disparities, scale 0 (input size, (B, 1, H, W)) first, then H/2, H/4, H/8."""
        disparities: list[torch.Tensor] = [torch.empty(0)] * NUM_SCALES
        x = features[4]
        for stage, level in zip(self.stages, range(4, -1, -1)):
            x = stage(x, features[level - 1] if level > 0 else None)
            if level < NUM_SCALES:
                disparities[level] = torch.sigmoid(self.disp_heads[level](x))
        return tuple(disparities)
