"""The networks of a training run: depth, pose (one of three designs) and how they are initialised.

``MonodepthModel`` wraps them into the one module a step calls (and DistributedDataParallel wraps):
target and source frames in, disparities and source poses out. The pose designs are those of the
paper's ablation (Table 2 / supplementary):

* ``separate``: a ResNet pose encoder on each frame pair stacked on channels + ``PoseDecoder``
  (the paper's choice; stored in the official ``pose_encoder.pth`` / ``pose.pth``);
* ``shared``: a ``PoseDecoder`` on the depth encoder's deepest features of the two frames;
* ``posecnn``: a small stand-alone CNN, seven stride-2 convolutions and a 1x1 head.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from monodepth2_ros.errors import CheckpointError, ConfigError, MissingInputError
from monodepth2_ros.model.checkpoint import load_checkpoint
from monodepth2_ros.model.constants import ENCODER_MEAN, ENCODER_STD, NUM_SCALES, POSE_SCALE
from monodepth2_ros.model.encoder import ResnetEncoder, find_imagenet_weights, load_imagenet_weights
from monodepth2_ros.model.geometry import pose_vec_to_mat
from monodepth2_ros.model.networks import DepthNet, PoseNet
from monodepth2_ros.model.pose_decoder import PoseDecoder
from monodepth2_ros.training.config import ModelConfig

__all__ = ["Predictions", "PoseCNN", "SharedPoseDecoder", "MonodepthModel", "build_model", "POSECNN_CHANNELS"]

_LOG = logging.getLogger(__name__)

# The ablation's pose CNN: channels and kernel sizes of its seven stride-2 convolutions.
POSECNN_CHANNELS = (16, 32, 64, 128, 256, 256, 256)
POSECNN_KERNELS = (7, 5, 3, 3, 3, 3, 3)
_POSE_DOF = 6


@dataclass(frozen=True)
class Predictions:
    """What the networks predict for one batch.

    Attributes:
        disparities: sigmoid disparities, scale 0 (input size, (B, 1, H, W)) first.
        T_source_target: (B, S, 4, 4) float32, for each temporal source ``T_source_target`` (maps
            target-camera points into the source camera, what ``geometry.warp_image`` takes), or
            None without temporal sources.
    """

    disparities: tuple[torch.Tensor, ...]
    T_source_target: torch.Tensor | None


class PoseCNN(nn.Module):
    """Stand-alone pose network of the ablation: 7 stride-2 conv + ReLU, a 1x1 conv to 6, mean.

    Same interface as :class:`~monodepth2_ros.model.networks.PoseNet`: ``(axis_angle,
    translation)`` each (B, 1, 1, 3), scaled by ``POSE_SCALE``; the prediction is ``T_b_a``.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 2 * 3
        for out_channels, kernel in zip(POSECNN_CHANNELS, POSECNN_KERNELS, strict=True):
            layers += [nn.Conv2d(in_channels, out_channels, kernel, stride=2, padding=kernel // 2), nn.ReLU(inplace=True)]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(in_channels, _POSE_DOF, kernel_size=1)

    def forward(self, frame_a: torch.Tensor, frame_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (torch.cat([frame_a, frame_b], dim=1) - ENCODER_MEAN) / ENCODER_STD
        x = POSE_SCALE * self.head(self.features(x)).mean(dim=(2, 3)).view(-1, 1, 1, _POSE_DOF)
        return x[..., :3], x[..., 3:]


class SharedPoseDecoder(nn.Module):
    """Pose from the depth encoder's deepest features of a frame pair, concatenated on channels."""

    def __init__(self, encoder_channels: int) -> None:
        super().__init__()
        self.decoder = PoseDecoder(2 * encoder_channels)

    def forward(self, feature_a: torch.Tensor, feature_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoder(torch.cat([feature_a, feature_b], dim=1))


class MonodepthModel(nn.Module):
    """Depth and pose networks as one module: one forward per training step.

    Args:
        depth_net: the depth network (encoder + decoder).
        pose_net: ``PoseNet`` / ``PoseCNN`` (pairs of frames), ``SharedPoseDecoder`` (pairs of
            features), or None when there are no temporal sources (stereo-only training).
        pose_mode: one of ``config.POSE_MODES``.
        source_offsets: temporal offsets of the sources, e.g. (-1, 1).
        output_scales: how many disparities (finest first) ``forward`` returns: those the loss
            uses. DistributedDataParallel follows the outputs to find the parameters that get a
            gradient, so a returned but unused head would make it wait for gradients that never come.
    """

    def __init__(
        self,
        depth_net: DepthNet,
        pose_net: nn.Module | None,
        pose_mode: str,
        source_offsets: tuple[int, ...],
        output_scales: int = NUM_SCALES,
    ) -> None:
        super().__init__()
        if source_offsets and pose_net is None:
            raise ValueError(f"sources {source_offsets} need a pose network")
        self.depth_net = depth_net
        self.pose_net = pose_net
        self.pose_mode = pose_mode
        self.source_offsets = tuple(source_offsets)
        if not 1 <= output_scales <= NUM_SCALES:
            raise ValueError(f"output_scales must be in 1..{NUM_SCALES}, got {output_scales}")
        self.output_scales = output_scales

    def forward(self, target: torch.Tensor, sources: torch.Tensor) -> Predictions:
        """Args: target (B, 3, H, W) and sources (B, S, 3, H, W), network input in [0, 1]."""
        batch = target.shape[0]
        num_sources = len(self.source_offsets)
        if self.pose_mode == "shared" and num_sources:
            frames = torch.cat([target, sources.transpose(0, 1).reshape(-1, *target.shape[1:])])
            features = self.depth_net.encoder(frames)
            disparities = self.depth_net.decoder([f[:batch] for f in features])
            deepest = features[-1].view(1 + num_sources, batch, *features[-1].shape[1:])
            pair_inputs = [deepest[0]] + list(deepest[1:])
        else:
            disparities = self.depth_net(target)
            pair_inputs = [target] + list(sources.unbind(1))
        disparities = tuple(disparities[: self.output_scales])
        if not num_sources:
            return Predictions(tuple(disparities), None)
        # Each pair in temporal order: (source, target) for earlier sources, (target, source) for
        # later ones; the network predicts T_later_earlier, inverted for earlier sources so that
        # every transform is T_source_target. All pairs go through the network as one batch.
        firsts, seconds = [], []
        for offset, source in zip(self.source_offsets, pair_inputs[1:], strict=True):
            firsts.append(source if offset < 0 else pair_inputs[0])
            seconds.append(pair_inputs[0] if offset < 0 else source)
        axis_angle, translation = self.pose_net(torch.cat(firsts), torch.cat(seconds))
        with torch.autocast(device_type=target.device.type, enabled=False):
            axis_angle = axis_angle[:, 0].float().reshape(num_sources, batch, 3)
            translation = translation[:, 0].float().reshape(num_sources, batch, 3)
            transforms = [
                pose_vec_to_mat(axis_angle[i], translation[i], invert=offset < 0)
                for i, offset in enumerate(self.source_offsets)
            ]
        return Predictions(tuple(disparities), torch.stack(transforms, dim=1))

    def official_pose_net(self) -> PoseNet | None:
        """The pose network when it has the official format (``separate``), else None."""
        return self.pose_net if isinstance(self.pose_net, PoseNet) else None

    def extra_pose_state(self) -> dict[str, torch.Tensor] | None:
        """State of a pose network the official files cannot hold (``shared``/``posecnn``)."""
        if self.pose_net is None or isinstance(self.pose_net, PoseNet):
            return None
        return {key: value.detach().cpu() for key, value in self.pose_net.state_dict().items()}


def _imagenet_file(pretrained: str, num_layers: int) -> Path:
    path = Path(pretrained).expanduser()
    if path.is_dir():
        found = find_imagenet_weights(num_layers, path)
        if found is None:
            raise MissingInputError(f"no torchvision file resnet{num_layers}-*.pth in {path}")
        return found
    if not path.is_file():
        raise MissingInputError(f"ImageNet weights not found: {path} (expected a torchvision resnet*.pth file)")
    return path


def _freeze_unused_classifier(encoder: ResnetEncoder) -> None:
    """The ResNet's ``fc`` layer is kept for the checkpoint format but never used: no gradient."""
    for parameter in encoder.encoder.fc.parameters():
        parameter.requires_grad_(False)


def build_model(config: ModelConfig, output_scales: int = NUM_SCALES) -> MonodepthModel:
    """Build the networks of ``config`` and initialise them (ImageNet, a checkpoint, or at random).

    ``output_scales``: the disparities the model returns (``loss.scales``; see :class:`MonodepthModel`).

    Raises:
        MissingInputError: a weights file or folder does not exist.
        CheckpointError: a weights file does not fit.
        ConfigError: the ``init`` checkpoint's ResNet depth differs from ``model.num_layers``.
    """
    depth_net = DepthNet(config.num_layers)
    pose_net: nn.Module | None = None
    if config.needs_pose:
        if config.pose == "separate":
            pose_net = PoseNet(config.num_layers)
        elif config.pose == "shared":
            pose_net = SharedPoseDecoder(depth_net.encoder.feature_channels[-1])
        else:
            pose_net = PoseCNN()
    if config.pretrained is not None:
        weights = _imagenet_file(config.pretrained, config.num_layers)
        load_imagenet_weights(depth_net.encoder, weights)
        if isinstance(pose_net, PoseNet):
            load_imagenet_weights(pose_net.encoder, weights)
        _LOG.info("encoders initialised from ImageNet weights %s", weights)
    if config.init is not None:
        _load_init(config, depth_net, pose_net)
    _freeze_unused_classifier(depth_net.encoder)
    if isinstance(pose_net, PoseNet):
        _freeze_unused_classifier(pose_net.encoder)
    return MonodepthModel(depth_net, pose_net, config.pose, config.source_offsets, output_scales)


def _load_init(config: ModelConfig, depth_net: DepthNet, pose_net: nn.Module | None) -> None:
    checkpoint = load_checkpoint(config.init, load_pose=None)
    if checkpoint.info.num_layers != config.num_layers:
        raise ConfigError(
            f"--init {config.init} holds a ResNet-{checkpoint.info.num_layers} depth network but "
            f"model.num_layers is {config.num_layers}; set model.num_layers={checkpoint.info.num_layers}"
        )
    depth_net.load_state_dict(checkpoint.depth_net.state_dict())
    if isinstance(pose_net, PoseNet):
        if checkpoint.pose_net is None:
            _LOG.warning("%s has no pose network; the pose network starts untrained", config.init)
        elif checkpoint.pose_net.num_layers != pose_net.num_layers:
            raise CheckpointError(
                f"{config.init} has a ResNet-{checkpoint.pose_net.num_layers} pose encoder, "
                f"expected ResNet-{pose_net.num_layers}"
            )
        else:
            pose_net.load_state_dict(checkpoint.pose_net.state_dict())
    _LOG.info("networks initialised from checkpoint %s", config.init)

