"""Real photographs as surface textures: scikit-image's bundled sample images (shipped inside the
package, nothing is downloaded), as a mip pyramid sampled by footprint like the procedural textures.

Every photo is centre-cropped to a square, resized to :data:`PHOTO_SIZE` and tiled mirrored across a
surface (no seams); grey photos carry the surface's colour, colour photos keep theirs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from monodepth2_ros.errors import ConfigError

__all__ = ["PHOTO_NAMES", "PHOTO_SIZE", "PhotoAtlas", "photo_count"]

# scikit-image sample images that ship with the wheel (skimage/data/*.png|jpg): textures and scenes.
PHOTO_NAMES = ("brick", "grass", "gravel", "coffee", "chelsea", "astronaut", "rocket", "camera", "coins",
               "moon", "page", "immunohistochemistry")
PHOTO_SIZE = 256
_LEVELS = int(np.log2(PHOTO_SIZE)) + 1
_DETAIL_FOOTPRINTS = 2.0


def photo_count() -> int:
    return len(PHOTO_NAMES)


def _load_photos() -> torch.Tensor:
    """(P, 4, S, S) float32: RGB in [0, 1] and a channel that is 1 for grey photos."""
    try:
        from skimage import data
    except ImportError as err:  # pragma: no cover - scikit-image is in requirements.txt
        raise ConfigError(
            "the randomised synthetic worlds map scikit-image's sample photos onto surfaces; "
            "install it with `pip install scikit-image`"
        ) from err
    photos = []
    for name in PHOTO_NAMES:
        image = np.asarray(getattr(data, name)())
        grey = image.ndim == 2
        if grey:
            image = np.repeat(image[..., None], 3, axis=2)
        image = image[..., :3].astype(np.float32) / 255.0
        side = min(image.shape[:2])
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        square = torch.from_numpy(np.ascontiguousarray(image[top:top + side, left:left + side])).permute(2, 0, 1)
        square = F.interpolate(square[None], size=(PHOTO_SIZE, PHOTO_SIZE), mode="area")[0]
        flag = torch.full((1, PHOTO_SIZE, PHOTO_SIZE), 1.0 if grey else 0.0)
        photos.append(torch.cat([square, flag], dim=0))
    return torch.stack(photos)


class PhotoAtlas:
    """All photos at every mip level on one device, sampled in one ``grid_sample`` per level."""

    _cache: dict[str, "PhotoAtlas"] = {}

    def __init__(self, device: torch.device) -> None:
        level = _load_photos().to(device)  # (P, 4, S, S)
        self.levels = []
        for _ in range(_LEVELS):
            # (1, 4, P, S, S): photos along depth, so a 3-D grid picks the photo by its z coordinate.
            self.levels.append(level.permute(1, 0, 2, 3)[None].contiguous())
            if level.shape[-1] > 1:
                level = F.avg_pool2d(level, 2)

    @classmethod
    def on(cls, device: torch.device) -> "PhotoAtlas":
        key = str(device)
        if key not in cls._cache:
            cls._cache[key] = PhotoAtlas(torch.device(device))
        return cls._cache[key]

    def sample(self, u: torch.Tensor, v: torch.Tensor, index: torch.Tensor, tile_m: torch.Tensor,
               footprint: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Photo colour (N, 3) and grey flag (N,) at surface coordinates ``u, v`` (metres).

        ``index``: photo per point; ``tile_m``: metres one photo spans; ``footprint``: metres per pixel.
        """
        count = len(PHOTO_NAMES)

        def mirrored(x: torch.Tensor) -> torch.Tensor:  # triangle wave in [0, 1]: mirrored tiling
            return 1.0 - (torch.remainder(x, 2.0) - 1.0).abs()

        gx = mirrored(u / tile_m) * 2.0 - 1.0
        gy = mirrored(v / tile_m) * 2.0 - 1.0
        gz = index.clamp(0, count - 1) * (2.0 / max(count - 1, 1)) - 1.0
        grid = torch.stack([gx, gy, gz], dim=1).view(1, 1, 1, -1, 3)
        # Texels of two footprints, like the finest noise octave: smooth enough that bilinear resampling
        # between views reproduces the image (what the geometry check and view synthesis rely on).
        level = torch.log2((_DETAIL_FOOTPRINTS * footprint * PHOTO_SIZE / tile_m).clamp(min=1e-6))
        level = level.clamp(0.0, _LEVELS - 1.0)
        out = torch.zeros((4, u.shape[0]), device=u.device, dtype=u.dtype)
        for k, texture in enumerate(self.levels):
            weight = (1.0 - (level - k).abs()).clamp(min=0.0)
            if not bool((weight > 0).any()):
                continue
            values = F.grid_sample(texture, grid, mode="bilinear", padding_mode="border", align_corners=True)
            out += values.view(4, -1) * weight
        return out[:3].T, out[3]
