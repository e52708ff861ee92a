"""Turning 8-bit RGB frames into network input, on the device the network runs on."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["rgb_to_tensor", "resize_to_network"]


def rgb_to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float in [0, 1] on ``device``.

    The uint8 frame is uploaded as is (a quarter of the float bytes) and converted on the device.

    Raises:
        ValueError: not an (H, W, 3) uint8 array, or an empty one.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got shape {shape} dtype {dtype}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"expected a non-empty image, got shape {rgb.shape}")
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
