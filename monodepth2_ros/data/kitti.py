"""KITTI raw drives (``<date>/<date>_drive_<n>_sync``) as image streams.

Layout read::

    2011_09_26/
        calib_cam_to_cam.txt            P_rect_02 (rectified intrinsics), S_rect_02 (size)
        2011_09_26_drive_0001_sync/
            image_02/timestamps.txt     "2011-09-26 13:02:25.964389445" per frame
            image_02/data/0000000000.png ...

The ``*_sync`` images are already rectified, so the camera is ``P_rect_<cam>`` without distortion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from monodepth2_ros.data.camera import CameraModel, load_camera_file
from monodepth2_ros.data.folder_reader import IMAGE_SUFFIXES, ImageFileStream
from monodepth2_ros.data.paths import natural_key
from monodepth2_ros.errors import DatasetError, MissingInputError

__all__ = [
    "KITTI_CALIB_NAME",
    "KittiDrive",
    "find_kitti_drive",
    "read_kitti_timestamps",
    "KittiRawStream",
]

KITTI_CALIB_NAME = "calib_cam_to_cam.txt"
_IMAGE_FOLDER = re.compile(r"^image_(\d\d)$")
_DEFAULT_CAMERA = "02"  # the left colour camera Monodepth2 trains on
_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?$")
_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class KittiDrive:
    """A located drive: its folder and the camera (``"00"`` .. ``"03"``) to read."""

    drive: Path
    camera: str

    @property
    def image_folder(self) -> Path:
        return self.drive / f"image_{self.camera}" / "data"

    @property
    def timestamps_file(self) -> Path:
        return self.drive / f"image_{self.camera}" / "timestamps.txt"


def find_kitti_drive(path: str | Path, camera: str | None = None) -> KittiDrive | None:
    """Recognise a KITTI raw drive from the drive folder, an ``image_0X`` folder or its ``data``.

    Returns None when ``path`` is not laid out as a KITTI drive.
    """
    path = Path(path)
    if path.name == "data" and _IMAGE_FOLDER.match(path.parent.name):
        path = path.parent
    match = _IMAGE_FOLDER.match(path.name)
    if match and (path / "data").is_dir():
        return KittiDrive(path.parent, camera or match.group(1))
    if not path.is_dir():
        return None
    cameras = sorted(
        m.group(1)
        for p in path.iterdir()
        if (m := _IMAGE_FOLDER.match(p.name)) and (p / "data").is_dir()
    )
    if not cameras:
        return None
    if camera is not None:
        return KittiDrive(path, camera)
    return KittiDrive(path, _DEFAULT_CAMERA if _DEFAULT_CAMERA in cameras else cameras[0])


def read_kitti_timestamps(path: Path) -> list[int]:
    """Nanosecond stamps of a KITTI ``timestamps.txt`` (times of day read as UTC)."""
    stamps: list[int] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        match = _TIMESTAMP.match(text)
        if not match:
            raise DatasetError(
                f"{path}:{number}: {text!r} is not a KITTI timestamp like "
                "'2011-09-26 13:02:25.964389445'"
            )
        moment = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        fraction = (match.group(2) or "").ljust(9, "0")
        stamps.append(int(moment.timestamp()) * _NS_PER_S + int(fraction))
    return stamps


class KittiRawStream(ImageFileStream):
    """Frames of one camera of a KITTI raw drive with their timestamps and rectified camera.

    Args:
        path: the drive folder (or its ``image_0X`` / ``image_0X/data`` folder).
        camera: ``"00"`` .. ``"03"``; default the folder's (``image_0X``) or ``"02"``.
        require_camera_info: raise when ``calib_cam_to_cam.txt`` is missing (else no camera).
    """

    def __init__(
        self, path: str | Path, camera: str | None = None, require_camera_info: bool = True
    ) -> None:
        path = Path(path)
        if not path.exists():
            raise MissingInputError(f"KITTI drive {path} does not exist")
        drive = find_kitti_drive(path, camera)
        if drive is None:
            raise DatasetError(
                f"{path} is not a KITTI raw drive: expected image_0X/data/*.png inside it "
                "(e.g. 2011_09_26/2011_09_26_drive_0001_sync)"
            )
        if not drive.image_folder.is_dir():
            raise DatasetError(
                f"KITTI drive {drive.drive} has no camera {drive.camera}: "
                f"{drive.image_folder} is missing"
            )
        self.drive = drive
        files = sorted(
            (p for p in drive.image_folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
            key=natural_key,
        )
        if not files:
            raise DatasetError(f"no images in {drive.image_folder}")
        if drive.timestamps_file.is_file():
            stamps = read_kitti_timestamps(drive.timestamps_file)
            if len(stamps) != len(files):
                raise DatasetError(
                    f"{drive.timestamps_file} has {len(stamps)} timestamps for {len(files)} images "
                    f"in {drive.image_folder}"
                )
        else:
            raise DatasetError(f"KITTI drive {drive.drive} lacks {drive.timestamps_file}")
        frame_id = f"kitti_camera_{drive.camera}"
        calibration = self._find_calibration(drive.drive)
        camera_model: CameraModel | None = None
        if calibration is not None:
            camera_model = load_camera_file(
                calibration, frame_id=frame_id, kitti_camera=drive.camera
            )
        elif require_camera_info:
            raise DatasetError(
                f"no {KITTI_CALIB_NAME} for KITTI drive {drive.drive}: expected it in "
                f"{drive.drive.parent} (the date folder); pass require_camera_info=False to read "
                "images without a camera"
            )
        super().__init__(files, stamps, camera_model, frame_id=frame_id)

    @staticmethod
    def _find_calibration(drive: Path) -> Path | None:
        for folder in (drive.parent, drive):
            if (folder / KITTI_CALIB_NAME).is_file():
                return folder / KITTI_CALIB_NAME
        return None
