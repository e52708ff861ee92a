"""Camera models from ``CameraInfo`` messages and calibration files.

``CameraInfo`` conversion is duck-typed: rclpy and rosbags ROS 2 messages spell the matrices
``k, d, r, p``, rosbags ROS 1 messages ``K, D, R, P``; both are accepted. Intrinsics follow the
conventions of :mod:`monodepth2_ros.model.geometry` (pixel centres at integer coordinates).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from monodepth2_ros.data.image_codec import check_image_size
from monodepth2_ros.errors import DatasetError, MissingInputError

__all__ = [
    "DISTORTION_MODELS",
    "UncalibratedCameraError",
    "CameraModel",
    "load_camera_yaml",
    "save_camera_yaml",
    "load_intrinsics_text",
    "load_camera_file",
    "IntrinsicsText",
]

PLUMB_BOB = "plumb_bob"
RATIONAL_POLYNOMIAL = "rational_polynomial"
EQUIDISTANT = "equidistant"
PINHOLE = ""  # no distortion model: an ideal pinhole camera
DISTORTION_MODELS: tuple[str, ...] = (PLUMB_BOB, RATIONAL_POLYNOMIAL, EQUIDISTANT, PINHOLE)

# Coefficient counts OpenCV accepts for each model (ROS writes 5 for plumb_bob, 8 for rational).
_COEFFICIENT_COUNTS: dict[str, tuple[int, ...]] = {
    PLUMB_BOB: (4, 5, 8, 12, 14),
    RATIONAL_POLYNOMIAL: (4, 5, 8, 12, 14),
    EQUIDISTANT: (4,),
    PINHOLE: (0,),
}

_YAML_SUFFIXES = (".yaml", ".yml")
_OPENCV_YAML_HEADER = "%YAML:1.0"  # OpenCV < 4 style header, which YAML parsers refuse
_OPENCV_MATRIX_TAG = "!!opencv-matrix"
_DEFAULT_FRAME_ID = "camera"


class UncalibratedCameraError(DatasetError):
    """A ``CameraInfo`` with an all-zero K: the driver publishes no calibration."""


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class CameraModel:
    """One calibrated camera for images of ``width`` x ``height`` pixels.

    Attributes:
        width, height: image size in pixels the calibration is for.
        K: (3, 3) float64 pinhole intrinsics of the raw (distorted) image.
        D: (N,) float64 distortion coefficients in the ROS/OpenCV order of ``distortion_model``.
        distortion_model: one of :data:`DISTORTION_MODELS` ("" = no distortion).
        P: (3, 4) float64 projection matrix of the rectified image, or None when not given.
        frame_id: optical frame of the camera.

    Arrays are copied and made read-only; equality and hashing compare values.
    """

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))
    distortion_model: str = PINHOLE
    P: np.ndarray | None = None
    frame_id: str = ""

    def __post_init__(self) -> None:
        width, height = int(self.width), int(self.height)
        if width <= 0 or height <= 0:
            raise DatasetError(
                f"camera image size {self.width}x{self.height} (width x height); "
                "expected both positive"
            )
        check_image_size(width, height, "camera calibration")
        K = _matrix(self.K, (3, 3), "K")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise DatasetError(
                f"camera K has focal lengths fx={K[0, 0]}, fy={K[1, 1]}; expected both positive"
            )
        D = np.array(self.D, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(D)):
            raise DatasetError(f"camera distortion D = {D.tolist()} holds NaN or Inf")
        model = str(self.distortion_model).strip().lower()
        if not np.any(D) and (model == PINHOLE or model not in _COEFFICIENT_COUNTS):
            # No distortion at all: an unknown model name or a zero-filled D changes nothing.
            model, D = PINHOLE, np.zeros(0)
        if model not in _COEFFICIENT_COUNTS:
            raise DatasetError(
                f"unsupported distortion model {self.distortion_model!r}; supported: "
                + ", ".join(repr(m) for m in DISTORTION_MODELS)
            )
        if model != PINHOLE and D.size == 0:
            model = PINHOLE  # a named model without coefficients: nothing to undo
        if D.size not in _COEFFICIENT_COUNTS[model]:
            raise DatasetError(
                f"distortion model {model!r} with {D.size} coefficients; expected "
                f"{' or '.join(str(n) for n in _COEFFICIENT_COUNTS[model])}"
            )
        P = None if self.P is None else _matrix(self.P, (3, 4), "P")
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "height", height)
        object.__setattr__(self, "K", _readonly(K))
        object.__setattr__(self, "D", _readonly(D))
        object.__setattr__(self, "distortion_model", model)
        object.__setattr__(self, "P", None if P is None else _readonly(P))
        object.__setattr__(self, "frame_id", str(self.frame_id))

    def _key(self) -> tuple[Any, ...]:
        return (
            self.width,
            self.height,
            self.K.tobytes(),
            self.D.tobytes(),
            self.distortion_model,
            None if self.P is None else self.P.tobytes(),
            self.frame_id,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CameraModel):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"CameraModel({self.width}x{self.height}, fx={self.K[0, 0]:.6g}, fy={self.K[1, 1]:.6g}, "
            f"cx={self.K[0, 2]:.6g}, cy={self.K[1, 2]:.6g}, model={self.distortion_model!r}, "
            f"D={self.D.tolist()}, frame_id={self.frame_id!r})"
        )

    @classmethod
    def from_camera_info(cls, msg: Any) -> CameraModel:
        """Build from a ``sensor_msgs/CameraInfo`` (rclpy, rosbags ROS 2 or ROS 1 message).

        Raises:
            UncalibratedCameraError: K is all zero (K[0] == 0), the ROS sign of "no calibration".
            DatasetError: NaN/Inf values, wrong sizes, binning or a region of interest.
        """
        frame_id = str(getattr(getattr(msg, "header", None), "frame_id", ""))
        K = _field(msg, "k")
        if K.size != 9:
            raise DatasetError(f"CameraInfo ({frame_id!r}) K has {K.size} values; expected 9")
        if not np.all(np.isfinite(K)):
            raise DatasetError(f"CameraInfo ({frame_id!r}) K = {K.tolist()} holds NaN or Inf")
        if K[0] == 0:
            raise UncalibratedCameraError(
                f"CameraInfo ({frame_id!r}) is uncalibrated: K[0] (fx) is 0; calibrate the camera "
                "(e.g. ros2 run camera_calibration cameracalibrator) or give a calibration file"
            )
        P = _field(msg, "p")
        if P.size not in (0, 12):
            raise DatasetError(f"CameraInfo ({frame_id!r}) P has {P.size} values; expected 12")
        if not np.all(np.isfinite(P)):
            raise DatasetError(f"CameraInfo ({frame_id!r}) P = {P.tolist()} holds NaN or Inf")
        _check_no_binning_or_roi(msg, frame_id)
        try:
            return cls(
                width=int(msg.width),
                height=int(msg.height),
                K=K.reshape(3, 3),
                D=_field(msg, "d"),
                distortion_model=str(msg.distortion_model),
                P=P.reshape(3, 4) if P.size == 12 and P[0] != 0 else None,
                frame_id=frame_id,
            )
        except DatasetError as err:
            raise DatasetError(f"CameraInfo ({frame_id!r}): {err}") from err

    @property
    def is_distorted(self) -> bool:
        """Whether raw images need undistortion (a model with a non-zero coefficient)."""
        return self.distortion_model != PINHOLE and bool(np.any(self.D != 0))

    def normalized_K(self) -> np.ndarray:
        """Size-free (3, 3) intrinsics (see :mod:`monodepth2_ros.model.geometry`)."""
        # Imported here so that reading data does not import torch (geometry's module dependency).
        from monodepth2_ros.model.geometry import normalize_intrinsics

        return normalize_intrinsics(np.array(self.K), self.height, self.width)

    def K_for_size(self, height: int, width: int) -> np.ndarray:
        """(3, 3) intrinsics of this camera's images resized (no crop) to ``height x width``.

        Exact for undistorted images; for distorted ones it is the K that goes with the resized raw
        image and the unchanged D (distortion acts on normalised coordinates).
        """
        from monodepth2_ros.model.geometry import denormalize_intrinsics

        return denormalize_intrinsics(self.normalized_K(), int(height), int(width))

    def rectified_K(self) -> np.ndarray:
        """Intrinsics of the rectified image: ``P[:3, :3]`` when P is given, else K."""
        return np.array(self.P[:, :3] if self.P is not None else self.K)


def _matrix(values: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    if array.size != shape[0] * shape[1]:
        raise DatasetError(
            f"camera {name} has {array.size} values (shape {array.shape}); expected {shape}"
        )
    array = array.reshape(shape)
    if not np.all(np.isfinite(array)):
        raise DatasetError(f"camera {name} = {array.tolist()} holds NaN or Inf")
    return array


def _field(msg: Any, name: str) -> np.ndarray:
    """A CameraInfo array field, lower case (ROS 2) or upper case (rosbags' ROS 1 types)."""
    value = getattr(msg, name, None)
    if value is None:
        value = getattr(msg, name.upper(), None)
    if value is None:
        raise DatasetError(f"CameraInfo message has no field {name!r} or {name.upper()!r}")
    return np.array(value, dtype=np.float64).reshape(-1)


def _check_no_binning_or_roi(msg: Any, frame_id: str) -> None:
    """Reject binned or cropped CameraInfo, whose K does not describe the published pixels."""
    binning = (int(getattr(msg, "binning_x", 0) or 0), int(getattr(msg, "binning_y", 0) or 0))
    if max(binning) > 1:
        raise DatasetError(
            f"CameraInfo ({frame_id!r}) has binning {binning}; only unbinned images (0 or 1) "
            "are supported"
        )
    roi = getattr(msg, "roi", None)
    if roi is None:
        return
    roi_box = (int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height))
    full_image = (
        roi_box[2] == 0 or roi_box[3] == 0 or roi_box == (0, 0, int(msg.width), int(msg.height))
    )
    if not full_image:
        raise DatasetError(
            f"CameraInfo ({frame_id!r}) has a region of interest (x, y, w, h) = {roi_box}; "
            "only full images are supported"
        )


# --------------------------------------------------------------------------------------------
# Calibration files


def _yaml_matrix(
    doc: dict[str, Any], key: str, path: Path, shape: tuple[int, int] | None
) -> np.ndarray:
    """A ``{rows, cols, data}`` block of a ROS calibration YAML."""
    block = doc.get(key)
    if not isinstance(block, dict) or "data" not in block:
        raise DatasetError(f"{path}: key {key!r} must be a mapping with rows, cols and data")
    data = np.array(block["data"], dtype=np.float64).reshape(-1)
    rows, cols = int(block.get("rows", 1)), int(block.get("cols", data.size))
    if rows * cols != data.size:
        raise DatasetError(f"{path}: {key} declares {rows}x{cols} but holds {data.size} values")
    if shape is not None and (rows, cols) != shape:
        raise DatasetError(f"{path}: {key} is {rows}x{cols}; expected {shape[0]}x{shape[1]}")
    return data.reshape(rows, cols)


def _read_opencv_yaml(path: Path) -> dict[str, Any]:
    """The ROS-calibration keys of an OpenCV FileStorage YAML (``%YAML:1.0``, ``!!opencv-matrix``)."""
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    try:
        doc: dict[str, Any] = {}
        for key in ("image_width", "image_height"):
            node = storage.getNode(key)
            if not node.empty():
                doc[key] = int(node.real())
        for key in ("camera_matrix", "distortion_coefficients", "projection_matrix"):
            node = storage.getNode(key)
            if not node.empty():
                matrix = node.mat()
                doc[key] = {
                    "rows": matrix.shape[0],
                    "cols": matrix.shape[1],
                    "data": matrix.ravel().tolist(),
                }
        node = storage.getNode("distortion_model")
        if not node.empty():
            doc["distortion_model"] = node.string()
        return doc
    finally:
        storage.release()


def load_camera_yaml(path: str | Path, frame_id: str = _DEFAULT_FRAME_ID) -> CameraModel:
    """Read the YAML written by ROS ``camera_calibration`` / ``camera_info_manager``.

    Keys: ``image_width``, ``image_height``, ``camera_matrix`` and optionally
    ``distortion_model``, ``distortion_coefficients``, ``projection_matrix`` (each matrix a
    ``{rows, cols, data}`` mapping). OpenCV FileStorage files with the same keys are read too.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"camera calibration file {path} does not exist")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"cannot read camera calibration {path}: {err}") from err
    if _OPENCV_MATRIX_TAG in text or text.lstrip().startswith(_OPENCV_YAML_HEADER):
        try:
            doc = _read_opencv_yaml(path)
        except cv2.error as err:
            raise DatasetError(f"{path}: not a readable OpenCV YAML file: {err}") from err
    else:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise DatasetError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(doc, dict):
        raise DatasetError(
            f"{path}: expected a YAML mapping with camera_matrix, got {type(doc).__name__}"
        )
    missing = [key for key in ("image_width", "image_height", "camera_matrix") if key not in doc]
    if missing:
        raise DatasetError(
            f"{path}: missing key(s) {', '.join(missing)}; expected a ROS camera calibration YAML "
            "(image_width, image_height, camera_matrix, distortion_model, distortion_coefficients, "
            "projection_matrix)"
        )
    K = _yaml_matrix(doc, "camera_matrix", path, (3, 3))
    D = (
        _yaml_matrix(doc, "distortion_coefficients", path, None).reshape(-1)
        if "distortion_coefficients" in doc
        else np.zeros(0)
    )
    P = _yaml_matrix(doc, "projection_matrix", path, (3, 4)) if "projection_matrix" in doc else None
    if P is not None and P[0, 0] == 0:
        P = None
    model = str(doc.get("distortion_model") or (PLUMB_BOB if D.size else PINHOLE))
    if K[0, 0] == 0:
        raise UncalibratedCameraError(f"{path}: camera_matrix has fx = 0 (an uncalibrated camera)")
    try:
        return CameraModel(
            width=int(doc["image_width"]),
            height=int(doc["image_height"]),
            K=K,
            D=D,
            distortion_model=model,
            P=P,
            frame_id=frame_id,
        )
    except (DatasetError, TypeError, ValueError) as err:
        raise DatasetError(f"{path}: {err}") from err


def _yaml_float(value: float) -> str:
    """Shortest exact float text that YAML 1.1 also reads as a float (it needs a '.')."""
    text = repr(float(value))
    if "." not in text:
        mantissa, _, exponent = text.partition("e")
        text = f"{mantissa}.0" + (f"e{exponent}" if exponent else "")
    return text


def _yaml_block(rows: int, cols: int, values: np.ndarray) -> str:
    numbers = ", ".join(_yaml_float(v) for v in values.reshape(-1))
    return f"  rows: {rows}\n  cols: {cols}\n  data: [{numbers}]\n"


def save_camera_yaml(camera: CameraModel, path: str | Path, camera_name: str = "camera") -> Path:
    """Write ``camera`` in the ROS ``camera_calibration`` YAML layout (exact float round trip).

    ``projection_matrix`` is written only when the camera has a P, so that loading gives back an
    equal camera (with ``frame_id`` passed to :func:`load_camera_yaml`).
    """
    path = Path(path)
    text = (
        f"image_width: {camera.width}\n"
        f"image_height: {camera.height}\n"
        f"camera_name: {camera_name}\n"
        "camera_matrix:\n"
        + _yaml_block(3, 3, camera.K)
        + f"distortion_model: {camera.distortion_model or PLUMB_BOB}\n"
        "distortion_coefficients:\n"
        + _yaml_block(1, camera.D.size, camera.D)
        + "rectification_matrix:\n"
        + _yaml_block(3, 3, np.eye(3))
    )
    if camera.P is not None:
        text += "projection_matrix:\n" + _yaml_block(3, 4, camera.P)
    path.write_text(text)
    return path


@dataclass(frozen=True)
class IntrinsicsText:
    """What a text calibration file gives: K, maybe P (rectified) and maybe the image size."""

    K: np.ndarray
    P: np.ndarray | None = None
    size: tuple[int, int] | None = None  # (height, width)


_KEY_VALUE = re.compile(r"^\s*([A-Za-z_][\w]*)\s*:\s*(.*)$")


def _numbers(text: str, path: Path, what: str) -> np.ndarray:
    try:
        return np.array(
            [float(token) for token in text.replace(",", " ").split()], dtype=np.float64
        )
    except ValueError as err:
        raise DatasetError(f"{path}: {what} holds a non-number: {err}") from err


def load_intrinsics_text(path: str | Path, kitti_camera: str = "02") -> IntrinsicsText:
    """Read intrinsics from a text file.

    Accepted contents: 9 numbers (K row-major, any line layout), 4 numbers ``fx fy cx cy``,
    12 numbers (P, 3x4), or ``key: values`` lines as in KITTI's ``calib_cam_to_cam.txt``
    (``P_rect_<cam>`` and ``S_rect_<cam>``) and odometry ``calib.txt`` (``P<n>``), or ``K:``.
    Lines starting with ``#`` are comments.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"intrinsics file {path} does not exist")
    try:
        lines = [line.split("#", 1)[0] for line in path.read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"cannot read intrinsics file {path}: {err}") from err
    entries = {m.group(1): m.group(2) for line in lines if (m := _KEY_VALUE.match(line))}
    if entries:
        return _intrinsics_from_entries(entries, path, kitti_camera)
    values = _numbers(" ".join(lines), path, "the file")
    if values.size == 9:
        return IntrinsicsText(K=values.reshape(3, 3))
    if values.size == 4:
        fx, fy, cx, cy = values
        return IntrinsicsText(K=np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]))
    if values.size == 12:
        P = values.reshape(3, 4)
        return IntrinsicsText(K=P[:, :3].copy(), P=P)
    raise DatasetError(
        f"{path} holds {values.size} numbers; expected 9 (K, 3x3), 4 (fx fy cx cy), 12 (P, 3x4) "
        "or 'key: values' lines (KITTI calib_cam_to_cam.txt P_rect_02 / calib.txt P2 / K)"
    )


def _intrinsics_from_entries(
    entries: dict[str, str], path: Path, kitti_camera: str
) -> IntrinsicsText:
    size = None
    size_key = f"S_rect_{kitti_camera}"
    if size_key in entries:
        width_height = _numbers(entries[size_key], path, size_key)
        if width_height.size != 2:
            raise DatasetError(
                f"{path}: {size_key} has {width_height.size} values; expected 2 (w h)"
            )
        size = (int(round(width_height[1])), int(round(width_height[0])))
    for key in (
        f"P_rect_{kitti_camera}",
        f"P{int(kitti_camera)}" if kitti_camera.isdigit() else "P",
    ):
        if key in entries:
            P = _numbers(entries[key], path, key)
            if P.size != 12:
                raise DatasetError(f"{path}: {key} has {P.size} values; expected 12 (3x4)")
            P = P.reshape(3, 4)
            return IntrinsicsText(K=P[:, :3].copy(), P=P, size=size)
    if "K" in entries:
        K = _numbers(entries["K"], path, "K")
        if K.size != 9:
            raise DatasetError(f"{path}: K has {K.size} values; expected 9 (3x3)")
        return IntrinsicsText(K=K.reshape(3, 3), size=size)
    raise DatasetError(
        f"{path}: no intrinsics among keys {sorted(entries)}; expected P_rect_{kitti_camera} "
        f"(KITTI calib_cam_to_cam.txt), P{kitti_camera.lstrip('0') or '0'} (calib.txt) or K"
    )


def load_camera_file(
    path: str | Path,
    image_size: tuple[int, int] | None = None,
    frame_id: str = _DEFAULT_FRAME_ID,
    kitti_camera: str = "02",
) -> CameraModel:
    """A :class:`CameraModel` from a calibration YAML or an intrinsics text file.

    Args:
        image_size: (height, width) of the images, needed for text files that do not state it.
    """
    path = Path(path)
    if path.suffix.lower() in _YAML_SUFFIXES:
        return load_camera_yaml(path, frame_id=frame_id)
    intrinsics = load_intrinsics_text(path, kitti_camera=kitti_camera)
    size = intrinsics.size or image_size
    if size is None:
        raise DatasetError(
            f"{path} gives no image size; pass the images' (height, width) as image_size"
        )
    try:
        return CameraModel(
            width=size[1], height=size[0], K=intrinsics.K, P=intrinsics.P, frame_id=frame_id
        )
    except DatasetError as err:
        raise DatasetError(f"{path}: {err}") from err
