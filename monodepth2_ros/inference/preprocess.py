"""Turning 8-bit RGB frames into network input, on the device the network runs on."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["rgb_to_tensor", "resize_to_network", "network_input", "network_image"]


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got shape {shape} dtype {dtype}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"expected a non-empty image, got shape {rgb.shape}")


def rgb_to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float in [0, 1] on ``device``.

    The uint8 frame is uploaded as is (a quarter of the float bytes) and converted on the device.

    Raises:
        ValueError: not an (H, W, 3) uint8 array, or an empty one.
    """
    _check_rgb(rgb)
    if not rgb.flags.writeable:  # e.g. a view of a message buffer; torch wants writable memory
        rgb = rgb.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).to(device, non_blocking=True)
    return tensor.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def resize_to_network(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize (B, 3, H, W) to the network size.

    Antialiased bilinear interpolation: close to the Lanczos resampling the official models were
    trained with when shrinking a camera frame, and it runs on the GPU.
    """
    if images.shape[-2:] == (height, width):
        return images
    return F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def _resized_levels(rgb: np.ndarray, height: int, width: int, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, height, width) float 8-bit levels (0..255, whole numbers) on ``device``.

    The resize works on the 0..255 levels and rounds back to whole levels, so the network input of a
    frame is the same whether it is made here at once (nodes, infer, evaluate) or stored as 8 bits
    first and divided later (the training frame cache): bit for bit.
    """
    _check_rgb(rgb)
    if not rgb.flags.writeable:
        rgb = rgb.copy()
    levels = torch.from_numpy(np.ascontiguousarray(rgb)).to(device, non_blocking=True).permute(2, 0, 1).unsqueeze(0).float()
    if levels.shape[-2:] == (height, width):
        return levels
    return resize_to_network(levels, height, width).round_().clamp_(0.0, 255.0)


def network_input(rgb: np.ndarray, height: int, width: int, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 RGB of the (rectified) camera -> the network's (1, 3, height, width) input in [0, 1].

    The one way a frame becomes network input, in training (through :func:`network_image`), in the
    nodes, ``infer``, ``evaluate`` and ``bench``.
    """
    return _resized_levels(rgb, height, width, device).div_(255.0)


def network_image(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (height, width, 3) uint8: :func:`network_input` before the division by 255.

    The training frame cache stores these; ``float / 255`` of them is :func:`network_input` exactly.
    """
    if rgb.shape[:2] == (height, width):
        return np.ascontiguousarray(rgb)
    levels = _resized_levels(rgb, height, width, torch.device("cpu"))
    return levels[0].permute(1, 2, 0).to(torch.uint8).contiguous().numpy()
