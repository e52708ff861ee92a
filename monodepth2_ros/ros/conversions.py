"""numpy <-> ROS messages for the nodes: Image (32FC1, bgr8, ...), CameraInfo, PointCloud2.

numpy and OpenCV only: no cv_bridge, no sensor_msgs_py. Decoding camera images is
:mod:`monodepth2_ros.data.image_codec`'s job (shared with the bag readers); this module only wraps it.

Large outputs are written into a :class:`MessageBuffer`: ``array.array`` storage that the message's
``data`` field takes without a copy or a per-byte check, reused frame after frame. A message built
on a buffer shares its bytes, so it must be published before the buffer is filled again (the node
publishes synchronously from one worker thread).
"""

from __future__ import annotations

import array
import sys
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from monodepth2_ros.data.image_codec import compressed_to_rgb, image_to_rgb
from monodepth2_ros.inference.pointcloud import POINT_FIELDS, POINT_STEP, PointCloudArray

__all__ = [
    "MessageBuffer",
    "IMAGE_LAYOUTS",
    "decode_image",
    "image_message",
    "image_message_from_buffer",
    "camera_info_message",
    "point_fields",
    "point_cloud_message",
]

_HOST_IS_BIGENDIAN = sys.byteorder == "big"

# encoding -> (dtype, channels) of the outputs this package publishes.
IMAGE_LAYOUTS: dict[str, tuple[np.dtype, int]] = {
    "32FC1": (np.dtype(np.float32), 1),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgb8": (np.dtype(np.uint8), 3),
    "mono8": (np.dtype(np.uint8), 1),
}


class MessageBuffer:
    """Reusable byte storage for one output's ``data`` field.

    :meth:`view` returns a numpy array over the storage to fill (reallocated only when the size
    changes); :attr:`data` is what goes into the message.
    """

    def __init__(self) -> None:
        self._data = array.array("B")

    def view(self, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """A writable (shape, dtype) array over exactly ``prod(shape) * itemsize`` bytes of storage."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if len(self._data) != nbytes:
            self._data = array.array("B", bytes(1)) * nbytes if nbytes else array.array("B")
        if nbytes == 0:
            return np.empty(shape, dtype=dtype)
        return np.frombuffer(self._data, dtype=dtype).reshape(shape)

    @property
    def data(self) -> array.array:
        return self._data


def _new(message_type: type) -> Any:
    """A message whose ``uint8[]`` setter keeps an ``array('B')`` as is.

    Since Jazzy, generated messages skip field checks unless ``check_fields=True`` and then copy
    every sequence (7 MB for a KITTI-sized cloud); with checks on, an ``array('B')`` is taken without
    a copy, as on Humble, whose messages do not know the argument.
    """
    try:
        return message_type(check_fields=True)
    except TypeError:
        return message_type()


def decode_image(msg: Any) -> np.ndarray:
    """An ``Image`` or ``CompressedImage`` -> (H, W, 3) uint8 RGB (raises DatasetError on bad input)."""
    if hasattr(msg, "format"):
        return compressed_to_rgb(msg)
    return image_to_rgb(msg)


def _layout(encoding: str) -> tuple[np.dtype, int]:
    try:
        return IMAGE_LAYOUTS[encoding]
    except KeyError:
        raise ValueError(f"cannot publish encoding {encoding!r}; supported: {', '.join(IMAGE_LAYOUTS)}") from None


def image_message_from_buffer(buffer: MessageBuffer, height: int, width: int, encoding: str, header: Any) -> Image:
    """An ``Image`` whose data is ``buffer`` (already filled through :meth:`MessageBuffer.view`)."""
    dtype, channels = _layout(encoding)
    step = width * channels * dtype.itemsize
    if len(buffer.data) != height * step:
        raise ValueError(f"buffer holds {len(buffer.data)} bytes; a {width}x{height} {encoding} image needs {height * step}")
    msg = _new(Image)
    msg.header = header
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = _HOST_IS_BIGENDIAN
    msg.step = step
    msg.data = buffer.data
    return msg


def image_message(array_: np.ndarray, encoding: str, header: Any, buffer: MessageBuffer | None = None) -> Image:
    """Copy an (H, W) or (H, W, C) array into an ``Image`` of ``encoding`` (no row padding).

    Args:
        array_: float32 for ``32FC1`` (metres, NaN invalid), uint8 for ``bgr8``/``rgb8``/``mono8``.
        buffer: reused storage (see the module doc); a new one when None.
    """
    dtype, channels = _layout(encoding)
    shape = array_.shape if array_.ndim == 3 else (*array_.shape, 1)
    if array_.dtype != dtype or shape[2] != channels:
        raise ValueError(f"{encoding} needs {channels} channel(s) of {dtype}, got shape {array_.shape} of {array_.dtype}")
    buffer = buffer or MessageBuffer()
    height, width = shape[:2]
    np.copyto(buffer.view((height, width, channels), dtype), array_.reshape(height, width, channels))
    return image_message_from_buffer(buffer, height, width, encoding, header)


def camera_info_message(
    K: np.ndarray, height: int, width: int, header: Any, distortion_model: str = "", D: np.ndarray | None = None
) -> CameraInfo:
    """A ``CameraInfo`` for an image of ``width x height`` seen through ``K``.

    P is ``[K | 0]`` and R the identity, so that consumers projecting with P (image_geometry,
    depth_image_proc) use the same intrinsics as ``K``.
    """
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    msg = CameraInfo()
    msg.header = header
    msg.height = int(height)
    msg.width = int(width)
    msg.distortion_model = distortion_model
    msg.d = [float(value) for value in (D if D is not None else ())]
    msg.k = K.reshape(-1)
    msg.r = np.eye(3).reshape(-1)
    msg.p = np.hstack([K, np.zeros((3, 1))]).reshape(-1)
    return msg


def point_fields() -> list[PointField]:
    """``x y z rgb``, each one float32 (PointField.FLOAT32), 16 bytes a point (the PCL XYZRGB layout)."""
    return [PointField(name=name, offset=offset, datatype=PointField.FLOAT32, count=1) for name, offset in POINT_FIELDS]


def point_cloud_message(cloud: PointCloudArray, header: Any, buffer: MessageBuffer | None = None) -> PointCloud2:
    """A ``PointCloud2`` of a cloud filled by :func:`monodepth2_ros.inference.pointcloud.fill_cloud`.

    When ``cloud`` fills ``buffer`` exactly (organised clouds) the message takes the buffer's storage;
    otherwise its bytes are copied once.
    """
    msg = _new(PointCloud2)
    msg.header = header
    msg.height = cloud.height
    msg.width = cloud.width
    msg.fields = point_fields()
    msg.is_bigendian = _HOST_IS_BIGENDIAN
    msg.point_step = POINT_STEP
    msg.row_step = POINT_STEP * cloud.width
    msg.is_dense = cloud.is_dense
    if buffer is not None and len(buffer.data) == cloud.nbytes and np.may_share_memory(cloud.points, np.frombuffer(buffer.data, np.uint8)):
        msg.data = buffer.data
    else:
        data = array.array("B")
        data.frombytes(np.ascontiguousarray(cloud.points).reshape(-1).view(np.uint8).data)
        msg.data = data
    return msg
