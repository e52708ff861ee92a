"""Latency of the pose node over real DDS beside the bare pose network, in one run.

For camera-sized frames (KITTI's 1242x375 bgr8 by default), one frame in flight at a time:

* node latency: publishing an Image until the ``odom`` for it has arrived at a subscriber in the
  same process (decode, static check, the pose network on the (previous, current) pair, body-frame
  conversion, integration, Odometry + Path + TF), and the part of it inside the node;
* network latency: :meth:`PoseEstimator.estimate` on the same pair, right after, so both see the
  same load on a shared machine.

    python -m monodepth2_ros.ros.pose_bench --random-weights --frames 30 --threads 1
    python -m monodepth2_ros.ros.pose_bench --weights ~/models/mono_640x192 --device cuda --json pose_bench.json
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
from monodepth2_ros.inference.estimators import InferenceConfig, PoseEstimator
from monodepth2_ros.model.checkpoint import CheckpointInfo, save_checkpoint
from monodepth2_ros.model.constants import DEFAULT_HEIGHT, DEFAULT_WIDTH
from monodepth2_ros.model.networks import DepthNet, PoseNet
from monodepth2_ros.ros.bench_node import KITTI_HEIGHT, KITTI_WIDTH, _frames, _summary

__all__ = ["run_pose_node_benchmark", "write_random_pose_checkpoint", "main"]

DEFAULT_FRAMES = 30
_WARMUP_FRAMES = 3
_FRAME_TIMEOUT_S = 60.0
_MATCH_TIMEOUT_S = 10.0
_FRAME_PERIOD_NS = 50_000_000  # stamps 50 ms apart: well inside max_frame_gap
_DOMAIN_RANGE = (100, 200)
_MS = 1000.0


def write_random_pose_checkpoint(
    folder: str | Path, height: int = DEFAULT_HEIGHT, width: int = DEFAULT_WIDTH, seed: int = 0
) -> Path:
    """A seeded random ResNet-18 checkpoint with a pose network (official format): a trained one's cost."""
    torch.manual_seed(seed)
    return save_checkpoint(folder, DepthNet(18), PoseNet(18), CheckpointInfo(height=height, width=width))


class _OdomWaiter:
    """Records when the odometry for each stamp arrives."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._arrivals: dict[int, float] = {}

    def __call__(self, msg: Any) -> None:
        now = time.perf_counter()
        key = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self._condition:
            self._arrivals[key] = now
            self._condition.notify_all()

    def wait(self, key: int, timeout: float) -> float | None:
        deadline = time.perf_counter() + timeout
        with self._condition:
            while key not in self._arrivals:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)
            return self._arrivals[key]


def run_pose_node_benchmark(
    weights: str | Path,
    frames: int = DEFAULT_FRAMES,
    width: int = KITTI_WIDTH,
    height: int = KITTI_HEIGHT,
    device: str = "cpu",
    precision: str = "fp32",
    threads: int | None = None,
    warmup: int = _WARMUP_FRAMES,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Benchmark the pose node end to end and the bare pose network on the same frame pairs.

    Args:
        weights: checkpoint folder with a pose network.
        frames: frames measured (after ``warmup`` unmeasured ones).
        width, height: camera image size (bgr8); consecutive frames differ, so none is static.
        device, precision: as the node's parameters.
        threads: torch CPU threads for the run (None keeps the current setting); restored afterwards.
        progress: called with a line per phase.
    Returns:
        A JSON-ready dict: ``node_latency_ms`` and ``network_latency_ms`` (p50, p95, mean, n),
        ``node_processing_ms`` (p50, p95 inside the node), ``node_overhead_ms_p50`` and the set-up.
    """
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from monodepth2_ros.ros.pose_node import PoseNode

    say = progress or (lambda line: None)
    rgb_frames = _frames(height, width)
    images = []
    for rgb in rgb_frames:
        data, step = rgb_to_image_fields(rgb, "bgr8")
        msg = Image(height=height, width=width, encoding="bgr8", step=step, is_bigendian=False)
        msg.data = array.array("B", data)
        msg.header.frame_id = "camera_optical"
        images.append(msg)

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
            Parameter("camera_to_base_xyz", value=[0.0, 0.0, 1.65]),
        ]
        node = PoseNode(context=context, parameter_overrides=overrides, node_name="bench_pose_node")
        nodes.append(node)
        driver = rclpy.create_node("bench_pose_driver", context=context)
        nodes.append(driver)
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        image_pub = driver.create_publisher(Image, "image", reliable)
        waiter = _OdomWaiter()
        driver.create_subscription(Odometry, "odom", waiter, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        for each in nodes:
            executor.add_node(each)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        deadline = time.perf_counter() + _MATCH_TIMEOUT_S
        while not (image_pub.get_subscription_count() > 0 and node.count_subscribers("odom") > 0):
            if time.perf_counter() > deadline:
                raise RuntimeError("the benchmark's publisher and the pose node did not connect")
            time.sleep(0.05)
        estimator = PoseEstimator(weights, InferenceConfig(device=device, precision=precision))

        def publish(index: int) -> tuple[int, float]:
            msg = images[index % len(images)]
            key = (index + 1) * _FRAME_PERIOD_NS
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(key, 1_000_000_000)
            sent = time.perf_counter()
            image_pub.publish(msg)
            return key, sent

        say(f"warm-up ({warmup} frames)")
        for index in range(warmup):
            key, _ = publish(index)
            waiter.wait(key, _FRAME_TIMEOUT_S)
            if index:
                estimator.estimate(rgb_frames[(index - 1) % len(rgb_frames)], rgb_frames[index % len(rgb_frames)])
        say(f"latency ({frames} frames: node, one in flight, then PoseEstimator.estimate on the same pair)")
        node_latencies, network_latencies = [], []
        for index in range(warmup, warmup + frames):
            key, sent = publish(index)
            done = waiter.wait(key, _FRAME_TIMEOUT_S)
            if done is None:
                raise RuntimeError(f"no odom for frame {index} within {_FRAME_TIMEOUT_S} s")
            node_latencies.append(done - sent)
            start = time.perf_counter()
            estimator.estimate(rgb_frames[(index - 1) % len(rgb_frames)], rgb_frames[index % len(rgb_frames)])
            network_latencies.append(time.perf_counter() - start)
        inside = node.stats.snapshot()
        info = estimator.info
        result = {
            "image": f"{width}x{height} bgr8",
            "network": f"{info.width}x{info.height} ResNet-{info.num_layers} pose",
            "device": str(estimator.device),
            "precision": estimator.precision,
            "frames": frames,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "node_latency_ms": _summary(node_latencies),
            "node_processing_ms": {"p50": inside.latency_p50_ms, "p95": inside.latency_p95_ms},
            "network_latency_ms": _summary(network_latencies),
            "node_overhead_ms_p50": float(np.median(np.asarray(node_latencies) - np.asarray(network_latencies))) * _MS,
            "poses_integrated": node.event_counts.get("integrated", 0),
        }
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help="checkpoint folder with a pose network")
    source.add_argument("--random-weights", action="store_true", help="a seeded random ResNet-18 checkpoint at 640x192")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    parser.add_argument("--width", type=int, default=KITTI_WIDTH)
    parser.add_argument("--height", type=int, default=KITTI_HEIGHT)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: comparable on a shared CPU)")
    parser.add_argument("--warmup", type=int, default=_WARMUP_FRAMES)
    parser.add_argument("--json", help="also write the results to this file")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="monodepth2_pose_bench_") as scratch:
        weights = options.weights or write_random_pose_checkpoint(Path(scratch) / "random_640x192")
        result = run_pose_node_benchmark(
            weights,
            frames=options.frames,
            width=options.width,
            height=options.height,
            device=options.device,
            precision=options.precision,
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
