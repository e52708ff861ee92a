"""The depth node over real DDS: outputs, numbers, threading, parameters, start-up failures."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
import torch
from rclpy.parameter import Parameter
from ros_harness import (
    camera_info_msg,
    cloud_array,
    compressed_msg,
    depth_array,
    depth_node,
    image_msg,
    pinhole_K,
    send_camera_info,
    wait_until,
)

from monodepth2_ros.inference import DepthEstimator, InferenceConfig
from monodepth2_ros.model.geometry import project, scale_intrinsics
from monodepth2_ros.ros.depth_node import build_estimator, main
from monodepth2_ros.ros.parameters import DepthNodeParameters

HEIGHT, WIDTH = 48, 160  # not the tiny network's 64x96: every output is resized


def _frame(make_image, seed: int = 0) -> np.ndarray:
    return make_image(HEIGHT, WIDTH, seed)


def _reference_depth(tiny_checkpoint, rgb: np.ndarray) -> np.ndarray:
    return DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(rgb).depth


def test_outputs_carry_the_image_header_encodings_and_sizes(graph, tiny_checkpoint, make_image):
    node = depth_node(graph, tiny_checkpoint)
    inboxes = graph.subscribe_outputs()
    K = pinhole_K(HEIGHT, WIDTH)
    send_camera_info(graph, node, camera_info_msg(K, HEIGHT, WIDTH))
    sent = image_msg(_frame(make_image), sec=7, frame_id="front_optical")
    graph.image_pub.publish(sent)

    received = {topic: inbox.wait_stamp(7) for topic, inbox in inboxes.items()}
    for topic, msg in received.items():
        assert msg.header.stamp == sent.header.stamp, topic
        assert msg.header.frame_id == "front_optical", topic
    depth, colored, info, points = (received[t] for t in ("depth", "depth/colored", "depth/camera_info", "points"))
    assert (depth.encoding, depth.height, depth.width, depth.step) == ("32FC1", HEIGHT, WIDTH, WIDTH * 4)
    assert (colored.encoding, colored.height, colored.width, colored.step) == ("bgr8", HEIGHT, WIDTH, WIDTH * 3)
    assert (info.height, info.width) == (HEIGHT, WIDTH)
    np.testing.assert_allclose(np.array(info.k).reshape(3, 3), K)
    np.testing.assert_allclose(np.array(info.p).reshape(3, 4)[:, :3], K)
    assert (points.height, points.width, points.point_step, points.row_step) == (HEIGHT, WIDTH, 16, 16 * WIDTH)
    assert [(f.name, f.offset, f.datatype, f.count) for f in points.fields] == [
        ("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("rgb", 12, 7, 1)
    ]
    assert len(points.data) == HEIGHT * WIDTH * 16
    assert points.is_dense == bool(np.isfinite(cloud_array(points)[..., :3]).all())


def test_depth_equals_the_estimator_output_with_nan_outside_the_range(graph, tiny_checkpoint, make_image):
    rgb = _frame(make_image, seed=3)
    expected = _reference_depth(tiny_checkpoint, rgb)
    low, high = (float(v) for v in np.percentile(expected, [20, 80]))
    node = depth_node(graph, tiny_checkpoint, min_depth=low, max_depth=high, color_range_mode="fixed",
                      color_min=low, color_max=high)
    depth_inbox, points_inbox = graph.subscribe("depth"), graph.subscribe("points")
    send_camera_info(graph, node, camera_info_msg(pinhole_K(HEIGHT, WIDTH), HEIGHT, WIDTH))
    graph.image_pub.publish(image_msg(rgb, sec=1))

    depth = depth_array(depth_inbox.wait_stamp(1))
    inside = (expected >= low) & (expected <= high)
    assert 0.5 < inside.mean() < 0.7  # the range really cuts both ends
    np.testing.assert_array_equal(np.isnan(depth), ~inside)
    np.testing.assert_allclose(depth[inside], expected[inside], rtol=1e-5)
    cloud = cloud_array(points_inbox.wait_stamp(1))
    np.testing.assert_array_equal(np.isnan(cloud[..., 2]), ~inside)
    assert points_inbox.wait_stamp(1).is_dense is False


def test_network_output_size_scales_camera_info_and_cloud(graph, tiny_checkpoint, make_image):
    node = depth_node(graph, tiny_checkpoint, output_size="network")
    inboxes = graph.subscribe_outputs()
    K = pinhole_K(HEIGHT, WIDTH)
    send_camera_info(graph, node, camera_info_msg(K, HEIGHT, WIDTH))
    graph.image_pub.publish(image_msg(_frame(make_image), sec=2))

    depth = inboxes["depth"].wait_stamp(2)
    info = inboxes["depth/camera_info"].wait_stamp(2)
    assert (depth.height, depth.width) == (64, 96)
    assert (info.height, info.width) == (64, 96)
    np.testing.assert_allclose(np.array(info.k).reshape(3, 3), scale_intrinsics(K, (HEIGHT, WIDTH), (64, 96)))
    assert (inboxes["points"].wait_stamp(2).height, inboxes["points"].wait_stamp(2).width) == (64, 96)
    assert (inboxes["depth/colored"].wait_stamp(2).height, inboxes["depth/colored"].wait_stamp(2).width) == (64, 96)


def _check_cloud_against_depth(cloud: np.ndarray, depth: np.ndarray, K: np.ndarray, rgb: np.ndarray, stride: int) -> None:
    rows, cols = cloud.shape[:2]
    v, u = np.mgrid[0:rows, 0:cols] * stride
    points = torch.from_numpy(cloud[..., :3].reshape(-1, 3).T.copy()).double()[None]
    pixels, z = project(points, torch.from_numpy(K)[None])
    valid = np.isfinite(cloud[..., 2]).reshape(-1)
    assert valid.sum() > 0.9 * valid.size
    np.testing.assert_allclose(pixels[0, 0].numpy()[valid], u.reshape(-1)[valid], atol=1e-3)
    np.testing.assert_allclose(pixels[0, 1].numpy()[valid], v.reshape(-1)[valid], atol=1e-3)
    np.testing.assert_allclose(z[0, 0].numpy()[valid], depth[::stride, ::stride].reshape(-1)[valid], rtol=1e-5)
    packed = cloud[..., 3].copy().view(np.uint32)
    colours = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1)
    np.testing.assert_array_equal(colours, rgb[::stride, ::stride])


def test_each_point_projects_back_to_its_pixel_with_its_depth_and_colour(graph, tiny_checkpoint, make_image):
    node = depth_node(graph, tiny_checkpoint)
    depth_inbox, points_inbox = graph.subscribe("depth"), graph.subscribe("points")
    K = pinhole_K(HEIGHT, WIDTH)
    send_camera_info(graph, node, camera_info_msg(K, HEIGHT, WIDTH))
    rgb = _frame(make_image, seed=1)
    graph.image_pub.publish(image_msg(rgb, sec=3))
    _check_cloud_against_depth(cloud_array(points_inbox.wait_stamp(3)), depth_array(depth_inbox.wait_stamp(3)), K, rgb, 1)

    assert all(r.successful for r in node.set_parameters([Parameter("cloud_stride", value=3)]))
    graph.image_pub.publish(image_msg(rgb, sec=4))
    cloud = points_inbox.wait_stamp(4)
    assert (cloud.height, cloud.width) == (HEIGHT // 3, -(-WIDTH // 3))
    _check_cloud_against_depth(cloud_array(cloud), depth_array(depth_inbox.wait_stamp(4)), K, rgb, 3)


def test_cloud_max_range_and_unorganized_cloud_drop_far_points(graph, tiny_checkpoint, make_image):
    rgb = _frame(make_image, seed=2)
    node = depth_node(graph, tiny_checkpoint)
    depth_inbox, points_inbox = graph.subscribe("depth"), graph.subscribe("points")
    send_camera_info(graph, node, camera_info_msg(pinhole_K(HEIGHT, WIDTH), HEIGHT, WIDTH))
    graph.image_pub.publish(image_msg(rgb, sec=1))
    full = cloud_array(points_inbox.wait_stamp(1))
    distance = np.linalg.norm(full[..., :3], axis=-1)
    limit = float(np.median(distance))

    result = node.set_parameters([Parameter("cloud_max_range", value=limit), Parameter("cloud_organized", value=False)])
    assert all(r.successful for r in result)
    graph.image_pub.publish(image_msg(rgb, sec=2))
    msg = points_inbox.wait_stamp(2)
    kept = cloud_array(msg)
    assert msg.height == 1 and msg.is_dense is True
    assert kept.shape[1] == int((distance <= limit).sum())
    assert np.linalg.norm(kept[0, :, :3], axis=-1).max() <= limit + 1e-4


def test_depth_and_points_reach_subscribers_before_the_colour_map_runs(graph, tiny_checkpoint, make_image):
    """Robots act on depth and the cloud; the colour view is only looked at, so it waits for them."""
    node = depth_node(graph, tiny_checkpoint)
    inboxes = graph.subscribe_outputs()
    send_camera_info(graph, node, camera_info_msg(pinhole_K(HEIGHT, WIDTH), HEIGHT, WIDTH))
    arrived_before_colour: dict[str, bool] = {}
    colour = node._colour

    def watching_colour(depth, params):
        for topic in ("depth", "points"):  # published before this call, so they arrive while it waits
            arrived_before_colour[topic] = wait_until(lambda t=topic: bool(inboxes[t].stamped(5)), timeout=5.0)
        return colour(depth, params)

    node._colour = watching_colour
    graph.image_pub.publish(image_msg(_frame(make_image), sec=5))
    inboxes["depth/colored"].wait_stamp(5)
    assert arrived_before_colour == {"depth": True, "points": True}


def _counting_estimator(
    checkpoint, delay_s: float = 0.0, python_work: bool = False
) -> tuple[DepthEstimator, list[float]]:
    """The node's real estimator whose network runner records each call, and sleeps to play a slow
    device (or, with ``python_work``, computes in Python for that long, holding the GIL as numpy's
    small steps and the node's Python code do)."""
    estimator = build_estimator(DepthNodeParameters(weights=str(checkpoint), device="cpu"))
    calls: list[float] = []
    run_network = estimator.runner

    def slow_runner(images):
        calls.append(time.monotonic())
        if python_work:
            end = time.monotonic() + delay_s
            while time.monotonic() < end:
                sum(range(1000))
        else:
            time.sleep(delay_s)
        return run_network(images)

    estimator.runner = slow_runner
    return estimator, calls


def test_no_inference_while_no_output_has_a_subscriber(graph, tiny_checkpoint, make_image):
    estimator, calls = _counting_estimator(tiny_checkpoint)
    node = depth_node(graph, tiny_checkpoint, estimator=estimator)
    send_camera_info(graph, node, camera_info_msg(pinhole_K(HEIGHT, WIDTH), HEIGHT, WIDTH))
    for sec in range(1, 4):
        graph.image_pub.publish(image_msg(_frame(make_image), sec=sec))
        assert wait_until(lambda: node.stats.snapshot().skipped_idle == sec)
    assert calls == [] and node.stats.snapshot().published == 0

    inbox = graph.subscribe("points")
    assert wait_until(lambda: node.count_subscribers(f"{graph.namespace}/points") > 0)
    graph.image_pub.publish(image_msg(_frame(make_image), sec=9))
    inbox.wait_stamp(9)
    assert len(calls) == 1


def test_the_executor_waits_for_work_while_frames_wait_for_a_busy_worker(graph, tiny_checkpoint, make_image):
    """rclpy's MultiThreadedExecutor re-dispatches a callback that has not started yet and loops
    without waiting, holding the GIL (ros2/rclpy#1452): in one process at 1242x375 it slowed the
    depth node's colour map from 3 to 280 ms. The nodes' executor must wait once per callback."""
    estimator, calls = _counting_estimator(tiny_checkpoint, delay_s=0.3, python_work=True)
    node = depth_node(graph, tiny_checkpoint, estimator=estimator)
    outputs = {topic: graph.subscribe(topic) for topic in ("depth", "depth/colored", "points")}
    send_camera_info(graph, node, camera_info_msg(pinhole_K(HEIGHT, WIDTH), HEIGHT, WIDTH))
    message = image_msg(_frame(make_image), sec=1)
    graph.image_pub.publish(message)
    outputs["points"].wait_stamp(1)
    waits = []
    wait_for_ready_callbacks = graph.executor.wait_for_ready_callbacks

    def counted(*args, **kwargs):
        waits.append(1)
        return wait_for_ready_callbacks(*args, **kwargs)

    graph.executor.wait_for_ready_callbacks = counted
    frames = 60
    for sec in range(2, 2 + frames):  # at 30 Hz into a node serving about 3 a second
        message.header.stamp.sec = sec
        graph.image_pub.publish(message)
        time.sleep(1 / 30)
    outputs["points"].wait_stamp(1 + frames)
    callbacks = frames + sum(len(inbox.messages) for inbox in outputs.values())
    assert len(calls) < frames / 2  # frames did wait for the busy worker
    # a wait per callback, plus the diagnostics timer and rclpy's guard conditions
    assert len(waits) < 3 * callbacks, f"{len(waits)} executor wake-ups for {callbacks} callbacks"


def test_a_burst_during_a_slow_frame_keeps_only_the_newest(graph, tiny_checkpoint, make_image):
    delay = 0.4
    estimator, calls = _counting_estimator(tiny_checkpoint, delay_s=delay)
    node = depth_node(graph, tiny_checkpoint, estimator=estimator)
    inbox = graph.subscribe("depth")
    send_camera_info(graph, node, camera_info_msg(pinhole_K(HEIGHT, WIDTH), HEIGHT, WIDTH))
    rgb = _frame(make_image)
    burst = range(1, 9)
    start = time.monotonic()
    for sec in burst:
        graph.image_pub.publish(image_msg(rgb, sec=sec))
        time.sleep(0.02)
    inbox.wait_stamp(burst[-1])
    elapsed = time.monotonic() - start
    assert wait_until(lambda: node.is_idle)

    served = [m.header.stamp.sec for m in inbox.messages]
    stats = node.stats.snapshot()
    assert served[0] == 1 and served[-1] == burst[-1]
    assert len(served) <= 3 and len(calls) == len(served)
    assert stats.dropped == stats.received - stats.published > 0
    assert elapsed < (len(served) + 1) * delay + 2.0  # no queue of 8 frames worked off behind the slow device


def test_parameters_change_at_run_time_and_bad_values_are_rejected(graph, tiny_checkpoint, make_image):
    node = depth_node(graph, tiny_checkpoint, max_depth=1000.0)
    inbox = graph.subscribe("depth")
    send_camera_info(graph, node, camera_info_msg(pinhole_K(HEIGHT, WIDTH), HEIGHT, WIDTH))
    rgb = _frame(make_image)
    graph.image_pub.publish(image_msg(rgb, sec=1))
    before = depth_array(inbox.wait_stamp(1))

    changes = [Parameter("scale_mode", value="fixed"), Parameter("scale_factor", value=2.5)]
    assert node.set_parameters_atomically(changes).successful
    assert node.scale == 2.5 and node.get_parameter("scale_mode").value == "fixed"
    graph.image_pub.publish(image_msg(rgb, sec=2))
    np.testing.assert_allclose(depth_array(inbox.wait_stamp(2)), before * 2.5, rtol=1e-5)

    rejected = {
        "min_depth": (Parameter("min_depth", value=2000.0), "min_depth"),
        "colormap": (Parameter("colormap", value="rainbow"), "colormap"),
        "cloud_stride": (Parameter("cloud_stride", value=0), "out of range|cloud_stride"),
        "device": (Parameter("device", value="cuda"), "read-only"),
        "type": (Parameter("max_depth", value="far"), "type"),
    }
    for name, (parameter, reason) in rejected.items():
        result = node.set_parameters([parameter])[0]
        assert not result.successful, name
        assert re.search(reason, result.reason), (name, result.reason)
    assert node.parameters.colormap == "magma" and node.parameters.cloud_stride == 1


def test_diagnostics_report_rates_latency_drops_and_scale(graph, tiny_checkpoint, make_image):
    from diagnostic_msgs.msg import DiagnosticArray

    node = depth_node(graph, tiny_checkpoint, scale_mode="stereo")
    depth_inbox = graph.subscribe("depth")
    diagnostics = graph.subscribe("diagnostics", DiagnosticArray)  # /diagnostics, remapped into the graph
    send_camera_info(graph, node, camera_info_msg(pinhole_K(HEIGHT, WIDTH), HEIGHT, WIDTH))
    graph.image_pub.publish(image_msg(_frame(make_image), sec=1))
    depth_inbox.wait_stamp(1)

    def published_one() -> bool:
        return any(s.name.startswith("depth_node") and dict((kv.key, kv.value) for kv in s.values).get("frames published") == "1"
                   for msg in list(diagnostics.messages) for s in msg.status)

    assert wait_until(published_one, timeout=5.0)
    status = next(s for msg in reversed(diagnostics.messages) for s in msg.status
                  if dict((kv.key, kv.value) for kv in s.values).get("frames published") == "1")
    values = {kv.key: kv.value for kv in status.values}
    assert float(values["scale (m per unit)"]) == pytest.approx(5.4)
    assert float(values["latency p50 (ms)"]) > 0 and float(values["latency p95 (ms)"]) >= float(values["latency p50 (ms)"])
    assert {"input rate (Hz)", "output rate (Hz)", "frames dropped (busy)"} <= set(values)


def test_compressed_transport_subscribes_image_compressed(graph, tiny_checkpoint, make_image):
    node = depth_node(graph, tiny_checkpoint, input_transport="compressed")
    inbox = graph.subscribe("depth")
    send_camera_info(graph, node, camera_info_msg(pinhole_K(HEIGHT, WIDTH), HEIGHT, WIDTH))
    rgb = _frame(make_image, seed=4)
    graph.compressed_pub.publish(compressed_msg(rgb, sec=5))
    depth = depth_array(inbox.wait_stamp(5))
    np.testing.assert_allclose(depth, _reference_depth(tiny_checkpoint, rgb), rtol=1e-5)  # PNG is lossless


def test_missing_checkpoint_fails_at_start_with_one_error_line(tmp_path, capfd):
    code = main(["--ros-args", "-p", f"weights:={tmp_path / 'nowhere'}", "-p", "device:=cpu"])
    assert code == 2
    errors = [line for line in capfd.readouterr().err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "nowhere" in errors[0] and "cannot start" in errors[0]


def test_unreadable_checkpoint_fails_at_start(tmp_path, capfd):
    (tmp_path / "encoder.pth").write_text("not a checkpoint")
    (tmp_path / "depth.pth").write_text("not a checkpoint")
    assert main(["--ros-args", "-p", f"weights:={tmp_path}", "-p", "device:=cpu"]) == 1
    assert "encoder.pth" in capfd.readouterr().err


def test_the_backend_parameter_selects_the_runtime_and_the_output_matches_eager(graph, tiny_checkpoint, make_image):
    node = depth_node(graph, tiny_checkpoint, backend="eager_optimized")
    assert (node.estimator.backend.backend, node.estimator.backend.precision) == ("eager_optimized", "fp32")
    inbox = graph.subscribe("depth")
    send_camera_info(graph, node, camera_info_msg(pinhole_K(HEIGHT, WIDTH), HEIGHT, WIDTH))
    rgb = _frame(make_image)
    graph.image_pub.publish(image_msg(rgb, sec=5))
    published = depth_array(inbox.wait_stamp(5))
    eager = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(rgb).depth
    np.testing.assert_allclose(published, np.where((eager >= 0.1) & (eager <= 100.0), eager, np.nan), rtol=1e-3, atol=1e-4)
