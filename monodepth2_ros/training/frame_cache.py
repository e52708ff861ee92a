"""Decode every training frame once, resized to the network size, into memory-mapped arrays.

Epochs then read ``uint8`` pixels straight from the page cache instead of deserialising and
resizing messages again. A cache is a folder ``CACHE_ROOT/<key>/`` whose key hashes the inputs
(paths, sizes and modification times of the files), the topics and the network size, so a changed
bag or size builds a new cache and an unchanged one is reused (also on resume). It is written into
a temporary folder and renamed into place when complete.

Files of one cache::

    images.npy   (N, H, W, 3) uint8   left / only camera, resized to the network size
    right.npy    (N, H, W, 3) uint8   stereo partner (zeros where unmatched), stereo only
    depth.npy    (N, H, W) float32    ground-truth depth in metres (NaN: none), with depth_topic
    meta.npz     per-frame stamps, sequence ids, normalised K, stereo baseline, odometry position
    info.json    the inputs, counts and the key's ingredients
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from monodepth2_ros.data import (
    BagImageStream,
    CameraModel,
    FolderImageStream,
    Frame,
    camera_info_topic_for,
    depth_image_to_metres,
    iter_messages,
    resolve_bag_paths,
)
from monodepth2_ros.data.stamps import header_stamp_ns
from monodepth2_ros.data.undistort import Undistorter
from monodepth2_ros.errors import DatasetError, MissingInputError
from monodepth2_ros.evaluation.ground_truth import read_odometry, read_static_transforms
from monodepth2_ros.inference.odometry import interpolate_pose
from monodepth2_ros.inference.preprocess import network_image
from monodepth2_ros.training.config import DataConfig

__all__ = [
    "CACHE_VERSION",
    "SourceSpec",
    "FrameCache",
    "cache_key",
    "list_sources",
    "open_frame_cache",
    "stereo_baseline_m",
]

_LOG = logging.getLogger(__name__)

# Bump when the cache layout or the decoding changes: old caches are then rebuilt.
CACHE_VERSION = 3  # 3: camera poses from odometry + mounting
_NS_PER_S = 1_000_000_000
# Frames the cache arrays are first made for (sparse files); they double when the bags hold more.
_MAX_INITIAL_FRAMES = 4096
_IMAGES = "images.npy"
_RIGHT = "right.npy"
_DEPTH = "depth.npy"
_META = "meta.npz"
_INFO = "info.json"


@dataclass(frozen=True)
class SourceSpec:
    """One sequence of frames: a single bag, or a folder of images.

    Triplets never cross from one source into another.
    """

    kind: str  # "bag" or "folder"
    path: Path


def list_sources(config: DataConfig) -> list[SourceSpec]:
    """The bags (each split into its single bags) and image folders of a config.

    Raises:
        DatasetError: neither bags nor image folders are given.
        MissingInputError: a path does not exist.
    """
    if not config.bags and not config.image_dirs:
        raise DatasetError("no training data: give at least one bag (--bag) or image folder (--images)")
    sources = [SourceSpec("bag", path) for path in resolve_bag_paths(list(config.bags))] if config.bags else []
    for folder in config.image_dirs:
        path = Path(folder)
        if not path.is_dir():
            raise MissingInputError(f"image folder not found: {path}")
        sources.append(SourceSpec("folder", path))
    return sources


def _fingerprint(path: Path) -> list[tuple[str, int, int]]:
    """(relative name, size, mtime_ns) of a file or of every file below a folder."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    root = path if path.is_dir() else path.parent
    return [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]


def cache_key(sources: Sequence[SourceSpec], config: DataConfig) -> str:
    """Hex digest naming the cache of these inputs at this size with these topics."""
    ingredients = {
        "version": CACHE_VERSION,
        "size": [config.height, config.width],
        "topics": [
            config.image_topic,
            config.camera_info_topic,
            config.right_image_topic,
            config.right_camera_info_topic,
            config.depth_topic,
            config.odometry_topic,
        ],
        "undistort": config.undistort,
        "folder_rate_hz": config.folder_rate_hz,
        "stereo_max_offset_s": config.stereo_max_offset_s,
        "sources": [[s.kind, str(s.path.resolve()), _fingerprint(s.path)] for s in sources],
    }
    return hashlib.sha256(json.dumps(ingredients, sort_keys=True).encode()).hexdigest()[:20]


def stereo_baseline_m(camera: CameraModel) -> float:
    """Baseline of a right camera from its projection matrix, ``P[0, 3] = -fx' * B`` (metres).

    Raises:
        DatasetError: the camera has no P or a P without a baseline.
    """
    if camera.P is None or camera.P[0, 3] == 0.0:
        raise DatasetError(
            f"the right camera ({camera.frame_id!r}) has no stereo baseline: its CameraInfo P[3] is "
            "0 or P is missing; expected P[3] = -fx * baseline (a rectified stereo calibration)"
        )
    return float(-camera.P[0, 3] / camera.P[0, 0])


@dataclass(frozen=True)
class FrameCache:
    """The decoded frames of all sources (read-only memory maps) and their metadata.

    Attributes:
        images: (N, H, W, 3) uint8 RGB at the network size.
        stamps_ns: (N,) int64 capture times; sorted within each sequence.
        sequence: (N,) int32 index into ``sources`` of each frame.
        K_normalized: (N, 3, 3) float64 size-free intrinsics (see ``model.geometry``).
        right: (N, H, W, 3) uint8 stereo partner images, or None.
        has_right: (N,) bool, a stereo partner was matched, or None.
        baseline_m: (N,) float64 stereo baseline in metres (right camera at +x), or None.
        depth: (N, H, W) float32 ground-truth depth in metres (NaN unknown), or None.
        has_depth: (N,) bool, a depth message was matched, or None.
        positions: (N, 3) float64 odometry position (metres) at each frame's stamp, or None.
        camera_poses: (N, 4, 4) float64 ``T_odom_camera`` from the odometry and the camera's mounting
            (NaN where unknown), or None without an odometry topic.
        sources: the source paths in ``sequence`` order.
        skipped: frames the readers could not decode, over all sources.
        folder: the cache folder.
    """

    images: np.ndarray
    stamps_ns: np.ndarray
    sequence: np.ndarray
    K_normalized: np.ndarray
    right: np.ndarray | None
    has_right: np.ndarray | None
    baseline_m: np.ndarray | None
    depth: np.ndarray | None
    has_depth: np.ndarray | None
    positions: np.ndarray | None
    sources: tuple[str, ...]
    skipped: int
    folder: Path
    camera_poses: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.stamps_ns.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the cached images."""
        return int(self.images.shape[1]), int(self.images.shape[2])


# --------------------------------------------------------------------------------------------
# Building


def _resize_rgb(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (H, W, 3) uint8: the network input of the nodes and infer, before / 255."""
    return network_image(rgb, height, width)


def _resize_depth(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a depth map: no blending of foreground and background."""
    if depth.shape == (height, width):
        return depth.astype(np.float32, copy=False)
    return cv2.resize(depth.astype(np.float32), (width, height), interpolation=cv2.INTER_NEAREST)


def _nearest(stamps: np.ndarray, query: np.ndarray, tolerance_ns: int) -> np.ndarray:
    """Index into sorted ``stamps`` of the nearest stamp to each query, or -1 beyond tolerance."""
    if stamps.size == 0:
        return np.full(query.shape, -1, dtype=np.int64)
    right = np.clip(np.searchsorted(stamps, query), 0, stamps.size - 1)
    left = np.clip(right - 1, 0, stamps.size - 1)
    best = np.where(np.abs(stamps[left] - query) <= np.abs(stamps[right] - query), left, right)
    return np.where(np.abs(stamps[best] - query) <= tolerance_ns, best, -1)


@dataclass
class _SequenceFrames:
    """What one source contributes, before it is written into the cache arrays."""

    stamps: list[int]
    K_normalized: list[np.ndarray]
    skipped: int


def _open_stream(source: SourceSpec, config: DataConfig, right: bool = False):
    if source.kind == "folder":
        return FolderImageStream(source.path, rate_hz=config.folder_rate_hz, undistort=config.undistort)
    if right:
        return BagImageStream(
            source.path, config.right_image_topic, config.right_camera_info_topic, undistort=config.undistort
        )
    return BagImageStream(source.path, config.image_topic, config.camera_info_topic, undistort=config.undistort)


def _frames_with_camera(stream) -> Iterator[Frame]:
    for frame in stream:
        if frame.camera is None:  # the readers raise before this when calibration is required
            raise DatasetError(f"{frame.source}: frame {frame.index} has no camera calibration")
        yield frame


def _right_camera_baseline(source: SourceSpec, config: DataConfig) -> float:
    """Baseline from the first right CameraInfo as recorded (before undistortion replaces P)."""
    info_topic = config.right_camera_info_topic or camera_info_topic_for(str(config.right_image_topic))
    messages = iter_messages(source.path, info_topic)
    try:
        first = next(messages, None)
    finally:
        messages.close()
    if first is None:
        raise DatasetError(f"{source.path}: no message on the right camera_info topic {info_topic!r}")
    return stereo_baseline_m(CameraModel.from_camera_info(first.msg))


def _odometry_motion(source: SourceSpec, topic: str, stamps: np.ndarray,
                     camera_frame: str) -> tuple[np.ndarray, np.ndarray]:
    """Odometry at ``stamps``: base positions (N, 3) and camera poses ``T_odom_camera`` (N, 4, 4).

    Positions are interpolated linearly, rotations along the geodesic; both are NaN outside the
    odometry's time span (unknown, not "not moving"). The camera poses need the camera's mounting
    (odometry child frame -> ``camera_frame``) on ``/tf_static``; without it they are all NaN and
    only the distances (positions) can supervise training.
    """
    odometry = read_odometry([source.path], topic)
    if odometry.stamps_ns.size < 2:
        raise DatasetError(f"{source.path}: odometry topic {topic!r} has 1 message; expected >= 2")
    t, track, child = odometry.stamps_ns.astype(np.float64), odometry.poses, odometry.child_frame_id
    query = stamps.astype(np.float64)
    base = np.full((query.size, 4, 4), np.nan)
    after = np.clip(np.searchsorted(t, query), 1, t.size - 1)
    for i, (k, when) in enumerate(zip(after, query)):
        if t[0] <= when <= t[-1]:
            span = t[k] - t[k - 1]
            base[i] = interpolate_pose(track[k - 1], track[k], (when - t[k - 1]) / span if span > 0 else 0.0)
    T_base_camera = read_static_transforms([source.path]).lookup(child.lstrip("/"), camera_frame.lstrip("/"))
    if T_base_camera is None:
        _LOG.warning("%s: no /tf_static path %s -> %s; the odometry gives distances only, not the camera's motion",
                     source.path, child or "(odometry child frame)", camera_frame or "(camera frame)")
        return base[:, :3, 3], np.full_like(base, np.nan)
    return base[:, :3, 3], base @ T_base_camera


class _Builder:
    """Writes the cache arrays of all sources into one folder."""

    def __init__(self, folder: Path, config: DataConfig, capacity: int, progress: Callable[[int], None] | None):
        self.folder = folder
        self.config = config
        self.capacity = capacity
        self.progress = progress
        shape = (capacity, config.height, config.width)
        self.images = np.lib.format.open_memmap(folder / _IMAGES, mode="w+", dtype=np.uint8, shape=shape + (3,))
        self.right = (
            np.lib.format.open_memmap(folder / _RIGHT, mode="w+", dtype=np.uint8, shape=shape + (3,))
            if config.right_image_topic is not None
            else None
        )
        self.depth = (
            np.lib.format.open_memmap(folder / _DEPTH, mode="w+", dtype=np.float32, shape=shape)
            if config.depth_topic is not None
            else None
        )
        self.count = 0
        self.stamps: list[int] = []
        self.sequence: list[int] = []
        self.K_normalized: list[np.ndarray] = []
        self.has_right: list[bool] = []
        self.baseline: list[float] = []
        self.has_depth: list[bool] = []
        self.positions: list[np.ndarray] = []
        self.camera_poses: list[np.ndarray] = []
        self.skipped = 0

    def add_source(self, index: int, source: SourceSpec) -> None:
        config = self.config
        stream = _open_stream(source, config)
        start = self.count
        camera_frame = ""
        for frame in _frames_with_camera(stream):
            camera_frame = camera_frame or frame.frame_id
            if self.count >= self.capacity:
                self._grow()
            self.images[self.count] = _resize_rgb(frame.rgb, config.height, config.width)
            self.stamps.append(int(frame.stamp_ns))
            self.K_normalized.append(frame.camera.normalized_K())
            self.sequence.append(index)
            self.count += 1
            if self.progress is not None:
                self.progress(1)
        self.skipped += int(stream.skipped)
        # Frames of one source in stamp order (header stamps may differ from the bag order).
        order = np.argsort(np.asarray(self.stamps[start:], dtype=np.int64), kind="stable")
        if not np.array_equal(order, np.arange(order.size)):
            self.images[start : self.count] = self.images[start : self.count][order]
            self.stamps[start:] = [self.stamps[start + i] for i in order]
            self.K_normalized[start:] = [self.K_normalized[start + i] for i in order]
        stamps = np.asarray(self.stamps[start:], dtype=np.int64)
        self._add_stereo(source, start, stamps)
        self._add_depth(source, start, stamps, getattr(stream, "recorded_camera", None))
        if config.odometry_topic is not None and source.kind == "bag" and stamps.size:
            positions, camera_poses = _odometry_motion(source, config.odometry_topic, stamps, camera_frame)
            self.positions.extend(positions)
            self.camera_poses.extend(camera_poses)
        elif config.odometry_topic is not None:
            self.positions.extend(np.full((stamps.size, 3), np.nan))
            self.camera_poses.extend(np.full((stamps.size, 4, 4), np.nan))

    def _grow(self) -> None:
        """Double the arrays: the bags held more images than their metadata said."""
        capacity = 2 * self.capacity
        for attribute, name in (("images", _IMAGES), ("right", _RIGHT), ("depth", _DEPTH)):
            old = getattr(self, attribute)
            if old is None:
                continue
            grown_path = self.folder / f"{name}.grow"
            grown = np.lib.format.open_memmap(grown_path, mode="w+", dtype=old.dtype, shape=(capacity, *old.shape[1:]))
            grown[: self.capacity] = old
            grown.flush()
            os.replace(grown_path, self.folder / name)
            setattr(self, attribute, grown)
        self.capacity = capacity

    def _add_stereo(self, source: SourceSpec, start: int, stamps: np.ndarray) -> None:
        if self.right is None:
            return
        config = self.config
        baseline = _right_camera_baseline(source, config)
        tolerance = int(config.stereo_max_offset_s * _NS_PER_S)
        best_offset = np.full(stamps.size, np.iinfo(np.int64).max, dtype=np.int64)
        for frame in _frames_with_camera(_open_stream(source, config, right=True)):
            found = int(_nearest(stamps, np.asarray([frame.stamp_ns]), tolerance)[0])
            offset = abs(int(stamps[found]) - int(frame.stamp_ns)) if found >= 0 else None
            if offset is not None and offset < best_offset[found]:
                best_offset[found] = offset
                self.right[start + found] = _resize_rgb(frame.rgb, config.height, config.width)
        self.has_right.extend((best_offset <= tolerance).tolist())
        self.baseline.extend([baseline] * stamps.size)

    def _add_depth(self, source: SourceSpec, start: int, stamps: np.ndarray, camera: CameraModel | None) -> None:
        """Ground-truth depth of the source's frames, on the images' grid: undistorted like them
        (nearest raw pixel) when the images are, then resized to the network size."""
        if self.depth is None:
            return
        config = self.config
        undistorter = Undistorter(camera) if config.undistort and camera is not None and camera.is_distorted else None
        self.depth[start : start + stamps.size] = np.nan
        if source.kind != "bag":
            self.has_depth.extend([False] * stamps.size)
            return
        matched = np.zeros(stamps.size, dtype=bool)
        # Ground truth is stamped like its image; allow a quarter of the median frame period.
        period = int(np.median(np.diff(stamps))) if stamps.size > 1 else _NS_PER_S
        for message in iter_messages(source.path, config.depth_topic):
            stamp = header_stamp_ns(message.msg, message.stamp_ns)
            found = int(_nearest(stamps, np.asarray([stamp]), period // 4)[0])
            if found < 0:
                continue
            try:
                depth = depth_image_to_metres(message.msg)
                if undistorter is not None and depth.shape == (camera.height, camera.width):
                    depth = undistorter.depth(depth)  # another size is another sensor's grid: resized as before
            except DatasetError as err:
                _LOG.warning("%s: skipped a depth message on %s: %s", source.path, config.depth_topic, err)
                continue
            self.depth[start + found] = _resize_depth(depth, config.height, config.width)
            matched[found] = True
        self.has_depth.extend(matched.tolist())

    def finish(self, sources: Sequence[SourceSpec], key: str) -> None:
        for array in (self.images, self.right, self.depth):
            if array is not None:
                array.flush()
        meta: dict[str, np.ndarray] = {
            "count": np.asarray(self.count),
            "stamps_ns": np.asarray(self.stamps, dtype=np.int64),
            "sequence": np.asarray(self.sequence, dtype=np.int32),
            "K_normalized": np.asarray(self.K_normalized, dtype=np.float64).reshape(-1, 3, 3),
            "skipped": np.asarray(self.skipped),
        }
        if self.right is not None:
            meta["has_right"] = np.asarray(self.has_right, dtype=bool)
            meta["baseline_m"] = np.asarray(self.baseline, dtype=np.float64)
        if self.depth is not None:
            meta["has_depth"] = np.asarray(self.has_depth, dtype=bool)
        if self.config.odometry_topic is not None:
            meta["positions"] = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
            meta["camera_poses"] = np.asarray(self.camera_poses, dtype=np.float64).reshape(-1, 4, 4)
        np.savez(self.folder / _META, **meta)
        info = {
            "key": key,
            "version": CACHE_VERSION,
            "frames": self.count,
            "skipped": self.skipped,
            "size": [self.config.height, self.config.width],
            "sources": [str(s.path) for s in sources],
        }
        (self.folder / _INFO).write_text(json.dumps(info, indent=2))


def _capacity(sources: Sequence[SourceSpec], config: DataConfig) -> int:
    """Images the sources hold (an upper bound of the frames that decode)."""
    return sum(len(_open_stream(source, config)) for source in sources)


def _load(folder: Path) -> FrameCache:
    info = json.loads((folder / _INFO).read_text())
    with np.load(folder / _META) as meta:
        values = {name: meta[name] for name in meta.files}
    count = int(values["count"])

    def memmap(name: str) -> np.ndarray | None:
        path = folder / name
        return np.load(path, mmap_mode="r")[:count] if path.is_file() else None

    return FrameCache(
        images=memmap(_IMAGES),
        stamps_ns=values["stamps_ns"],
        sequence=values["sequence"],
        K_normalized=values["K_normalized"],
        right=memmap(_RIGHT),
        has_right=values.get("has_right"),
        baseline_m=values.get("baseline_m"),
        depth=memmap(_DEPTH),
        has_depth=values.get("has_depth"),
        positions=values.get("positions"),
        camera_poses=values.get("camera_poses"),
        sources=tuple(info["sources"]),
        skipped=int(values["skipped"]),
        folder=folder,
    )


def open_frame_cache(
    config: DataConfig,
    cache_root: str | Path,
    progress: Callable[[int], None] | None = None,
    build: bool = True,
) -> FrameCache:
    """The frame cache of ``config``'s inputs, built now unless an identical one exists.

    Args:
        config: inputs, topics and size.
        cache_root: folder holding caches (one sub-folder per key).
        progress: called with the number of frames decoded so far, one call per frame.
        build: False only opens an existing cache (the non-zero ranks of a distributed run).
    Raises:
        DatasetError: a topic is missing (the message lists the bag's topics), no frame decodes,
            or no cache exists and ``build`` is False.
    """
    sources = list_sources(config)
    key = cache_key(sources, config)
    root = Path(cache_root)
    folder = root / key
    if (folder / _INFO).is_file():
        return _load(folder)
    if not build:
        raise DatasetError(f"frame cache {folder} does not exist (it is built by rank 0)")
    root.mkdir(parents=True, exist_ok=True)
    for leftover in root.glob(f".{key}.*"):  # a build that was killed
        shutil.rmtree(leftover, ignore_errors=True)
    capacity = _capacity(sources, config)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        # The image count comes from bag metadata, which may lie: start no larger than a bound, grow as needed.
        builder = _Builder(staging, config, min(max(capacity, 1), _MAX_INITIAL_FRAMES), progress)
        for index, source in enumerate(sources):
            builder.add_source(index, source)
        if builder.count == 0:
            raise DatasetError(
                f"no frame could be decoded from {', '.join(str(s.path) for s in sources)} "
                f"({builder.skipped} skipped)"
            )
        builder.finish(sources, key)
        del builder  # close the memory maps before the rename
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _load(folder)
