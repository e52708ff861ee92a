"""Inference-only rewrites of the networks: BatchNorm folded into convolutions, channels-last layout.

At inference a BatchNorm is a fixed per-channel affine map, ``y = gamma * (x - mean) / sqrt(var + eps)
+ beta``, so it can be absorbed into the convolution in front of it: one pass over memory instead of
two, and no separate kernel launch. The folded network computes the same function (to rounding).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

__all__ = ["fold_conv_bn", "fold_batchnorm", "optimized_copy", "count_batchnorms"]

# (convolution, BatchNorm) attribute pairs of torchvision's residual blocks.
_BLOCK_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new convolution computing ``bn(conv(x))`` with ``bn`` in eval mode (its running statistics).

    With ``s = gamma / sqrt(running_var + eps)`` (per output channel), the folded weight is
    ``W * s`` (broadcast over the output-channel axis) and the bias ``(b - running_mean) * s + beta``,
    where ``b`` is the convolution's bias or 0. Computed in float64, stored in the conv's dtype.

    Raises:
        ValueError: the BatchNorm's channel count is not the convolution's output channels.
    """
    if bn.num_features != conv.out_channels:
        raise ValueError(
            f"BatchNorm has {bn.num_features} channels but the convolution outputs {conv.out_channels}"
        )
    weight = conv.weight.detach().double()
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros(conv.out_channels, dtype=torch.float64, device=weight.device)
    mean = bn.running_mean.detach().double()
    var = bn.running_var.detach().double()
    gamma = bn.weight.detach().double() if bn.affine else torch.ones_like(mean)
    beta = bn.bias.detach().double() if bn.affine else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + bn.eps)
    folded = copy.deepcopy(conv)
    folded.bias = nn.Parameter(torch.empty(conv.out_channels, dtype=conv.weight.dtype, device=conv.weight.device))
    with torch.no_grad():
        folded.weight.copy_(weight * scale.reshape(-1, *([1] * (weight.dim() - 1))))
        folded.bias.copy_((bias - mean) * scale + beta)
    return folded.requires_grad_(False)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every BatchNorm of ``module``'s ResNet trunks into its convolution, in place.

    Handles torchvision's ``ResNet`` stem (``conv1``/``bn1``), ``BasicBlock`` and ``Bottleneck``
    (``convN``/``bnN`` and the ``downsample`` Sequential); each folded BatchNorm becomes an
    ``nn.Identity`` so ``forward`` is unchanged. Only valid for inference (eval mode).

    Returns:
        ``module`` itself.
    """
    for child in module.modules():
        if isinstance(child, (tv_resnet.ResNet, tv_resnet.BasicBlock, tv_resnet.Bottleneck)):
            for conv_name, bn_name in _BLOCK_PAIRS:
                conv, bn = getattr(child, conv_name, None), getattr(child, bn_name, None)
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    setattr(child, conv_name, fold_conv_bn(conv, bn))
                    setattr(child, bn_name, nn.Identity())
            downsample = getattr(child, "downsample", None)
            if (
                isinstance(downsample, nn.Sequential)
                and len(downsample) == 2
                and isinstance(downsample[0], nn.Conv2d)
                and isinstance(downsample[1], nn.BatchNorm2d)
            ):
                child.downsample = nn.Sequential(fold_conv_bn(downsample[0], downsample[1]), nn.Identity())
    return module


def count_batchnorms(module: nn.Module) -> int:
    """Number of BatchNorm layers left in ``module`` (0 after a complete fold)."""
    return sum(isinstance(child, nn.modules.batchnorm._BatchNorm) for child in module.modules())


def optimized_copy(
    module: nn.Module,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = True,
) -> nn.Module:
    """An eval-mode copy of ``module`` with BatchNorm folded, on ``device``, in ``dtype``.

    The original is left untouched. ``channels_last`` (NHWC) lets oneDNN and cuDNN pick their fast
    convolution kernels without reordering every activation tensor.
    """
    optimized = fold_batchnorm(copy.deepcopy(module).eval())
    optimized = optimized.to(device=device, dtype=dtype)
    if channels_last:
        optimized = optimized.to(memory_format=torch.channels_last)
    return optimized.requires_grad_(False)
