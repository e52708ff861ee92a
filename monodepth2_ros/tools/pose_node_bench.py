"""Latency of the pose node over real DDS beside the bare pose network, in one run.

For camera-sized frames (KITTI's 1242x375 bgr8 by default), one frame in flight at a time:

* node latency: publishing an Image until the ``odom`` for it has arrived at a subscriber in the
  same process (decode, static check, the pose network on the (previous, current) pair, body-frame
  conversion, integration, Odometry + Path + TF), and the part of it inside the node;
* network latency: :meth:`PoseEstimator.estimate` on the same pair, right after, so both see the
  same load on a shared machine.

    python -m monodepth2_ros.tools.pose_node_bench --random-weights --frames 30 --threads 1
    python -m monodepth2_ros.tools.pose_node_bench --weights ~/models/mono_640x192 --device cuda --json pose_bench.json
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monodepth2_ros.inference.estimators import InferenceConfig, PoseEstimator
from monodepth2_ros.model.constants import DEFAULT_HEIGHT, DEFAULT_WIDTH
from monodepth2_ros.tools.node_bench_common import (
    IN_PROCESS_TRANSPORT,
    KITTI_HEIGHT,
    KITTI_WIDTH,
    Arrivals,
    add_run_arguments,
    bench_frames,
    bench_graph,
    bench_parser,
    bgr8_images,
    latency_summary_ms,
    overhead_ms_p50,
    print_result,
    result_setup,
    run_arguments,
    weights_or_random,
    write_random_checkpoint,
)

__all__ = ["run_pose_node_benchmark", "write_random_pose_checkpoint", "main"]

DEFAULT_FRAMES = 30
_WARMUP_FRAMES = 3
_FRAME_TIMEOUT_S = 60.0
_FRAME_PERIOD_NS = 50_000_000  # stamps 50 ms apart: well inside max_frame_gap


def write_random_pose_checkpoint(
    folder: str | Path, height: int = DEFAULT_HEIGHT, width: int = DEFAULT_WIDTH, seed: int = 0
) -> Path:
    """A seeded random ResNet-18 checkpoint with a pose network (official format): a trained one's cost."""
    return write_random_checkpoint(folder, height, width, seed, with_pose=True)


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
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from monodepth2_ros.ros.pose_node import PoseNode

    say = progress or (lambda line: None)
    rgb_frames = bench_frames(height, width)
    images = bgr8_images(rgb_frames)

    with bench_graph(threads) as graph:
        overrides = [
            Parameter("weights", value=str(weights)),
            Parameter("device", value=device),
            Parameter("precision", value=precision),
            Parameter("camera_to_base_xyz", value=[0.0, 0.0, 1.65]),
        ]
        node = graph.add(PoseNode(context=graph.context, parameter_overrides=overrides, node_name="bench_pose_node"))
        driver = graph.add(rclpy.create_node("bench_pose_driver", context=graph.context))
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        image_pub = driver.create_publisher(Image, "image", reliable)
        arrivals = Arrivals(("odom",))
        driver.create_subscription(
            Odometry, "odom", arrivals.callback("odom"), QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        )
        graph.start()
        graph.wait_connected(
            lambda: image_pub.get_subscription_count() > 0 and node.count_subscribers("odom") > 0, "pose node"
        )
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
            arrivals.wait(key, _FRAME_TIMEOUT_S)
            if index:
                estimator.estimate(rgb_frames[(index - 1) % len(rgb_frames)], rgb_frames[index % len(rgb_frames)])
        say(f"latency ({frames} frames: node, one in flight, then PoseEstimator.estimate on the same pair)")
        node_latencies, network_latencies = [], []
        for index in range(warmup, warmup + frames):
            key, sent = publish(index)
            done = arrivals.wait(key, _FRAME_TIMEOUT_S)
            if done is None:
                raise RuntimeError(f"no odom for frame {index} within {_FRAME_TIMEOUT_S} s")
            node_latencies.append(done - sent)
            start = time.perf_counter()
            estimator.estimate(rgb_frames[(index - 1) % len(rgb_frames)], rgb_frames[index % len(rgb_frames)])
            network_latencies.append(time.perf_counter() - start)
        inside = node.stats.snapshot()
        info = estimator.info
        network = f"{info.width}x{info.height} ResNet-{info.num_layers} pose"
        return {
            **result_setup(width, height, network, estimator.device, estimator.precision, frames),
            "node_latency_ms": latency_summary_ms(node_latencies),
            "node_processing_ms": {"p50": inside.latency_p50_ms, "p95": inside.latency_p95_ms},
            "network_latency_ms": latency_summary_ms(network_latencies),
            "node_overhead_ms_p50": overhead_ms_p50(node_latencies, network_latencies),
            "poses_integrated": node.event_counts.get("integrated", 0),
            "transport": IN_PROCESS_TRANSPORT,
        }


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, "checkpoint folder with a pose network", DEFAULT_FRAMES)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: comparable on a shared CPU)")
    add_run_arguments(parser, _WARMUP_FRAMES)
    options = parser.parse_args(argv)
    with weights_or_random(options.weights, "monodepth2_pose_bench_", with_pose=True) as weights:
        result = run_pose_node_benchmark(weights, **run_arguments(options))
    print_result(result, options.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
