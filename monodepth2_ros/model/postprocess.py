"""The paper's flip post-processing ("PP" in its tables) of disparity maps."""

from __future__ import annotations

import torch

__all__ = ["flip_blend_weights", "blend_flipped_disparity"]

# The mirrored prediction owns the left 5 % of columns, fades out by 10 %; the direct one mirrors that.
_RAMP_START = 0.05
_RAMP_SLOPE = 20.0


def flip_blend_weights(width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(W,) weight of the mirrored prediction per column: 1 at the left border, 0 past 10 %."""
    position = torch.linspace(0.0, 1.0, width, device=device, dtype=dtype)
    return 1.0 - torch.clamp(_RAMP_SLOPE * (position - _RAMP_START), 0.0, 1.0)


def blend_flipped_disparity(disp: torch.Tensor, disp_of_flipped: torch.Tensor) -> torch.Tensor:
    """Blend a disparity with the disparity predicted for the mirrored image.

    A network sees no right-hand context at the left border of the image (and vice versa), so each
    border is taken from the prediction that had the image content beside it; the middle is the
    mean of the two, which removes much of the stereo-occlusion artefact.

    Args:
        disp: (..., H, W) disparity of the image.
        disp_of_flipped: (..., H, W) disparity predicted for the horizontally mirrored image, as
            predicted (still mirrored); this function mirrors it back.
    Returns:
        (..., H, W) blended disparity.
    """
    mirrored_back = torch.flip(disp_of_flipped, dims=[-1])
    left = flip_blend_weights(disp.shape[-1], disp.device, disp.dtype)
    right = torch.flip(left, dims=[-1])
    mean = 0.5 * (disp + mirrored_back)
    return right * disp + left * mirrored_back + (1.0 - left - right) * mean
