"""A camera's raw frames -> the network input and the pinhole camera the outputs live in.

The one preprocessing path of the package. Training reads bags through the same
:class:`~monodepth2_ros.data.undistort.Undistorter` and stores :func:`network_image` of its output;
the nodes, ``infer``, ``evaluate`` and ``bench`` call :func:`prepare_frame`. So a model sees the
same pixels in training and in use, whatever the lens (pinhole, plumb_bob, rational_polynomial,
equidistant), and every output (depth, colours, points, camera info) is on the rectified grid whose
camera is :attr:`CameraInput.camera`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from monodepth2_ros.data.camera import PINHOLE, CameraModel
from monodepth2_ros.data.undistort import Undistorter
from monodepth2_ros.errors import ConfigError, DatasetError
from monodepth2_ros.inference.preprocess import network_input
from monodepth2_ros.model.geometry import scale_intrinsics

__all__ = [
    "RECTIFY_MODES",
    "rectification_wanted",
    "camera_for_size",
    "CameraInput",
    "PreparedFrame",
    "prepare_frame",
]

# The ``rectify`` parameter / option: auto rectifies a distorted raw camera (not image_rect input).
RECTIFY_MODES: tuple[str, ...] = ("auto", "true", "false")


def rectification_wanted(mode: str, camera: CameraModel | None, use_rectified_p: bool = False) -> bool:
    """Whether frames of ``camera`` are rectified under ``rectify`` = ``mode``.

    ``auto``: the camera has a non-zero distortion and the images are not already rectified
    (``use_rectified_p`` false); ``true``: always, with a calibration; ``false``: never.
    """
    if mode not in RECTIFY_MODES:
        raise ConfigError(f"rectify must be one of {', '.join(RECTIFY_MODES)}; got {mode!r}")
    if camera is None or mode == "false":
        return False
    if mode == "true":
        return True
    return camera.is_distorted and not use_rectified_p


def camera_for_size(camera: CameraModel, height: int, width: int) -> CameraModel:
    """``camera`` for its images resized (no crop) to ``height x width``: K and P scaled, D unchanged.

    Distortion acts on normalised coordinates, so the same D holds for the resized raw image.
    """
    if (camera.height, camera.width) == (height, width):
        return camera
    from_size, to_size = (camera.height, camera.width), (int(height), int(width))
    P = None
    if camera.P is not None:
        P = np.array(camera.P)
        P[:, :3] = np.asarray(scale_intrinsics(P[:, :3].copy(), from_size, to_size))
        P[0, 3] *= to_size[1] / from_size[1]
        P[1, 3] *= to_size[0] / from_size[0]
    return CameraModel(
        width=width,
        height=height,
        K=camera.K_for_size(height, width),
        D=camera.D,
        distortion_model=camera.distortion_model,
        P=P,
        frame_id=camera.frame_id,
    )


class CameraInput:
    """The raw frames of one camera (at one image size) and the camera of what comes out.

    Built once per calibration and image size; the remap tables inside are reused by every frame.

    Args:
        camera: the calibration (CameraInfo); scaled to ``image_size`` when that differs.
        image_size: (height, width) of the raw images.
        rectify: undistort the frames to the pinhole camera of P (as ``image_proc`` does).
        use_rectified_p: without rectification, the images are already rectified (``image_rect``):
            their camera is P's; else the raw K with its distortion.
    Attributes:
        raw_camera: ``camera`` at the image size.
        camera: the camera of the outputs: pinhole when rectified (or ``use_rectified_p``), else the
            raw camera with its distortion.
        rectified: whether frames are remapped.
    """

    def __init__(
        self, camera: CameraModel, image_size: tuple[int, int], rectify: bool, use_rectified_p: bool = False
    ) -> None:
        self.raw_camera = camera_for_size(camera, *image_size)
        self.rectified = bool(rectify)
        self._undistorter: Undistorter | None = None
        if self.rectified:
            self._undistorter = Undistorter(self.raw_camera)
            self.camera = self._undistorter.camera
        elif use_rectified_p:
            K = self.raw_camera.rectified_K()
            self.camera = CameraModel(
                width=self.raw_camera.width,
                height=self.raw_camera.height,
                K=K,
                distortion_model=PINHOLE,
                P=np.hstack([K, np.zeros((3, 1))]),
                frame_id=self.raw_camera.frame_id,
            )
        else:
            self.camera = self.raw_camera

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the raw frames."""
        return self.raw_camera.height, self.raw_camera.width

    def describe(self) -> str:
        """One line for logs and diagnostics."""
        raw = self.raw_camera
        model = raw.distortion_model or "pinhole"
        if self.rectified:
            return f"on ({model}, {raw.width}x{raw.height} -> pinhole fx={self.camera.K[0, 0]:.6g})"
        return f"off ({model}{', distortion kept in camera_info' if self.camera.is_distorted else ''})"

    def rectify_image(self, rgb: np.ndarray) -> np.ndarray:
        """A raw (H, W, C) frame on the output grid (the frame itself when not rectifying)."""
        if rgb.shape[:2] != self.image_size:
            raise DatasetError(
                f"image of {rgb.shape[1]}x{rgb.shape[0]} for a camera input of "
                f"{self.image_size[1]}x{self.image_size[0]} (width x height)"
            )
        return self._undistorter(rgb) if self._undistorter is not None else rgb

    def rectify_depth(self, depth: np.ndarray) -> np.ndarray:
        """A depth map on the raw pixel grid (ground truth) -> the output grid: nearest raw pixel,
        NaN where the rectified pixel sees outside the raw image (and where the raw depth was NaN)."""
        depth = np.asarray(depth, dtype=np.float32)
        if self._undistorter is None:
            return depth
        return self._undistorter.depth(depth)


@dataclass(frozen=True)
class PreparedFrame:
    """One frame ready for the network.

    Attributes:
        images: (1, 3, h, w) float network input in [0, 1] on the network's device.
        rgb: (H, W, 3) uint8 frame on the output grid (rectified when rectifying), e.g. cloud colours.
        camera: the camera of ``rgb`` and of the outputs, or None (no calibration).
    """

    images: torch.Tensor
    rgb: np.ndarray
    camera: CameraModel | None


def prepare_frame(
    rgb: np.ndarray, camera_input: CameraInput | None, network_size: tuple[int, int], device: torch.device
) -> PreparedFrame:
    """Raw (H, W, 3) uint8 RGB -> network input + the frame and camera the outputs live in.

    Args:
        camera_input: the camera's :class:`CameraInput` (None: no calibration, nothing to rectify).
        network_size: (height, width) the network runs at.
    """
    frame = camera_input.rectify_image(rgb) if camera_input is not None else rgb
    images = network_input(frame, network_size[0], network_size[1], device)
    return PreparedFrame(images=images, rgb=frame, camera=None if camera_input is None else camera_input.camera)
