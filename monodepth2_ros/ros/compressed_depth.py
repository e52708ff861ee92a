"""Bandwidth-friendly depth: the image_transport ``compressedDepth`` and ``compressed`` (JPEG) payloads.

``depth/compressedDepth`` follows the public format of compressed_depth_image_transport, so RViz,
Foxglove and ``ros2 run image_transport republish compressedDepth raw`` decode it:

* ``format`` is ``"16UC1; compressedDepth png"``: the image encoding, then the transport and codec;
* ``data`` is a 12-byte config header (little-endian int32 compression format, 0 = ``INV_DEPTH``,
  then two float32 depth-quantisation parameters, unused for 16-bit images and written as 0) followed
  by a 16-bit greyscale PNG.

The PNG holds depth in millimetres (REP 118's 16UC1), rounded to the nearest millimetre, so the
decoded depth is within 0.5 mm of ``depth``; 0 means no depth (NaN, or beyond 65.535 m).
``depth/colored/compressed`` is the colour view as JPEG, format ``"bgr8; jpeg compressed bgr8"``
as image_transport's compressed publisher writes it.

Only numpy and OpenCV here: the depth node puts the bytes into ``sensor_msgs/CompressedImage``.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from monodepth2_ros.errors import DatasetError

__all__ = [
    "COMPRESSED_DEPTH_FORMAT",
    "COLORED_JPEG_FORMAT",
    "CONFIG_HEADER",
    "INV_DEPTH",
    "MAX_DEPTH_MM",
    "PNG_LEVEL",
    "depth_to_millimetres",
    "encode_compressed_depth",
    "encode_jpeg",
]

COMPRESSED_DEPTH_FORMAT = "16UC1; compressedDepth png"
COLORED_JPEG_FORMAT = "bgr8; jpeg compressed bgr8"
# compressionFormat (int32) and depthParam[2] (float32), as the C struct lies in memory on x86/ARM.
CONFIG_HEADER = struct.Struct("<iff")
INV_DEPTH = 0
MAX_DEPTH_MM = 65535
# zlib level of the PNG: 1 keeps the encoder cheap on a robot's CPU; depth maps compress well anyway.
PNG_LEVEL = 1


def depth_to_millimetres(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) metres (NaN invalid) -> (H, W) uint16 millimetres, 0 where invalid or beyond 65.535 m."""
    depth_m = np.asarray(depth_m, dtype=np.float32)
    millimetres = np.rint(depth_m * 1000.0)
    valid = np.isfinite(millimetres) & (millimetres >= 1.0) & (millimetres <= MAX_DEPTH_MM)
    return np.where(valid, millimetres, 0.0).astype(np.uint16)


def encode_compressed_depth(depth_m: np.ndarray) -> bytes:
    """The ``data`` of a ``16UC1; compressedDepth png`` CompressedImage for a metric depth map."""
    ok, png = cv2.imencode(".png", depth_to_millimetres(depth_m), [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
    if not ok:
        raise DatasetError(f"PNG encoding of a {depth_m.shape} depth map failed")
    return CONFIG_HEADER.pack(INV_DEPTH, 0.0, 0.0) + png.tobytes()


def encode_jpeg(bgr: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 BGR image."""
    ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise DatasetError(f"JPEG encoding of a {bgr.shape} image failed")
    return jpeg.tobytes()
