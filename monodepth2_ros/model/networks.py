"""The two Monodepth2 networks as whole modules: depth (encoder + decoder) and pose (encoder + decoder)."""

from __future__ import annotations

import torch
from torch import nn

from monodepth2_ros.model.depth_decoder import DepthDecoder
from monodepth2_ros.model.encoder import ResnetEncoder
from monodepth2_ros.model.pose_decoder import PoseDecoder

__all__ = ["DepthNet", "PoseNet", "POSE_INPUT_FRAMES"]

# The released pose network sees two frames stacked on channels.
POSE_INPUT_FRAMES = 2


class DepthNet(nn.Module):
    """Image -> sigmoid disparities at four scales (scale 0 first, (B, 1, H, W))."""

    def __init__(self, num_layers: int = 18) -> None:
        super().__init__()
        self.encoder = ResnetEncoder(num_layers, num_input_images=1)
        self.decoder = DepthDecoder(self.encoder.feature_channels)

    @property
    def num_layers(self) -> int:
        return self.encoder.num_layers

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Args: images (B, 3, H, W) RGB in [0, 1], H and W multiples of 32."""
        return self.decoder(self.encoder(images))


class PoseNet(nn.Module):
    """Frame pair -> (axis_angle, translation), each (B, 2, 1, 3); prediction 0 is ``T_b_a``."""

    def __init__(self, num_layers: int = 18) -> None:
        super().__init__()
        self.encoder = ResnetEncoder(num_layers, num_input_images=POSE_INPUT_FRAMES)
        self.decoder = PoseDecoder(self.encoder.feature_channels[-1])

    @property
    def num_layers(self) -> int:
        return self.encoder.num_layers

    def forward(self, frame_a: torch.Tensor, frame_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: frame_a, frame_b (B, 3, H, W) RGB in [0, 1], in temporal order (a before b)."""
        features = self.encoder(torch.cat([frame_a, frame_b], dim=1))
        return self.decoder(features[-1])
