"""Pose decoder of Monodepth2: relative camera motion from the pose encoder's deepest feature."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from monodepth2_ros.model.constants import POSE_SCALE

__all__ = ["PoseDecoder", "POSE_PREDICTIONS"]

# The released pose decoder predicts two (axis-angle, translation) pairs per input; only the first
# is used, but the output layer's shape is part of the checkpoint format.
POSE_PREDICTIONS = 2


class PoseDecoder(nn.Module):
    """1x1 squeeze, two 3x3 convolutions, a 1x1 head, then a spatial mean.

    Args:
        encoder_channels: channels of the pose encoder's deepest feature (512 for ResNet-18/34).
    """

    def __init__(self, encoder_channels: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(encoder_channels, 256, kernel_size=1)
        self.conv1 = nn.Conv2d(256, 256, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(256, 256, kernel_size=3, padding=1)
        self.head = nn.Conv2d(256, 6 * POSE_PREDICTIONS, kernel_size=1)

    def forward(self, deepest_feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw pose outputs for a frame pair.

        Args:
            deepest_feature: (B, C, h, w), the last feature of the pose encoder.
        Returns:
            ``(axis_angle, translation)``, each (B, 2, 1, 3), already scaled by ``POSE_SCALE``. For
            an input pair (a, b), prediction 0 is ``T_b_a`` (maps frame-a points into frame b);
            see ``geometry.pose_vec_to_mat``.
        """
        x = F.relu(self.squeeze(deepest_feature))
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.head(x).mean(dim=(2, 3))
        x = POSE_SCALE * x.view(-1, POSE_PREDICTIONS, 1, 6)
        return x[..., :3], x[..., 3:]
