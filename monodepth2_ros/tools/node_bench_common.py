"""What the node benchmarks (:mod:`~monodepth2_ros.tools.depth_node_bench`, :mod:`~monodepth2_ros.tools.pose_node_bench`)
share: the test frames and their Image messages, a random checkpoint, a private DDS graph, output
arrival times, latency summaries, the camera publisher in another process and the command line.

Transport: in the in-process modes the benchmark's publisher and the node share one DDS participant,
so frames are handed over inside the process (no transport, every frame arrives). The cross-process
mode runs :mod:`~monodepth2_ros.tools.camera_publisher` as a child process, as a camera driver on a
robot, with the reliability and Fast DDS transports asked for (``FASTDDS_BUILTIN_TRANSPORTS`` is set
for both the child and this process, before its participant is made), and counts the frames delivered.

Like the benchmarks themselves, this module imports rclpy only inside the functions that start ROS.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import random
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monodepth2_ros.data.image_codec import rgb_to_image_fields
from monodepth2_ros.model.checkpoint import CheckpointInfo, save_checkpoint
from monodepth2_ros.model.constants import DEFAULT_HEIGHT, DEFAULT_WIDTH
from monodepth2_ros.ros.dds_profile import TRANSPORTS_VARIABLE
from monodepth2_ros.model.networks import DepthNet, PoseNet

__all__ = [
    "KITTI_WIDTH",
    "KITTI_HEIGHT",
    "FRAME_ID",
    "MS_PER_S",
    "write_random_checkpoint",
    "bench_frames",
    "bgr8_images",
    "latency_summary_ms",
    "overhead_ms_p50",
    "result_setup",
    "BenchGraph",
    "bench_graph",
    "Arrivals",
    "NodeDiagnostics",
    "cdr_header_stamp_ns",
    "IN_PROCESS_TRANSPORT",
    "FASTDDS_TRANSPORTS_VARIABLE",
    "fastdds_transports_setting",
    "use_fastdds_transports",
    "start_camera_publisher",
    "finish_camera_publisher",
    "bench_parser",
    "add_run_arguments",
    "run_arguments",
    "weights_or_random",
    "say_on_stderr",
    "print_result",
]

KITTI_WIDTH = 1242
KITTI_HEIGHT = 375
FRAME_ID = "camera_optical"
MS_PER_S = 1000.0
_DISTINCT_FRAMES = 8
_MATCH_TIMEOUT_S = 10.0
_MATCH_POLL_S = 0.05
_SPINNER_JOIN_S = 5.0
# A DDS domain of the benchmark's own, so that its topics never meet a running robot's.
_DOMAIN_RANGE = (100, 200)
_RANDOM_CHECKPOINT = "random_640x192"
_PUBLISHER_EXIT_S = 120.0
IN_PROCESS_TRANSPORT = "in-process (publisher and node share one DDS participant: no transport)"
# Fast DDS's builtin transports (DEFAULT: shared memory + UDP; LARGE_DATA: shared memory + TCP, for
# large samples); read when a participant is made, so it must be set in each process before rclpy.init.
FASTDDS_TRANSPORTS_VARIABLE = TRANSPORTS_VARIABLE


def write_random_checkpoint(
    folder: str | Path, height: int = DEFAULT_HEIGHT, width: int = DEFAULT_WIDTH, seed: int = 0, with_pose: bool = False
) -> Path:
    """A seeded random ResNet-18 depth checkpoint (official format), with a pose network when
    ``with_pose``: the same cost as a trained one."""
    torch.manual_seed(seed)
    return save_checkpoint(
        folder, DepthNet(18), PoseNet(18) if with_pose else None, CheckpointInfo(height=height, width=width)
    )


def bench_frames(height: int, width: int, count: int = _DISTINCT_FRAMES) -> list[np.ndarray]:
    """Smooth textured (H, W, 3) uint8 RGB frames, all different (a few distinct ones, cycled)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for index in range(count):
        phase = index * 0.7
        channels = [127 + 100 * np.sin(u / (9 + 5 * c) + phase) * np.cos(v / (7 + 3 * c) - phase) for c in range(3)]
        frames.append(np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8))
    return frames


def bgr8_images(rgb_frames: list[np.ndarray]) -> list[Any]:
    """``sensor_msgs/Image`` (bgr8, frame ``camera_optical``, stamp 0) of each frame, built once."""
    from sensor_msgs.msg import Image

    images = []
    for rgb in rgb_frames:
        height, width = rgb.shape[:2]
        data, step = rgb_to_image_fields(rgb, "bgr8")
        msg = Image(height=height, width=width, encoding="bgr8", step=step, is_bigendian=False)
        msg.data = array.array("B", data)
        msg.header.frame_id = FRAME_ID
        images.append(msg)
    return images


def latency_summary_ms(seconds: list[float]) -> dict[str, float]:
    """p50, p95 and mean in milliseconds, and the number of samples, of latencies in seconds."""
    values = np.asarray(seconds, dtype=np.float64) * MS_PER_S
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "mean": float(values.mean()),
        "n": int(values.size),
    }


def overhead_ms_p50(node_seconds: list[float], model_seconds: list[float]) -> float:
    """Median over frames of (node - bare network) latency on the same frame under the same load, ms."""
    return float(np.median(np.asarray(node_seconds) - np.asarray(model_seconds))) * MS_PER_S


def result_setup(width: int, height: int, network: str, device: Any, precision: str, frames: int) -> dict[str, Any]:
    """The first entries of a benchmark result: what ran, where, on how many threads."""
    return {
        "image": f"{width}x{height} bgr8",
        "network": network,
        "device": str(device),
        "precision": precision,
        "frames": frames,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }


class BenchGraph:
    """The nodes of one benchmark in a context of their own, spun by one executor thread."""

    def __init__(self, context: Any, executor: Any, domain_id: int | None = None) -> None:
        self.context = context
        self.executor = executor
        self.domain_id = domain_id
        self.nodes: list[Any] = []
        self.spinner: threading.Thread | None = None

    def add(self, node: Any) -> Any:
        """Keep ``node`` (destroyed at the end); it is spun from :meth:`start` on."""
        self.nodes.append(node)
        return node

    def start(self) -> None:
        """Spin every added node in a daemon thread."""
        for node in self.nodes:
            self.executor.add_node(node)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()

    def wait_connected(self, connected: Callable[[], bool], what: str, poke: Callable[[], None] = lambda: None) -> None:
        """Wait until ``connected()``, calling ``poke`` between tries; RuntimeError after a timeout."""
        deadline = time.perf_counter() + _MATCH_TIMEOUT_S
        while not connected():
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the benchmark's publisher and the {what} did not connect")
            poke()
            time.sleep(_MATCH_POLL_S)


@contextmanager
def bench_graph(threads: int | None) -> Iterator[BenchGraph]:
    """A fresh rclpy context in a random domain, with ``threads`` torch CPU threads (None: unchanged).

    On exit the executor stops, the nodes are destroyed, the context shut down and the thread
    count restored, also after an error.
    """
    import rclpy
    from rclpy.context import Context

    from monodepth2_ros.ros.node_common import callback_executor

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    context = Context()
    domain_id = random.randint(*_DOMAIN_RANGE)
    rclpy.init(context=context, domain_id=domain_id)
    graph = BenchGraph(context, callback_executor(context), domain_id)
    try:
        yield graph
    finally:
        graph.executor.shutdown()
        for node in graph.nodes:
            node.destroy_node()
        if context.ok():
            rclpy.shutdown(context=context)
        if graph.spinner is not None:
            graph.spinner.join(timeout=_SPINNER_JOIN_S)
        torch.set_num_threads(previous_threads)


def cdr_header_stamp_ns(data: bytes) -> int:
    """The header stamp (ns) of a serialised stamped message: after the 4-byte CDR encapsulation
    header come ``header.stamp.sec`` (int32) and ``nanosec`` (uint32), in the byte order it names."""
    order = "<" if data[1] & 1 else ">"  # CDR_LE / PL_CDR_LE have the low bit set
    sec, nanosec = struct.unpack_from(f"{order}iI", data, 4)
    return sec * 1_000_000_000 + nanosec


class NodeDiagnostics:
    """The latest ``/diagnostics`` values of one node, e.g. one in another process.

    Args:
        subscriber: the node that subscribes ``/diagnostics`` (its executor runs the callback).
        node_name: the node whose status (``"<node_name>: ..."``) is kept.
    """

    def __init__(self, subscriber: Any, node_name: str) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        from monodepth2_ros.ros.node_common import input_qos

        self._prefix = f"{node_name}:"
        self._latest: tuple[dict[str, str], float] = ({}, 0.0)  # values, perf_counter when received
        subscriber.create_subscription(DiagnosticArray, "/diagnostics", self._on_array, input_qos("reliable"))

    def _on_array(self, msg: Any) -> None:
        for status in msg.status:
            if status.name.startswith(self._prefix):
                self._latest = ({kv.key: kv.value for kv in status.values}, time.perf_counter())

    def latest(self) -> dict[str, str]:
        """The last values received (empty before the first)."""
        return dict(self._latest[0])

    def fresh(self, timeout: float = 5.0) -> dict[str, str]:
        """Values published after now (the node's state now); the last ones after ``timeout``.
        Diagnostics come once a second."""
        asked = time.perf_counter()
        deadline = asked + timeout
        while self._latest[1] <= asked and time.perf_counter() < deadline:
            time.sleep(0.01)
        return self.latest()


class Arrivals:
    """When the outputs for each stamp arrived (``time.perf_counter``), for subscription callbacks.

    A stamp is done once a message of every one of ``topics`` carrying it has arrived; its time is
    that of the last of them. ``clock``: ``time.time`` compares arrivals with wall-clock stamps
    set in another process on this machine.
    """

    def __init__(self, topics: tuple[str, ...], clock: Callable[[], float] = time.perf_counter) -> None:
        from monodepth2_ros.ros.pose_messages import stamp_to_ns

        self._stamp_to_ns = stamp_to_ns
        self._clock = clock
        self._topics = topics
        self._condition = threading.Condition()
        self._arrivals: dict[int, dict[str, float]] = {}
        self._last = 0.0

    def callback(self, topic: str) -> Callable[[Any], None]:
        """The subscription callback of ``topic``."""
        return lambda msg: self._arrived(msg, topic)

    def raw_callback(self, topic: str) -> Callable[[bytes], None]:
        """The callback of a ``raw=True`` subscription of ``topic``: the stamp is read off the CDR
        bytes (every stamped message starts with its header), so nothing is deserialised."""
        return lambda data: self._record(cdr_header_stamp_ns(data), topic)

    def _arrived(self, msg: Any, topic: str) -> None:
        self._record(self._stamp_to_ns(msg.header.stamp), topic)

    def _record(self, key: int, topic: str) -> None:
        now = self._clock()
        with self._condition:
            self._arrivals.setdefault(key, {})[topic] = now
            self._last = now
            self._condition.notify_all()

    def _done(self, key: int) -> float | None:
        got = self._arrivals.get(key, {})
        return max(got.values()) if len(got) == len(self._topics) else None

    def done(self) -> dict[int, float]:
        """Every stamp (ns) done so far, with its time."""
        with self._condition:
            return {key: got for key in list(self._arrivals) if (got := self._done(key)) is not None}

    def last_arrival(self) -> float:
        """When the last output of any stamp arrived (``time.perf_counter``; 0 before any)."""
        with self._condition:
            return self._last

    def done_time(self, key: int) -> float | None:
        """When the stamp ``key`` (ns) was done, or None."""
        with self._condition:
            return self._done(key)

    def wait(self, key: int, timeout: float) -> float | None:
        """Wait up to ``timeout`` seconds for the stamp ``key`` (ns) to be done; its time, or None."""
        deadline = time.perf_counter() + timeout
        with self._condition:
            while True:
                done = self._done(key)
                if done is not None:
                    return done
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)


def fastdds_transports_setting() -> str:
    """This process's ``FASTDDS_BUILTIN_TRANSPORTS``, as the benchmarks report it."""
    return os.environ.get(FASTDDS_TRANSPORTS_VARIABLE, "DEFAULT (unset)")


@contextmanager
def use_fastdds_transports(transports: str | None) -> Iterator[None]:
    """Set ``FASTDDS_BUILTIN_TRANSPORTS`` in this process (None: leave it), restored on exit."""
    previous = os.environ.get(FASTDDS_TRANSPORTS_VARIABLE)
    if transports is not None:
        os.environ[FASTDDS_TRANSPORTS_VARIABLE] = transports
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(FASTDDS_TRANSPORTS_VARIABLE, None)
        else:
            os.environ[FASTDDS_TRANSPORTS_VARIABLE] = previous


def start_camera_publisher(
    domain_id: int, width: int, height: int, rate_hz: float, frames: int, reliability: str, settle_s: float = 1.0
) -> Any:
    """:mod:`~monodepth2_ros.tools.camera_publisher` in a child process on ``domain_id`` (the
    environment's ``FASTDDS_BUILTIN_TRANSPORTS`` is inherited); wait for it with :func:`finish_camera_publisher`."""
    import subprocess

    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id))
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    command = [
        sys.executable, "-m", "monodepth2_ros.tools.camera_publisher", "--width", str(width), "--height", str(height),
        "--rate", str(rate_hz), "--frames", str(frames), "--reliability", reliability, "--settle", str(settle_s),
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_camera_publisher(process: Any) -> dict[str, Any]:
    """The publisher's JSON summary once it has exited; RuntimeError when it failed."""
    stdout, stderr = process.communicate(timeout=_PUBLISHER_EXIT_S)
    if process.returncode != 0:
        raise RuntimeError(f"the camera publisher failed ({process.returncode}): {stderr.strip()[-2000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def bench_parser(description: str, weights_help: str, frames: int) -> argparse.ArgumentParser:
    """The arguments both benchmarks take first: the checkpoint, frames, image size, device, precision."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help=weights_help)
    source.add_argument("--random-weights", action="store_true", help="a seeded random ResNet-18 checkpoint at 640x192")
    parser.add_argument("--frames", type=int, default=frames)
    parser.add_argument("--width", type=int, default=KITTI_WIDTH)
    parser.add_argument("--height", type=int, default=KITTI_HEIGHT)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    return parser


def add_run_arguments(parser: argparse.ArgumentParser, warmup: int) -> None:
    """The arguments both benchmarks take last: warm-up frames and the JSON file."""
    parser.add_argument("--warmup", type=int, default=warmup)
    parser.add_argument("--json", help="also write the results to this file")


def run_arguments(options: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of both benchmark functions that come from the shared command-line options."""
    return {
        "frames": options.frames,
        "width": options.width,
        "height": options.height,
        "device": options.device,
        "precision": options.precision,
        "threads": options.threads,
        "warmup": options.warmup,
        "progress": say_on_stderr,
    }


@contextmanager
def weights_or_random(weights: str | None, prefix: str, with_pose: bool = False) -> Iterator[str | Path]:
    """``weights``, or a random checkpoint (:func:`write_random_checkpoint`) in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        yield weights or write_random_checkpoint(Path(scratch) / _RANDOM_CHECKPOINT, with_pose=with_pose)


def say_on_stderr(line: str) -> None:
    """Progress lines of the command line, kept off stdout (which carries the JSON)."""
    print(line, file=sys.stderr, flush=True)


def print_result(result: dict[str, Any], json_path: str | None) -> None:
    """Print the result as JSON, and write it to ``json_path`` too when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if json_path:
        Path(json_path).write_text(text + "\n")
