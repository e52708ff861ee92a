"""Property-based fuzzing of every decoder a camera message goes through (hypothesis).

Whatever an ``Image``, ``CompressedImage`` or ``CameraInfo`` holds, decoding either returns what the
message describes or raises :class:`DatasetError`; never another exception, never an allocation the
data does not back. ``MONODEPTH2_FUZZ_EXAMPLES`` sets the cases per test (the figures in the README
come from a run with 5000).
"""

from __future__ import annotations

import os
import resource
import struct
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monodepth2_ros.data.camera import CameraModel, UncalibratedCameraError
from monodepth2_ros.data.image_codec import (
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    RGB_ENCODINGS,
    compressed_to_rgb,
    depth_image_to_metres,
    image_to_array,
    image_to_rgb,
    rgb_to_compressed,
    rgb_to_image_fields,
)
from monodepth2_ros.errors import DatasetError

EXAMPLES = int(os.environ.get("MONODEPTH2_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NUMERIC_ENCODINGS = [f"{depth}C{c}" for depth in ("8U", "8S", "16U", "16S", "32S", "32F", "64F") for c in (1, 2, 3, 4)]
ENCODINGS = list(RGB_ENCODINGS) + NUMERIC_ENCODINGS + ["", "hsv8", "RGB8 ", "bayer_xyz8", "32FC9", "\x00"]
UINT32 = 2**32 - 1
# More resident memory than this after one decode would mean a claimed size was allocated.
MAX_RSS_GROWTH_KB = 200 * 1024


def _max_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def image(encoding, height, width, step, data, big_endian=0):
    return SimpleNamespace(encoding=encoding, height=height, width=width, step=step, is_bigendian=big_endian, data=data)


sizes = st.one_of(st.integers(0, 40), st.sampled_from([UINT32, 2**31, 65536, 10**9]), st.integers(-5, -1))


@st.composite
def hostile_images(draw):
    """Any field combination: sizes up to 2^32 with a few bytes, steps too short or long, both byte orders."""
    encoding = draw(st.sampled_from(ENCODINGS))
    height, width = draw(sizes), draw(sizes)
    step = draw(st.one_of(st.integers(0, 400), st.sampled_from([UINT32, 2**31]), st.integers(-3, -1)))
    data = draw(st.binary(max_size=2048))
    if draw(st.booleans()) and 0 < height * max(step, 0) <= 4096:
        data = draw(st.binary(min_size=height * step, max_size=height * step))  # consistent length
    return image(encoding, height, width, step, data, draw(st.sampled_from([0, 1, 2, 255])))


@FUZZ
@given(hostile_images())
def test_any_image_message_decodes_or_raises_dataset_error(msg):
    for decode in (image_to_rgb, image_to_array, depth_image_to_metres):
        try:
            out = decode(msg)
        except DatasetError:
            continue
        assert out.shape[:2] == (msg.height, msg.width)
        if decode is image_to_rgb:
            assert out.shape == (msg.height, msg.width, 3) and out.dtype == np.uint8


@st.composite
def valid_images(draw):
    """A real image of any colour encoding, with row padding and either byte order."""
    encoding = draw(st.sampled_from(RGB_ENCODINGS))
    height = draw(st.integers(1, 12))
    width = 2 * draw(st.integers(1, 8))
    rgb = np.frombuffer(draw(st.binary(min_size=height * width * 3, max_size=height * width * 3)), np.uint8)
    big_endian = draw(st.booleans())
    padding = draw(st.integers(0, 9))
    data, step = rgb_to_image_fields(rgb.reshape(height, width, 3), encoding, row_padding=padding, big_endian=big_endian)
    return image(encoding, height, width, step, data, int(big_endian)), rgb.reshape(height, width, 3)


@FUZZ
@given(valid_images(), st.integers(-3, 3), st.integers(-2, 2))
def test_valid_images_decode_and_a_broken_step_or_length_is_refused(case, step_change, length_change):
    msg, rgb = case
    assert image_to_rgb(msg).shape == rgb.shape
    broken = image(msg.encoding, msg.height, msg.width, msg.step + step_change, msg.data[: len(msg.data) + length_change] if length_change < 0 else msg.data + bytes(length_change), msg.is_bigendian)
    if step_change == 0 and length_change == 0:
        return
    try:
        out = image_to_rgb(broken)
    except DatasetError:
        return
    # A longer step with data to match is a legal (padded) layout: it must still decode to the claimed size.
    assert out.shape == rgb.shape and len(broken.data) == broken.height * broken.step


def test_huge_claimed_image_with_little_data_allocates_nothing():
    before = _max_rss_kb()
    for encoding in ("rgb8", "bgr8", "mono16", "32FC1", "yuv422"):
        with pytest.raises(DatasetError, match="expected height \\* step"):
            image_to_rgb(image(encoding, 2**31, 2**16, 2**20, b"\x00" * 64)) if encoding != "32FC1" else image_to_array(
                image(encoding, 2**31, 2**16, 2**20, b"\x00" * 64)
            )
    assert _max_rss_kb() - before < MAX_RSS_GROWTH_KB


# ------------------------------------------------------------------------------------- compressed


def compressed(fmt, data):
    return SimpleNamespace(format=fmt, data=data)


FORMATS = ["jpeg", "png", "", "rgb8; jpeg compressed bgr8", "bgr8; png compressed bgr8", "16UC1; compressedDepth png", "tiff", "JPG"]


@FUZZ
@given(st.sampled_from(FORMATS), st.binary(max_size=4096))
def test_garbage_compressed_payloads_raise_dataset_error(fmt, payload):
    try:
        out = compressed_to_rgb(compressed(fmt, payload))
    except DatasetError:
        return
    assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8


_SMOOTH = np.clip(np.mgrid[0:40, 0:56][1][..., None] * np.array([4, 3, 2]), 0, 255).astype(np.uint8)
_ENCODED = {codec: rgb_to_compressed(_SMOOTH, codec)[0] for codec in ("jpeg", "png")}


@FUZZ
@given(st.sampled_from(["jpeg", "png"]), st.data())
def test_truncated_or_bit_flipped_jpeg_and_png_raise_or_decode_to_the_size(codec, data):
    payload = bytearray(_ENCODED[codec])
    cut = data.draw(st.integers(0, len(payload) - 1))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(payload) - 1), st.integers(1, 255)), max_size=4))
    for position, mask in flips:
        payload[position] ^= mask
    if data.draw(st.booleans()):
        payload = payload[:cut]
    try:
        out = compressed_to_rgb(compressed(codec, bytes(payload)))
    except DatasetError:
        return
    # A flipped bit may hit the size fields: then the image is another size, but never a huge one.
    assert out.ndim == 3 and out.shape[2] == 3 and out.shape[0] * out.shape[1] <= MAX_IMAGE_PIXELS


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width x height`` RGB pixels (the rest of its data is short)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" + bytes(3 * min(width, 1000)))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG whose SOF0 frame header is rewritten to claim ``width x height``."""
    payload = bytearray(_ENCODED["jpeg"])
    sof = payload.index(b"\xff\xc0")
    payload[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(payload)


@pytest.mark.parametrize(
    "payload, fmt",
    [
        (png_claiming(60000, 60000), "png"),
        (png_claiming(20000, 20000), "png"),
        (png_claiming(2**31 - 1, 1), "png"),
        (jpeg_claiming(65000, 65000), "jpeg"),
        (jpeg_claiming(30000, 30000), "jpeg"),
    ],
    ids=["png_60000x60000", "png_20000x20000", "png_2^31x1", "jpeg_65000x65000", "jpeg_30000x30000"],
)
def test_compressed_image_claiming_a_huge_size_is_refused_before_decoding(payload, fmt):
    before = _max_rss_kb()
    with pytest.raises(DatasetError, match="claims .* pixels"):
        compressed_to_rgb(compressed(fmt, payload))
    assert _max_rss_kb() - before < MAX_RSS_GROWTH_KB


def test_a_small_png_and_jpeg_still_decode():
    for codec, payload in _ENCODED.items():
        assert compressed_to_rgb(compressed(codec, payload)).shape == _SMOOTH.shape


# ------------------------------------------------------------------------------------- CameraInfo

floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.0, 1e308, -1e308, 5e-324]),
    st.floats(-2000, 2000),
)


@st.composite
def camera_infos(draw):
    def values(count_choices):
        count = draw(st.sampled_from(count_choices))
        return draw(st.lists(floats, min_size=count, max_size=count))

    roi = SimpleNamespace(
        x_offset=draw(st.integers(0, 5)), y_offset=0, width=draw(st.sampled_from([0, 10, UINT32])), height=0, do_rectify=False
    )
    return SimpleNamespace(
        header=SimpleNamespace(frame_id=draw(st.sampled_from(["cam", "", "\x00"]))),
        width=draw(sizes),
        height=draw(sizes),
        distortion_model=draw(st.sampled_from(["plumb_bob", "rational_polynomial", "equidistant", "", "fisheye", "PLUMB_BOB"])),
        d=values([0, 1, 4, 5, 8, 12, 14, 20]),
        k=values([9, 9, 9, 0, 8, 10]),
        r=values([9]),
        p=values([12, 12, 0, 11]),
        binning_x=draw(st.sampled_from([0, 1, 2])),
        binning_y=0,
        roi=roi,
    )


@FUZZ
@given(camera_infos())
def test_any_camera_info_gives_a_sane_model_or_a_dataset_error(msg):
    try:
        model = CameraModel.from_camera_info(msg)
    except (DatasetError, UncalibratedCameraError):
        return
    assert 0 < model.width <= MAX_IMAGE_SIDE and 0 < model.height <= MAX_IMAGE_SIDE
    assert (model.width, model.height) == (msg.width, msg.height)
    assert np.isfinite(model.K).all() and model.K[0, 0] > 0 and model.K[1, 1] > 0
    assert model.P is None or np.isfinite(model.P).all()
    assert np.isfinite(model.D).all()
