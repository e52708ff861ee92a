"""Bags written by ``write_drive_bag`` read back with rosbags' AnyReader, in every storage format."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.interfaces import QosDurability
from rosbags.typesys import Stores, get_typestore

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.synthetic import (
    FRAME_BASE,
    FRAME_CAMERA,
    FRAME_ODOM,
    TOPIC_CAMERA_INFO,
    TOPIC_DEPTH,
    TOPIC_IMAGE,
    TOPIC_ODOM,
    TOPIC_RIGHT_CAMERA_INFO,
    TOPIC_RIGHT_IMAGE,
    TOPIC_TF,
    TOPIC_TF_STATIC,
    SynthConfig,
    SyntheticDrive,
    rotation_to_quaternion,
    write_drive_bag,
)

FRAMES = 3
# The sky at infinity gives NaN depth above the buildings, to check NaN survives the round trip.
CONFIG = SynthConfig(frames=FRAMES, width=160, height=48, seed=6, sky_surface=False)
BAG_NAMES = {"mcap": "drive", "sqlite3": "drive", "rosbag1": "drive.bag"}


def _read(path: Path) -> tuple[dict, dict]:
    """topic -> list of (bag timestamp, message); topic -> connection."""
    messages: dict[str, list] = defaultdict(list)
    connections = {}
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        for connection in reader.connections:
            connections[connection.topic] = connection
        for connection, stamp, raw in reader.messages():
            messages[connection.topic].append((stamp, reader.deserialize(raw, connection.msgtype)))
    return messages, connections


def _field(message, name: str):
    """CameraInfo arrays are lower case in ROS 2 and upper case in ROS 1."""
    return getattr(message, name) if hasattr(message, name) else getattr(message, name.upper())


def _stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


@pytest.fixture(scope="module")
def drive() -> SyntheticDrive:
    return SyntheticDrive(CONFIG)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3", "rosbag1"])
def test_bag_reads_back_with_every_topic_and_the_ground_truth(tmp_path, drive, storage):
    path = write_drive_bag(CONFIG, tmp_path / BAG_NAMES[storage], storage, drive=drive)
    messages, connections = _read(path)
    expected_types = {
        TOPIC_IMAGE: "sensor_msgs/msg/Image",
        TOPIC_CAMERA_INFO: "sensor_msgs/msg/CameraInfo",
        TOPIC_DEPTH: "sensor_msgs/msg/Image",
        TOPIC_ODOM: "nav_msgs/msg/Odometry",
        TOPIC_TF: "tf2_msgs/msg/TFMessage",
        TOPIC_TF_STATIC: "tf2_msgs/msg/TFMessage",
    }
    assert {topic: c.msgtype for topic, c in connections.items()} == expected_types
    assert {topic: len(items) for topic, items in messages.items()} == {
        **{topic: FRAMES for topic in expected_types}, TOPIC_TF_STATIC: 1}

    frames = list(drive.iter_frames())
    stamps = [stamp for stamp, _ in messages[TOPIC_IMAGE]]
    assert stamps == [frame.stamp_ns for frame in frames]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    for topic in (TOPIC_CAMERA_INFO, TOPIC_DEPTH, TOPIC_ODOM):
        assert [_stamp_ns(m.header) for _, m in messages[topic]] == stamps

    for (_, image), (_, depth_msg), frame in zip(messages[TOPIC_IMAGE], messages[TOPIC_DEPTH], frames):
        assert (image.encoding, image.height, image.width, image.step) == ("rgb8", 48, 160, 480)
        assert image.header.frame_id == FRAME_CAMERA
        np.testing.assert_array_equal(np.asarray(image.data).reshape(48, 160, 3), frame.rgb)
        assert (depth_msg.encoding, depth_msg.step, depth_msg.is_bigendian) == ("32FC1", 640, 0)
        depth = np.frombuffer(bytes(depth_msg.data), dtype="<f4").reshape(48, 160)
        np.testing.assert_array_equal(depth, frame.depth)  # NaN where nothing is hit, in place
        assert np.isnan(depth).any() and np.isfinite(depth).any()

    info = messages[TOPIC_CAMERA_INFO][0][1]
    np.testing.assert_allclose(_field(info, "k").reshape(3, 3), drive.K)
    P = _field(info, "p").reshape(3, 4)
    np.testing.assert_allclose(P[:, :3], drive.K)
    assert P[0, 3] == 0.0
    np.testing.assert_array_equal(_field(info, "d"), np.zeros(5))
    np.testing.assert_array_equal(_field(info, "r"), np.eye(3).reshape(9))
    assert info.distortion_model == "plumb_bob"

    for (_, odom), frame in zip(messages[TOPIC_ODOM], frames):
        assert (odom.header.frame_id, odom.child_frame_id) == (FRAME_ODOM, FRAME_BASE)
        position = odom.pose.pose.position
        np.testing.assert_allclose([position.x, position.y, position.z], frame.T_odom_base[:3, 3], atol=1e-9)
        assert odom.twist.twist.linear.x == pytest.approx(frame.speed)

    (_, static), = messages[TOPIC_TF_STATIC]
    (mount,) = static.transforms
    assert (mount.header.frame_id, mount.child_frame_id) == (FRAME_BASE, FRAME_CAMERA)
    q = mount.transform.rotation
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], rotation_to_quaternion(drive.T_base_camera[:3, :3]))
    assert mount.transform.translation.z == pytest.approx(1.65)
    (tf,) = messages[TOPIC_TF][1][1].transforms
    assert (tf.header.frame_id, tf.child_frame_id) == (FRAME_ODOM, FRAME_BASE)

    ext = connections[TOPIC_TF_STATIC].ext
    if storage == "rosbag1":
        assert ext.latching == 1
    else:
        assert ext.offered_qos_profiles[0].durability == QosDurability.TRANSIENT_LOCAL


def test_stereo_bag_has_the_right_camera_with_the_baseline_in_p(tmp_path):
    config = SynthConfig(frames=2, width=160, height=48, stereo=True)
    drive = SyntheticDrive(config)
    messages, _ = _read(write_drive_bag(config, tmp_path / "stereo", "mcap", drive=drive))
    assert len(messages[TOPIC_RIGHT_IMAGE]) == 2
    right_info = messages[TOPIC_RIGHT_CAMERA_INFO][0][1]
    assert right_info.p[3] == pytest.approx(-drive.K[0, 0] * 0.54)
    np.testing.assert_array_equal(
        np.asarray(messages[TOPIC_RIGHT_IMAGE][1][1].data).reshape(48, 160, 3), drive.frame(1).right_rgb
    )
    (static,) = [m for _, m in messages[TOPIC_TF_STATIC]]
    assert len(static.transforms) == 2


def test_distorted_bag_states_its_plumb_bob_coefficients(tmp_path):
    config = SynthConfig(frames=1, width=160, height=48, distortion=True)
    messages, _ = _read(write_drive_bag(config, tmp_path / "distorted.bag", "rosbag1"))
    D = np.asarray(messages[TOPIC_CAMERA_INFO][0][1].D)
    assert D.shape == (5,) and np.any(D != 0.0)


def test_existing_output_is_refused_unless_overwriting(tmp_path):
    config = SynthConfig(frames=1, width=160, height=48)
    path = tmp_path / "bag"
    path.mkdir()
    (path / "keep.txt").write_text("precious")
    with pytest.raises(ConfigError, match=r"exists already.*--force"):
        write_drive_bag(config, path, "mcap")
    assert (path / "keep.txt").read_text() == "precious"
    write_drive_bag(config, path, "mcap", overwrite=True)
    assert not (path / "keep.txt").exists()
    assert (path / "metadata.yaml").is_file()


def test_ros1_bag_needs_the_bag_suffix_and_storage_must_be_known(tmp_path):
    config = SynthConfig(frames=1, width=160, height=48)
    with pytest.raises(ConfigError, match=r"must end in \.bag"):
        write_drive_bag(config, tmp_path / "drive", "rosbag1")
    with pytest.raises(ConfigError, match="storage 'zip' is unknown"):
        write_drive_bag(config, tmp_path / "drive", "zip")
    assert not (tmp_path / "drive").exists()


def test_failed_write_leaves_no_partial_bag(tmp_path):
    config = SynthConfig(frames=3, width=160, height=48)

    def interrupt(frame):
        if frame.index == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_drive_bag(config, tmp_path / "partial", "mcap", on_frame=interrupt)
    assert not (tmp_path / "partial").exists()


def _quaternion_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def test_quaternions_round_trip_and_the_mount_is_the_usual_optical_rotation(drive):
    rng = np.random.default_rng(0)
    for _ in range(50):
        R, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        R *= np.sign(np.linalg.det(R))
        q = rotation_to_quaternion(R)
        assert q[3] >= 0.0
        np.testing.assert_allclose(_quaternion_to_matrix(*q), R, atol=1e-12)
    # base_link -> optical frame of REP 103, as every ROS camera driver publishes it.
    np.testing.assert_allclose(rotation_to_quaternion(drive.T_base_camera[:3, :3]), (-0.5, 0.5, -0.5, 0.5))
