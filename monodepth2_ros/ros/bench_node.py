"""End-to-end benchmark of the depth node over real DDS, beside the bare model, in one run.

Measures, for camera-sized frames (KITTI's 1242x375 bgr8 by default):

* node latency: publishing an Image until *both* ``depth`` and ``points`` for it have arrived at a
  subscriber in the same process (one frame in flight at a time), p50/p95, and the part of it spent
  inside the node (image received to outputs published);
* model latency: :meth:`DepthEstimator.estimate` on the same frames and device, p50/p95;
* throughput: the output rate under a flood of input (four times the sequential rate; the worker
  drops what it cannot serve), and the highest input rate, probed downwards from the sequential
  rate, served without a drop or a growing latency (no backlog).

    python -m monodepth2_ros.ros.bench_node --random-weights --frames 200
    python -m monodepth2_ros.ros.bench_node --weights ~/models/mono_640x192 --device cuda --json bench.json
"""

from __future__ import annotations

import argparse
import array
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monodepth2_ros.data.image_codec import rgb_to_image_fields
from monodepth2_ros.inference.estimators import DepthEstimator, InferenceConfig
from monodepth2_ros.model.checkpoint import CheckpointInfo, save_checkpoint
from monodepth2_ros.model.constants import DEFAULT_HEIGHT, DEFAULT_WIDTH
from monodepth2_ros.model.networks import DepthNet

__all__ = ["run_node_benchmark", "write_random_checkpoint", "main"]

DEFAULT_FRAMES = 200
KITTI_WIDTH = 1242
KITTI_HEIGHT = 375
_DISTINCT_FRAMES = 8
_WARMUP_FRAMES = 5
_FRAME_TIMEOUT_S = 30.0
_MATCH_TIMEOUT_S = 10.0
_FLOOD_RATE_HZ = 200.0
_MIN_FLOOD_HZ = 2.0
_FLOOD_FACTOR = 4.0
_PROBE_S = 3.0
# Input rates tried, as fractions of 1 / median sequential latency, until one is served without drops.
_PROBE_FRACTIONS = (0.9, 0.75, 0.6, 0.45, 0.3)
# A probe has a backlog when its p95 latency exceeds the sequential p95 by this factor.
_BACKLOG_FACTOR = 2.0
_DOMAIN_RANGE = (100, 200)
_MS = 1000.0


def write_random_checkpoint(folder: str | Path, height: int = DEFAULT_HEIGHT, width: int = DEFAULT_WIDTH, seed: int = 0) -> Path:
    """A seeded random ResNet-18 depth checkpoint (official format): same cost as a trained one."""
    torch.manual_seed(seed)
    return save_checkpoint(folder, DepthNet(18), None, CheckpointInfo(height=height, width=width))


def _frames(height: int, width: int, count: int = _DISTINCT_FRAMES) -> list[np.ndarray]:
    """Smooth textured RGB frames (a few distinct ones, cycled)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for index in range(count):
        phase = index * 0.7
        channels = [127 + 100 * np.sin(u / (9 + 5 * c) + phase) * np.cos(v / (7 + 3 * c) - phase) for c in range(3)]
        frames.append(np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8))
    return frames


def _summary(seconds: list[float]) -> dict[str, float]:
    values = np.asarray(seconds, dtype=np.float64) * _MS
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "mean": float(values.mean()),
        "n": int(values.size),
    }


class _Driver:
    """Publishes frames and records when depth and points for each stamp arrive."""

    def __init__(self, node: Any, images: list[Any], camera_info: Any) -> None:
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        from monodepth2_ros.ros.depth_node import input_qos, output_qos

        self.node = node
        self.images = images
        self.camera_info = camera_info
        self.image_pub = node.create_publisher(Image, "image", input_qos("reliable"))
        self.info_pub = node.create_publisher(CameraInfo, "camera_info", input_qos("reliable"))
        self.lock = threading.Lock()
        self.arrivals: dict[int, dict[str, float]] = {}
        self.complete = threading.Condition(self.lock)
        node.create_subscription(Image, "depth", lambda msg: self._arrived(msg, "depth"), output_qos())
        node.create_subscription(PointCloud2, "points", lambda msg: self._arrived(msg, "points"), output_qos())

    def _arrived(self, msg: Any, topic: str) -> None:
        now = time.perf_counter()
        key = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self.lock:
            self.arrivals.setdefault(key, {})[topic] = now
            self.complete.notify_all()

    def publish(self, index: int) -> tuple[int, float]:
        """Publish frame ``index`` (stamp = index ms); returns (stamp key, publish time)."""
        msg = self.images[index % len(self.images)]
        msg.header.stamp.sec = index // 1000
        msg.header.stamp.nanosec = (index % 1000) * 1_000_000
        key = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.info_pub.publish(self.camera_info)
        sent = time.perf_counter()
        self.image_pub.publish(msg)
        return key, sent

    def done_time(self, key: int) -> float | None:
        with self.lock:
            got = self.arrivals.get(key, {})
            return max(got.values()) if len(got) == 2 else None

    def wait_done(self, key: int, timeout: float) -> float | None:
        deadline = time.perf_counter() + timeout
        with self.lock:
            while True:
                got = self.arrivals.get(key, {})
                if len(got) == 2:
                    return max(got.values())
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    return None
                self.complete.wait(remaining)


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _paced(driver: _Driver, start_index: int, rate_hz: float, duration_s: float) -> list[tuple[int, float]]:
    """Publish at ``rate_hz`` for ``duration_s``; returns the (key, sent) of every frame."""
    sent = []
    period = 1.0 / rate_hz
    begin = time.perf_counter()
    index = start_index
    while True:
        due = begin + len(sent) * period
        if due - begin >= duration_s:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent.append(driver.publish(index))
        index += 1
    return sent


def run_node_benchmark(
    weights: str | Path,
    frames: int = DEFAULT_FRAMES,
    width: int = KITTI_WIDTH,
    height: int = KITTI_HEIGHT,
    device: str = "cpu",
    precision: str = "fp32",
    probe_s: float = _PROBE_S,
    threads: int | None = None,
    warmup: int = _WARMUP_FRAMES,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Benchmark the depth node end to end and the bare model on the same frames.

    Args:
        weights: checkpoint folder.
        frames: sequential frames measured for each latency (after a short warm-up).
        width, height: camera image size (bgr8).
        device, precision: as the node's parameters.
        probe_s: seconds of each throughput probe.
        threads: torch CPU threads for the run (None keeps the current setting); restored afterwards.
        warmup: frames run through the node and the model before timing.
        progress: called with a line per phase.
    Returns:
        A JSON-ready dict: ``node_latency_ms`` and ``model_latency_ms`` (p50, p95, mean, n),
        ``flood_output_rate_hz``, ``sustained_rate_hz`` (highest probed input rate served with no
        drop and no backlog; 0 when none was), the probes, and the set-up.
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from std_msgs.msg import Header

    from monodepth2_ros.inference.pointcloud import default_intrinsics
    from monodepth2_ros.ros.conversions import camera_info_message
    from monodepth2_ros.ros.depth_node import DepthNode

    say = progress or (lambda line: None)
    rgb_frames = _frames(height, width)
    images = []
    for rgb in rgb_frames:
        data, step = rgb_to_image_fields(rgb, "bgr8")
        msg = Image(height=height, width=width, encoding="bgr8", step=step, is_bigendian=False)
        msg.data = array.array("B", data)
        msg.header.frame_id = "camera_optical"
        images.append(msg)
    camera_info = camera_info_message(default_intrinsics(height, width), height, width, Header(frame_id="camera_optical"))

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    context = Context()
    rclpy.init(context=context, domain_id=random.randint(*_DOMAIN_RANGE))
    executor = MultiThreadedExecutor(context=context)
    nodes: list[Any] = []
    spinner = None
    try:
        overrides = [
            Parameter("weights", value=str(weights)),
            Parameter("device", value=device),
            Parameter("precision", value=precision),
        ]
        node = DepthNode(context=context, parameter_overrides=overrides, node_name="bench_depth_node")
        nodes.append(node)
        driver_node = rclpy.create_node("bench_driver", context=context)
        nodes.append(driver_node)
        driver = _Driver(driver_node, images, camera_info)
        for each in nodes:
            executor.add_node(each)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        deadline = time.perf_counter() + _MATCH_TIMEOUT_S
        while not (driver.image_pub.get_subscription_count() > 0 and node.has_camera_info):
            if time.perf_counter() > deadline:
                raise RuntimeError("the benchmark's publisher and the depth node did not connect")
            driver.info_pub.publish(camera_info)
            time.sleep(0.05)
        result = _measure(node, driver, rgb_frames, weights, frames, warmup, width, height, device, precision, probe_s, say)
    finally:
        executor.shutdown()
        for each in nodes:
            each.destroy_node()
        if context.ok():
            rclpy.shutdown(context=context)
        if spinner is not None:
            spinner.join(timeout=5.0)
        torch.set_num_threads(previous_threads)
    return result


def _measure(
    node: Any,
    driver: _Driver,
    rgb_frames: list[np.ndarray],
    weights: str | Path,
    frames: int,
    warmup: int,
    width: int,
    height: int,
    device: str,
    precision: str,
    probe_s: float,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The measurements of :func:`run_node_benchmark` on a connected node and driver."""
    estimator = DepthEstimator(weights, InferenceConfig(device=device, precision=precision))
    index = 0
    say(f"warm-up ({warmup} frames)")
    for _ in range(warmup):
        key, _sent = driver.publish(index)
        driver.wait_done(key, _FRAME_TIMEOUT_S)
        estimator.estimate(rgb_frames[index % len(rgb_frames)])
        index += 1

    # Node and bare model alternate frame by frame, so both see the same load on a shared machine.
    say(f"latency ({frames} frames: node, one in flight, then DepthEstimator.estimate on the same frame)")
    node_latencies = []
    model_latencies = []
    for _ in range(frames):
        key, sent = driver.publish(index)
        done = driver.wait_done(key, _FRAME_TIMEOUT_S)
        if done is None:
            raise RuntimeError(f"no depth + points for frame {index} within {_FRAME_TIMEOUT_S} s")
        node_latencies.append(done - sent)
        start = time.perf_counter()
        estimator.estimate(rgb_frames[index % len(rgb_frames)])
        model_latencies.append(time.perf_counter() - start)
        index += 1
    inside = node.stats.snapshot()  # image received -> outputs published, inside the node
    del estimator

    # Four times the sequential rate saturates the node without flooding the machine with publishing.
    flood_input = min(_FLOOD_RATE_HZ, max(_MIN_FLOOD_HZ, _FLOOD_FACTOR / float(np.median(node_latencies))))
    say(f"throughput: flood at {flood_input:.1f} Hz for {probe_s:.0f} s")
    flood = _paced(driver, index, flood_input, probe_s)
    index += len(flood)
    _wait_for(lambda: node.is_idle, _FRAME_TIMEOUT_S)
    time.sleep(0.2)
    finished = sorted(done for key, _ in flood if (done := driver.done_time(key)) is not None)
    # Outputs per second while saturated: intervals between consecutive outputs.
    flood_rate = (len(finished) - 1) / (finished[-1] - finished[0]) if len(finished) > 1 else 0.0

    sequential_p95 = float(np.percentile(node_latencies, 95))
    probes = []
    sustained = 0.0
    sequential_rate = 1.0 / float(np.median(node_latencies))
    for fraction in _PROBE_FRACTIONS:
        rate = max(sequential_rate * fraction, 0.1)
        say(f"throughput: {rate:.2f} Hz for {probe_s:.0f} s")
        dropped_before = node.stats.snapshot().dropped
        sent = _paced(driver, index, rate, probe_s)
        index += len(sent)
        last_key = sent[-1][0]
        driver.wait_done(last_key, _FRAME_TIMEOUT_S)
        _wait_for(lambda: node.is_idle, _FRAME_TIMEOUT_S)
        latencies = [done - at for key, at in sent if (done := driver.done_time(key)) is not None]
        dropped = node.stats.snapshot().dropped - dropped_before
        p95 = float(np.percentile(latencies, 95)) if latencies else float("inf")
        ok = dropped == 0 and len(latencies) == len(sent) and p95 <= _BACKLOG_FACTOR * sequential_p95
        probes.append(
            {"rate_hz": rate, "sent": len(sent), "served": len(latencies), "dropped": dropped,
             "latency_p95_ms": p95 * _MS, "no_backlog": ok}
        )
        if ok:
            sustained = rate
            break

    info = node.estimator.info
    result = {
        "image": f"{width}x{height} bgr8",
        "network": f"{info.width}x{info.height} ResNet-{info.num_layers}",
        "device": str(node.estimator.device),
        "precision": precision,
        "frames": frames,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "node_latency_ms": _summary(node_latencies),
        "node_processing_ms": {"p50": inside.latency_p50_ms, "p95": inside.latency_p95_ms},
        "model_latency_ms": _summary(model_latencies),
        "flood_input_rate_hz": flood_input,
        "flood_output_rate_hz": flood_rate,
        "sustained_rate_hz": sustained,
        "probes": probes,
    }
    # Median over frames of (node - model) on the same frame under the same load.
    paired = np.asarray(node_latencies) - np.asarray(model_latencies)
    result["node_overhead_ms_p50"] = float(np.median(paired)) * _MS
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help="checkpoint folder")
    source.add_argument("--random-weights", action="store_true", help="a seeded random ResNet-18 checkpoint at 640x192")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    parser.add_argument("--width", type=int, default=KITTI_WIDTH)
    parser.add_argument("--height", type=int, default=KITTI_HEIGHT)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--probe-seconds", type=float, default=_PROBE_S)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--warmup", type=int, default=_WARMUP_FRAMES)
    parser.add_argument("--json", help="also write the results to this file")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="monodepth2_bench_") as scratch:
        weights = options.weights or write_random_checkpoint(Path(scratch) / "random_640x192")
        result = run_node_benchmark(
            weights,
            frames=options.frames,
            width=options.width,
            height=options.height,
            device=options.device,
            precision=options.precision,
            probe_s=options.probe_seconds,
            threads=options.threads,
            warmup=options.warmup,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    text = json.dumps(result, indent=2)
    print(text)
    if options.json:
        Path(options.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
