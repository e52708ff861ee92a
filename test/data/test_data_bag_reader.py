"""Bag reading: every storage format, topic selection, cameras, damaged files, read-only access."""

from __future__ import annotations

import hashlib
import logging
import struct
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Ros2Writer
from rosbags.typesys import Stores, get_typestore

from monodepth2_ros.data import open_stream
from monodepth2_ros.data.bag_reader import (
    BagImageStream,
    camera_info_topic_for,
    iter_messages,
    list_topics,
    resolve_bag_paths,
)
from monodepth2_ros.data.camera import UncalibratedCameraError
from monodepth2_ros.data.frame import DamagedInputWarning
from monodepth2_ros.data.image_codec import rgb_to_compressed, rgb_to_image_fields
from monodepth2_ros.errors import DatasetError, MissingInputError

TS2 = get_typestore(Stores.ROS2_HUMBLE)
TS1 = get_typestore(Stores.ROS1_NOETIC)
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
INFO = "sensor_msgs/msg/CameraInfo"
FORMATS = ["sqlite3", "mcap", "ros1"]
H, W = 24, 32
PERIOD_NS = 100_000_000
START_NS = 1_700_000_000 * 10**9
K = [30.0, 0.0, 15.5, 0.0, 31.0, 11.5, 0.0, 0.0, 1.0]
D = [-0.2, 0.05, 0.0, 0.0, 0.0]


def frame_rgb(i: int, height: int = H, width: int = W) -> np.ndarray:
    """A different, recognisable image per frame index."""
    v, u = np.mgrid[0:height, 0:width]
    return np.stack(
        [(u * 7 + i * 13) % 256, (v * 5 + i * 29) % 256, np.full_like(u, i * 17 % 256)], -1
    ).astype(np.uint8)


def header(ros1: bool, stamp_ns: int, frame_id: str = "cam_optical"):
    store = TS1 if ros1 else TS2
    time_ = store.types["builtin_interfaces/msg/Time"](
        sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9
    )
    if ros1:
        return store.types["std_msgs/msg/Header"](seq=0, stamp=time_, frame_id=frame_id)
    return store.types["std_msgs/msg/Header"](stamp=time_, frame_id=frame_id)


def image_msg(ros1: bool, rgb: np.ndarray, stamp_ns: int, encoding: str = "rgb8"):
    data, step = rgb_to_image_fields(rgb, encoding)
    store = TS1 if ros1 else TS2
    return store.types[IMAGE](
        header=header(ros1, stamp_ns),
        height=rgb.shape[0],
        width=rgb.shape[1],
        encoding=encoding,
        is_bigendian=0,
        step=step,
        data=np.frombuffer(data, dtype=np.uint8),
    )


def raw_image_msg(
    ros1: bool, stamp_ns: int, encoding: str, height: int, width: int, step: int, data: bytes
):
    store = TS1 if ros1 else TS2
    return store.types[IMAGE](
        header=header(ros1, stamp_ns),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=step,
        data=np.frombuffer(data, dtype=np.uint8),
    )


def compressed_msg(rgb: np.ndarray, stamp_ns: int):
    data, fmt = rgb_to_compressed(rgb, "jpeg")
    return TS2.types[COMPRESSED](
        header=header(False, stamp_ns), format=fmt, data=np.frombuffer(data, np.uint8)
    )


def info_msg(ros1: bool, stamp_ns: int, k=K, d=D, width: int = W, height: int = H):
    store = TS1 if ros1 else TS2
    types = store.types
    roi = types["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    matrices = dict(
        d=np.array(d, dtype=np.float64),
        k=np.array(k, dtype=np.float64),
        r=np.eye(3).ravel(),
        p=np.array([*k[:3], 0.0, *k[3:6], 0.0, *k[6:], 0.0]),
    )
    if ros1:
        matrices = {name.upper(): value for name, value in matrices.items()}
    return types[INFO](
        header=header(ros1, stamp_ns),
        height=height,
        width=width,
        distortion_model="plumb_bob",
        binning_x=0,
        binning_y=0,
        roi=roi,
        **matrices,
    )


def write_bag(path: Path, fmt: str, messages: list[tuple[str, str, int, object]]) -> Path:
    """Write (topic, msgtype, bag time, message) with rosbags' own writers; returns the bag path."""
    ros1 = fmt == "ros1"
    store = TS1 if ros1 else TS2
    if ros1:
        writer = Ros1Writer(path)
    else:
        plugin = StoragePlugin.MCAP if fmt == "mcap" else StoragePlugin.SQLITE3
        writer = Ros2Writer(path, version=9, storage_plugin=plugin)
    with writer:
        connections = {}
        for topic, msgtype, stamp, msg in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            data = store.serialize_ros1(msg, msgtype) if ros1 else store.serialize_cdr(msg, msgtype)
            writer.write(connections[topic], stamp, data)
    return path


def camera_bag(
    tmp_path: Path, fmt: str, frames: int = 5, name: str = "bag", info_at: int = 0, **kw
) -> Path:
    ros1 = fmt == "ros1"
    size = dict(width=kw.get("width", W), height=kw.get("height", H))
    messages = [
        (
            "/camera/camera_info",
            INFO,
            START_NS + info_at,
            info_msg(ros1, START_NS + info_at, **size),
        )
    ]
    for i in range(frames):
        stamp = START_NS + i * PERIOD_NS + 1
        messages.append(
            ("/camera/image_raw", IMAGE, stamp, image_msg(ros1, frame_rgb(i, **kw), stamp))
        )
    messages.sort(key=lambda m: m[2])
    return write_bag(tmp_path / (name + (".bag" if ros1 else "")), fmt, messages)


def file_hashes(path: Path) -> dict[str, str]:
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def run_bounded(function, seconds: float = 30.0):
    """Run ``function`` in a thread; fail instead of hanging. Returns (value, warnings, elapsed)."""
    outcome: dict[str, object] = {}

    def target() -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                outcome["value"] = function()
            except BaseException as err:  # handed to the test thread below
                outcome["error"] = err
            outcome["warnings"] = list(caught)

    start = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"reading did not finish within {seconds} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"], outcome["warnings"], time.monotonic() - start


# -- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_bag_format_reads_back_every_frame_with_its_camera(tmp_path, fmt):
    bag = camera_bag(tmp_path, fmt)
    before = file_hashes(bag)
    stream = BagImageStream(bag)
    frames = list(stream)
    assert (
        stream.image_topic == "/camera/image_raw"
        and stream.camera_info_topic == "/camera/camera_info"
    )
    assert len(stream) == 5 and len(frames) == 5 and stream.skipped == 0
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.rgb, frame_rgb(i))
        assert frame.stamp_ns == START_NS + i * PERIOD_NS + 1
        assert (frame.index, frame.topic, frame.frame_id) == (i, "/camera/image_raw", "cam_optical")
        assert frame.camera is not None and frame.camera.K.ravel().tolist() == K
        assert frame.source == str(bag)
    assert file_hashes(bag) == before  # nothing in the input was modified
    assert list(stream)[4].index == 4  # re-iterable


@pytest.mark.parametrize("fmt, suffix", [("mcap", ".mcap"), ("sqlite3", ".db3")])
def test_a_lone_rosbag2_storage_file_is_readable(tmp_path, fmt, suffix):
    bag = camera_bag(tmp_path, fmt)
    (storage,) = bag.glob(f"*{suffix}")
    frames = list(BagImageStream(storage))
    assert [f.index for f in frames] == list(range(5))


def test_metadata_yaml_path_opens_its_folder(tmp_path):
    bag = camera_bag(tmp_path, "mcap")
    assert resolve_bag_paths(bag / "metadata.yaml") == [bag]


def test_split_ros1_bags_in_a_folder_are_merged_in_time_order(tmp_path):
    folder = tmp_path / "split"
    folder.mkdir()
    stamps = [START_NS + i * PERIOD_NS for i in range(6)]
    first = [("/camera/camera_info", INFO, stamps[0], info_msg(True, stamps[0]))]
    first += [
        ("/camera/image_raw", IMAGE, s, image_msg(True, frame_rgb(i), s))
        for i, s in enumerate(stamps[:3])
    ]
    second = [
        ("/camera/image_raw", IMAGE, s, image_msg(True, frame_rgb(i + 3), s))
        for i, s in enumerate(stamps[3:])
    ]
    write_bag(folder / "run_10.bag", "ros1", second)  # natural order puts _2 first, by time anyway
    write_bag(folder / "run_2.bag", "ros1", first)
    for source in (folder, [folder / "run_10.bag", folder / "run_2.bag"]):
        frames = list(BagImageStream(source))
        assert [f.stamp_ns for f in frames] == stamps
        for i, frame in enumerate(frames):
            np.testing.assert_array_equal(frame.rgb, frame_rgb(i))
    assert resolve_bag_paths(folder) == [folder / "run_2.bag", folder / "run_10.bag"]


def test_folder_of_rosbag2_folders_is_read_as_one_recording(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    camera_bag(root, "sqlite3", name="a", frames=2)
    camera_bag(root, "mcap", name="b", frames=2)
    assert [p.name for p in resolve_bag_paths(root)] == ["a", "b"]
    assert len(list(BagImageStream(root))) == 4


# -- topics -----------------------------------------------------------------------------------


def test_compressed_image_topic_pairs_with_the_camera_info_of_its_namespace(tmp_path):
    messages = [
        ("/cam/camera_info", INFO, START_NS, info_msg(False, START_NS, width=64, height=48))
    ]
    messages += [
        (
            "/cam/image_raw/compressed",
            COMPRESSED,
            START_NS + i,
            compressed_msg(frame_rgb(0, 48, 64), START_NS + i),
        )
        for i in range(1, 3)
    ]
    bag = write_bag(tmp_path / "bag", "mcap", messages)
    stream = BagImageStream(bag)
    assert (stream.image_topic, stream.camera_info_topic) == (
        "/cam/image_raw/compressed",
        "/cam/camera_info",
    )
    frames = list(stream)
    assert len(frames) == 2 and frames[0].camera.width == 64
    assert np.abs(frames[0].rgb.astype(int) - frame_rgb(0, 48, 64)).mean() < 12  # within JPEG loss


@pytest.mark.parametrize(
    "image_topic, expected",
    [
        ("/camera/image_raw", "/camera/camera_info"),
        ("/cam/image_raw/compressed", "/cam/camera_info"),
        ("/robot/front/color/image_rect", "/robot/front/color/camera_info"),
        ("/image", "/camera_info"),
    ],
)
def test_camera_info_topic_is_the_sibling_of_the_image_topic(image_topic, expected):
    assert camera_info_topic_for(image_topic) == expected


def test_two_colour_image_topics_need_a_choice_and_the_error_lists_all_topics(tmp_path):
    messages = [
        ("/left/image_raw", IMAGE, START_NS, image_msg(False, frame_rgb(0), START_NS)),
        ("/right/image_raw", IMAGE, START_NS + 1, image_msg(False, frame_rgb(1), START_NS + 1)),
        ("/left/camera_info", INFO, START_NS + 2, info_msg(False, START_NS + 2)),
    ]
    bag = write_bag(tmp_path / "bag", "sqlite3", messages)
    with pytest.raises(DatasetError) as caught:
        BagImageStream(bag)
    text = str(caught.value)
    assert "2 colour image topics" in text and "pass image_topic=" in text
    for line in (
        "/left/camera_info [sensor_msgs/msg/CameraInfo] 1 messages",
        "/left/image_raw [sensor_msgs/msg/Image] 1 messages",
        "/right/image_raw [sensor_msgs/msg/Image] 1 messages",
    ):
        assert line in text
    frames = list(BagImageStream(bag, image_topic="/left/image_raw"))
    np.testing.assert_array_equal(frames[0].rgb, frame_rgb(0))


def test_depth_topics_are_not_candidates_for_the_image_topic(tmp_path):
    depth = np.full((H, W), 2.5, dtype=np.float32)
    messages = [("/camera/camera_info", INFO, START_NS, info_msg(False, START_NS))]
    for i in range(2):
        stamp = START_NS + (i + 1) * PERIOD_NS
        messages.append(("/camera/image_raw", IMAGE, stamp, image_msg(False, frame_rgb(i), stamp)))
        messages.append(
            (
                "/ground_truth/depth",
                IMAGE,
                stamp,
                raw_image_msg(False, stamp, "32FC1", H, W, W * 4, depth.tobytes()),
            )
        )
    bag = write_bag(tmp_path / "bag", "mcap", messages)
    assert BagImageStream(bag).image_topic == "/camera/image_raw"
    got = list(iter_messages(bag, ["/ground_truth/depth"]))
    assert [m.stamp_ns for m in got] == [START_NS + PERIOD_NS, START_NS + 2 * PERIOD_NS]
    assert got[0].msg.encoding == "32FC1" and got[0].topic == "/ground_truth/depth"
    topics = {t.name: (t.msgtype, t.count) for t in list_topics(bag)}
    assert topics == {
        "/camera/camera_info": (INFO, 1),
        "/camera/image_raw": (IMAGE, 2),
        "/ground_truth/depth": (IMAGE, 2),
    }


def test_bag_without_image_topics_says_so_and_lists_topics(tmp_path):
    bag = write_bag(
        tmp_path / "bag",
        "sqlite3",
        [("/camera/camera_info", INFO, START_NS, info_msg(False, START_NS))],
    )
    with pytest.raises(
        DatasetError,
        match=r"no colour image topic in .*\n  /camera/camera_info \[sensor_msgs/msg/CameraInfo\]",
    ):
        BagImageStream(bag)


def test_requested_topic_that_is_missing_lists_the_topics(tmp_path):
    bag = camera_bag(tmp_path, "mcap", frames=1)
    with pytest.raises(
        DatasetError, match=r"image topic '/nope' is not in .*\n  /camera/camera_info"
    ):
        BagImageStream(bag, image_topic="/nope")
    with pytest.raises(DatasetError, match=r"topic\(s\) /odom not in .*\n  /camera/camera_info"):
        iter_messages(bag, ["/odom"])


# -- cameras ----------------------------------------------------------------------------------


def test_missing_camera_info_is_an_error_unless_not_required(tmp_path):
    stamp = START_NS
    bag = write_bag(
        tmp_path / "bag",
        "mcap",
        [("/camera/image_raw", IMAGE, stamp, image_msg(False, frame_rgb(0), stamp))],
    )
    with pytest.raises(
        DatasetError,
        match=r"no camera_info topic '/camera/camera_info' in .* pass camera_info_topic=",
    ):
        BagImageStream(bag)
    stream = BagImageStream(bag, require_camera_info=False)
    (frame,) = list(stream)
    assert frame.camera is None and stream.camera is None


def test_camera_info_after_the_first_image_is_used_for_it_and_changes_apply_later(tmp_path):
    other_k = [40.0, 0.0, 15.5, 0.0, 40.0, 11.5, 0.0, 0.0, 1.0]
    stamps = [START_NS + i * PERIOD_NS for i in range(4)]
    messages = [
        ("/camera/image_raw", IMAGE, s, image_msg(False, frame_rgb(i), s))
        for i, s in enumerate(stamps)
    ]
    messages.append(("/camera/camera_info", INFO, stamps[0] + 5, info_msg(False, stamps[0] + 5)))
    messages.append(("/camera/camera_info", INFO, stamps[2], info_msg(False, stamps[2], k=other_k)))
    messages.sort(key=lambda m: m[2])
    frames = list(BagImageStream(write_bag(tmp_path / "bag", "sqlite3", messages)))
    assert [f.camera.K[0, 0] for f in frames] == [30.0, 30.0, 40.0, 40.0]


def test_uncalibrated_camera_info_raises_a_specific_error(tmp_path):
    messages = [
        ("/camera/camera_info", INFO, START_NS, info_msg(False, START_NS, k=[0.0] * 9, d=[])),
        ("/camera/image_raw", IMAGE, START_NS + 1, image_msg(False, frame_rgb(0), START_NS + 1)),
    ]
    bag = write_bag(tmp_path / "bag", "mcap", messages)
    with pytest.raises(UncalibratedCameraError, match=r"/camera/camera_info.*uncalibrated"):
        BagImageStream(bag)
    assert list(BagImageStream(bag, require_camera_info=False))[0].camera is None


def test_camera_info_of_another_size_than_the_images_is_an_error(tmp_path):
    messages = [
        ("/camera/camera_info", INFO, START_NS, info_msg(False, START_NS, width=640, height=480)),
        ("/camera/image_raw", IMAGE, START_NS + 1, image_msg(False, frame_rgb(0), START_NS + 1)),
    ]
    stream = BagImageStream(write_bag(tmp_path / "bag", "sqlite3", messages))
    with pytest.raises(DatasetError, match=r"is 32x24 but its camera_info .* is for 640x480"):
        list(stream)


def test_undistort_yields_pinhole_frames(tmp_path):
    bag = camera_bag(tmp_path, "mcap", frames=2)
    stream = BagImageStream(bag, undistort=True)
    frames = list(stream)
    assert stream.camera is not None and not stream.camera.is_distorted
    assert all(f.camera == stream.camera for f in frames)
    assert not np.array_equal(frames[0].rgb, frame_rgb(0))  # the pixels moved


# -- bad data ---------------------------------------------------------------------------------


def test_undecodable_frames_are_skipped_counted_and_logged(tmp_path, caplog):
    stamps = [START_NS + i * PERIOD_NS for i in range(4)]
    messages = [("/camera/camera_info", INFO, START_NS, info_msg(False, START_NS))]
    for i, stamp in enumerate(stamps):
        if i == 1:
            msg = raw_image_msg(False, stamp, "rgb8", H, W, W * 3, bytes(10))  # data too short
        elif i == 2:
            msg = raw_image_msg(False, stamp, "nv12", H, W, W, bytes(H * W))  # unsupported encoding
        else:
            msg = image_msg(False, frame_rgb(i), stamp)
        messages.append(("/camera/image_raw", IMAGE, stamp + 1, msg))
    bag = write_bag(tmp_path / "bag", "mcap", messages)
    stream = BagImageStream(bag)
    with caplog.at_level(logging.WARNING, logger="monodepth2_ros.data.bag_reader"):
        frames = list(stream)
    assert [f.index for f in frames] == [0, 3] and stream.skipped == 2
    logged = caplog.text
    assert str(bag) in logged and "skipped image 1" in logged and "expected height * step" in logged
    assert "unsupported image encoding 'nv12'" in logged


def test_truncated_mcap_reads_up_to_the_damage_with_a_warning(tmp_path):
    # 240x320 frames: the writer's 1 MiB chunks then hold a few frames each.
    bag = camera_bag(tmp_path, "mcap", frames=10, height=240, width=320)
    (mcap,) = bag.glob("*.mcap")
    data = mcap.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    before = file_hashes(cut)

    frames, caught, elapsed = run_bounded(lambda: list(BagImageStream(cut)))
    assert 1 <= len(frames) < 10
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.rgb, frame_rgb(i, 240, 320))
        assert frame.camera is not None
    messages = [str(w.message) for w in caught if issubclass(w.category, DamagedInputWarning)]
    assert (
        messages and str(cut) in messages[0] and f"read {len(frames) + 1} messages" in messages[0]
    )
    assert file_hashes(cut) == before
    assert elapsed < 20


def test_damage_found_while_reading_an_indexed_bag_stops_there_with_a_warning(tmp_path):
    bag = camera_bag(tmp_path, "mcap", frames=10, height=240, width=320)
    (mcap,) = bag.glob("*.mcap")
    data = bytearray(mcap.read_bytes())
    # Frame 7 sits inside the second 1 MiB chunk; its record is: opcode, u64 length, u16 channel,
    # u32 sequence, u64 log time. Make the length claim more bytes than the chunk holds.
    log_time = struct.pack("<Q", START_NS + 7 * PERIOD_NS + 1)
    length_at = data.index(log_time) - 14
    data[length_at : length_at + 8] = struct.pack("<Q", 2**40)
    mcap.write_bytes(bytes(data))

    frames, caught, _ = run_bounded(lambda: list(BagImageStream(bag)))
    assert 1 <= len(frames) < 10
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.rgb, frame_rgb(i, 240, 320))
    messages = [str(w.message) for w in caught if issubclass(w.category, DamagedInputWarning)]
    assert messages and f"stopped after {len(frames) + 1} messages" in messages[0]


def test_truncated_mcap_inside_a_rosbag2_folder_is_salvaged(tmp_path):
    bag = camera_bag(tmp_path, "mcap", frames=10, height=240, width=320)
    (mcap,) = bag.glob("*.mcap")
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * 0.6)])
    frames, caught, _ = run_bounded(lambda: list(BagImageStream(bag)))
    assert 1 <= len(frames) < 10
    assert any(issubclass(w.category, DamagedInputWarning) for w in caught)


def test_truncated_sqlite_bag_fails_with_a_clear_error_in_bounded_time(tmp_path):
    bag = camera_bag(tmp_path, "sqlite3", frames=10, height=120, width=160)
    (db,) = bag.glob("*.db3")
    data = db.read_bytes()
    db.write_bytes(data[: int(len(data) * 0.6)])
    try:
        frames, caught, _ = run_bounded(lambda: list(BagImageStream(bag)))
    except DatasetError as err:
        assert str(bag) in str(err) and "truncated or corrupt" in str(err)
    else:  # or it reads what is there and says so
        assert len(frames) < 10 and any(issubclass(w.category, DamagedInputWarning) for w in caught)


def test_truncated_ros1_bag_fails_with_a_clear_error(tmp_path):
    bag = camera_bag(tmp_path, "ros1", frames=10, height=120, width=160)
    data = bag.read_bytes()
    bag.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(DatasetError, match=r"cannot read bag .*\.bag: .*rosbag reindex"):
        run_bounded(lambda: BagImageStream(bag))


def test_a_file_that_is_not_a_bag_is_a_dataset_error(tmp_path):
    fake = tmp_path / "fake.mcap"
    fake.write_bytes(b"this is not an mcap file at all")
    with pytest.raises(DatasetError, match=r"cannot read bag .*fake.mcap"):
        BagImageStream(fake)


def test_missing_bag_is_a_missing_input(tmp_path):
    with pytest.raises(MissingInputError, match=r"nothing.bag does not exist"):
        BagImageStream(tmp_path / "nothing.bag")


def test_folder_without_bags_says_what_was_expected(tmp_path):
    with pytest.raises(
        DatasetError, match=r"holds no bag: expected metadata.yaml, \*.bag/\*.mcap/\*.db3"
    ):
        resolve_bag_paths(tmp_path)


def test_open_stream_dispatches_bags(tmp_path):
    bag = camera_bag(tmp_path, "sqlite3", frames=2)
    stream = open_stream(bag)
    assert isinstance(stream, BagImageStream) and len(list(stream)) == 2
    assert isinstance(open_stream([bag]), BagImageStream)
