"""One entry point for every kind of image source: :func:`open_stream`."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from pathlib import Path

from monodepth2_ros.data.bag_reader import BagImageStream, is_bag_path
from monodepth2_ros.data.camera import CameraModel
from monodepth2_ros.data.folder_reader import DEFAULT_RATE_HZ, IMAGE_SUFFIXES, FolderImageStream
from monodepth2_ros.data.frame import ImageStream
from monodepth2_ros.data.kitti import KittiRawStream, find_kitti_drive
from monodepth2_ros.errors import ConfigError, DatasetError, MissingInputError

__all__ = ["SourceKind", "detect_source_kind", "open_stream"]


class SourceKind(enum.Enum):
    """What a path holds."""

    BAG = "bag"
    KITTI = "kitti"
    FOLDER = "folder"


def detect_source_kind(path: str | Path) -> SourceKind:
    """Classify a path: bag (file, rosbag2 folder, folder of bags), KITTI raw drive, image folder."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"input {path} does not exist")
    if is_bag_path(path):
        return SourceKind.BAG
    if path.is_dir():
        if find_kitti_drive(path) is not None:
            return SourceKind.KITTI
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
            return SourceKind.FOLDER
    raise DatasetError(
        f"{path} is not an image source: expected a bag (.bag, .mcap, .db3, a rosbag2 folder or a "
        "folder of bags), a KITTI raw drive folder, or a folder of image files"
    )


def _refuse(kind: SourceKind, path: Path, **options: object) -> None:
    given = [name for name, value in options.items() if value is not None]
    if given:
        raise ConfigError(
            f"option(s) {', '.join(given)} do not apply to {path}, a {kind.value} source"
        )


def open_stream(
    source: str | Path | Sequence[str | Path],
    *,
    image_topic: str | None = None,
    camera_info_topic: str | None = None,
    camera: CameraModel | str | Path | None = None,
    rate_hz: float | None = None,
    kitti_camera: str | None = None,
    undistort: bool = False,
    require_camera_info: bool = True,
) -> ImageStream:
    """Open any image source as a stream of :class:`~monodepth2_ros.data.frame.Frame`.

    Args:
        source: a path, or several bag paths.
        image_topic, camera_info_topic: bags only (see :class:`BagImageStream`).
        camera, rate_hz: image folders only (see :class:`FolderImageStream`).
        kitti_camera: KITTI drives only, ``"02"`` by default.
        undistort: bags and folders (KITTI images are already rectified).
        require_camera_info: raise when no camera calibration is found.
    Raises:
        ConfigError: an option that does not apply to the detected kind of source.
    """
    if not isinstance(source, (str, Path)):
        paths = [Path(p) for p in source]
        if not paths:
            raise DatasetError("no input given; expected a path or a list of bag paths")
        for path in paths:
            if detect_source_kind(path) is not SourceKind.BAG:
                raise DatasetError(f"several inputs must all be bags; {path} is not one")
        _refuse(SourceKind.BAG, paths[0], camera=camera, rate_hz=rate_hz, kitti_camera=kitti_camera)
        return BagImageStream(paths, image_topic, camera_info_topic, undistort, require_camera_info)
    path = Path(source)
    kind = detect_source_kind(path)
    if kind is SourceKind.BAG:
        _refuse(kind, path, camera=camera, rate_hz=rate_hz, kitti_camera=kitti_camera)
        return BagImageStream(path, image_topic, camera_info_topic, undistort, require_camera_info)
    _refuse(kind, path, image_topic=image_topic, camera_info_topic=camera_info_topic)
    if kind is SourceKind.KITTI:
        _refuse(kind, path, camera=camera, rate_hz=rate_hz, undistort=undistort or None)
        return KittiRawStream(path, camera=kitti_camera, require_camera_info=require_camera_info)
    _refuse(kind, path, kitti_camera=kitti_camera)
    return FolderImageStream(
        path,
        camera=camera,
        rate_hz=DEFAULT_RATE_HZ if rate_hz is None else rate_hz,
        undistort=undistort,
        require_camera_info=require_camera_info,
    )
