"""The ``camera_info`` side of a node that needs only rectified frames (the pose node).

The pose network takes no intrinsics, but a model fine-tuned on undistorted frames must see
undistorted frames: with a calibration that has distortion, frames are rectified with the same
:class:`~monodepth2_ros.inference.camera_input.CameraInput` as the depth node and training use.
Without any ``camera_info`` frames pass unchanged (the pose node never required one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from monodepth2_ros.data.camera import CameraModel, UncalibratedCameraError
from monodepth2_ros.errors import DatasetError
from monodepth2_ros.inference.camera_input import CameraInput, rectification_wanted

__all__ = ["FrameRectifier"]

# A CameraInfo for another size is scaled to the image when the aspect ratios agree this closely.
_ASPECT_RATIO_TOLERANCE = 0.01


class FrameRectifier:
    """Latest CameraInfo (callback thread) and the rectification built from it (worker thread).

    Args:
        info_topic: the resolved camera_info topic, for messages.
        report: ``(kind, message)`` for a throttled warning (the node's reporter).
        reject: ``(kind, message)`` that counts a rejected frame and reports it.
        log_info: the node's info logger (one line when the geometry is set up or changes).
    """

    def __init__(
        self,
        info_topic: str,
        report: Callable[[str, str], Any],
        reject: Callable[[str, str], Any],
        log_info: Callable[[str], Any],
    ) -> None:
        self._info_topic = info_topic
        self._report = report
        self._reject = reject
        self._log_info = log_info
        # (calibration, error of the last CameraInfo): swapped as one tuple by the callback thread.
        self._state: tuple[CameraModel | None, str | None] = (None, None)
        self._camera_input: CameraInput | None = None
        self._key: tuple[Any, ...] | None = None
        self.geometry_changes = 0

    @property
    def camera(self) -> CameraModel | None:
        """The latest usable calibration (None: none yet, uncalibrated, or the last one was invalid)."""
        return self._state[0]

    @property
    def camera_input(self) -> CameraInput | None:
        """The rectification of the last frame (None: frames pass unchanged)."""
        return self._camera_input

    def describe(self) -> str:
        """The diagnostics' ``rectification`` value."""
        model, error = self._state
        if error is not None:
            return f"waiting (invalid CameraInfo: {error})"
        if self._camera_input is None:
            return "off (no calibration)" if model is None else "off"
        return self._camera_input.describe()

    def on_camera_info(self, msg: Any) -> None:
        """Keep the calibration; an unusable one is reported and makes frames wait for a good one."""
        try:
            model = CameraModel.from_camera_info(msg)
        except UncalibratedCameraError:
            self._state = (None, None)  # nothing to rectify with: frames pass unchanged
            return
        except DatasetError as err:
            self._report(
                "bad_camera_info",
                f"ignoring CameraInfo on {self._info_topic} (distortion_model "
                f"{str(getattr(msg, 'distortion_model', ''))!r}, {len(getattr(msg, 'd', ()))} coefficients): {err}; "
                "images are skipped until a valid CameraInfo arrives",
            )
            self._state = (None, str(err))
            return
        self._state = (model, None)

    def frame(self, rgb: np.ndarray, mode: str) -> tuple[np.ndarray | None, bool]:
        """(the frame to use, whether the geometry changed since the last frame); None: rejected.

        Args:
            mode: the ``rectify`` parameter.
        """
        model, error = self._state
        if error is not None:
            self._reject("bad_camera_info", f"dropping image: the last CameraInfo on {self._info_topic} is invalid ({error})")
            return None, False
        height, width = rgb.shape[:2]
        if model is None or not rectification_wanted(mode, model):
            changed = self._camera_input is not None
            self._camera_input, self._key = None, None
            return rgb, changed
        if (model.height, model.width) != (height, width):
            aspect = model.width / model.height
            if abs(width / height - aspect) > _ASPECT_RATIO_TOLERANCE * aspect:
                self._reject(
                    "camera_info_size",
                    f"dropping image: it is {width}x{height} but CameraInfo on {self._info_topic} is for "
                    f"{model.width}x{model.height} (another aspect ratio); expected the calibration of these images",
                )
                return None, False
        key = (model, height, width)
        changed = False
        if key != self._key:
            try:
                camera_input = CameraInput(model, (height, width), rectify=True)
            except DatasetError as err:
                self._reject("bad_camera_info", f"dropping image: cannot rectify with the CameraInfo on {self._info_topic}: {err}")
                return None, False
            changed = self._key is not None
            self.geometry_changes += int(changed)
            self._camera_input, self._key = camera_input, key
            self._log_info(f"{'camera changed: ' if changed else ''}{width}x{height} rectification {camera_input.describe()}")
        return self._camera_input.rectify_image(rgb), changed
