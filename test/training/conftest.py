"""Fixtures of the training tests: small synthetic drives as bags, and a bag writer for odd cases."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Ros2Writer
from rosbags.typesys import Stores, get_typestore

from monodepth2_ros.data.image_codec import rgb_to_image_fields
from monodepth2_ros.synthetic.bag import write_drive_bag
from monodepth2_ros.synthetic.config import SynthConfig

# The synthetic drives are rendered at this size; training tests run the networks at 64x96.
SYNTH_HEIGHT, SYNTH_WIDTH = 96, 128
SYNTH_FRAMES = 10
TS2 = get_typestore(Stores.ROS2_HUMBLE)
START_NS = 1_700_000_000 * 10**9
PERIOD_NS = 100_000_000


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Run the networks on one thread: on a shared, oversubscribed CPU, OpenMP threads that wait
    for each other make a step 5-10x slower than a single thread does."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def synthetic_bag(tmp_path_factory) -> Path:
    """A 10-frame MCAP drive (1 s at 10 Hz) with ground-truth depth and odometry."""
    path = tmp_path_factory.mktemp("synthetic") / "drive"
    return write_drive_bag(SynthConfig(frames=SYNTH_FRAMES, width=SYNTH_WIDTH, height=SYNTH_HEIGHT), path, "mcap")


@pytest.fixture(scope="session")
def stereo_bag(tmp_path_factory) -> Path:
    """A 6-frame stereo drive (sqlite3) with /camera/right/* topics, baseline 0.54 m."""
    path = tmp_path_factory.mktemp("synthetic_stereo") / "drive"
    config = SynthConfig(frames=6, width=SYNTH_WIDTH, height=SYNTH_HEIGHT, stereo=True)
    return write_drive_bag(config, path, "sqlite3")


def textured_rgb(index: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A smooth, textured image that shifts with ``index`` (a camera panning right)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    u = u + 3.0 * index
    channels = [127 + 100 * np.sin(u / (4 + 3 * c)) * np.cos(v / (5 + 2 * c)) for c in range(3)]
    return np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)


def _header(stamp_ns: int, frame_id: str = "camera_optical"):
    time_ = TS2.types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    return TS2.types["std_msgs/msg/Header"](stamp=time_, frame_id=frame_id)


def _camera_info(stamp_ns: int, height: int, width: int):
    roi = TS2.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    fx = 0.6 * width
    K = np.array([fx, 0.0, (width - 1) / 2, 0.0, fx, (height - 1) / 2, 0.0, 0.0, 1.0])
    P = np.array([fx, 0.0, (width - 1) / 2, 0.0, 0.0, fx, (height - 1) / 2, 0.0, 0.0, 0.0, 1.0, 0.0])
    return TS2.types["sensor_msgs/msg/CameraInfo"](
        header=_header(stamp_ns), height=height, width=width, distortion_model="plumb_bob",
        d=np.zeros(5), k=K, r=np.eye(3).reshape(9), p=P, binning_x=0, binning_y=0, roi=roi,
    )


def write_image_bag(
    path: Path,
    images: Sequence[np.ndarray],
    stamps_ns: Sequence[int],
    broken: Sequence[int] = (),
    image_topic: str = "/cam/image_raw",
    camera_info: bool = True,
) -> Path:
    """A rosbag2 MCAP bag with rgb8 images and (unless ``camera_info`` is False) their camera_info;
    ``broken`` frames get a bad encoding."""
    writer = Ros2Writer(path, version=8, storage_plugin=StoragePlugin.MCAP)
    info_topic = image_topic.rsplit("/", 1)[0] + "/camera_info"
    with writer:
        image_conn = writer.add_connection(image_topic, "sensor_msgs/msg/Image", typestore=TS2)
        info_conn = writer.add_connection(info_topic, "sensor_msgs/msg/CameraInfo", typestore=TS2)
        for index, (rgb, stamp) in enumerate(zip(images, stamps_ns, strict=True)):
            height, width = rgb.shape[:2]
            if camera_info:
                info = _camera_info(stamp, height, width)
                writer.write(info_conn, stamp, TS2.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
            data, step = rgb_to_image_fields(rgb, "rgb8")
            encoding = "not_an_encoding" if index in broken else "rgb8"
            message = TS2.types["sensor_msgs/msg/Image"](
                header=_header(stamp), height=height, width=width, encoding=encoding, is_bigendian=0,
                step=step, data=np.frombuffer(data, dtype=np.uint8),
            )
            writer.write(image_conn, stamp, TS2.serialize_cdr(message, "sensor_msgs/msg/Image"))
    return path


@pytest.fixture
def image_bag_writer():
    """``write_image_bag(path, images, stamps_ns, broken=(), image_topic=..., camera_info=True)``."""
    return write_image_bag


@pytest.fixture
def textured():
    """``textured_rgb(index, height=48, width=64)``."""
    return textured_rgb
