"""Depth maps to colour images, fast enough for a live ``depth/colored`` topic.

A colormap is sampled once into a 256-entry uint8 lookup table (cached per name); colouring a frame
is then a few vectorised numpy operations and one table lookup, no per-pixel Python.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from monodepth2_ros.errors import ConfigError

__all__ = [
    "COLORMAPS",
    "DEFAULT_PERCENTILES",
    "colormap_lut",
    "depth_range",
    "colorize_depth",
]

# Names accepted by :func:`colorize_depth` (matplotlib's colormaps of those names).
COLORMAPS = ("magma", "turbo", "viridis", "jet", "gray")

# Robust automatic range: the 5th and 95th percentiles of the valid depths.
DEFAULT_PERCENTILES = (5.0, 95.0)

# The automatic range looks at no more than this many pixels (an even stride over the image).
_RANGE_SAMPLES = 1 << 16

_LUT_SIZE = 256
_MIN_SPAN = 1e-12


@lru_cache(maxsize=len(COLORMAPS))
def _cached_lut(name: str) -> np.ndarray:
    import matplotlib  # imported here so that importing this module stays cheap

    samples = matplotlib.colormaps[name](np.linspace(0.0, 1.0, _LUT_SIZE))[:, :3]
    lut = np.round(samples * 255.0).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 RGB table of a colormap in :data:`COLORMAPS` (read-only, cached).

    Raises:
        ConfigError: the name is not one of :data:`COLORMAPS`.
    """
    if name not in COLORMAPS:
        raise ConfigError(f"unknown colormap {name!r}; expected one of {', '.join(COLORMAPS)}")
    return _cached_lut(name)


def depth_range(
    depth: np.ndarray, percentiles: tuple[float, float] = DEFAULT_PERCENTILES
) -> tuple[float, float]:
    """Robust ``(vmin, vmax)`` of a depth map: percentiles of its finite, positive pixels.

    Large maps are subsampled with an even stride (at most 65536 pixels), enough for a display range.
    Returns ``(1.0, 1.0)`` when no pixel is valid (everything will be drawn black anyway).
    """
    flat = np.asarray(depth).reshape(-1)
    flat = flat[:: max(1, flat.size // _RANGE_SAMPLES)]
    valid = flat[np.isfinite(flat) & (flat > 0)]
    if valid.size == 0:
        return 1.0, 1.0
    low, high = np.percentile(valid, percentiles)
    return float(low), float(high)


@lru_cache(maxsize=2 * len(COLORMAPS))
def _lut_with_black(name: str, bgr: bool) -> np.ndarray:
    """The table in RGB or BGR order plus a last black entry, where invalid pixels point."""
    lut = colormap_lut(name)
    table = np.zeros((_LUT_SIZE + 1, 3), dtype=np.uint8)
    table[:_LUT_SIZE] = lut[:, ::-1] if bgr else lut
    table.setflags(write=False)
    return table


def colorize_depth(
    depth: np.ndarray,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "magma",
    inverse: bool = True,
    out: np.ndarray | None = None,
    bgr: bool = False,
) -> np.ndarray:
    """Colour a depth map.

    With ``inverse=True`` (the Monodepth2 look) the colour follows disparity ``1/depth``: depth
    ``vmin`` (near) maps to the *top* of the colormap, ``vmax`` (far) to the bottom, and near
    structure gets most of the colour range. With ``inverse=False`` depth maps linearly, ``vmin`` to
    the bottom and ``vmax`` to the top. Values beyond the range saturate at the ends.

    Args:
        depth: (H, W) depth, metres; NaN, inf, zero and negative pixels are drawn black.
        vmin, vmax: depth range in metres, > 0; either one left out comes from
            :func:`depth_range` (5th / 95th percentile). Fix both for a stable live display.
        cmap: one of :data:`COLORMAPS`.
        inverse: scale by inverse depth (True) or depth (False).
        out: (H, W, 3) uint8 array to write into (e.g. a message's buffer): no image-sized
            allocation per frame.
        bgr: channels in BGR order (a ``bgr8`` image) instead of RGB.
    Returns:
        (H, W, 3) uint8 RGB (BGR with ``bgr``): ``out`` when given.
    Raises:
        ConfigError: unknown colormap, or a non-positive or empty range.
    """
    lut = _lut_with_black(cmap, bgr) if cmap in COLORMAPS else colormap_lut(cmap)  # the latter raises
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f"expected an (H, W) depth map, got shape {depth.shape}")
    if vmin is None or vmax is None:
        auto_min, auto_max = depth_range(depth)
        vmin = auto_min if vmin is None else vmin
        vmax = auto_max if vmax is None else vmax
    if not 0.0 < vmin <= vmax:
        raise ConfigError(
            f"depth colour range must satisfy 0 < vmin <= vmax, got vmin={vmin}, vmax={vmax}"
        )

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        valid = np.isfinite(depth) & (depth > 0)
        if inverse:
            low, high = 1.0 / vmax, 1.0 / vmin
            values = 1.0 / depth
        else:
            low, high = vmin, vmax
            values = depth
        scale = (_LUT_SIZE - 1) / max(high - low, _MIN_SPAN)
        position = (values - np.float32(low)) * np.float32(scale) + np.float32(0.5)
    np.clip(position, 0.0, _LUT_SIZE - 1, out=position)
    position[~valid] = _LUT_SIZE  # the black entry
    index = position.astype(np.uint16)
    if out is None:
        return lut[index]
    if out.shape != (*depth.shape, 3) or out.dtype != np.uint8:
        raise ValueError(f"out must be a {depth.shape + (3,)} uint8 array, got {out.shape} {out.dtype}")
    np.take(lut, index, axis=0, out=out)
    return out
