"""One table of ``sensor_msgs/Image`` encodings: decoding to RGB, to native arrays, and encoding back.

The functions are duck-typed on the message fields shared by rclpy and rosbags messages
(``encoding, height, width, step, is_bigendian, data`` for ``Image``, ``format, data`` for
``CompressedImage``), so the ROS nodes and the bag readers use the same code.

Decoded arrays are numpy *views* of ``msg.data`` where the layout allows (``rgb8``, and every
encoding through :func:`image_to_array` when the byte order is native), including a row-strided
view when ``step`` pads the rows. Such a view is read-only when the message data is (bytes);
copy before writing into it.
"""

from __future__ import annotations

import re
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from monodepth2_ros.errors import DatasetError

__all__ = [
    "RGB_ENCODINGS",
    "DEPTH_ENCODINGS",
    "COMPRESSED_FORMATS",
    "image_to_rgb",
    "image_to_array",
    "depth_image_to_metres",
    "compressed_to_rgb",
    "rgb_to_image_fields",
    "rgb_to_compressed",
    "is_colour_encoding",
    "MAX_IMAGE_SIDE",
    "MAX_IMAGE_PIXELS",
    "check_image_size",
]

# Bits dropped to bring a 16-bit channel to 8 bits (and the factor that undoes it exactly on encode).
_SHIFT_16_TO_8 = 8
_SCALE_8_TO_16 = 257  # 255 * 257 = 65535, and (v * 257) >> 8 == v for every 8-bit v

# ITU-R BT.601 "video range" RGB -> YCbCr, the inverse of what OpenCV's YUV422 decoders use.
_BT601_RGB_TO_YUV = np.array(
    [
        [0.257, 0.504, 0.098],
        [-0.148, -0.291, 0.439],
        [0.439, -0.368, -0.071],
    ]
)
_BT601_OFFSET = np.array([16.0, 128.0, 128.0])

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG"
_DEFAULT_JPEG_QUALITY = 95

_HOST_BIG_ENDIAN = sys.byteorder == "big"

# The largest image any input may claim: a side of 32768 and 2^28 pixels (805 MB as RGB) are far
# beyond cameras and keep a lying header from making a decoder allocate gigabytes.
MAX_IMAGE_SIDE = 32_768
MAX_IMAGE_PIXELS = 2**28

# Depths in millimetres (16-bit depth images) -> metres.
_MILLIMETRES_TO_METRES = 1e-3

Decoder = Callable[[np.ndarray], np.ndarray]
Encoder = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Codec:
    """Memory layout of one encoding and, for colour encodings, its conversions.

    Attributes:
        channels: values per pixel (2 for the packed YUV 4:2:2 formats: one luma, one chroma).
        dtype: numpy type of one value (native byte order).
        to_rgb: (H, W, channels) typed array -> (H, W, 3) uint8 RGB; None for non-colour data.
        from_rgb: (H, W, 3) uint8 RGB -> (H, W, channels) typed array.
    """

    channels: int
    dtype: np.dtype
    to_rgb: Decoder | None = None
    from_rgb: Encoder | None = None


def _to_8bit(array: np.ndarray) -> np.ndarray:
    """16-bit values -> 8-bit by dropping the low byte."""
    return (array >> _SHIFT_16_TO_8).astype(np.uint8)


def _to_16bit(array: np.ndarray) -> np.ndarray:
    """8-bit values -> 16-bit spanning the full range, so that ``>> 8`` recovers them exactly."""
    return array.astype(np.uint16) * np.uint16(_SCALE_8_TO_16)


def _cvt(code: int, from_16bit: bool = False) -> Decoder:
    """A decoder applying one OpenCV colour conversion (after dropping to 8 bits if asked)."""

    def decode(array: np.ndarray) -> np.ndarray:
        source = array[..., 0] if array.shape[-1] == 1 else array
        if from_16bit:
            source = _to_8bit(source)
        return cv2.cvtColor(np.ascontiguousarray(source), code)

    return decode


def _widen(encoder: Encoder) -> Encoder:
    """The 16-bit version of an 8-bit encoder."""
    return lambda rgb: _to_16bit(encoder(rgb))


def _rgb_view(array: np.ndarray) -> np.ndarray:
    return array


def _reverse_channels(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., ::-1]


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None]


def _with_alpha(rgb: np.ndarray) -> np.ndarray:
    alpha = np.full((*rgb.shape[:2], 1), 255, dtype=np.uint8)
    return np.concatenate([rgb, alpha], axis=-1)


# ROS names a Bayer pattern by its top-left 2x2 block; OpenCV's older names refer to the block
# starting at the second row and column, so ROS "rggb" is OpenCV "BG" (alias RGGB in OpenCV >= 4.x).
_BAYER_TO_CV2 = {
    "rggb": cv2.COLOR_BayerBG2RGB,
    "bggr": cv2.COLOR_BayerRG2RGB,
    "gbrg": cv2.COLOR_BayerGR2RGB,
    "grbg": cv2.COLOR_BayerGB2RGB,
}
_RGB_INDEX = {"r": 0, "g": 1, "b": 2}


def _mosaic(pattern: str) -> Encoder:
    """An encoder sampling RGB through the colour filter ``pattern`` (top-left 2x2, row-major)."""

    def encode(rgb: np.ndarray) -> np.ndarray:
        raw = np.empty(rgb.shape[:2], dtype=np.uint8)
        for position, colour in enumerate(pattern):
            row, col = divmod(position, 2)
            raw[row::2, col::2] = rgb[row::2, col::2, _RGB_INDEX[colour]]
        return raw[..., None]

    return encode


def _rgb_to_yuv422(rgb: np.ndarray, chroma_first: bool) -> np.ndarray:
    """RGB -> packed 4:2:2 (H, W, 2): luma per pixel, U on even and V on odd columns.

    ``chroma_first`` gives UYVY byte order (chroma in plane 0), otherwise YUYV (luma in plane 0).
    """
    yuv = rgb.astype(np.float64) @ _BT601_RGB_TO_YUV.T + _BT601_OFFSET
    luma = yuv[..., 0]
    chroma = np.empty(rgb.shape[:2])
    # One U and one V per horizontal pixel pair, from the pair's mean.
    chroma[:, 0::2] = 0.5 * (yuv[:, 0::2, 1] + yuv[:, 1::2, 1])
    chroma[:, 1::2] = 0.5 * (yuv[:, 0::2, 2] + yuv[:, 1::2, 2])
    planes = (chroma, luma) if chroma_first else (luma, chroma)
    return np.clip(np.rint(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


def _uyvy(rgb: np.ndarray) -> np.ndarray:
    return _rgb_to_yuv422(rgb, chroma_first=True)


def _yuyv(rgb: np.ndarray) -> np.ndarray:
    return _rgb_to_yuv422(rgb, chroma_first=False)


_U8 = np.dtype(np.uint8)
_U16 = np.dtype(np.uint16)

_bgr_codec = _Codec(3, _U8, _cvt(cv2.COLOR_BGR2RGB), _reverse_channels)
_mono8_codec = _Codec(1, _U8, _cvt(cv2.COLOR_GRAY2RGB), _gray)
_uyvy_codec = _Codec(2, _U8, _cvt(cv2.COLOR_YUV2RGB_UYVY), _uyvy)
_yuyv_codec = _Codec(2, _U8, _cvt(cv2.COLOR_YUV2RGB_YUY2), _yuyv)

# Keys are lower case: encodings are matched case-insensitively.
_COLOUR_CODECS: dict[str, _Codec] = {
    "rgb8": _Codec(3, _U8, _rgb_view, lambda rgb: rgb),
    "bgr8": _bgr_codec,
    "rgba8": _Codec(4, _U8, _cvt(cv2.COLOR_RGBA2RGB), _with_alpha),
    "bgra8": _Codec(
        4, _U8, _cvt(cv2.COLOR_BGRA2RGB), lambda rgb: _with_alpha(rgb)[..., [2, 1, 0, 3]]
    ),
    "mono8": _mono8_codec,
    "8uc1": _mono8_codec,
    # A bare 8UC3 image is what cv_bridge makes of an OpenCV (BGR) array: read it as BGR.
    "8uc3": _bgr_codec,
    "mono16": _Codec(1, _U16, _cvt(cv2.COLOR_GRAY2RGB, from_16bit=True), _widen(_gray)),
    "rgb16": _Codec(3, _U16, _to_8bit, _to_16bit),
    "bgr16": _Codec(3, _U16, _cvt(cv2.COLOR_BGR2RGB, from_16bit=True), _widen(_reverse_channels)),
    # ROS "yuv422" is UYVY (U0 Y0 V0 Y1); "yuv422_yuy2" and "YUYV" are YUYV (Y0 U0 Y1 V0).
    "yuv422": _uyvy_codec,
    "uyvy": _uyvy_codec,
    "yuv422_yuy2": _yuyv_codec,
    "yuyv": _yuyv_codec,
}
for _pattern, _code in _BAYER_TO_CV2.items():
    _COLOUR_CODECS[f"bayer_{_pattern}8"] = _Codec(1, _U8, _cvt(_code), _mosaic(_pattern))
    _COLOUR_CODECS[f"bayer_{_pattern}16"] = _Codec(
        1, _U16, _cvt(_code, from_16bit=True), _widen(_mosaic(_pattern))
    )

# The canonical spelling of every colour encoding, for messages and for the encoders.
RGB_ENCODINGS: tuple[str, ...] = (
    "rgb8",
    "bgr8",
    "rgba8",
    "bgra8",
    "mono8",
    "mono16",
    "rgb16",
    "bgr16",
    "8UC1",
    "8UC3",
    *(f"bayer_{pattern}{bits}" for bits in (8, 16) for pattern in _BAYER_TO_CV2),
    "yuv422",
    "UYVY",
    "yuv422_yuy2",
    "YUYV",
)

DEPTH_ENCODINGS: tuple[str, ...] = ("32FC1", "16UC1", "mono16")

COMPRESSED_FORMATS: tuple[str, ...] = ("jpeg", "png")

# OpenCV-style numeric encodings ("32FC1", "16UC3", ...), readable by image_to_array.
_NUMERIC_ENCODING = re.compile(r"^(8U|8S|16U|16S|32S|32F|64F)C([1-4])$", re.IGNORECASE)
_NUMERIC_DTYPES = {
    "8U": np.uint8,
    "8S": np.int8,
    "16U": np.uint16,
    "16S": np.int16,
    "32S": np.int32,
    "32F": np.float32,
    "64F": np.float64,
}


def _layout(encoding: str) -> _Codec | None:
    """The layout of ``encoding`` (case-insensitive), or None when unknown."""
    key = encoding.strip().lower()
    if key in _COLOUR_CODECS:
        return _COLOUR_CODECS[key]
    match = _NUMERIC_ENCODING.match(encoding.strip())
    if match:
        return _Codec(int(match.group(2)), np.dtype(_NUMERIC_DTYPES[match.group(1).upper()]))
    return None


def check_image_size(width: int, height: int, what: str) -> None:
    """Refuse an image size no camera has (before anything of that size is allocated)."""
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise DatasetError(
            f"{what} claims {width}x{height} pixels (width x height); refused: the limit is "
            f"{MAX_IMAGE_SIDE} pixels a side and {MAX_IMAGE_PIXELS} pixels in all"
        )


def is_colour_encoding(encoding: str) -> bool:
    """Whether :func:`image_to_rgb` can decode images of this encoding."""
    return encoding.strip().lower() in _COLOUR_CODECS


def _as_bytes_array(data: Any) -> np.ndarray:
    """``msg.data`` (bytes, bytearray, array('B'), memoryview, ndarray or list) -> flat uint8."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError as err:
        raise DatasetError(
            f"image data of type {type(data).__name__} is not a byte buffer; expected bytes, "
            "array('B'), a uint8 numpy array or a list of ints"
        ) from err


def _typed_pixels(msg: Any, codec: _Codec) -> np.ndarray:
    """Checked (H, W, C) view of ``msg.data`` in native byte order (a copy only when swapping)."""
    encoding = str(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise DatasetError(
            f"zero-size image: {encoding!r} image is {width}x{height} (width x height); "
            "expected both positive"
        )
    pixel_bytes = codec.channels * codec.dtype.itemsize
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise DatasetError(
            f"{encoding!r} image step {step} is smaller than width * bytes per pixel = "
            f"{width} * {pixel_bytes} = {row_bytes}"
        )
    raw = _as_bytes_array(msg.data)
    if raw.size != height * step:
        raise DatasetError(
            f"{encoding!r} image data holds {raw.size} bytes; expected height * step = "
            f"{height} * {step} = {height * step}"
        )
    rows = raw.reshape(height, step)[:, :row_bytes]
    big_endian = bool(msg.is_bigendian)
    dtype = codec.dtype.newbyteorder(">" if big_endian else "<")
    typed = rows.view(dtype).reshape(height, width, codec.channels)
    if codec.dtype.itemsize > 1 and big_endian != _HOST_BIG_ENDIAN:
        typed = typed.astype(codec.dtype)
    return typed


def _unknown_encoding(encoding: str, known: tuple[str, ...]) -> DatasetError:
    return DatasetError(f"unsupported image encoding {encoding!r}; supported: {', '.join(known)}")


def image_to_rgb(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` to RGB.

    16-bit data keeps its high byte, Bayer data is demosaiced (bilinear), YUV 4:2:2 is converted
    with BT.601 as cv_bridge does, grey is replicated to three channels.

    Returns:
        (H, W, 3) uint8 RGB; a view of ``msg.data`` for ``rgb8``.
    Raises:
        DatasetError: unknown or non-colour encoding, inconsistent size/step/data length.
    """
    encoding = str(msg.encoding)
    codec = _COLOUR_CODECS.get(encoding.strip().lower())
    if codec is None or codec.to_rgb is None:
        raise _unknown_encoding(encoding, RGB_ENCODINGS)
    if codec.channels == 2 and int(msg.width) % 2:
        raise DatasetError(
            f"{encoding!r} image width {msg.width} is odd; 4:2:2 YUV needs an even width"
        )
    pixels = _typed_pixels(msg, codec)
    try:
        return codec.to_rgb(pixels)
    except cv2.error as err:
        raise DatasetError(f"cannot convert {encoding!r} image to RGB: {err}") from err


def image_to_array(msg: Any) -> np.ndarray:
    """``msg.data`` as an array of the encoding's native type, without colour conversion.

    Returns:
        (H, W) for one-channel encodings (e.g. float32 for ``32FC1``, uint16 for ``16UC1``),
        otherwise (H, W, C); a view of ``msg.data`` unless the byte order had to be swapped.
    """
    encoding = str(msg.encoding)
    codec = _layout(encoding)
    if codec is None:
        raise _unknown_encoding(
            encoding, RGB_ENCODINGS + ("{8U,8S,16U,16S,32S,32F,64F}C{1,2,3,4}",)
        )
    pixels = _typed_pixels(msg, codec)
    return pixels[..., 0] if codec.channels == 1 else pixels


def depth_image_to_metres(msg: Any) -> np.ndarray:
    """Depth image -> (H, W) float32 metres, NaN where there is no valid depth.

    ``32FC1`` is read as metres (REP 118), ``16UC1``/``mono16`` as millimetres. Zero, negative
    and non-finite depths (REP 118's "no return", "too close", "too far") all become NaN.
    """
    encoding = str(msg.encoding).strip()
    key = encoding.upper()
    if key == "32FC1":
        depth = image_to_array(msg).astype(np.float32, copy=True)
    elif key in ("16UC1", "MONO16"):
        depth = image_to_array(msg).astype(np.float32) * np.float32(_MILLIMETRES_TO_METRES)
    else:
        raise DatasetError(
            f"unsupported depth encoding {encoding!r}; supported: 32FC1 (metres), "
            "16UC1 or mono16 (millimetres)"
        )
    with np.errstate(invalid="ignore"):
        depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
    return depth


def _compressed_codec(fmt: str, payload: np.ndarray) -> str:
    """The codec named by a ``CompressedImage.format`` (or sniffed from the payload when empty)."""
    text = fmt.lower()
    if "compresseddepth" in text:
        raise DatasetError(
            f"compressed image format {fmt!r} is a compressedDepth (depth) image, not colour"
        )
    if "jpeg" in text or "jpg" in text:
        return "jpeg"
    if "png" in text:
        return "png"
    head = payload[:4].tobytes()
    if not text.strip():
        if head.startswith(_JPEG_MAGIC):
            return "jpeg"
        if head.startswith(_PNG_MAGIC):
            return "png"
    raise DatasetError(
        f"unsupported compressed image format {fmt!r} (payload starts {head!r}); "
        f"supported: {', '.join(COMPRESSED_FORMATS)}, e.g. 'jpeg' or 'rgb8; jpeg compressed bgr8'"
    )


# JPEG start-of-frame markers (baseline, progressive, lossless, ...): all but DHT, JPG and DAC.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RSTn, SOI.
_JPEG_BARE_MARKERS = frozenset([0x01, *range(0xD0, 0xD9)])
_PNG_SIZE_SLICE = slice(16, 24)  # IHDR width and height, after the signature and the chunk head


def _claimed_size(payload: memoryview, codec: str) -> tuple[int, int] | None:
    """(width, height) the PNG or JPEG header claims, read without decoding; None when not found."""
    if codec == "png":
        if len(payload) < _PNG_SIZE_SLICE.stop or bytes(payload[:4]) != _PNG_MAGIC:
            return None
        width, height = struct.unpack(">II", payload[_PNG_SIZE_SLICE])
        return width, height
    position = 2  # after SOI
    while position + 4 <= len(payload):
        if payload[position] != 0xFF:
            return None
        marker = payload[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_BARE_MARKERS:
            position += 2
            continue
        if marker in _JPEG_SOF_MARKERS:
            if position + 9 > len(payload):
                return None
            height, width = struct.unpack(">HH", payload[position + 5 : position + 9])
            return width, height
        position += 2 + struct.unpack(">H", payload[position + 2 : position + 4])[0]
    return None


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG or PNG) to (H, W, 3) uint8 RGB.

    The image_transport payload holds an OpenCV-encoded (BGR-ordered) image whatever the original
    encoding, so every colour format decodes the same way; 16-bit PNGs keep their high byte.
    """
    fmt = str(msg.format)
    payload = _as_bytes_array(msg.data)
    if payload.size == 0:
        raise DatasetError(
            f"compressed image ({fmt!r}) has no data; expected a JPEG or PNG payload"
        )
    codec = _compressed_codec(fmt, payload)
    claimed = _claimed_size(memoryview(payload), codec)
    if claimed is not None:
        check_image_size(*claimed, what=f"compressed {codec} image ({fmt!r}, {payload.size} bytes)")
    try:
        bgr = cv2.imdecode(payload, cv2.IMREAD_COLOR)
    except cv2.error as err:  # OpenCV's own size and format checks
        raise DatasetError(f"cannot decode {payload.size} bytes as {codec} (format {fmt!r}): {err}") from err
    if bgr is None:
        raise DatasetError(
            f"cannot decode {payload.size} bytes as {codec} (format {fmt!r}); "
            "the payload is corrupt or not an image"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise DatasetError(
            f"expected an (H, W, 3) uint8 RGB array, got shape {rgb.shape} and dtype {rgb.dtype}"
        )
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise DatasetError(f"zero-size image: RGB array of shape {rgb.shape}")


def rgb_to_image_fields(
    rgb: np.ndarray, encoding: str, *, row_padding: int = 0, big_endian: bool = False
) -> tuple[bytes, int]:
    """Encode RGB as the ``data`` and ``step`` of an ``Image`` with ``encoding``.

    Lossy where the encoding is (grey, Bayer mosaic, 4:2:2 chroma); 8-bit values are spread over
    16 bits as ``v * 257`` so that decoding recovers them exactly.

    Args:
        rgb: (H, W, 3) uint8.
        encoding: any of :data:`RGB_ENCODINGS`.
        row_padding: extra bytes after each row (``step = width * bytes_per_pixel + padding``).
        big_endian: byte order of 16-bit values (the message's ``is_bigendian``).
    Returns:
        ``(data, step)``.
    """
    codec = _COLOUR_CODECS.get(encoding.strip().lower())
    if codec is None or codec.from_rgb is None:
        raise _unknown_encoding(encoding, RGB_ENCODINGS)
    _check_rgb(rgb)
    if row_padding < 0:
        raise DatasetError(f"row_padding must be >= 0, got {row_padding}")
    if codec.channels == 2 and rgb.shape[1] % 2:
        raise DatasetError(
            f"{encoding!r} needs an even width for 4:2:2 chroma pairs; got width {rgb.shape[1]}"
        )
    pixels = np.ascontiguousarray(codec.from_rgb(rgb), dtype=codec.dtype)
    if codec.dtype.itemsize > 1:
        pixels = pixels.astype(codec.dtype.newbyteorder(">" if big_endian else "<"))
    height = rgb.shape[0]
    row_bytes = pixels.reshape(height, -1).view(np.uint8).reshape(height, -1)
    step = row_bytes.shape[1] + row_padding
    padded = np.zeros((height, step), dtype=np.uint8)
    padded[:, : row_bytes.shape[1]] = row_bytes
    return padded.tobytes(), step


def rgb_to_compressed(
    rgb: np.ndarray, fmt: str = "jpeg", *, jpeg_quality: int = _DEFAULT_JPEG_QUALITY
) -> tuple[bytes, str]:
    """Encode RGB as a ``CompressedImage`` payload the way image_transport does.

    Returns:
        ``(data, format)`` with ``format`` like ``"rgb8; jpeg compressed bgr8"``.
    """
    _check_rgb(rgb)
    codec = fmt.strip().lower()
    if codec == "jpg":
        codec = "jpeg"
    if codec not in COMPRESSED_FORMATS:
        raise DatasetError(
            f"unsupported compressed format {fmt!r}; supported: {', '.join(COMPRESSED_FORMATS)}"
        )
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if codec == "jpeg" else []
    ok, buffer = cv2.imencode(f".{'jpg' if codec == 'jpeg' else 'png'}", rgb[..., ::-1], params)
    if not ok:
        raise DatasetError(f"OpenCV could not encode a {rgb.shape} image as {codec}")
    return buffer.tobytes(), f"rgb8; {codec} compressed bgr8"
