"""The bag player and recorder over real DDS: a synthetic bag in, the same messages out and back."""

import time

import numpy as np
import pytest
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from monodepth2_ros.data import BagImageStream, iter_messages
from monodepth2_ros.ros.player import BagPlayer
from monodepth2_ros.ros.recorder import BagRecorder
from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive, write_drive_bag
from ros_harness import wait_until


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory):
    config = SynthConfig(frames=6, width=64, height=32, seed=2, rate_hz=20.0)
    drive = SyntheticDrive(config)
    path = write_drive_bag(config, tmp_path_factory.mktemp("play") / "drive", drive=drive)
    return path, list(drive.iter_frames())


def test_player_publishes_every_topic_in_order_at_the_recorded_pace_with_clock(graph, small_bag):
    path, frames = small_bag
    images = graph.subscribe("/camera/image_raw", Image)
    infos = graph.subscribe("/camera/camera_info", CameraInfo)
    odometry = graph.subscribe("/ground_truth/odom", Odometry)
    clock = graph.subscribe("/clock", Clock)
    player = graph.add(BagPlayer(path, rate=1.0, context=graph.context))
    assert "/tf_static" in player.stats.skipped_topics  # tf2_msgs is not installed with the pip wheels
    assert wait_until(lambda: player.count_subscribers("/camera/image_raw") > 0)
    time.sleep(0.3)
    stats = player.play()
    assert stats.published["/camera/image_raw"] == len(frames)
    assert stats.duration_s >= (len(frames) - 1) / 20.0 * 0.95  # real time, not as fast as possible
    assert wait_until(lambda: len(images.messages) == len(frames) and len(odometry.messages) == len(frames))
    for frame, msg in zip(frames, images.messages):
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == frame.stamp_ns
        assert bytes(msg.data) == frame.rgb.tobytes()
    assert len(infos.messages) == len(frames)
    assert wait_until(lambda: len(clock.messages) >= len(frames))
    assert clock.messages[0].clock.sec * 10**9 + clock.messages[0].clock.nanosec == frames[0].stamp_ns


def test_recorder_writes_an_mcap_bag_that_reads_back(graph, small_bag, tmp_path):
    path, frames = small_bag
    recorder = graph.add(BagRecorder(tmp_path / "out", {"/camera/image_raw": "sensor_msgs/msg/Image", "/ground_truth/odom": "nav_msgs/msg/Odometry"}, context=graph.context))
    player = graph.add(BagPlayer(path, rate=4.0, publish_clock=False, context=graph.context))
    assert wait_until(lambda: player.count_subscribers("/camera/image_raw") > 0 and player.count_subscribers("/ground_truth/odom") > 0)
    time.sleep(0.3)
    player.play()
    assert wait_until(lambda: recorder.counts["/camera/image_raw"] == len(frames) and recorder.counts["/ground_truth/odom"] == len(frames))
    recorder.close()
    stream = BagImageStream(tmp_path / "out", require_camera_info=False)
    replayed = list(stream)
    assert [f.stamp_ns for f in replayed] == [f.stamp_ns for f in frames]
    np.testing.assert_array_equal(replayed[-1].rgb, frames[-1].rgb)
    odom = [m.msg for m in iter_messages(tmp_path / "out", "/ground_truth/odom")]
    assert len(odom) == len(frames) and odom[0].child_frame_id == "base_link"


def test_player_refuses_unknown_topics(graph, small_bag):
    from monodepth2_ros.errors import ConfigError

    path, _ = small_bag
    with pytest.raises(ConfigError, match=r"topic\(s\) /nope not in the bag"):
        BagPlayer(path, topics=["/nope"], context=graph.context)
