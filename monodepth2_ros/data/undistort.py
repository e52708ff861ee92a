"""Undistortion (and optional resizing) of raw images to an ideal pinhole camera.

The OpenCV remap tables are computed once per camera; each image then costs one ``cv2.remap``.
"""

from __future__ import annotations

import cv2
import numpy as np

from monodepth2_ros.data.camera import EQUIDISTANT, PINHOLE, CameraModel
from monodepth2_ros.errors import DatasetError

__all__ = ["Undistorter"]

# Balance between keeping every source pixel (1) and showing no invalid border (0) when a fisheye
# camera has no P to say what the rectified view should be.
_FISHEYE_BALANCE = 0.0


def _scaled_K(K: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """K for the same field of view at another (height, width), package pixel convention."""
    # Imported here so that reading data does not import torch (geometry's module dependency).
    from monodepth2_ros.model.geometry import scale_intrinsics

    return np.asarray(scale_intrinsics(np.array(K, dtype=np.float64), from_size, to_size))


class Undistorter:
    """Maps raw images of ``camera`` to undistorted pinhole images.

    The output camera keeps the rectified intrinsics ``P[:3, :3]`` when the calibration has a P
    (as ``image_proc`` does), else K (fisheye: a K chosen by OpenCV that keeps no invalid border),
    scaled to ``output_size`` when given.

    Args:
        camera: the raw camera (any supported distortion model, or none).
        output_size: (height, width) of the output images; default the camera's size.
    Attributes:
        camera: the pinhole :class:`CameraModel` of the output images (no distortion).
    """

    def __init__(self, camera: CameraModel, output_size: tuple[int, int] | None = None) -> None:
        self.source = camera
        in_size = (camera.height, camera.width)
        height, width = output_size if output_size is not None else in_size
        if height <= 0 or width <= 0:
            raise DatasetError(
                f"undistortion output size {output_size}; expected positive (height, width)"
            )
        new_K = self._new_K(camera)
        out_K = _scaled_K(new_K, in_size, (height, width))
        self.camera = CameraModel(
            width=width,
            height=height,
            K=out_K,
            distortion_model=PINHOLE,
            P=np.hstack([out_K, np.zeros((3, 1))]),
            frame_id=camera.frame_id,
        )
        self._identity = (
            not camera.is_distorted and (height, width) == in_size and np.allclose(new_K, camera.K)
        )
        self._maps: tuple[np.ndarray, np.ndarray] | None = None
        if not self._identity:
            self._maps = self._build_maps(camera, out_K, (height, width))

    @staticmethod
    def _new_K(camera: CameraModel) -> np.ndarray:
        if camera.P is not None:
            return camera.rectified_K()
        if camera.distortion_model == EQUIDISTANT and camera.is_distorted:
            return cv2.fisheye.estimateNewCameraMatrixForUndistortRectify(
                camera.K,
                camera.D[:4],
                (camera.width, camera.height),
                np.eye(3),
                balance=_FISHEYE_BALANCE,
            )
        return np.array(camera.K)

    @staticmethod
    def _build_maps(
        camera: CameraModel, out_K: np.ndarray, size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        cv_size = (size[1], size[0])
        try:
            if camera.distortion_model == EQUIDISTANT and camera.is_distorted:
                return cv2.fisheye.initUndistortRectifyMap(
                    camera.K, camera.D[:4], np.eye(3), out_K, cv_size, cv2.CV_16SC2
                )
            coefficients = camera.D if camera.is_distorted else np.zeros(0)
            return cv2.initUndistortRectifyMap(
                camera.K, coefficients, np.eye(3), out_K, cv_size, cv2.CV_16SC2
            )
        except cv2.error as err:
            raise DatasetError(
                f"OpenCV cannot build undistortion maps for {camera}: {err}"
            ) from err

    def float_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """(H', W') float32 raw-image x and y of every output pixel (identity grid when no remap).

        The exact source positions, e.g. to carry ground-truth depth to the output grid (nearest).
        """
        height, width = self.camera.height, self.camera.width
        if self._maps is None:
            grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
            return grid_x, grid_y
        return cv2.convertMaps(self._maps[0], self._maps[1], cv2.CV_32FC1)

    def depth(self, depth: np.ndarray) -> np.ndarray:
        """A depth map on the raw grid (ground truth) -> the output grid: the nearest raw pixel (no
        blending across edges), NaN where the output pixel sees outside the raw image."""
        depth = np.asarray(depth, dtype=np.float32)
        if depth.shape != (self.source.height, self.source.width):
            raise DatasetError(
                f"depth map of {depth.shape[1]}x{depth.shape[0]} for a camera of "
                f"{self.source.width}x{self.source.height} (width x height)"
            )
        if self._maps is None:
            return depth
        map_x, map_y = self.float_maps()
        return cv2.remap(
            depth, map_x, map_y, interpolation=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan")
        )

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Undistort one (H, W, C) image of the raw camera's size -> (H', W', C) of :attr:`camera`."""
        if rgb.shape[:2] != (self.source.height, self.source.width):
            raise DatasetError(
                f"image of size {rgb.shape[1]}x{rgb.shape[0]} given to an undistorter for "
                f"{self.source.width}x{self.source.height} (width x height)"
            )
        if self._maps is None:
            return rgb
        return cv2.remap(
            np.ascontiguousarray(rgb),
            self._maps[0],
            self._maps[1],
            interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )
