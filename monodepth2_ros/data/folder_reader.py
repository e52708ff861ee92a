"""RGB frames from image files: a folder of images, or an explicit list of files.

Every image becomes (H, W, 3) uint8 RGB: 16-bit images keep their high byte, grey is replicated,
alpha is dropped. The camera comes from a calibration file (found in the folder or given).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from monodepth2_ros.data.camera import CameraModel, load_camera_file
from monodepth2_ros.data.frame import Frame
from monodepth2_ros.data.paths import natural_key
from monodepth2_ros.data.undistort import Undistorter
from monodepth2_ros.errors import ConfigError, DatasetError, MissingInputError

__all__ = [
    "IMAGE_SUFFIXES",
    "CALIBRATION_NAMES",
    "read_image_file",
    "find_calibration",
    "stamps_from_names",
    "ImageFileStream",
    "FolderImageStream",
]

_LOG = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# Looked for in this order; then any *.yaml/*.yml with a camera_matrix key.
CALIBRATION_NAMES = ("camera_info.yaml", "calibration.yaml", "K.txt", "calib.txt")
_YAML_SUFFIXES = (".yaml", ".yml")
# Side files a dataset folder normally holds: skipped without a warning.
_QUIET_SUFFIXES = (*_YAML_SUFFIXES, ".txt")
_SHIFT_16_TO_8 = 8
_NS_PER_S = 1_000_000_000
DEFAULT_RATE_HZ = 10.0
DEFAULT_FRAME_ID = "camera"

# Integer file names at least this large are timestamps (seconds since 2001-09-09 and finer
# units); smaller ones are frame numbers. Value -> (lower bound, nanoseconds per unit).
_INTEGER_STAMP_UNITS = (
    (10**17, 1),  # nanoseconds
    (10**14, 1_000),  # microseconds
    (10**11, 1_000_000),  # milliseconds
    (10**9, _NS_PER_S),  # seconds
)
_DECIMAL_SECONDS = re.compile(r"^(\d+)\.(\d{1,9})$")
_INTEGER = re.compile(r"^\d+$")


def read_image_file(path: str | Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB (8/16-bit, grey, RGB or RGBA inputs)."""
    path = Path(path)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(
            f"cannot read image {path}: not an image OpenCV can decode, or unreadable"
        )
    if image.dtype == np.uint16:
        image = (image >> _SHIFT_16_TO_8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise DatasetError(f"image {path} has {image.dtype} pixels; expected 8- or 16-bit integers")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.ndim == 3 and channels == 1:
        image = image[..., 0]
    conversions = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}
    if channels not in conversions:
        raise DatasetError(f"image {path} has {channels} channels; expected 1, 3 or 4")
    return cv2.cvtColor(image, conversions[channels])


def stamps_from_names(files: Sequence[Path]) -> list[int] | None:
    """Timestamps (ns) read from numeric file names, or None when the names are not timestamps.

    ``1317384588.915486.png`` is seconds; integer names are ns/us/ms/s by magnitude (see
    ``_INTEGER_STAMP_UNITS``); small integers (``000042.png``) are frame numbers, not times.
    """
    stems = [path.stem for path in files]
    if not stems:
        return None
    if all(_DECIMAL_SECONDS.match(stem) for stem in stems):
        stamps = []
        for stem in stems:
            whole, fraction = _DECIMAL_SECONDS.match(stem).groups()  # type: ignore[union-attr]
            stamps.append(int(whole) * _NS_PER_S + int(fraction.ljust(9, "0")))
    elif all(_INTEGER.match(stem) for stem in stems):
        values = [int(stem) for stem in stems]
        unit = next((ns for bound, ns in _INTEGER_STAMP_UNITS if min(values) >= bound), None)
        if unit is None:
            return None
        stamps = [value * unit for value in values]
    else:
        return None
    if len(set(stamps)) != len(stamps):
        _LOG.warning("file-name timestamps repeat; using the frame rate instead")
        return None
    return stamps


def _has_camera_matrix(path: Path) -> bool:
    try:
        return "camera_matrix" in path.read_text(errors="replace")
    except OSError:
        return False


def find_calibration(folder: Path) -> Path | None:
    """The calibration file of an image folder (see :data:`CALIBRATION_NAMES`), or None."""
    for name in CALIBRATION_NAMES[:2]:
        if (folder / name).is_file():
            return folder / name
    yamls = sorted(
        (
            p
            for p in folder.iterdir()
            if p.suffix.lower() in _YAML_SUFFIXES and _has_camera_matrix(p)
        ),
        key=natural_key,
    )
    if len(yamls) > 1:
        raise DatasetError(
            f"several calibration files in {folder}: {', '.join(p.name for p in yamls)}; "
            "pass camera= the one to use"
        )
    if yamls:
        return yamls[0]
    for name in CALIBRATION_NAMES[2:]:
        if (folder / name).is_file():
            return folder / name
    return None


def _first_image_size(files: Sequence[Path]) -> tuple[int, int]:
    """(height, width) of the first readable image."""
    for path in files:
        try:
            return read_image_file(path).shape[:2]
        except DatasetError:
            continue
    raise DatasetError(f"none of the {len(files)} image files can be read, e.g. {files[0]}")


class ImageFileStream:
    """Frames from an explicit list of image files with their timestamps.

    Args:
        files: image files in frame order.
        stamps_ns: one timestamp (ns) per file.
        camera: the camera of the images, or None.
        undistort: undistort every image (needs a camera); frames carry the pinhole camera.
        frame_id: the frames' optical frame when the camera has none.
    """

    def __init__(
        self,
        files: Sequence[Path],
        stamps_ns: Sequence[int],
        camera: CameraModel | None,
        undistort: bool = False,
        frame_id: str = DEFAULT_FRAME_ID,
    ) -> None:
        if len(files) != len(stamps_ns):
            raise DatasetError(f"{len(files)} image files but {len(stamps_ns)} timestamps")
        if undistort and camera is None:
            raise DatasetError("undistort=True needs a camera calibration; none was given or found")
        self.files = list(files)
        self.stamps_ns = [int(s) for s in stamps_ns]
        self.skipped = 0
        self._raw_camera = camera
        self._undistorter = Undistorter(camera) if undistort and camera is not None else None
        self._frame_id = (camera.frame_id if camera is not None else "") or frame_id

    @property
    def camera(self) -> CameraModel | None:
        """The camera of the frames (after undistortion when undistorting)."""
        return self._undistorter.camera if self._undistorter is not None else self._raw_camera

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        self.skipped = 0
        camera = self._raw_camera
        for index, (path, stamp) in enumerate(zip(self.files, self.stamps_ns, strict=True)):
            try:
                rgb = read_image_file(path)
            except DatasetError as err:
                self.skipped += 1
                _LOG.warning("skipped image %d: %s", index, err)
                continue
            if camera is not None and rgb.shape[:2] != (camera.height, camera.width):
                raise DatasetError(
                    f"image {path} is {rgb.shape[1]}x{rgb.shape[0]} but the camera calibration is "
                    f"for {camera.width}x{camera.height} (width x height)"
                )
            if self._undistorter is not None:
                rgb = self._undistorter(rgb)
            yield Frame(
                stamp_ns=stamp,
                rgb=rgb,
                camera=self.camera,
                frame_id=self._frame_id,
                topic="",
                index=index,
                source=str(path),
            )


class FolderImageStream(ImageFileStream):
    """Frames from the image files of one folder, in natural name order (or timestamp order).

    Args:
        folder: folder of ``png/jpg/jpeg/bmp/tif/tiff`` images; other files are skipped (logged).
        camera: a :class:`CameraModel`, a calibration file (ROS YAML, K text, KITTI calib), or None
            to look for one in the folder (:func:`find_calibration`).
        rate_hz: frame rate for timestamps when the file names are not timestamps.
        undistort: undistort every image with the calibration.
        require_camera_info: raise when no calibration is found; when False frames may have
            ``camera=None``.
        frame_id: the frames' optical frame.
    """

    def __init__(
        self,
        folder: str | Path,
        camera: CameraModel | str | Path | None = None,
        rate_hz: float = DEFAULT_RATE_HZ,
        undistort: bool = False,
        require_camera_info: bool = True,
        frame_id: str = DEFAULT_FRAME_ID,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.exists():
            raise MissingInputError(f"image folder {self.folder} does not exist")
        if not self.folder.is_dir():
            raise DatasetError(f"{self.folder} is not a folder of images")
        if not rate_hz > 0:
            raise ConfigError(f"rate_hz must be positive, got {rate_hz}")
        files = self._image_files()
        stamps = stamps_from_names(files)
        if stamps is None:
            files.sort(key=natural_key)
            period_ns = round(_NS_PER_S / rate_hz)
            stamps = [index * period_ns for index in range(len(files))]
        else:
            order = sorted(range(len(files)), key=lambda i: stamps[i])
            files, stamps = [files[i] for i in order], [stamps[i] for i in order]
        model = self._camera(camera, files, require_camera_info or undistort, frame_id)
        super().__init__(files, stamps, model, undistort=undistort, frame_id=frame_id)

    def _image_files(self) -> list[Path]:
        images: list[Path] = []
        ignored: list[str] = []
        for path in self.folder.iterdir():
            if path.name.startswith(".") or path.is_dir():
                continue
            suffix = path.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                images.append(path)
            elif suffix not in _QUIET_SUFFIXES:
                ignored.append(path.name)
        if ignored:
            _LOG.warning(
                "%s: skipped %d non-image file(s): %s",
                self.folder,
                len(ignored),
                ", ".join(sorted(ignored)),
            )
        if not images:
            raise DatasetError(
                f"no image files in {self.folder}; expected {', '.join(IMAGE_SUFFIXES)} files"
            )
        return images

    def _camera(
        self,
        camera: CameraModel | str | Path | None,
        files: Sequence[Path],
        required: bool,
        frame_id: str,
    ) -> CameraModel | None:
        if isinstance(camera, CameraModel):
            return camera
        path = Path(camera) if camera is not None else find_calibration(self.folder)
        if path is None:
            if required:
                raise DatasetError(
                    f"no camera calibration in {self.folder}: expected camera_info.yaml, "
                    "calibration.yaml, a *.yaml with camera_matrix, K.txt or calib.txt; pass "
                    "camera= a calibration file, or require_camera_info=False"
                )
            return None
        return load_camera_file(path, image_size=_first_image_size(files), frame_id=frame_id)
