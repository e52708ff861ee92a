"""Image message encodings: every encoding decodes back to what was encoded, errors are explicit."""

from __future__ import annotations

import array
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from monodepth2_ros.data.image_codec import (
    RGB_ENCODINGS,
    compressed_to_rgb,
    depth_image_to_metres,
    image_to_array,
    image_to_rgb,
    rgb_to_compressed,
    rgb_to_image_fields,
)
from monodepth2_ros.errors import DatasetError

HEIGHT, WIDTH = 24, 32


def smooth_rgb(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Slowly varying colours: demosaicing and chroma subsampling lose little on it."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    red = 40 + 150 * u / width
    green = 60 + 120 * v / height
    blue = 200 - 80 * (u + v) / (width + height)
    return np.rint(np.stack([red, green, blue], axis=-1)).astype(np.uint8)


def grey_rgb(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """An image whose three channels are equal, so grey encodings can store it exactly."""
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, size=(height, width), dtype=np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def make_msg(encoding: str, height: int, width: int, step: int, data, is_bigendian: int = 0):
    return SimpleNamespace(
        encoding=encoding,
        height=height,
        width=width,
        step=step,
        is_bigendian=is_bigendian,
        data=data,
    )


def encode(rgb: np.ndarray, encoding: str, **kw) -> SimpleNamespace:
    data, step = rgb_to_image_fields(rgb, encoding, **kw)
    return make_msg(
        encoding, rgb.shape[0], rgb.shape[1], step, data, int(kw.get("big_endian", False))
    )


LOSSLESS_COLOUR = ["rgb8", "bgr8", "rgba8", "bgra8", "8UC3", "rgb16", "bgr16"]
LOSSLESS_GREY = ["mono8", "8UC1", "mono16"]
BAYER = [e for e in RGB_ENCODINGS if e.startswith("bayer_")]
YUV = ["yuv422", "UYVY", "yuv422_yuy2", "YUYV"]


def test_every_listed_encoding_is_covered_by_a_round_trip_test():
    assert set(RGB_ENCODINGS) == set(LOSSLESS_COLOUR + LOSSLESS_GREY + BAYER + YUV)


@pytest.mark.parametrize("encoding", LOSSLESS_COLOUR)
def test_lossless_colour_encodings_round_trip_exactly(encoding):
    rgb = np.random.default_rng(0).integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    decoded = image_to_rgb(encode(rgb, encoding))
    assert decoded.dtype == np.uint8 and decoded.shape == rgb.shape
    np.testing.assert_array_equal(decoded, rgb)


@pytest.mark.parametrize("encoding", LOSSLESS_GREY)
def test_grey_encodings_round_trip_a_grey_image_exactly(encoding):
    rgb = grey_rgb()
    np.testing.assert_array_equal(image_to_rgb(encode(rgb, encoding)), rgb)


@pytest.mark.parametrize("encoding", LOSSLESS_COLOUR + LOSSLESS_GREY + BAYER + YUV)
def test_row_padding_in_step_is_skipped(encoding):
    rgb = smooth_rgb() if encoding in BAYER + YUV else grey_rgb()
    plain = image_to_rgb(encode(rgb, encoding))
    padded_msg = encode(rgb, encoding, row_padding=7)
    bytes_per_row = len(padded_msg.data) // HEIGHT
    assert (
        padded_msg.step == bytes_per_row
        and padded_msg.step > len(encode(rgb, encoding).data) // HEIGHT
    )
    np.testing.assert_array_equal(image_to_rgb(padded_msg), plain)


def test_padding_bytes_do_not_leak_into_rgb8_pixels():
    rgb = smooth_rgb()
    step = WIDTH * 3 + 5
    rows = np.full((HEIGHT, step), 255, dtype=np.uint8)  # padding filled with 255, pixels below
    rows[:, : WIDTH * 3] = rgb.reshape(HEIGHT, -1)
    decoded = image_to_rgb(make_msg("rgb8", HEIGHT, WIDTH, step, rows.tobytes()))
    np.testing.assert_array_equal(decoded, rgb)


@pytest.mark.parametrize(
    "encoding, channels", [("mono16", 1), ("rgb16", 3), ("bgr16", 3), ("bayer_rggb16", 1)]
)
def test_is_bigendian_flag_selects_the_byte_order_of_16_bit_data(encoding, channels):
    values = np.random.default_rng(2).integers(
        0, 65536, size=(HEIGHT, WIDTH, channels), dtype=np.uint16
    )
    step = WIDTH * channels * 2
    little = make_msg(encoding, HEIGHT, WIDTH, step, values.astype("<u2").tobytes(), is_bigendian=0)
    big = make_msg(encoding, HEIGHT, WIDTH, step, values.astype(">u2").tobytes(), is_bigendian=1)
    np.testing.assert_array_equal(image_to_array(big).reshape(values.shape), values)
    np.testing.assert_array_equal(image_to_array(little).reshape(values.shape), values)
    np.testing.assert_array_equal(image_to_rgb(big), image_to_rgb(little))
    big.is_bigendian = 0  # the same bytes read with the wrong order give another image
    assert not np.array_equal(image_to_rgb(big), image_to_rgb(little))


def test_mono16_keeps_the_high_byte():
    values = np.array([[0x0000, 0x00FF, 0x0100, 0xABCD, 0xFFFF, 0x7F80]], dtype="<u2")
    msg = make_msg("mono16", 1, 6, 12, values.tobytes())
    np.testing.assert_array_equal(image_to_rgb(msg)[0, :, 0], [0x00, 0x00, 0x01, 0xAB, 0xFF, 0x7F])


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Independent reference: sample each pixel's channel named by the 2x2 ROS pattern."""
    channel = {"r": 0, "g": 1, "b": 2}
    raw = np.zeros(rgb.shape[:2], dtype=np.uint8)
    for row in range(rgb.shape[0]):
        for col in range(rgb.shape[1]):
            raw[row, col] = rgb[row, col, channel[pattern[2 * (row % 2) + (col % 2)]]]
    return raw


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_pattern_maps_to_the_right_opencv_conversion(pattern):
    # A flat colour with three distinct channels: any pattern mix-up swaps channels.
    rgb = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    rgb[...] = (220, 120, 30)
    raw = mosaic(rgb, pattern)
    decoded = image_to_rgb(make_msg(f"bayer_{pattern}8", HEIGHT, WIDTH, WIDTH, raw.tobytes()))
    interior = decoded[2:-2, 2:-2].astype(int)
    assert np.abs(interior - rgb[2:-2, 2:-2]).max() <= 1


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_smooth_image_decodes_within_demosaic_error(pattern):
    rgb = smooth_rgb()
    raw = mosaic(rgb, pattern)
    decoded = image_to_rgb(make_msg(f"bayer_{pattern}8", HEIGHT, WIDTH, WIDTH, raw.tobytes()))
    error = np.abs(decoded.astype(int) - rgb)[2:-2, 2:-2]
    assert error.max() <= 6


@pytest.mark.parametrize("encoding", BAYER)
def test_bayer_encoder_matches_the_reference_mosaic(encoding):
    rgb = smooth_rgb()
    pattern = encoding.split("_")[1][:4]
    data, step = rgb_to_image_fields(rgb, encoding)
    sixteen = encoding.endswith("16")
    assert step == WIDTH * (2 if sixteen else 1)
    raw = np.frombuffer(data, dtype="<u2" if sixteen else np.uint8).reshape(HEIGHT, -1)
    expected = mosaic(rgb, pattern).astype(np.uint16) * (257 if encoding.endswith("16") else 1)
    np.testing.assert_array_equal(raw, expected)


def reference_yuv422(rgb: np.ndarray, uyvy: bool) -> bytes:
    """BT.601 video range, written per pixel pair, byte order spelled out."""
    out = bytearray()
    for row in rgb.astype(np.float64):
        for left, right in zip(row[0::2], row[1::2], strict=True):
            ys = [16 + 0.257 * p[0] + 0.504 * p[1] + 0.098 * p[2] for p in (left, right)]
            us = [128 - 0.148 * p[0] - 0.291 * p[1] + 0.439 * p[2] for p in (left, right)]
            vs = [128 + 0.439 * p[0] - 0.368 * p[1] - 0.071 * p[2] for p in (left, right)]
            y0, y1, u, v = (int(np.clip(round(x), 0, 255)) for x in (*ys, sum(us) / 2, sum(vs) / 2))
            out += bytes([u, y0, v, y1] if uyvy else [y0, u, y1, v])
    return bytes(out)


@pytest.mark.parametrize("encoding", YUV)
def test_yuv422_decodes_within_chroma_subsampling_error(encoding):
    rgb = smooth_rgb()
    uyvy = encoding in ("yuv422", "UYVY")
    msg = make_msg(encoding, HEIGHT, WIDTH, WIDTH * 2, reference_yuv422(rgb, uyvy))
    error = np.abs(image_to_rgb(msg).astype(int) - rgb)
    assert error.max() <= 6


@pytest.mark.parametrize("encoding", YUV)
def test_yuv422_encoder_writes_the_reference_byte_order(encoding):
    rgb = smooth_rgb()
    data, step = rgb_to_image_fields(rgb, encoding)
    expected = np.frombuffer(reference_yuv422(rgb, encoding in ("yuv422", "UYVY")), dtype=np.uint8)
    assert step == WIDTH * 2
    assert np.abs(np.frombuffer(data, dtype=np.uint8).astype(int) - expected).max() <= 1


def test_rgb8_is_decoded_without_copying():
    rgb = smooth_rgb()
    buffer = bytearray(rgb.tobytes())
    decoded = image_to_rgb(make_msg("rgb8", HEIGHT, WIDTH, WIDTH * 3, buffer))
    assert np.shares_memory(decoded, np.frombuffer(buffer, dtype=np.uint8))


@pytest.mark.parametrize(
    "data",
    [
        lambda b: b,
        bytearray,
        lambda b: array.array("B", b),  # what rclpy messages hold
        lambda b: np.frombuffer(b, dtype=np.uint8),  # what rosbags messages hold
        memoryview,
        list,
    ],
)
def test_message_data_container_types_are_accepted(data):
    rgb = smooth_rgb()
    msg = make_msg("rgb8", HEIGHT, WIDTH, WIDTH * 3, data(rgb.tobytes()))
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


def test_encoding_names_are_case_insensitive():
    rgb = smooth_rgb()
    data, step = rgb_to_image_fields(rgb, "bgr8")
    np.testing.assert_array_equal(image_to_rgb(make_msg("BGR8", HEIGHT, WIDTH, step, data)), rgb)


# -- native arrays and depth ------------------------------------------------------------------


def test_32fc1_depth_is_metres_with_invalid_values_as_nan():
    depth = np.array([[1.5, 0.0, np.nan], [np.inf, -1.0, 12.25]], dtype="<f4")
    msg = make_msg("32FC1", 2, 3, 12, depth.tobytes())
    assert image_to_array(msg).dtype == np.float32
    result = depth_image_to_metres(msg)
    np.testing.assert_array_equal(np.isnan(result), [[False, True, True], [True, True, False]])
    assert result[0, 0] == 1.5 and result[1, 2] == 12.25


def test_16uc1_depth_is_millimetres_and_zero_is_nan():
    depth_mm = np.array([[1500, 0], [65535, 1]], dtype=">u2")
    msg = make_msg("16UC1", 2, 2, 4, depth_mm.tobytes(), is_bigendian=1)
    array_ = image_to_array(msg)
    assert array_.dtype == np.uint16 and array_[0, 0] == 1500
    metres = depth_image_to_metres(msg)
    np.testing.assert_allclose(metres[[0, 1, 1], [0, 0, 1]], [1.5, 65.535, 0.001], rtol=1e-6)
    assert np.isnan(metres[0, 1])


def test_depth_in_a_colour_encoding_is_refused():
    msg = make_msg("rgb8", 1, 1, 3, bytes(3))
    with pytest.raises(DatasetError, match=r"unsupported depth encoding 'rgb8'.*32FC1"):
        depth_image_to_metres(msg)


def test_image_to_array_keeps_channels_for_multichannel_numeric_encodings():
    values = np.arange(2 * 3 * 2, dtype="<i2").reshape(2, 3, 2)
    msg = make_msg("16SC2", 2, 3, 12, values.tobytes())
    np.testing.assert_array_equal(image_to_array(msg), values)


# -- compressed -------------------------------------------------------------------------------


def test_png_compressed_round_trip_is_exact():
    rgb = np.random.default_rng(1).integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    data, fmt = rgb_to_compressed(rgb, "png")
    assert fmt == "rgb8; png compressed bgr8"
    np.testing.assert_array_equal(compressed_to_rgb(SimpleNamespace(format=fmt, data=data)), rgb)


@pytest.mark.parametrize(
    "fmt", ["jpeg", "rgb8; jpeg compressed bgr8", "bgr8; jpeg compressed bgr8", ""]
)
def test_jpeg_compressed_decodes_within_codec_loss_and_keeps_colour_order(fmt):
    rgb = smooth_rgb(64, 64)
    data, _ = rgb_to_compressed(rgb, "jpeg")
    decoded = compressed_to_rgb(SimpleNamespace(format=fmt, data=array.array("B", data)))
    assert np.abs(decoded.astype(int) - rgb).mean() < 3
    # The channels are not swapped: red grows along x, green along y.
    assert (
        decoded[32, 60, 0] > decoded[32, 3, 0] + 50 and decoded[60, 32, 1] > decoded[3, 32, 1] + 50
    )


def test_16_bit_png_compressed_keeps_the_high_byte():
    rgb16 = (smooth_rgb().astype(np.uint16) * 257)[..., ::-1]
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(rgb16))
    assert ok
    decoded = compressed_to_rgb(SimpleNamespace(format="png", data=buffer.tobytes()))
    np.testing.assert_array_equal(decoded, smooth_rgb())


def test_corrupt_compressed_payload_is_a_dataset_error():
    _, fmt = rgb_to_compressed(smooth_rgb(), "jpeg")
    with pytest.raises(DatasetError, match=r"cannot decode 10 bytes as jpeg"):
        compressed_to_rgb(SimpleNamespace(format=fmt, data=b"\x00" * 10))


def test_unknown_compressed_format_lists_supported_ones():
    with pytest.raises(
        DatasetError, match=r"unsupported compressed image format 'theora'.*jpeg, png"
    ):
        compressed_to_rgb(SimpleNamespace(format="theora", data=b"\x01\x02\x03"))


def test_compressed_depth_is_refused_as_colour():
    with pytest.raises(DatasetError, match=r"compressedDepth"):
        compressed_to_rgb(SimpleNamespace(format="16UC1; compressedDepth png", data=b"\x01" * 20))


# -- errors -----------------------------------------------------------------------------------


def test_unknown_encoding_lists_the_supported_ones():
    with pytest.raises(
        DatasetError, match=r"unsupported image encoding 'nv12'; supported: rgb8, bgr8.*YUYV"
    ):
        image_to_rgb(make_msg("nv12", 2, 2, 2, bytes(4)))


def test_data_size_must_match_height_times_step():
    with pytest.raises(
        DatasetError,
        match=r"'rgb8' image data holds 95 bytes; expected height \* step = 4 \* 24 = 96",
    ):
        image_to_rgb(make_msg("rgb8", 4, 8, 24, bytes(95)))


def test_step_smaller_than_a_row_is_refused():
    with pytest.raises(
        DatasetError,
        match=r"'mono16' image step 15 is smaller than width \* bytes per pixel = 8 \* 2 = 16",
    ):
        image_to_rgb(make_msg("mono16", 2, 8, 15, bytes(30)))


@pytest.mark.parametrize("height, width", [(0, 4), (4, 0)])
def test_zero_size_image_is_refused(height, width):
    with pytest.raises(DatasetError, match=r"zero-size image: 'rgb8' image is"):
        image_to_rgb(make_msg("rgb8", height, width, width * 3, b""))


def test_odd_width_yuv422_is_refused():
    with pytest.raises(DatasetError, match=r"width 3 is odd"):
        image_to_rgb(make_msg("yuv422", 1, 3, 6, bytes(6)))


def test_depth_encoding_is_not_decoded_as_colour():
    with pytest.raises(DatasetError, match=r"unsupported image encoding '32FC1'"):
        image_to_rgb(make_msg("32FC1", 1, 1, 4, bytes(4)))


def test_encoder_refuses_non_rgb_input():
    with pytest.raises(
        DatasetError, match=r"expected an \(H, W, 3\) uint8 RGB array, got shape \(4, 4\)"
    ):
        rgb_to_image_fields(np.zeros((4, 4), np.uint8), "rgb8")
