"""Anti-aliased procedural texture building blocks (torch, any device).

Every texture is a function of a point on a surface plus its *footprint*, the width in metres that one
pixel covers there. Patterns are box-filtered over the footprint in closed form and noise octaves
finer than the footprint fade out, so distant surfaces turn smoothly to their mean colour instead of
aliasing. Apart from that filtering, colours depend only on the world point, so a surface looks the
same from every viewpoint (what self-supervised depth learning relies on).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["NoiseField", "filtered_pulse", "filtered_band", "hash2", "smoothstep"]

_NOISE_SIZE = 64  # texels per period of the noise image
_MIN_FILTER_WIDTH = 1e-4
# The finest noise octave has cells of this many footprints at least: detail down to the pixel grid,
# yet coarse enough that bilinear resampling between views reproduces it closely.
_DETAIL_FOOTPRINTS = 2.0
# Octave offsets (in texels) keep the octaves of one field from lining up with each other.
_OCTAVE_SHIFT = (7.31, 3.17)


class NoiseField:
    """Band-limited 2-D value noise on surface coordinates, sampled by ``grid_sample`` from a
    periodic random image.

    Args:
        seed: texture seed; equal seeds give identical fields.
        device: torch device of the noise image.
    """

    def __init__(self, seed: int, device: torch.device | str = "cpu") -> None:
        generator = torch.Generator().manual_seed(int(seed))
        image = torch.rand((_NOISE_SIZE, _NOISE_SIZE), generator=generator, dtype=torch.float64)
        # One [1, 2, 1] blur per axis (periodic) softens the bilinear creases of raw value noise.
        for axis in range(2):
            image = 0.25 * torch.roll(image, 1, axis) + 0.5 * image + 0.25 * torch.roll(image, -1, axis)
        image = (image - image.mean()) / image.std()
        # Wrap-pad by one texel so sampling over [0, N] with align_corners=True is seamless.
        image = F.pad(image[None, None], (0, 1, 0, 1), mode="circular")
        self.image = image.to(device=device, dtype=torch.float32)

    def sample(self, coords: torch.Tensor) -> torch.Tensor:
        """Noise at (O, N, 2) coordinates in texel units -> (O, N), zero mean, unit variance per texel.

        ``coords`` is used as scratch space (overwritten).
        """
        octaves, count, _ = coords.shape
        grid = coords.remainder_(float(_NOISE_SIZE)).mul_(2.0 / _NOISE_SIZE).sub_(1.0)
        out = F.grid_sample(self.image, grid.view(1, 1, octaves * count, 2), mode="bilinear",
                            padding_mode="border", align_corners=True)
        return out.view(octaves, count)

    def fractal(
        self,
        coords: torch.Tensor,
        footprint: torch.Tensor,
        finest_m: float,
        low_wavelength: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Footprint-adaptive fractal noise plus one fixed large-scale octave.

        Four octaves (cell sizes ``finest_m * 2**k``) are picked per point so that the finest one is
        about two footprints; the finest fades out and a coarser one fades in as the footprint
        grows, so the result is continuous in distance and never finer than the pixel grid.

        Args:
            coords: (N, 2) surface coordinates in metres.
            footprint: (N,) metres per pixel at each point.
            finest_m: smallest noise cell anywhere.
            low_wavelength: (N,) cell size of the large-scale octave per point (metres).
        Returns:
            ``(detail, low)``: (N,) each, zero mean, roughly unit variance.
        """
        level = torch.log2((_DETAIL_FOOTPRINTS / finest_m) * footprint).clamp_(min=0.0)
        base = torch.floor(level)
        fade = level - base
        grid = torch.empty((5,) + tuple(coords.shape), device=coords.device, dtype=coords.dtype)
        finest = coords * (torch.exp2(-base) * (1.0 / finest_m))[:, None]  # coords in cells of octave `base`
        shift = coords.new_tensor(_OCTAVE_SHIFT)
        offset = base[:, None] * shift  # octave k is shifted by k * _OCTAVE_SHIFT texels
        for k in range(4):
            torch.add(finest * (0.5**k), offset + k * shift, out=grid[k])
        torch.add(coords / low_wavelength[:, None], 11.0, out=grid[4])
        values = self.sample(grid)
        detail = values[1] + values[2] + values[0] + (values[3] - values[0]) * fade
        return detail * (1.0 / 1.8), values[4]


def smoothstep(edge0: float, edge1: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _pulse_integral(x: torch.Tensor, start, end) -> torch.Tensor:
    """Integral of the period-1 pulse on [start, end) from 0 to ``x``."""
    whole = torch.floor(x)
    return whole * (end - start) + (x - whole - start).clamp(min=0.0).clamp(max=end - start)


def filtered_pulse(x: torch.Tensor, start, end, width: torch.Tensor) -> torch.Tensor:
    """Periodic pulse (1 where ``frac(x)`` is in [start, end)) averaged over ``[x - width/2, x + width/2]``.

    ``x`` and ``width`` are in periods; once ``width`` exceeds a period the result is the duty cycle.
    ``start`` and ``end`` are floats or tensors broadcastable to ``x``.
    """
    width = width.clamp(min=_MIN_FILTER_WIDTH)
    half = 0.5 * width
    return ((_pulse_integral(x + half, start, end) - _pulse_integral(x - half, start, end)) / width).clamp(0.0, 1.0)


def filtered_band(x: torch.Tensor, start, end, width: torch.Tensor) -> torch.Tensor:
    """Non-periodic band (1 on [start, end]) averaged over ``[x - width/2, x + width/2]``."""
    width = width.clamp(min=_MIN_FILTER_WIDTH)
    half = 0.5 * width
    covered = (x + half).clamp(min=start).clamp(max=end) - (x - half).clamp(min=start).clamp(max=end)
    return (covered / width).clamp(0.0, 1.0)


def hash2(i: torch.Tensor, j: torch.Tensor, salt: int = 0) -> torch.Tensor:
    """Deterministic per-cell random value in [0, 1) from integer cell indices (any float input is floored)."""
    a = torch.floor(i).to(torch.int64)
    b = torch.floor(j).to(torch.int64)
    h = (a * 73856093) ^ (b * 19349663) ^ (salt * 83492791 + 0x2545F491)
    h = h & 0xFFFFFFFF
    h = ((h >> 16) ^ h) * 0x45D9F3B & 0xFFFFFFFF
    h = ((h >> 16) ^ h) * 0x45D9F3B & 0xFFFFFFFF
    h = (h >> 16) ^ h
    return (h & 0xFFFF).to(torch.float32) * (1.0 / 65536.0)
