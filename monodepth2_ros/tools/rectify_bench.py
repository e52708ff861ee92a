"""What rectifying a raw camera costs the depth node, end to end over real DDS, in one run.

Two depth nodes share one network: one with ``rectify: false``, one with ``rectify: auto``; both get
the same raw KITTI-sized frames (1242x375 bgr8 by default) and the same distorted CameraInfo
(plumb_bob, KITTI raw calibration). Frames alternate between the nodes, one in flight at a time, so
both see the same load (which node goes first alternates too); the latency is publishing an image
until its ``depth`` and ``points`` arrive, and the node's own part of it (image received to outputs
published). The remap itself is also timed alone, and so is building the remap tables (once per
CameraInfo).

    python -m monodepth2_ros.tools.rectify_bench --frames 40
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from monodepth2_ros.data.camera import CameraModel
from monodepth2_ros.inference.camera_input import CameraInput
from monodepth2_ros.tools.node_bench_common import (
    FRAME_ID,
    KITTI_HEIGHT,
    KITTI_WIDTH,
    MS_PER_S,
    Arrivals,
    bench_frames,
    bench_graph,
    bgr8_images,
    latency_summary_ms,
)

__all__ = ["kitti_raw_camera", "run_rectify_benchmark", "main"]

_WARMUP_FRAMES = 3
_FRAME_TIMEOUT_S = 60.0
_REMAP_REPEATS = 50
_MAP_BUILDS = 5


def kitti_raw_camera(height: int = KITTI_HEIGHT, width: int = KITTI_WIDTH) -> CameraModel:
    """A KITTI-like raw colour camera (plumb_bob, strong barrel distortion) at ``height x width``."""
    sx, sy = width / KITTI_WIDTH, height / KITTI_HEIGHT
    K = np.array([[959.8 * sx, 0.0, 696.0 * sx], [0.0, 956.9 * sy, 224.2 * sy], [0.0, 0.0, 1.0]])
    P = np.array([[721.5 * sx, 0.0, 609.6 * sx, 0.0], [0.0, 721.5 * sy, 172.9 * sy, 0.0], [0.0, 0.0, 1.0, 0.0]])
    D = np.array([-0.3691, 0.1968, 0.001353, 0.000568, -0.06770])
    return CameraModel(width=width, height=height, K=K, D=D, distortion_model="plumb_bob", P=P, frame_id=FRAME_ID)


def _camera_info_message(camera: CameraModel) -> Any:
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo(height=camera.height, width=camera.width, distortion_model=camera.distortion_model)
    msg.header.frame_id = camera.frame_id
    msg.d = camera.D.tolist()
    msg.k = camera.K.reshape(-1)
    msg.r = np.eye(3).reshape(-1)
    msg.p = camera.P.reshape(-1)
    return msg


def _remap_figures(camera: CameraModel, rgb_frames: list[np.ndarray]) -> dict[str, float]:
    builds = []
    for _ in range(_MAP_BUILDS):
        start = time.perf_counter()
        camera_input = CameraInput(camera, (camera.height, camera.width), rectify=True)
        builds.append(time.perf_counter() - start)
    remaps = []
    for index in range(_REMAP_REPEATS):
        start = time.perf_counter()
        camera_input.rectify_image(rgb_frames[index % len(rgb_frames)])
        remaps.append(time.perf_counter() - start)
    return {"map_build_ms_p50": float(np.median(builds)) * MS_PER_S, "remap_ms_p50": float(np.median(remaps)) * MS_PER_S}


def run_rectify_benchmark(
    frames: int = 40, width: int = KITTI_WIDTH, height: int = KITTI_HEIGHT, weights: str = "", device: str = "cpu",
    threads: int | None = None,
) -> dict[str, Any]:
    """Latency of the depth node with and without rectification, and of the remap alone.

    Returns:
        A JSON-ready dict: ``node_latency_ms`` per mode (p50, p95, mean, n), the per-frame
        difference of the medians, the remap and map-build times, and the set-up.
    """
    import rclpy
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    from monodepth2_ros.inference.estimators import DepthEstimator
    from monodepth2_ros.inference.weights import resolve_weights
    from monodepth2_ros.ros.depth_node import DepthNode, output_qos
    from monodepth2_ros.ros.node_common import input_qos
    from monodepth2_ros.ros.parameters import DepthNodeParameters

    camera = kitti_raw_camera(height, width)
    rgb_frames = bench_frames(height, width)
    images = bgr8_images(rgb_frames)
    info = _camera_info_message(camera)
    modes = ("false", "auto")
    with bench_graph(threads) as graph:
        estimator = DepthEstimator(resolve_weights(weights), DepthNodeParameters(device=device).inference_config())
        nodes, publishers, arrivals = {}, {}, {}
        driver = graph.add(rclpy.create_node("rectify_bench_driver", context=graph.context))
        for mode in modes:
            namespace = f"/rectify_{mode}"
            overrides = [Parameter("device", value=device), Parameter("rectify", value=mode)]
            nodes[mode] = graph.add(
                DepthNode(context=graph.context, namespace=namespace, parameter_overrides=overrides, estimator=estimator)
            )
            publishers[mode] = (
                driver.create_publisher(Image, f"{namespace}/image", input_qos("reliable")),
                driver.create_publisher(CameraInfo, f"{namespace}/camera_info", input_qos("reliable")),
            )
            arrivals[mode] = Arrivals(("depth", "points"))
            driver.create_subscription(Image, f"{namespace}/depth", arrivals[mode].callback("depth"), output_qos())
            driver.create_subscription(PointCloud2, f"{namespace}/points", arrivals[mode].callback("points"), output_qos())
        graph.start()
        for mode in modes:
            graph.wait_connected(
                lambda mode=mode: publishers[mode][0].get_subscription_count() > 0 and nodes[mode].has_camera_info,
                f"depth node (rectify {mode})",
                lambda mode=mode: publishers[mode][1].publish(info),
            )
        latencies: dict[str, list[float]] = {mode: [] for mode in modes}
        for index in range(_WARMUP_FRAMES + frames):
            for mode in modes if index % 2 == 0 else modes[::-1]:  # neither mode always runs second
                msg = images[index % len(images)]
                msg.header.stamp.sec, msg.header.stamp.nanosec = index, 0
                sent = time.perf_counter()
                publishers[mode][0].publish(msg)
                done = arrivals[mode].wait(index * 1_000_000_000, _FRAME_TIMEOUT_S)
                if done is None:
                    raise RuntimeError(f"no depth + points from the rectify={mode} node for frame {index}")
                if index >= _WARMUP_FRAMES:
                    latencies[mode].append(done - sent)
        inside = {mode: nodes[mode].stats.snapshot() for mode in modes}  # received -> published, recent frames
        rectification = nodes["auto"].camera_input.describe()
        assert nodes["auto"].camera_input.rectified and not nodes["false"].camera_input.rectified
    summary = {mode: latency_summary_ms(values) for mode, values in latencies.items()}
    plain, rectified = summary["false"]["p50"], summary["auto"]["p50"]
    remap = _remap_figures(camera, rgb_frames)
    return {
        "setup": {"width": width, "height": height, "device": device, "frames": frames, "rectification": rectification},
        "node_latency_ms": {"rectify_false": summary["false"], "rectify_auto": summary["auto"]},
        "node_processing_ms_p50": {f"rectify_{mode}": inside[mode].latency_p50_ms for mode in modes},
        "added_ms_p50": rectified - plain,
        "added_fraction_p50": (rectified - plain) / plain,
        # Frame i of both modes ran back to back: the median of the pairwise differences is less
        # sensitive to a shared machine's load changes than the difference of the medians.
        "added_ms_paired_median": float(np.median(np.subtract(latencies["auto"], latencies["false"]))) * MS_PER_S,
        **remap,
        "remap_fraction_of_node_p50": remap["remap_ms_p50"] / plain,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=40, help="frames measured per mode (after a warm-up)")
    parser.add_argument("--width", type=int, default=KITTI_WIDTH)
    parser.add_argument("--height", type=int, default=KITTI_HEIGHT)
    parser.add_argument("--weights", default="", help="checkpoint folder (default: the bundled model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    options = parser.parse_args(argv)
    result = run_rectify_benchmark(options.frames, options.width, options.height, options.weights, options.device, options.threads)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
