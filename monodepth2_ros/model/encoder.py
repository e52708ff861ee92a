"""ResNet encoder of Monodepth2: torchvision's ResNet, returning five feature maps.

The official checkpoints store the ResNet under the ``encoder.`` prefix with torchvision's own
parameter names (``fc`` included, though unused), so the module keeps exactly that structure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from monodepth2_ros.errors import CheckpointError
from monodepth2_ros.model.constants import ENCODER_MEAN, ENCODER_STD

__all__ = ["ResnetEncoder", "ResnetSpec", "RESNET_SPECS", "load_imagenet_weights", "find_imagenet_weights"]


@dataclass(frozen=True)
class ResnetSpec:
    """How one ResNet depth is built, and the channels of the five features it returns."""

    block: type[nn.Module]
    blocks_per_stage: tuple[int, int, int, int]

    @property
    def feature_channels(self) -> tuple[int, ...]:
        expansion = self.block.expansion
        return (64, 64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion)


RESNET_SPECS: dict[int, ResnetSpec] = {
    18: ResnetSpec(tv_resnet.BasicBlock, (2, 2, 2, 2)),
    34: ResnetSpec(tv_resnet.BasicBlock, (3, 4, 6, 3)),
    50: ResnetSpec(tv_resnet.Bottleneck, (3, 4, 6, 3)),
    101: ResnetSpec(tv_resnet.Bottleneck, (3, 4, 23, 3)),
    152: ResnetSpec(tv_resnet.Bottleneck, (3, 8, 36, 3)),
}


def _resnet_spec(num_layers: int) -> ResnetSpec:
    try:
        return RESNET_SPECS[num_layers]
    except KeyError:
        raise ValueError(
            f"num_layers={num_layers} is not a ResNet depth; expected one of {sorted(RESNET_SPECS)}"
        ) from None


class ResnetEncoder(nn.Module):
    """ResNet trunk over ``num_input_images`` RGB frames stacked on channels.

    Args:
        num_layers: 18, 34, 50, 101 or 152.
        num_input_images: 1 for the depth encoder, 2 for the pose encoder (frames concatenated).
    """

    def __init__(self, num_layers: int = 18, num_input_images: int = 1) -> None:
        super().__init__()
        if num_input_images < 1:
            raise ValueError(f"num_input_images must be >= 1, got {num_input_images}")
        spec = _resnet_spec(num_layers)
        self.num_layers = num_layers
        self.num_input_images = num_input_images
        self.feature_channels = spec.feature_channels
        self.encoder = tv_resnet.ResNet(spec.block, list(spec.blocks_per_stage))
        if num_input_images > 1:
            self.encoder.conv1 = nn.Conv2d(
                3 * num_input_images, 64, kernel_size=7, stride=2, padding=3, bias=False
            )
            nn.init.kaiming_normal_(self.encoder.conv1.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Features at 1/2, 1/4, 1/8, 1/16 and 1/32 of the input size.

        Args:
            images: (B, 3 * num_input_images, H, W) RGB in [0, 1].
        Returns:
            Five tensors, channels ``self.feature_channels``.
        """
        net = self.encoder
        x = (images - ENCODER_MEAN) / ENCODER_STD
        stem = net.relu(net.bn1(net.conv1(x)))
        layer1 = net.layer1(net.maxpool(stem))
        layer2 = net.layer2(layer1)
        layer3 = net.layer3(layer2)
        layer4 = net.layer4(layer3)
        return [stem, layer1, layer2, layer3, layer4]


def find_imagenet_weights(num_layers: int, search_dir: str | Path | None = None) -> Path | None:
    """A torchvision ImageNet ResNet file already on disk (``resnet18-*.pth``), or None.

    Looks in ``search_dir`` or else torchvision's cache (``torch.hub.get_dir()/checkpoints``). Never
    downloads: robots and CI machines are often offline.
    """
    folder = Path(search_dir) if search_dir is not None else Path(torch.hub.get_dir()) / "checkpoints"
    candidates = sorted(folder.glob(f"resnet{num_layers}-*.pth")) if folder.is_dir() else []
    return candidates[0] if candidates else None


def load_imagenet_weights(encoder: ResnetEncoder, path: str | Path) -> None:
    """Initialise ``encoder`` from a torchvision ImageNet state dict file.

    For a multi-image encoder the first convolution's weights are repeated for every input frame and
    divided by the number of frames, so the initial response to identical frames is unchanged.

    Raises:
        CheckpointError: the file is missing, unreadable, or is not a ResNet of this depth.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ImageNet weights not found: {path} (expected a torchvision resnet*.pth file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt file
        raise CheckpointError(f"cannot read ImageNet weights {path}: {err}") from err
    if not isinstance(state, dict) or "conv1.weight" not in state:
        raise CheckpointError(f"{path} is not a torchvision ResNet state dict (no 'conv1.weight')")
    state = dict(state)
    if encoder.num_input_images > 1:
        state["conv1.weight"] = (
            torch.cat([state["conv1.weight"]] * encoder.num_input_images, dim=1) / encoder.num_input_images
        )
    try:
        encoder.encoder.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"{path} does not fit a ResNet-{encoder.num_layers} encoder: {str(err).splitlines()[0]}"
        ) from err
