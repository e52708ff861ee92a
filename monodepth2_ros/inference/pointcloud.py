"""Point clouds from a depth map and its intrinsics, with the back-projection training uses.

The maths is :func:`monodepth2_ros.model.geometry.backproject` (run on the inference device), so the
node's cloud and the trainer's warp agree by construction. The host side only copies: the (x, y, z)
points and the packed colour go into one float32 buffer that the caller may keep across frames, laid
out as the PCL/ROS ``x y z rgb`` point (16 bytes, ``rgb`` a uint32 ``0x00RRGGBB`` read as float32).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from monodepth2_ros.model.geometry import backproject, denormalize_intrinsics

__all__ = [
    "POINT_FIELDS",
    "POINT_STEP",
    "DEFAULT_NORMALIZED_K",
    "default_intrinsics",
    "cloud_shape",
    "mask_depth_range",
    "depth_to_points",
    "pack_rgb",
    "PointCloudArray",
    "fill_cloud",
    "CloudBuilder",
]

# Field names and byte offsets of one point; every field is a float32.
POINT_FIELDS: tuple[tuple[str, int], ...] = (("x", 0), ("y", 4), ("z", 8), ("rgb", 12))
POINT_STEP = 16
_FLOATS_PER_POINT = POINT_STEP // 4

# Monodepth2's KITTI intrinsics in normalised form (fx/W, fy/H, principal point at the centre): what the
# official models were trained with, so the best guess for a camera that publishes no calibration.
DEFAULT_NORMALIZED_K = np.array([[0.58, 0.0, 0.5], [0.0, 1.92, 0.5], [0.0, 0.0, 1.0]])

_RED_SHIFT = 16
_GREEN_SHIFT = 8


def default_intrinsics(height: int, width: int) -> np.ndarray:
    """(3, 3) float64 intrinsics of :data:`DEFAULT_NORMALIZED_K` for an ``height x width`` image."""
    return np.asarray(denormalize_intrinsics(DEFAULT_NORMALIZED_K, int(height), int(width)), dtype=np.float64)


def cloud_shape(height: int, width: int, stride: int) -> tuple[int, int]:
    """(rows, columns) of the organised cloud of an ``height x width`` depth map taken every ``stride`` pixels."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    return -(-height // stride), -(-width // stride)


def mask_depth_range(depth: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """``depth`` with NaN wherever it is not finite or outside ``[min_depth, max_depth]`` (REP 118 invalid)."""
    valid = (depth >= min_depth) & (depth <= max_depth)  # False for NaN and for +-inf outside the range
    return depth.masked_fill(~valid, float("nan"))


def depth_to_points(
    depth: torch.Tensor, K: np.ndarray | torch.Tensor, stride: int = 1, max_range: float = 0.0
) -> torch.Tensor:
    """Back-project a depth map into its camera's optical frame.

    Args:
        depth: (1, 1, H, W) or (H, W) depth along the optical axis, metres; NaN marks invalid pixels.
        K: (3, 3) intrinsics of this H x W map, pixels.
        stride: keep every ``stride``-th row and column (pixel (0, 0) always kept).
        max_range: points farther than this (Euclidean, metres) become NaN; 0 keeps all.
    Returns:
        (ceil(H/stride), ceil(W/stride), 3) float32 x, y, z on ``depth``'s device; NaN for invalid
        pixels. Point (i, j) is pixel (u, v) = (j * stride, i * stride).
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    height, width = depth.shape[-2:]
    depth = depth.reshape(1, 1, height, width).float()
    K_tensor = torch.as_tensor(np.asarray(K, dtype=np.float64) if not torch.is_tensor(K) else K)
    inv_K = torch.linalg.inv(K_tensor.double()).to(device=depth.device, dtype=depth.dtype).reshape(1, 3, 3)
    points = backproject(depth, inv_K).reshape(3, height, width)[:, ::stride, ::stride]
    if max_range > 0:
        too_far = points.norm(dim=0) > max_range
        points = points.masked_fill(too_far.unsqueeze(0), float("nan"))
    return points.permute(1, 2, 0)


def pack_rgb(rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint32 ``0x00RRGGBB`` (the PCL ``rgb`` field, as bits)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got shape {rgb.shape} dtype {rgb.dtype}")
    if out is None:
        out = np.empty(rgb.shape[:2], dtype=np.uint32)
    np.left_shift(rgb[..., 0], _RED_SHIFT, out=out, dtype=np.uint32)
    out |= rgb[..., 1].astype(np.uint32) << _GREEN_SHIFT
    out |= rgb[..., 2]
    return out


@dataclass(frozen=True)
class PointCloudArray:
    """A cloud laid out as ROS ``x y z rgb`` points.

    Attributes:
        points: (height, width, 4) float32; a view into the buffer given to :func:`fill_cloud`.
        height, width: organised layout (height 1 for an unorganised cloud).
        is_dense: no point holds NaN.
    """

    points: np.ndarray
    height: int
    width: int
    is_dense: bool

    @property
    def nbytes(self) -> int:
        return self.height * self.width * POINT_STEP


def fill_cloud(
    points: torch.Tensor, rgb: np.ndarray, out: np.ndarray | None = None, organized: bool = True
) -> PointCloudArray:
    """Write points and their colours into a ``x y z rgb`` float32 buffer (no per-point Python).

    Args:
        points: (h, w, 3) float32 from :func:`depth_to_points` (any device); NaN for invalid.
        rgb: (h, w, 3) uint8 colours of the same pixels.
        out: a flat float32 buffer of at least ``h * w * 4`` values to write into (reused across
            frames by the caller), or None to allocate one.
        organized: keep the h x w layout with NaN points (True), or keep only the valid points as
            one row (False).
    Returns:
        The cloud, viewing ``out``.
    """
    height, width = int(points.shape[0]), int(points.shape[1])
    if rgb.shape[:2] != (height, width):
        raise ValueError(f"rgb of shape {rgb.shape[:2]} does not match the cloud's {height}x{width}")
    capacity = height * width * _FLOATS_PER_POINT
    if out is None:
        out = np.empty(capacity, dtype=np.float32)
    if out.dtype != np.float32 or out.size < capacity:
        raise ValueError(f"buffer needs {capacity} float32 values, got {out.size} of {out.dtype}")
    flat = out.reshape(-1)
    if organized:
        grid = flat[:capacity].reshape(height, width, _FLOATS_PER_POINT)
        torch.from_numpy(grid[..., :3]).copy_(points)
        pack_rgb(rgb, out=grid.view(np.uint32)[..., 3])
        is_dense = bool(np.isfinite(grid[..., 2]).all())
        return PointCloudArray(points=grid, height=height, width=width, is_dense=is_dense)
    valid = torch.isfinite(points).all(dim=-1)
    kept = points[valid]
    count = int(kept.shape[0])
    rows = flat[: count * _FLOATS_PER_POINT].reshape(count, _FLOATS_PER_POINT)
    torch.from_numpy(rows[:, :3]).copy_(kept)
    rows.view(np.uint32)[:, 3] = pack_rgb(rgb)[valid.cpu().numpy()]
    return PointCloudArray(points=rows.reshape(1, count, _FLOATS_PER_POINT), height=1, width=count, is_dense=True)


class CloudBuilder:
    """Clouds of one camera, frame after frame, with the per-frame work cut to a multiply and a copy.

    The rays of the kept pixels (:func:`backproject` of a unit depth, the same maths as
    :func:`depth_to_points`) depend only on the intrinsics, the size and the stride, so they are
    computed once and kept; each frame an organised cloud is then ``rays * depth`` written straight
    into the caller's buffer, and the colours packed beside it. Clouds with ``max_range`` or
    unorganised ones take :func:`fill_cloud`'s path on the same points.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._rays: torch.Tensor | None = None
        self._lock = threading.Lock()

    def rays(self, K: np.ndarray, height: int, width: int, stride: int, device: torch.device) -> torch.Tensor:
        """(ceil(H/stride), ceil(W/stride), 3) float32 rays (points at unit depth) of the kept pixels."""
        K = np.asarray(K, dtype=np.float64).reshape(3, 3)
        key = (K.tobytes(), height, width, stride, str(device))
        with self._lock:
            if key != self._key:
                ones = torch.ones(1, 1, height, width, device=device)
                self._rays = depth_to_points(ones, K, stride=stride).contiguous()
                self._key = key
            return self._rays

    def fill(
        self,
        depth: torch.Tensor,
        K: np.ndarray,
        rgb: np.ndarray,
        out: np.ndarray,
        stride: int = 1,
        max_range: float = 0.0,
        organized: bool = True,
    ) -> PointCloudArray:
        """The cloud of ``depth`` ((1, 1, H, W) or (H, W), metres, NaN invalid) in ``out``.

        Args:
            K: (3, 3) intrinsics of the H x W map.
            rgb: (ceil(H/stride), ceil(W/stride), 3) uint8 colours of the kept pixels.
            out, organized: as :func:`fill_cloud`.
            stride, max_range: as :func:`depth_to_points`.
        """
        height, width = depth.shape[-2:]
        rays = self.rays(K, height, width, stride, depth.device)
        kept = depth.reshape(height, width)[::stride, ::stride].float().unsqueeze(-1)
        if max_range > 0 or not organized:
            points = rays * kept
            if max_range > 0:
                points = points.masked_fill((points.norm(dim=-1) > max_range).unsqueeze(-1), float("nan"))
            return fill_cloud(points, rgb, out=out, organized=organized)
        rows, columns = rays.shape[:2]
        if rgb.shape[:2] != (rows, columns):
            raise ValueError(f"rgb of shape {rgb.shape[:2]} does not match the cloud's {rows}x{columns}")
        capacity = rows * columns * _FLOATS_PER_POINT
        if out.dtype != np.float32 or out.size < capacity:
            raise ValueError(f"buffer needs {capacity} float32 values, got {out.size} of {out.dtype}")
        grid = out.reshape(-1)[:capacity].reshape(rows, columns, _FLOATS_PER_POINT)
        xyz = torch.from_numpy(grid[..., :3])
        if depth.device.type == "cpu":
            torch.mul(rays, kept, out=xyz)  # straight into the message's buffer
        else:
            xyz.copy_(rays * kept)
        pack_rgb(rgb, out=grid.view(np.uint32)[..., 3])
        is_dense = bool(torch.isfinite(kept).all())
        return PointCloudArray(points=grid, height=rows, width=columns, is_dense=is_dense)
