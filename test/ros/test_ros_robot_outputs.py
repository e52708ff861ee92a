"""scan, depth/compressedDepth and depth/colored/compressed over real DDS, checked against depth."""

from __future__ import annotations

import struct

import cv2
import numpy as np
from rclpy.parameter import Parameter
from ros_harness import camera_info_msg, depth_array, depth_node, image_msg, pinhole_K, send_camera_info, wait_until
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, LaserScan

from monodepth2_ros.inference.laser_scan import ScanConfig, depth_to_scan, scan_rows

HEIGHT, WIDTH = 48, 160


def _decode_compressed_depth(msg: CompressedImage) -> np.ndarray:
    """Metres from a compressedDepth message, by the format's rules: '<encoding>; compressedDepth png',
    a 12-byte header (int32 format, two float32 parameters), then a PNG; 16UC1 is millimetres, 0 invalid."""
    encoding, transport = (part.strip() for part in msg.format.split(";"))
    assert encoding == "16UC1" and transport.split() == ["compressedDepth", "png"]
    data = bytes(msg.data)
    compression_format, _, _ = struct.unpack("<iff", data[:12])
    assert compression_format == 0  # INV_DEPTH, what the C++ encoder writes for every encoding
    millimetres = cv2.imdecode(np.frombuffer(data[12:], np.uint8), cv2.IMREAD_UNCHANGED)
    assert millimetres.dtype == np.uint16
    return np.where(millimetres > 0, millimetres.astype(np.float64) / 1000.0, np.nan)


def _start(graph, tiny_checkpoint, **params):
    node = depth_node(graph, tiny_checkpoint, **params)
    send_camera_info(graph, node, camera_info_msg(pinhole_K(HEIGHT, WIDTH), HEIGHT, WIDTH, frame_id="front_optical"))
    return node


def test_scan_is_the_band_of_the_published_depth_with_the_image_stamp_in_the_scan_frame(graph, tiny_checkpoint, make_image):
    node = _start(graph, tiny_checkpoint, publish_scan=True, scan_height=3, scan_row_offset=2, scan_range_min=0.05,
                  scan_range_max=60.0, scan_frame_id="front_camera_link", scale_mode="fixed", scale_factor=2.0)
    depth_inbox, info_inbox = graph.subscribe("depth"), graph.subscribe("depth/camera_info", CameraInfo)
    scan_inbox = graph.subscribe("scan", LaserScan)
    sent = image_msg(make_image(HEIGHT, WIDTH, 4), sec=11, frame_id="front_optical")
    graph.image_pub.publish(sent)

    scan = scan_inbox.wait_stamp(11)
    depth = depth_array(depth_inbox.wait_stamp(11))
    K = np.array(info_inbox.wait_stamp(11).k).reshape(3, 3)
    assert scan.header.stamp == sent.header.stamp and scan.header.frame_id == "front_camera_link"
    config = ScanConfig(height=3, row_offset=2, range_min=0.05, range_max=60.0)
    start, stop = scan_rows(HEIGHT, K[1, 2], config)
    assert (start, stop) == (round(K[1, 2]) + 1, round(K[1, 2]) + 4)
    expected = depth_to_scan(depth[start:stop], K[0, 0], K[0, 2], config)
    assert len(scan.ranges) == WIDTH
    np.testing.assert_allclose(np.array(scan.ranges), expected.ranges, rtol=1e-6)
    assert np.isfinite(np.array(scan.ranges)).mean() > 0.9
    assert (scan.angle_min, scan.angle_max, scan.angle_increment) == (
        np.float32(expected.angle_min), np.float32(expected.angle_max), np.float32(expected.angle_increment)
    )
    assert (scan.range_min, scan.range_max) == (np.float32(0.05), np.float32(60.0))
    assert node.problem_counts.get("scan_band", 0) == 0


def test_compressed_depth_and_colored_jpeg_decode_to_the_raw_outputs(graph, tiny_checkpoint, make_image):
    _start(graph, tiny_checkpoint, scale_mode="fixed", scale_factor=20.0)
    depth_inbox, colored_inbox = graph.subscribe("depth"), graph.subscribe("depth/colored", Image)
    compressed_inbox = graph.subscribe("depth/compressedDepth", CompressedImage)
    jpeg_inbox = graph.subscribe("depth/colored/compressed", CompressedImage)
    sent = image_msg(make_image(HEIGHT, WIDTH, 5), sec=12, frame_id="front_optical")
    graph.image_pub.publish(sent)

    depth = depth_array(depth_inbox.wait_stamp(12)).astype(np.float64)
    compressed = compressed_inbox.wait_stamp(12)
    assert compressed.header.stamp == sent.header.stamp and compressed.header.frame_id == "front_optical"
    decoded = _decode_compressed_depth(compressed)
    assert decoded.shape == depth.shape
    np.testing.assert_array_equal(np.isnan(decoded), np.isnan(depth) | (depth > 65.535))
    valid = ~np.isnan(decoded)
    assert valid.mean() > 0.5
    assert np.abs(decoded[valid] - depth[valid]).max() <= 0.0005 + 1e-6  # rounded to the nearest millimetre
    assert len(compressed.data) < depth.nbytes / 2

    jpeg = jpeg_inbox.wait_stamp(12)
    assert jpeg.format == "bgr8; jpeg compressed bgr8" and jpeg.header.stamp == sent.header.stamp
    colored = colored_inbox.wait_stamp(12)
    raw = np.frombuffer(bytes(colored.data), np.uint8).reshape(HEIGHT, WIDTH, 3)
    decoded_bgr = cv2.imdecode(np.frombuffer(bytes(jpeg.data), np.uint8), cv2.IMREAD_COLOR)
    assert decoded_bgr.shape == raw.shape
    # The colour view through JPEG at jpeg_quality 90: what decoding a quality-90 JPEG of depth/colored gives.
    _, reference = cv2.imencode(".jpg", raw, [cv2.IMWRITE_JPEG_QUALITY, 90])
    np.testing.assert_array_equal(decoded_bgr, cv2.imdecode(reference, cv2.IMREAD_COLOR))
    assert np.abs(decoded_bgr.astype(int) - raw.astype(int)).mean() < 12.0


def test_compressed_depth_and_scan_on_a_relative_scale_are_refused_with_a_reason_and_the_node_keeps_serving(
    graph, tiny_checkpoint, make_image
):
    node = _start(graph, tiny_checkpoint, scale_mode="none", publish_scan=True)
    compressed_inbox = graph.subscribe("depth/compressedDepth", CompressedImage)
    scan_inbox = graph.subscribe("scan", LaserScan)
    depth_inbox = graph.subscribe("depth")
    graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH, 6), sec=13))
    depth_inbox.wait_stamp(13)
    assert wait_until(lambda: node.problem_counts.get("compressed_depth_relative", 0) > 0)
    assert node.problem_counts.get("scan_relative", 0) > 0
    assert compressed_inbox.stamped(13) == [] and scan_inbox.stamped(13) == []

    assert node.set_parameters([Parameter("scale_mode", value="fixed"), Parameter("scale_factor", value=20.0)])[0].successful
    graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH, 6), sec=14))
    compressed_inbox.wait_stamp(14)
    scan_inbox.wait_stamp(14)


def test_scan_parameters_out_of_range_are_refused_and_a_band_off_the_image_is_reported(
    graph, tiny_checkpoint, make_image, capfd
):
    node = _start(graph, tiny_checkpoint, publish_scan=True, scale_mode="fixed")
    scan_inbox, depth_inbox = graph.subscribe("scan", LaserScan), graph.subscribe("depth")
    result = node.set_parameters([Parameter("scan_range_min", value=9.0)])[0]
    assert not result.successful and "scan_range_min (9.0) must be smaller than scan_range_max (8.0)" in result.reason
    result = node.set_parameters([Parameter("scan_height", value=0)])[0]
    assert not result.successful

    assert node.set_parameters([Parameter("scan_row_offset", value=HEIGHT)])[0].successful  # below the image
    graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH, 7), sec=15))
    depth_inbox.wait_stamp(15)  # the other outputs are still published
    assert wait_until(lambda: node.problem_counts.get("scan_band", 0) > 0)
    assert scan_inbox.stamped(15) == []

    assert node.set_parameters([Parameter("scan_row_offset", value=0)])[0].successful
    graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH, 7), sec=16, frame_id="front_optical"))
    scan = scan_inbox.wait_stamp(16)
    assert len(scan.ranges) == WIDTH and scan.header.frame_id == "front_optical"  # no scan_frame_id: the image's
    logged = capfd.readouterr().err
    assert "scan band rows" in logged and "scan_row_offset 48" in logged
    assert "'front_optical', which looks like an optical frame" in logged and "set scan_frame_id" in logged


def test_a_scan_subscriber_alone_runs_the_network_only_when_the_scan_is_enabled(graph, tiny_checkpoint, make_image):
    node = _start(graph, tiny_checkpoint, scale_mode="fixed")
    scan_inbox = graph.subscribe("scan", LaserScan)
    assert wait_until(lambda: node.count_subscribers(node.resolve_topic_name("scan")) == 1)
    graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH, 8), sec=17))
    assert wait_until(lambda: node.stats.snapshot().skipped_idle >= 1)
    assert node.stats.snapshot().published == 0 and scan_inbox.messages == []

    assert node.set_parameters([Parameter("publish_scan", value=True)])[0].successful
    graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH, 8), sec=18))
    scan_inbox.wait_stamp(18)
