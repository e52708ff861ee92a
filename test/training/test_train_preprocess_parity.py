"""One preprocessing path: a raw frame gives the same network input in training and in the nodes.

Each case writes a real bag of raw (distorted) frames with their CameraInfo, builds the training
frame cache from it (the readers undistort, the cache stores 8-bit network-size images) and moves
a batch to the device as the trainer does; the node path is :func:`prepare_frame` with the
:class:`CameraInput` the depth node builds from the same CameraInfo.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Ros2Writer
from rosbags.typesys import Stores, get_typestore

from monodepth2_ros.data.camera import CameraModel
from monodepth2_ros.data.image_codec import rgb_to_image_fields
from monodepth2_ros.inference.camera_input import CameraInput, prepare_frame, rectification_wanted
from monodepth2_ros.training.batch import Batch
from monodepth2_ros.training.config import DataConfig
from monodepth2_ros.training.frame_cache import open_frame_cache

TS2 = get_typestore(Stores.ROS2_HUMBLE)
RAW_HEIGHT, RAW_WIDTH = 64, 96
FRAMES = 2
K = np.array([[70.0, 0.0, 47.3], [0.0, 69.0, 32.8], [0.0, 0.0, 1.0]])
# As camera_calibration writes them: P a little tighter than K for distorted lenses.
P_TIGHT = np.array([[63.0, 0.0, 46.5, 0.0], [0.0, 62.5, 31.9, 0.0], [0.0, 0.0, 1.0, 0.0]])
# A shorter focal length than K: the rectified view reaches beyond the raw image.
P_WIDE = np.array([[40.0, 0.0, 47.0, 0.0], [0.0, 40.0, 32.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
P_SAME = np.hstack([K, np.zeros((3, 1))])

CAMERAS = {
    "pinhole": ("plumb_bob", np.zeros(5), P_SAME),
    "plumb_bob": ("plumb_bob", np.array([-0.30, 0.09, 0.001, -0.0015, 0.0]), P_TIGHT),
    "rational_polynomial": (
        "rational_polynomial",
        np.array([-0.25, 0.05, 0.0008, -0.0005, 0.01, 0.02, -0.01, 0.003]),
        P_TIGHT,
    ),
    "equidistant": ("equidistant", np.array([0.06, -0.02, 0.004, -0.001]), P_TIGHT),
}
# (height, width) of the network: the raw size (no resize) and a smaller one of another aspect.
NETWORK_SIZES = {"no_resize": (RAW_HEIGHT, RAW_WIDTH), "resize": (32, 64)}


def _raw_frame(index: int) -> np.ndarray:
    """Fine texture, so that a half-pixel difference in the remap or resize changes the pixels."""
    v, u = np.mgrid[0:RAW_HEIGHT, 0:RAW_WIDTH].astype(np.float64)
    channels = [127 + 110 * np.sin((u + 2 * index) / (1.3 + c)) * np.cos(v / (1.7 + 0.5 * c)) for c in range(3)]
    return np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)


def _camera_info(stamp_ns: int, model: str, D: np.ndarray, P: np.ndarray):
    header = TS2.types["std_msgs/msg/Header"](
        stamp=TS2.types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
        frame_id="camera_optical",
    )
    roi = TS2.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return TS2.types["sensor_msgs/msg/CameraInfo"](
        header=header, height=RAW_HEIGHT, width=RAW_WIDTH, distortion_model=model, d=D.astype(np.float64),
        k=K.reshape(9), r=np.eye(3).reshape(9), p=P.reshape(12), binning_x=0, binning_y=0, roi=roi,
    )


def _write_raw_bag(path: Path, model: str, D: np.ndarray, P: np.ndarray) -> tuple[Path, object]:
    info = None
    with Ros2Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        image_conn = writer.add_connection("/cam/image_raw", "sensor_msgs/msg/Image", typestore=TS2)
        info_conn = writer.add_connection("/cam/camera_info", "sensor_msgs/msg/CameraInfo", typestore=TS2)
        for index in range(FRAMES):
            stamp = 1_700_000_000 * 10**9 + index * 100_000_000
            info = _camera_info(stamp, model, D, P)
            writer.write(info_conn, stamp, TS2.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
            data, step = rgb_to_image_fields(_raw_frame(index), "rgb8")
            image = TS2.types["sensor_msgs/msg/Image"](
                header=info.header, height=RAW_HEIGHT, width=RAW_WIDTH, encoding="rgb8", is_bigendian=0,
                step=step, data=np.frombuffer(data, dtype=np.uint8),
            )
            writer.write(image_conn, stamp, TS2.serialize_cdr(image, "sensor_msgs/msg/Image"))
    return path, info


def _training_inputs(cache) -> torch.Tensor:
    """The cache's frames as the trainer's batches hold them on the device."""
    images = torch.from_numpy(np.array(cache.images)).permute(0, 3, 1, 2)
    batch = Batch(target=images, sources=images[:, None], target_aug=images, sources_aug=images[:, None], K=torch.eye(4))
    return batch.to("cpu").target


@pytest.mark.parametrize("size_name", list(NETWORK_SIZES))
@pytest.mark.parametrize("camera_name", list(CAMERAS))
def test_training_and_node_give_the_same_network_input(tmp_path, camera_name, size_name):
    model, D, P = CAMERAS[camera_name]
    bag, info = _write_raw_bag(tmp_path / "raw", model, D, P)
    height, width = NETWORK_SIZES[size_name]
    config = DataConfig(bags=(str(bag),), height=height, width=width, image_topic="/cam/image_raw")
    cache = open_frame_cache(config, tmp_path / "cache")
    assert len(cache) == FRAMES
    trained = _training_inputs(cache)

    camera = CameraModel.from_camera_info(info)
    rectify = rectification_wanted("auto", camera)
    assert rectify == (camera_name != "pinhole")
    camera_input = CameraInput(camera, (RAW_HEIGHT, RAW_WIDTH), rectify)
    for index in range(FRAMES):
        prepared = prepare_frame(_raw_frame(index), camera_input, (height, width), torch.device("cpu"))
        assert prepared.images.shape == (1, 3, height, width)
        assert torch.equal(prepared.images[0], trained[index]), f"frame {index} differs"
    # The intrinsics training warps with are those of the node's output camera.
    np.testing.assert_allclose(cache.K_normalized[0], camera_input.camera.normalized_K(), atol=1e-12)
    if rectify:
        np.testing.assert_allclose(camera_input.camera.K, P[:, :3])
        assert not camera_input.camera.is_distorted
        # Rectification changed the pixels: the parity is not the trivial one of the raw frame.
        raw_input = prepare_frame(_raw_frame(0), None, (height, width), torch.device("cpu")).images
        assert (raw_input - trained[0]).abs().max() > 0.1


def test_rectified_depth_takes_the_nearest_raw_pixel_and_is_invalid_outside():
    model, D, _ = CAMERAS["plumb_bob"]
    camera = CameraModel(width=RAW_WIDTH, height=RAW_HEIGHT, K=K, D=D, distortion_model=model, P=P_WIDE)
    camera_input = CameraInput(camera, (RAW_HEIGHT, RAW_WIDTH), rectify=True)
    v, u = np.mgrid[0:RAW_HEIGHT, 0:RAW_WIDTH]
    raw_depth = (1000.0 * v + u).astype(np.float32)  # encodes the raw pixel it came from
    rectified = camera_input.rectify_depth(raw_depth)
    assert rectified.shape == (RAW_HEIGHT, RAW_WIDTH)
    valid = np.isfinite(rectified)
    assert 0 < valid.sum() < valid.size  # a wider P sees beyond the raw image: NaN there
    # Where each rectified pixel comes from, computed independently by projecting its ray.
    rect_K = camera_input.camera.K
    rays = np.stack([(u - rect_K[0, 2]) / rect_K[0, 0], (v - rect_K[1, 2]) / rect_K[1, 1], np.ones(u.shape)], -1)
    projected, _ = cv2.projectPoints(rays.reshape(-1, 3), np.zeros(3), np.zeros(3), K, D)
    source = projected.reshape(RAW_HEIGHT, RAW_WIDTH, 2)
    inside = (source[..., 0] > 0.5) & (source[..., 0] < RAW_WIDTH - 1.5) & (source[..., 1] > 0.5) & (source[..., 1] < RAW_HEIGHT - 1.5)
    np.testing.assert_array_equal(valid[inside], True)
    got_v, got_u = np.divmod(rectified[inside].astype(np.int64), 1000)
    assert np.max(np.abs(got_u - source[..., 0][inside])) <= 0.55
    assert np.max(np.abs(got_v - source[..., 1][inside])) <= 0.55
