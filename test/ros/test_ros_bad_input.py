"""Bad input never stops the depth node: each kind is reported, and the next good frame is served."""

from __future__ import annotations

import array

import numpy as np
import pytest
from ros_harness import (
    camera_info_msg,
    depth_node,
    image_msg,
    pinhole_K,
    send_camera_info,
    wait_until,
)

from monodepth2_ros.inference.pointcloud import default_intrinsics
from monodepth2_ros.model.geometry import scale_intrinsics

HEIGHT, WIDTH = 48, 96
K = pinhole_K(HEIGHT, WIDTH)


@pytest.fixture(scope="module")
def setup(module_graph, tiny_checkpoint):
    node = depth_node(module_graph, tiny_checkpoint)
    inboxes = {topic: module_graph.subscribe(topic) for topic in ("depth", "depth/camera_info")}
    return module_graph, node, inboxes


_next_stamp = iter(range(100, 10_000))


def _serve_good_frame(graph, inboxes, make_image, height: int = HEIGHT, width: int = WIDTH):
    """Publish a good image; return its depth/camera_info once served."""
    sec = next(_next_stamp)
    graph.image_pub.publish(image_msg(make_image(height, width, sec), sec=sec))
    inboxes["depth"].wait_stamp(sec)
    return inboxes["depth/camera_info"].wait_stamp(sec)


def _reported(node, kind: str, before: dict[str, int]) -> bool:
    return wait_until(lambda: node.problem_counts.get(kind, 0) > before.get(kind, 0), timeout=5.0)


def _bad_encoding(rgb):
    msg = image_msg(rgb, sec=1)
    msg.encoding = "hsv8"
    return msg


def _non_colour_encoding(rgb):
    msg = image_msg(rgb, sec=1)
    msg.encoding, msg.step = "32FC1", rgb.shape[1] * 4
    msg.data = array.array("B", bytes(rgb.shape[0] * rgb.shape[1] * 4))
    return msg


def _short_data(rgb):
    msg = image_msg(rgb, sec=1)
    msg.data = msg.data[: len(msg.data) - 10]
    return msg


def _zero_size(rgb):
    msg = image_msg(rgb, sec=1)
    msg.height, msg.width, msg.step, msg.data = 0, 0, 0, array.array("B")
    return msg


@pytest.mark.parametrize(
    "make_bad",
    [_bad_encoding, _non_colour_encoding, _short_data, _zero_size],
    ids=["unsupported_encoding", "depth_encoding", "data_shorter_than_height_x_step", "zero_size"],
)
def test_bad_image_is_reported_and_the_next_good_frame_is_served(setup, make_image, make_bad):
    graph, node, inboxes = setup
    send_camera_info(graph, node, camera_info_msg(K, HEIGHT, WIDTH))
    before = node.problem_counts
    graph.image_pub.publish(make_bad(make_image(HEIGHT, WIDTH)))
    assert _reported(node, "bad_image", before)
    _serve_good_frame(graph, inboxes, make_image)


def test_nan_camera_info_skips_frames_until_a_valid_one_arrives(setup, make_image):
    graph, node, inboxes = setup
    send_camera_info(graph, node, camera_info_msg(K, HEIGHT, WIDTH))
    bad = camera_info_msg(K, HEIGHT, WIDTH)
    bad.k[0] = float("nan")
    before = node.problem_counts
    graph.info_pub.publish(bad)
    assert _reported(node, "bad_camera_info", before)
    assert wait_until(lambda: node.camera is None)
    skipped = next(_next_stamp)
    rejected = node.stats.snapshot().rejected
    graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH, skipped), sec=skipped))
    assert wait_until(lambda: node.stats.snapshot().rejected > rejected)
    send_camera_info(graph, node, camera_info_msg(K, HEIGHT, WIDTH))
    info = _serve_good_frame(graph, inboxes, make_image)
    np.testing.assert_allclose(np.array(info.k).reshape(3, 3), K)
    assert inboxes["depth"].stamped(skipped) == []


def test_camera_info_of_another_size_with_the_same_aspect_is_scaled(setup, make_image):
    graph, node, inboxes = setup
    big = scale_intrinsics(K, (HEIGHT, WIDTH), (2 * HEIGHT, 2 * WIDTH))
    send_camera_info(graph, node, camera_info_msg(big, 2 * HEIGHT, 2 * WIDTH))
    before = node.problem_counts
    info = _serve_good_frame(graph, inboxes, make_image)
    assert node.problem_counts.get("camera_info_scaled", 0) > before.get("camera_info_scaled", 0)
    np.testing.assert_allclose(np.array(info.k).reshape(3, 3), K, atol=1e-9)


def test_camera_info_of_another_aspect_ratio_drops_frames_until_it_fits(setup, make_image):
    graph, node, inboxes = setup
    send_camera_info(graph, node, camera_info_msg(pinhole_K(HEIGHT, 2 * WIDTH), HEIGHT, 2 * WIDTH))
    before = node.problem_counts
    sec = next(_next_stamp)
    graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH), sec=sec))
    assert _reported(node, "camera_info_size", before)
    assert inboxes["depth"].stamped(sec) == []
    send_camera_info(graph, node, camera_info_msg(K, HEIGHT, WIDTH))
    _serve_good_frame(graph, inboxes, make_image)


def test_uncalibrated_camera_falls_back_to_default_intrinsics(setup, make_image):
    graph, node, inboxes = setup
    uncalibrated = camera_info_msg(K, HEIGHT, WIDTH)
    uncalibrated.k = np.zeros(9)
    uncalibrated.p = np.zeros(12)
    graph.info_pub.publish(uncalibrated)
    assert wait_until(lambda: node.camera is None and node.has_camera_info)
    info = _serve_good_frame(graph, inboxes, make_image)
    np.testing.assert_allclose(np.array(info.k).reshape(3, 3), default_intrinsics(HEIGHT, WIDTH))
    np.testing.assert_allclose(info.k[0], 0.58 * WIDTH)
    np.testing.assert_allclose(info.k[4], 1.92 * HEIGHT)
    send_camera_info(graph, node, camera_info_msg(K, HEIGHT, WIDTH))


def test_images_before_any_camera_info_wait_for_it(graph, tiny_checkpoint, make_image):
    node = depth_node(graph, tiny_checkpoint)
    inbox = graph.subscribe("depth")
    before = node.problem_counts
    graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH), sec=1))
    assert _reported(node, "no_camera_info", before)
    assert inbox.stamped(1) == []
    send_camera_info(graph, node, camera_info_msg(K, HEIGHT, WIDTH))
    graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH), sec=2))
    inbox.wait_stamp(2)


def test_without_waiting_for_camera_info_default_intrinsics_are_used(graph, tiny_checkpoint, make_image):
    depth_node(graph, tiny_checkpoint, wait_for_camera_info=False)
    info_inbox = graph.subscribe("depth/camera_info")
    graph.subscribe("depth")
    graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH), sec=3))
    np.testing.assert_allclose(np.array(info_inbox.wait_stamp(3).k).reshape(3, 3), default_intrinsics(HEIGHT, WIDTH))


def test_repeated_bad_frames_are_logged_once_per_period(graph, tiny_checkpoint, make_image, capfd):
    node = depth_node(graph, tiny_checkpoint)
    graph.subscribe("depth")
    send_camera_info(graph, node, camera_info_msg(K, HEIGHT, WIDTH))
    for count in range(1, 6):
        graph.image_pub.publish(_bad_encoding(make_image(HEIGHT, WIDTH)))
        assert wait_until(lambda: node.problem_counts.get("bad_image", 0) == count)
    warnings = [line for line in capfd.readouterr().err.splitlines() if "hsv8" in line]
    assert len(warnings) == 1
    assert "unsupported image encoding 'hsv8'" in warnings[0] and "rgb8" in warnings[0]  # found and expected
