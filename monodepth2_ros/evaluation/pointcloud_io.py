"""Point clouds to files a person can open (MeshLab, CloudCompare, Open3D, Blender)."""

from __future__ import annotations

import os

import numpy as np

from monodepth2_ros.evaluation.report import write_bytes_atomic

__all__ = ["write_ply", "xyzrgb_cloud_arrays"]


def xyzrgb_cloud_arrays(data: bytes, point_step: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """``x y z rgb`` float32 PointCloud2 data -> finite (N, 3) float32 points and (N, 3) uint8 colours."""
    raw = np.frombuffer(bytes(data), dtype=np.float32).reshape(-1, point_step // 4)
    points = raw[:, :3]
    packed = raw[:, 3].view(np.uint32)
    colours = np.stack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF], axis=-1).astype(np.uint8)
    valid = np.isfinite(points).all(axis=1)
    return points[valid], colours[valid]


def write_ply(path: str | os.PathLike[str], points: np.ndarray, colours: np.ndarray) -> None:
    """Binary little-endian PLY with float x, y, z and uchar red, green, blue (written atomically)."""
    points = np.asarray(points, dtype="<f4").reshape(-1, 3)
    colours = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    if len(points) != len(colours):
        raise ValueError(f"{len(points)} points but {len(colours)} colours")
    vertex = np.empty(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    vertex["x"], vertex["y"], vertex["z"] = points.T
    vertex["red"], vertex["green"], vertex["blue"] = colours.T
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    write_bytes_atomic(path, header.encode("ascii") + vertex.tobytes())
