"""End-to-end benchmark of the depth node over real DDS, beside the bare model, in one run.

Measures, for camera-sized frames (KITTI's 1242x375 bgr8 by default):

* node latency: publishing an Image until *both* ``depth`` and ``points`` for it have arrived at a
  subscriber in the same process (one frame in flight at a time), p50/p95, the part of it spent
  inside the node (image received to outputs published) and that part per stage (decode,
  preprocess, network, upsample, colour map, cloud, serialisation, publish);
* model latency: :meth:`DepthEstimator.estimate` on the same frames and device, p50/p95;
* throughput: the output rate under a flood of input (four times the sequential rate; the worker
  drops what it cannot serve), and the highest input rate, probed downwards from the sequential
  rate, served without a drop or a growing latency (no backlog).

Publisher and node share one process (and DDS participant) there, so no frame is lost on the way.
With ``--cross-process`` the camera is :mod:`~monodepth2_ros.tools.camera_publisher` in a child
process, as a driver on a robot, publishing ``--frames`` frames at ``--rate`` with
``--publisher-reliability`` (and ``--transports``, Fast DDS's builtin transports for both
processes); it reports the frames delivered to the node, those it counted as lost in transport,
the outputs and their latency from the image stamp.
With ``--node-process`` the node runs in a process of its own (``python -m
monodepth2_ros.ros.depth_node``), as on a robot: the images and outputs then cross process
boundaries through DDS (the node subscribes reliably, so no image is lost in transport), and what
happens inside the node (its processing latency, drops, per-stage times) is read from its
``/diagnostics``. ``--transport-floor`` then replaces the node with
:mod:`~monodepth2_ros.tools.output_echo`, which answers each image at once with ready-made outputs
of the same sizes, and times that round trip the same way: what moving the messages between the
processes costs with no computation at all.

    python -m monodepth2_ros.tools.depth_node_bench --random-weights --frames 200
    python -m monodepth2_ros.tools.depth_node_bench --weights ~/models/mono_640x192 --device cuda --json bench.json
    python -m monodepth2_ros.tools.depth_node_bench --random-weights --node-process --transport-floor
    python -m monodepth2_ros.tools.depth_node_bench --random-weights --cross-process --rate 5 --frames 50 \
        --publisher-reliability best_effort --transports LARGE_DATA
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import SimpleNamespace
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from monodepth2_ros.data.stamps import stamp_to_ns
from monodepth2_ros.inference.estimators import DepthEstimator, InferenceConfig
from monodepth2_ros.ros.dds_profile import describe_dds_setting
from monodepth2_ros.tools.child_process import stop_process
from monodepth2_ros.tools.node_bench_common import (
    FASTDDS_TRANSPORTS_VARIABLE,
    FRAME_ID,
    IN_PROCESS_TRANSPORT,
    KITTI_HEIGHT,
    KITTI_WIDTH,
    MS_PER_S,
    Arrivals,
    NodeDiagnostics,
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
    finish_camera_publisher,
    start_camera_publisher,
    fastdds_transports_setting,
    use_fastdds_transports,
    weights_or_random,
    write_random_checkpoint,
)

__all__ = ["run_node_benchmark", "run_cross_process_benchmark", "write_random_checkpoint", "main"]

DEFAULT_FRAMES = 200
_WARMUP_FRAMES = 5
_FRAME_TIMEOUT_S = 30.0
_FLOOD_RATE_HZ = 200.0
_MIN_FLOOD_HZ = 2.0
_FLOOD_FACTOR = 4.0
_PROBE_S = 3.0
# Input rates tried, as fractions of 1 / median sequential latency, until one is served without drops.
_PROBE_FRACTIONS = (0.9, 0.75, 0.6, 0.45, 0.3)
# A probe has a backlog when its p95 latency exceeds the sequential p95 by this factor.
_BACKLOG_FACTOR = 2.0
_CROSS_PROCESS_RATE_HZ = 5.0
# After the publisher's last frame: how long outputs may still come, and how often to look.
_DRAIN_S = 10.0
_DRAIN_POLL_S = 0.3
_REMOTE_NAME = "bench_depth_node"
# No output for this long: a node in another process counts as idle.
_REMOTE_IDLE_S = 0.5
_REMOTE_STOP_S = 10.0
_REMOTE_START_S = 120.0
# The transport floor's first frame: its stamps (index ms) stay clear of the node's frames.
_FLOOR_FIRST_INDEX = 1_000_000


class _Driver:
    """Publishes frames and records when depth and points for each stamp arrive."""

    def __init__(self, node: Any, images: list[Any], camera_info: Any) -> None:
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        from monodepth2_ros.ros.depth_node import output_qos
        from monodepth2_ros.ros.node_common import input_qos

        self.node = node
        self.images = images
        self.camera_info = camera_info
        self.image_pub = node.create_publisher(Image, "image", input_qos("reliable"))
        self.info_pub = node.create_publisher(CameraInfo, "camera_info", input_qos("reliable"))
        self.arrivals = Arrivals(("depth", "points"))
        self.depth_size: tuple[int, int] | None = None  # (width, height) of the depth images received
        record_depth = self.arrivals.callback("depth")

        def on_depth(msg: Any) -> None:
            self.depth_size = (msg.width, msg.height)
            record_depth(msg)

        node.create_subscription(Image, "depth", on_depth, output_qos())
        node.create_subscription(PointCloud2, "points", self.arrivals.callback("points"), output_qos())
        # a viewer of depth/colored too (not waited for), so every stage of the node runs and is profiled
        node.create_subscription(Image, "depth/colored", lambda msg: None, output_qos())

    def publish(self, index: int) -> tuple[int, float]:
        """Publish frame ``index`` (stamp = index ms); returns (stamp key, publish time)."""
        msg = self.images[index % len(self.images)]
        msg.header.stamp.sec = index // 1000
        msg.header.stamp.nanosec = (index % 1000) * 1_000_000
        key = stamp_to_ns(msg.header.stamp)
        self.info_pub.publish(self.camera_info)
        sent = time.perf_counter()
        self.image_pub.publish(msg)
        return key, sent

    def done_time(self, key: int) -> float | None:
        return self.arrivals.done_time(key)

    def wait_done(self, key: int, timeout: float) -> float | None:
        return self.arrivals.wait(key, timeout)


class _RemoteNode:
    """The depth node in a child process, seen as the in-process node is, through its /diagnostics.

    Offers what :func:`_measure` reads: ``stats.snapshot()`` (latency p50/p95, drops),
    ``stage_profile.p50_ms()``, ``is_idle`` (no output for a while) and ``estimator``'s size,
    device and backend. Diagnostics come once a second, so readers wait for a fresh one.
    """

    def __init__(self, driver: Any, process: subprocess.Popen, arrivals: Any, name: str, backend: str) -> None:
        self._process = process
        self._arrivals = arrivals
        self._backend = backend
        self._diagnostics = NodeDiagnostics(driver, name)
        self.has_camera_info = False
        self.stats = SimpleNamespace(snapshot=self._snapshot)
        self.stage_profile = SimpleNamespace(p50_ms=self._stages)

    def fresh(self, timeout: float = 5.0) -> dict[str, str]:
        """Diagnostics published after now (the node's state now), or the last ones after ``timeout``."""
        return self._diagnostics.fresh(timeout)

    def _snapshot(self) -> Any:
        values = self.fresh()
        return SimpleNamespace(
            latency_p50_ms=float(values.get("latency p50 (ms)", "nan")),
            latency_p95_ms=float(values.get("latency p95 (ms)", "nan")),
            dropped=int(values.get("frames dropped (busy)", "0")),
        )

    def _stages(self) -> dict[str, float | None]:
        from monodepth2_ros.ros.stage_profile import DEPTH_STAGES

        text = self.fresh().get("stage p50 (ms)", "")
        found = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, value = item.rpartition(" ")
            found[name] = float(value)
        return {name: found.get(name) for name in DEPTH_STAGES}

    @property
    def is_idle(self) -> bool:
        return time.perf_counter() - self._arrivals.last_arrival() > _REMOTE_IDLE_S

    @property
    def estimator(self) -> Any:
        from monodepth2_ros.model.checkpoint import CheckpointInfo

        values = self._diagnostics.latest()
        width, _, height = values.get("network size", "0x0").partition("x")
        return SimpleNamespace(
            info=CheckpointInfo(height=int(height), width=int(width)),
            device=values.get("device", "?"),
            backend=SimpleNamespace(backend=self._backend, precision=values.get("precision", "?")),
        )

    def stop(self) -> None:
        """Ctrl-C the node's process (it shuts down cleanly), then make sure it is gone."""
        stop_process(self._process, _REMOTE_STOP_S)


def _start_node_process(
    weights: str | Path,
    device: str,
    precision: str,
    backend: str,
    threads: int | None,
    domain_id: int,
    output_size: str = "input",
) -> subprocess.Popen:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id))
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    command = [
        sys.executable, "-m", "monodepth2_ros.ros.depth_node", "--ros-args",
        "-r", f"__node:={_REMOTE_NAME}",
        "-p", f"weights:={weights}", "-p", f"device:={device}", "-p", f"precision:={precision}",
        "-p", f"backend:={backend}", "-p", f"output_size:={output_size}",
        # a large image lost between processes would stall the one-in-flight latency loop
        "-p", "qos_reliability:=reliable",
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _start_echo_process(size: tuple[int, int], domain_id: int) -> subprocess.Popen:
    """:mod:`~monodepth2_ros.tools.output_echo` answering with (height, width) outputs."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id))
    command = [sys.executable, "-m", "monodepth2_ros.tools.output_echo", "--height", str(size[0]), "--width", str(size[1])]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _first_answer(driver: _Driver, process: subprocess.Popen, what: str, index: int = 0) -> None:
    """Publish frame ``index`` (not used before) until ``process`` answers it with depth and points
    (it loads, then matches)."""
    deadline = time.perf_counter() + _REMOTE_START_S
    while True:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"the {what} process ended: {error[-1] if error else process.returncode}")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the {what} process gave no output within {_REMOTE_START_S:.0f} s")
        key, _ = driver.publish(index)
        if driver.wait_done(key, 1.0) is not None:
            return


def _transport_floor(
    driver: _Driver, rgb_frames: list[np.ndarray], weights: str | Path, config: InferenceConfig,
    frames: int, warmup: int, first_index: int, domain_id: int, say: Callable[[str], None],
) -> dict[str, Any]:
    """The node's round trip with the node replaced by an echo of ready-made outputs (no computation).

    The bare model runs after each answer, as in :func:`_measure`, so both round trips see the same
    machine between frames.
    """
    size = (driver.depth_size[1], driver.depth_size[0])
    say(f"transport floor: an echo process answers with {size[1]}x{size[0]} outputs")
    process = _start_echo_process(size, domain_id)
    try:
        _first_answer(driver, process, "output echo", first_index - 1)
        estimator = DepthEstimator(weights, config)
        latencies = []
        for index in range(first_index, first_index + warmup + frames):
            key, sent = driver.publish(index)
            done = driver.wait_done(key, _FRAME_TIMEOUT_S)
            if done is None:
                raise RuntimeError(f"no echo of depth + points for frame {index} within {_FRAME_TIMEOUT_S} s")
            if index >= first_index + warmup:
                latencies.append(done - sent)
            estimator.estimate(rgb_frames[index % len(rgb_frames)])
        return latency_summary_ms(latencies)
    finally:
        stop_process(process, _REMOTE_STOP_S)


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
    backend: str = "eager",
    node_process: bool = False,
    output_size: str = "input",
    transport_floor: bool = False,
) -> dict[str, Any]:
    """Benchmark the depth node end to end and the bare model on the same frames.

    Args:
        weights: checkpoint folder.
        frames: sequential frames measured for each latency (after a short warm-up).
        width, height: camera image size (bgr8).
        device, precision, backend: as the node's parameters (the bare model runs the same).
        probe_s: seconds of each throughput probe.
        threads: torch CPU threads for the run (None keeps the current setting); restored afterwards.
        warmup: frames run through the node and the model before timing.
        progress: called with a line per phase.
        node_process: run the node in a process of its own (as on a robot) instead of in this one.
        output_size: the node's ``output_size`` (input: outputs at the camera's size; network: at
            the network's, the cheaper set-up for a small CPU).
        transport_floor: with ``node_process``, also time the round trip through an echo of
            ready-made outputs of the same sizes (``transport_floor_ms``; see the module docstring).
    Returns:
        A JSON-ready dict: ``node_latency_ms`` and ``model_latency_ms`` (p50, p95, mean, n),
        ``flood_output_rate_hz``, ``sustained_rate_hz`` (highest probed input rate served with no
        drop and no backlog; 0 when none was), the probes, and the set-up.
    """
    import rclpy
    from rclpy.parameter import Parameter
    from std_msgs.msg import Header

    from monodepth2_ros.inference.pointcloud import default_intrinsics
    from monodepth2_ros.ros.conversions import camera_info_message
    from monodepth2_ros.ros.depth_node import DepthNode

    say = progress or (lambda line: None)
    rgb_frames = bench_frames(height, width)
    images = bgr8_images(rgb_frames)
    camera_info = camera_info_message(default_intrinsics(height, width), height, width, Header(frame_id=FRAME_ID))

    if transport_floor and not node_process:
        raise ValueError("the transport floor is measured between processes: it needs node_process")
    if node_process:
        return _run_remote(weights, rgb_frames, images, camera_info, frames, width, height, device, precision,
                           probe_s, threads, warmup, say, backend, output_size, transport_floor)
    with bench_graph(threads) as graph:
        overrides = [
            Parameter("weights", value=str(weights)),
            Parameter("device", value=device),
            Parameter("precision", value=precision),
            Parameter("backend", value=backend),
            Parameter("output_size", value=output_size),
        ]
        node = graph.add(DepthNode(context=graph.context, parameter_overrides=overrides, node_name="bench_depth_node"))
        driver = _Driver(graph.add(rclpy.create_node("bench_driver", context=graph.context)), images, camera_info)
        graph.start()
        graph.wait_connected(
            lambda: driver.image_pub.get_subscription_count() > 0 and node.has_camera_info,
            "depth node",
            lambda: driver.info_pub.publish(camera_info),
        )
        config = InferenceConfig(device=device, precision=precision, backend=backend)
        result = _measure(node, driver, rgb_frames, weights, frames, warmup, width, height, config, probe_s, say)
        result["output_size"] = output_size
        return result


def _run_remote(
    weights: str | Path,
    rgb_frames: list[np.ndarray],
    images: list[Any],
    camera_info: Any,
    frames: int,
    width: int,
    height: int,
    device: str,
    precision: str,
    probe_s: float,
    threads: int | None,
    warmup: int,
    say: Callable[[str], None],
    backend: str,
    output_size: str,
    transport_floor: bool = False,
) -> dict[str, Any]:
    """:func:`run_node_benchmark` with the node in a child process."""
    import rclpy

    with bench_graph(threads) as graph:
        driver = _Driver(graph.add(rclpy.create_node("bench_driver", context=graph.context)), images, camera_info)
        say("starting the depth node in its own process")
        process = _start_node_process(
            weights, device, precision, backend, threads, graph.context.get_domain_id(), output_size
        )
        node = _RemoteNode(driver.node, process, driver.arrivals, _REMOTE_NAME, backend)
        graph.start()
        try:
            _first_answer(driver, process, "depth node")  # it loads its network, then answers
            config = InferenceConfig(device=device, precision=precision, backend=backend)
            result = _measure(node, driver, rgb_frames, weights, frames, warmup, width, height, config, probe_s, say, 1)
            result["node_process"] = "separate"
            result["output_size"] = output_size
            # the publisher's Fast DDS set-up: a profiles file (a larger segment) changes the image's way in
            result["transport"] = f"node in its own process; the publisher's: {describe_dds_setting()}"
            result["node_dds"] = node.fresh().get("DDS", "?")  # the node's own, from its diagnostics
        finally:
            node.stop()
        if transport_floor:
            floor = _transport_floor(driver, rgb_frames, weights, config, frames, warmup, _FLOOR_FIRST_INDEX,
                                     graph.context.get_domain_id(), say)
            result["transport_floor_ms"] = floor
            result["transport_floor_outputs"] = "{}x{}".format(*driver.depth_size)  # the echo's depth, as received
            result["transport_floor_share_of_node_p50"] = floor["p50"] / result["node_latency_ms"]["p50"]
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
    config: InferenceConfig,
    probe_s: float,
    say: Callable[[str], None],
    first_index: int = 0,
) -> dict[str, Any]:
    """The measurements of :func:`run_node_benchmark` on a connected node and driver."""
    estimator = DepthEstimator(weights, config)
    index = first_index
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
    stages = node.stage_profile.p50_ms()  # where that time went, per stage (sequential frames)
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
             "latency_p95_ms": p95 * MS_PER_S, "no_backlog": ok}
        )
        if ok:
            sustained = rate
            break

    info = node.estimator.info
    network = f"{info.width}x{info.height} ResNet-{info.num_layers}"
    return {
        **result_setup(width, height, network, node.estimator.device, config.precision, frames),
        "backend": f"{node.estimator.backend.backend} {node.estimator.backend.precision}",
        "node_process": "same",
        "depth_output": "{}x{}".format(*driver.depth_size),
        "node_latency_ms": latency_summary_ms(node_latencies),
        "node_processing_ms": {"p50": inside.latency_p50_ms, "p95": inside.latency_p95_ms},
        "node_stage_p50_ms": stages,
        "model_latency_ms": latency_summary_ms(model_latencies),
        "flood_input_rate_hz": flood_input,
        "flood_output_rate_hz": flood_rate,
        "sustained_rate_hz": sustained,
        "probes": probes,
        "node_overhead_ms_p50": overhead_ms_p50(node_latencies, model_latencies),
        "transport": IN_PROCESS_TRANSPORT,
    }


def run_cross_process_benchmark(
    weights: str | Path,
    frames: int = DEFAULT_FRAMES,
    width: int = KITTI_WIDTH,
    height: int = KITTI_HEIGHT,
    rate_hz: float = _CROSS_PROCESS_RATE_HZ,
    publisher_reliability: str = "reliable",
    qos_reliability: str = "auto",
    transports: str | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
    backend: str = "eager",
    warmup: int = 0,
) -> dict[str, Any]:
    """The depth node fed by a camera publisher in another process: frames delivered and outputs.

    Args:
        weights, width, height, device, precision, backend, threads: as :func:`run_node_benchmark`.
        frames: frames the publisher sends (rgb8, stamped with the wall clock when sent).
        rate_hz: the publisher's rate.
        publisher_reliability: what the publisher offers (``reliable`` is the ROS default).
        qos_reliability: the node's parameter (``auto`` follows the publisher).
        transports: ``FASTDDS_BUILTIN_TRANSPORTS`` for both processes (e.g. ``LARGE_DATA``); None
            keeps the environment's.
        warmup: ignored (the command line's shared option): every frame sent is counted.
    Returns:
        A JSON-ready dict: ``sent``, ``delivered`` (images the node received), ``delivered_percent``,
        ``lost_in_transport`` (the node's count), ``outputs`` (frames with depth and points back),
        ``dropped_busy``, ``latency_from_stamp_ms``, the subscription's QoS and the set-up.
    """
    from rclpy.parameter import Parameter

    from monodepth2_ros.ros.depth_node import DepthNode

    say = progress or (lambda line: None)
    with use_fastdds_transports(transports), bench_graph(threads) as graph:
        overrides = [
            Parameter("weights", value=str(weights)),
            Parameter("device", value=device),
            Parameter("precision", value=precision),
            Parameter("backend", value=backend),
            Parameter("qos_reliability", value=qos_reliability),
        ]
        node = graph.add(DepthNode(context=graph.context, parameter_overrides=overrides, node_name="bench_depth_node"))
        listener = graph.add(_listener_node(graph.context))
        arrivals = Arrivals(("depth", "points"), clock=time.time)
        _subscribe_outputs(listener, arrivals)
        graph.start()
        transport_setting = fastdds_transports_setting()
        say(f"publisher in another process: {frames} frames {width}x{height} rgb8 at {rate_hz:g} Hz, "
            f"{publisher_reliability}; {FASTDDS_TRANSPORTS_VARIABLE}={transport_setting}")
        publisher = start_camera_publisher(graph.domain_id, width, height, rate_hz, frames, publisher_reliability)
        subscription = node.image_input.describe()
        try:
            while publisher.poll() is None:  # what the subscription was while the publisher ran
                if node.image_input.publisher_count > 0:
                    subscription = node.image_input.describe()
                time.sleep(_DRAIN_POLL_S)
            summary = finish_camera_publisher(publisher)
        finally:
            if publisher.poll() is None:  # interrupted: do not leave the child publishing
                publisher.kill()
                publisher.wait()
        _wait_settled(lambda: (node.stats.snapshot().received, len(arrivals.done())), _DRAIN_S)
        snapshot = node.stats.snapshot()
        done = arrivals.done()
        latencies = [at - key / 1e9 for key, at in done.items()]
        info = node.estimator.info
        sent = summary["phases"][0]["sent"]
        return {
            **result_setup(width, height, f"{info.width}x{info.height} ResNet-{info.num_layers}", node.estimator.device,
                           precision, frames),
            "image": f"{width}x{height} rgb8 ({summary['image_bytes']} bytes)",
            "transport": f"publisher in another process; {FASTDDS_TRANSPORTS_VARIABLE}={transport_setting} in both",
            "rate_hz": rate_hz,
            "publisher_reliability": publisher_reliability,
            "node_qos_reliability": qos_reliability,
            "subscription": subscription,
            "resubscriptions": node.image_input.resubscriptions,
            "sent": sent,
            "publisher_matched": summary["phases"][0]["matched"],
            "delivered": snapshot.received,
            "delivered_percent": 100.0 * snapshot.received / sent if sent else 0.0,
            "lost_in_transport": snapshot.lost_in_transport,
            "lost_found_by": node.stats.transport.witnesses(),
            "dropped_busy": snapshot.dropped,
            "rejected": snapshot.rejected,
            "problems": node.problem_counts,
            "published": snapshot.published,
            "outputs": len(done),
            "latency_from_stamp_ms": latency_summary_ms(latencies) if latencies else None,
        }


def _listener_node(context: Any) -> Any:
    import rclpy

    return rclpy.create_node("bench_listener", context=context)


def _subscribe_outputs(node: Any, arrivals: Arrivals) -> None:
    """Raw subscriptions: the listener shares the node's process, and deserialising 9 MB of depth and
    points per frame there would take the time the node's own callbacks need."""
    from sensor_msgs.msg import Image, PointCloud2

    from monodepth2_ros.ros.depth_node import output_qos

    node.create_subscription(Image, "depth", arrivals.raw_callback("depth"), output_qos(), raw=True)
    node.create_subscription(PointCloud2, "points", arrivals.raw_callback("points"), output_qos(), raw=True)


def _wait_settled(counts: Callable[[], Any], timeout: float) -> None:
    """Wait until ``counts()`` stops changing (the last frames processed), at most ``timeout`` s."""
    deadline = time.perf_counter() + timeout
    previous = counts()
    while time.perf_counter() < deadline:
        time.sleep(_DRAIN_POLL_S * 3)
        current = counts()
        if current == previous:
            return
        previous = current


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, "checkpoint folder", DEFAULT_FRAMES)
    parser.add_argument("--probe-seconds", type=float, default=_PROBE_S)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    cross = parser.add_argument_group("cross-process mode (the camera publisher in a child process)")
    cross.add_argument("--cross-process", action="store_true", help="publish from another process and count delivery")
    cross.add_argument("--rate", type=float, default=_CROSS_PROCESS_RATE_HZ, help="publisher rate, Hz")
    cross.add_argument("--publisher-reliability", choices=("reliable", "best_effort"), default="reliable")
    cross.add_argument("--qos-reliability", choices=("auto", "reliable", "best_effort"), default="auto",
                       help="the node's qos_reliability")
    cross.add_argument("--transports", default=None,
                       help=f"{FASTDDS_TRANSPORTS_VARIABLE} for both processes, e.g. LARGE_DATA (default: the environment's)")
    parser.add_argument("--backend", default="eager", help="the node's backend parameter (default eager)")
    parser.add_argument("--node-process", action="store_true", help="run the node in a process of its own, as on a robot")
    parser.add_argument("--output-size", choices=("input", "network"), default="input",
                        help="the node's output_size: outputs at the camera's size (default) or the network's")
    parser.add_argument("--transport-floor", action="store_true",
                        help="with --node-process: also time an echo of ready-made outputs (no computation)")
    add_run_arguments(parser, _WARMUP_FRAMES)
    options = parser.parse_args(argv)
    if options.cross_process and options.node_process:
        parser.error("--cross-process and --node-process are two different set-ups: choose one")
    if options.transport_floor and not options.node_process:
        parser.error("--transport-floor is measured between processes: add --node-process")
    with weights_or_random(options.weights, "monodepth2_bench_") as weights:
        if options.cross_process:
            result = run_cross_process_benchmark(
                weights, rate_hz=options.rate, publisher_reliability=options.publisher_reliability,
                qos_reliability=options.qos_reliability, transports=options.transports, **run_arguments(options),
            )
        else:
            result = run_node_benchmark(
                weights, probe_s=options.probe_seconds, backend=options.backend, node_process=options.node_process,
                output_size=options.output_size, transport_floor=options.transport_floor, **run_arguments(options),
            )
    print_result(result, options.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
