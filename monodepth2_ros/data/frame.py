"""The frame type every image stream yields, and the stream interface."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from monodepth2_ros.data.camera import CameraModel

__all__ = ["Frame", "ImageStream", "DamagedInputWarning"]


class DamagedInputWarning(UserWarning):
    """An input file is truncated or corrupt; what could be read before the damage was used."""


@dataclass(frozen=True, eq=False)
class Frame:
    """One RGB image with its time and camera.

    Attributes:
        stamp_ns: capture time in nanoseconds (the message header stamp, else the bag time; for
            image folders the file-name timestamp or ``index / rate``).
        rgb: (H, W, 3) uint8 RGB; may be a read-only view of the message buffer (copy to modify).
        camera: the camera of ``rgb`` (undistorted when the stream undistorts), or None.
        frame_id: optical frame of the camera.
        topic: the bag topic it came from ("" for files).
        index: position of the image on its topic / in its folder, counting skipped ones, so gaps
            show where undecodable images were dropped.
        source: the bag or image file it was read from.
    """

    stamp_ns: int
    rgb: np.ndarray
    camera: CameraModel | None
    frame_id: str
    topic: str
    index: int
    source: str = ""


@runtime_checkable
class ImageStream(Protocol):
    """What :func:`monodepth2_ros.data.open_stream` returns: a re-iterable source of frames.

    ``skipped`` counts the images of the latest iteration that could not be read or decoded.
    ``camera`` is the camera of the first frame (after undistortion), known before iterating.
    ``len()`` is the number of images the source holds; skipped ones are not yielded.
    """

    skipped: int

    @property
    def camera(self) -> CameraModel | None: ...

    def __iter__(self) -> Iterator[Frame]: ...

    def __len__(self) -> int: ...
