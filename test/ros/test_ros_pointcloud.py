"""Point clouds, scale sources and message conversions, without a running graph."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from sensor_msgs.msg import PointField
from std_msgs.msg import Header

from monodepth2_ros.data.image_codec import image_to_array
from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference import scale as scale_module
from monodepth2_ros.inference.pointcloud import (
    CloudBuilder,
    cloud_shape,
    default_intrinsics,
    depth_to_points,
    fill_cloud,
    mask_depth_range,
    pack_rgb,
)
from monodepth2_ros.inference.scale import ScaleRequest, ScaleSource, make_scale_source, register_scale_mode, scale_modes
from monodepth2_ros.model.checkpoint import CheckpointInfo
from monodepth2_ros.ros.conversions import (
    MessageBuffer,
    camera_info_message,
    image_message,
    point_cloud_message,
)

K = np.array([[50.0, 0.0, 20.3], [0.0, 48.0, 11.8], [0.0, 0.0, 1.0]])


def _depth(height: int = 24, width: int = 40) -> torch.Tensor:
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij")
    return (2.0 + 0.1 * u + 0.05 * v)[None, None]


def test_points_lie_on_their_pixel_rays_at_their_depth():
    depth = _depth()
    points = depth_to_points(depth, K).numpy()
    v, u = np.mgrid[0:24, 0:40]
    z = depth[0, 0].numpy()
    np.testing.assert_allclose(points[..., 2], z, rtol=1e-6)
    np.testing.assert_allclose(points[..., 0], (u - K[0, 2]) / K[0, 0] * z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(points[..., 1], (v - K[1, 2]) / K[1, 1] * z, rtol=1e-5, atol=1e-6)


def test_stride_keeps_the_pixels_of_every_nth_row_and_column():
    full = depth_to_points(_depth(), K)
    strided = depth_to_points(_depth(), K, stride=3)
    assert strided.shape == (*cloud_shape(24, 40, 3), 3) == (8, 14, 3)
    np.testing.assert_array_equal(strided.numpy(), full.numpy()[::3, ::3])


def test_max_range_and_depth_range_make_points_nan():
    depth = mask_depth_range(_depth(), 2.5, 5.0)
    assert torch.isnan(depth).any() and not torch.isnan(depth[0, 0, 0, 10])
    assert torch.isnan(mask_depth_range(torch.tensor([float("inf"), -1.0, 3.0]), 0.1, 10.0)).tolist() == [True, True, False]
    points = depth_to_points(_depth(), K, max_range=4.0)
    distance = torch.linalg.norm(depth_to_points(_depth(), K), dim=-1)
    np.testing.assert_array_equal(torch.isnan(points[..., 0]).numpy(), (distance > 4.0).numpy())


def test_pack_rgb_uses_the_pcl_bit_layout():
    rgb = np.array([[[255, 128, 1], [0, 0, 0]]], dtype=np.uint8)
    assert pack_rgb(rgb).tolist() == [[0xFF8001, 0]]


def test_fill_cloud_reuses_the_buffer_and_marks_nan_clouds_not_dense():
    depth = _depth()
    depth[0, 0, 0, 0] = float("nan")
    rgb = np.full((24, 40, 3), 7, dtype=np.uint8)
    buffer = np.empty(24 * 40 * 4, dtype=np.float32)
    cloud = fill_cloud(depth_to_points(depth, K), rgb, out=buffer)
    assert np.shares_memory(cloud.points, buffer)
    assert cloud.is_dense is False and (cloud.height, cloud.width) == (24, 40)
    again = fill_cloud(depth_to_points(_depth(), K), rgb, out=buffer)
    assert np.shares_memory(again.points, buffer) and again.is_dense is True

    compact = fill_cloud(depth_to_points(depth, K), rgb, organized=False)
    assert (compact.height, compact.width, compact.is_dense) == (1, 24 * 40 - 1, True)
    assert (compact.points[..., 3].view(np.uint32) == 0x070707).all()
    with pytest.raises(ValueError, match="buffer needs"):
        fill_cloud(depth_to_points(depth, K), rgb, out=np.empty(10, dtype=np.float32))


@pytest.mark.parametrize("stride, max_range, organized", [(1, 0.0, True), (3, 0.0, True), (2, 4.0, True), (1, 0.0, False)])
def test_cloud_builder_gives_fill_clouds_points_from_cached_rays(stride, max_range, organized):
    depth = _depth()
    depth[0, 0, 3, 6] = float("nan")
    rows, columns = cloud_shape(24, 40, stride)
    rgb = np.random.default_rng(stride).integers(0, 255, (rows, columns, 3), dtype=np.uint8)
    expected = fill_cloud(depth_to_points(depth, K, stride=stride, max_range=max_range), rgb, organized=organized)
    builder, buffer = CloudBuilder(), np.empty(rows * columns * 4, dtype=np.float32)
    for _ in range(2):  # the second frame reuses the rays
        cloud = builder.fill(depth, K, rgb, buffer, stride, max_range, organized)
        assert (cloud.height, cloud.width, cloud.is_dense) == (expected.height, expected.width, expected.is_dense)
        assert np.shares_memory(cloud.points, buffer)
        np.testing.assert_allclose(cloud.points[..., :3], expected.points[..., :3], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(cloud.points[..., 3].view(np.uint32), expected.points[..., 3].view(np.uint32))
    rays = builder.rays(K, 24, 40, stride, depth.device)
    assert builder.rays(K, 24, 40, stride, depth.device) is rays
    assert builder.rays(K * 2, 24, 40, stride, depth.device) is not rays  # new intrinsics, new rays


def test_default_intrinsics_are_monodepth2s_normalised_kitti_ones():
    K_default = default_intrinsics(192, 640)
    np.testing.assert_allclose(K_default, [[0.58 * 640, 0, 319.5], [0, 1.92 * 192, 95.5], [0, 0, 1]])


def test_point_cloud_message_has_the_sensor_msgs_layout():
    rgb = np.zeros((24, 40, 3), dtype=np.uint8)
    buffer = MessageBuffer()
    cloud = fill_cloud(depth_to_points(_depth(), K), rgb, out=buffer.view((24 * 40 * 4,), np.float32))
    msg = point_cloud_message(cloud, Header(frame_id="cam"), buffer)
    assert msg.data is buffer.data  # no copy for an organised cloud
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        (name, offset, PointField.FLOAT32, 1) for name, offset in (("x", 0), ("y", 4), ("z", 8), ("rgb", 12))
    ]
    assert (msg.point_step, msg.row_step, msg.height, msg.width) == (16, 640, 24, 40)
    assert msg.is_bigendian == (sys.byteorder == "big")
    np.testing.assert_array_equal(np.frombuffer(msg.data, np.float32).reshape(24, 40, 4), cloud.points)


def test_image_messages_round_trip_through_the_shared_decoder():
    depth = np.random.default_rng(0).uniform(0.5, 80.0, (6, 9)).astype(np.float32)
    depth[2, 3] = np.nan
    msg = image_message(depth, "32FC1", Header(frame_id="cam"))
    assert (msg.encoding, msg.step, msg.header.frame_id) == ("32FC1", 36, "cam")
    np.testing.assert_array_equal(image_to_array(msg), depth)
    bgr = np.random.default_rng(1).integers(0, 255, (6, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_array(image_message(bgr, "bgr8", Header())), bgr)
    with pytest.raises(ValueError, match="32FC1 needs 1 channel"):
        image_message(bgr, "32FC1", Header())


def test_camera_info_message_puts_k_in_k_and_p():
    msg = camera_info_message(K, 24, 40, Header(frame_id="cam"), "plumb_bob", np.array([0.1, 0, 0, 0, 0]))
    np.testing.assert_array_equal(np.array(msg.k).reshape(3, 3), K)
    np.testing.assert_array_equal(np.array(msg.p).reshape(3, 4), np.hstack([K, np.zeros((3, 1))]))
    assert (msg.width, msg.height, msg.distortion_model, list(msg.d)) == (40, 24, "plumb_bob", [0.1, 0, 0, 0, 0])


@pytest.mark.parametrize(
    ("mode", "stereo_checkpoint", "expected", "metric"),
    [("auto", False, 1.0, False), ("auto", True, 5.4, True), ("none", True, 1.0, False),
     ("stereo", False, 5.4, True), ("fixed", False, 3.0, True)],
)
def test_scale_sources(mode, stereo_checkpoint, expected, metric):
    source = make_scale_source(ScaleRequest(mode, 3.0, CheckpointInfo(use_stereo=stereo_checkpoint)))
    assert (source.scale, source.is_metric, source.mode) == (pytest.approx(expected), metric, mode)


def test_scale_source_errors_and_new_modes(monkeypatch):
    with pytest.raises(ConfigError, match="unknown scale_mode 'lidar'"):
        make_scale_source(ScaleRequest("lidar"))
    with pytest.raises(ConfigError, match="scale_factor must be a positive"):
        make_scale_source(ScaleRequest("fixed", 0.0))

    class HalfOfMedian(ScaleSource):
        """A stand-in for an estimating mode: learns its scale from what it observes."""

        mode = "half_median"

        def __init__(self) -> None:
            self._scale = 1.0

        @property
        def scale(self) -> float:
            return self._scale

        def observe(self, depth_units, K):
            self._scale = 0.5 * float(depth_units.median())

    monkeypatch.setattr(scale_module, "_FACTORIES", dict(scale_module._FACTORIES))
    register_scale_mode("half_median", lambda request: HalfOfMedian())
    assert "half_median" in scale_modes()
    source = make_scale_source(ScaleRequest("half_median"))
    source.observe(torch.full((1, 1, 2, 2), 8.0), K)
    assert source.scale == 4.0
    with pytest.raises(ConfigError, match="already registered"):
        register_scale_mode("half_median", lambda request: HalfOfMedian())
