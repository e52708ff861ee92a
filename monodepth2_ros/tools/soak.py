"""Soak test: the depth node and the pose node under a steady camera stream for minutes.

Four processes, as on a robot: a camera publisher (640x480 bgr8 at 30 Hz with camera_info, by
default), ``depth_node``, ``pose_node``, and this one, which subscribes every output and every
``sample_period_s`` records each node's resident memory, open file descriptors and threads (from
``/proc``), the output rates, the end-to-end latency (output arrival minus the image stamp, one
clock), and the frames the nodes dropped (their diagnostics). It writes ``soak.json`` and
``soak.png`` and says whether the run met the targets:

* resident memory after warm-up grows by at most ``max_rss_growth`` (5 %);
* no more threads or file descriptors at the end than after warm-up;
* latency p95 of the last comparison window within ``max_latency_growth`` (20 %) of the first;
* no node exits.

``python -m monodepth2_ros.tools.soak --minutes 30 --out soak_out`` (also ``monodepth2 bench --soak 30``).

By default every process of the soak runs with ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` (a no-op on
other middlewares); ``--dds defaults`` leaves Fast DDS's defaults to the camera and this process, and
the depth node then takes its own profile (:mod:`~monodepth2_ros.ros.dds_profile`), as on a robot
whose driver nobody configured.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monodepth2_ros.ros.dds_profile import TRANSPORTS_VARIABLE
from monodepth2_ros.tools.child_process import stop_process
from monodepth2_ros.tools.node_bench_common import FRAME_ID, bench_frames, write_random_checkpoint

__all__ = ["SoakSettings", "run_soak", "process_sample", "summarise", "main"]

NAMESPACE = "/soak"
SENT_TOPIC = "soak_sent"
LARGE_DATA_ENV = {TRANSPORTS_VARIABLE: "LARGE_DATA"}
DDS_CHOICES = ("large_data", "defaults")
DEPTH_OUTPUTS = ("depth", "depth/colored", "points", "depth/camera_info")
POSE_OUTPUTS = ("odom", "path")
NODES = ("depth_node", "pose_node")
_STOP_TIMEOUT_S = 10.0
_PAGE_KB = 1024.0


@dataclass(frozen=True)
class SoakSettings:
    """What one soak runs.

    Attributes:
        minutes: length of the measured run (after the nodes are up).
        width, height, rate_hz: the camera stream.
        sample_period_s: how often memory, descriptors, threads, rates and latency are sampled.
        warmup_s: samples before this are not compared (allocator and DDS pools fill up).
        compare_s: length of the first and last windows whose latency p95 are compared
            (None: 5 minutes, or a third of the run after warm-up when shorter).
        weights: checkpoint folder with the pose network; None: a seeded random one at 320x96.
        threads: torch threads per node.
        domain_id: DDS domain of every process (None: ROS_DOMAIN_ID, else 0).
        max_rss_growth, max_latency_growth: the targets, as fractions.
        dds: ``large_data`` (every process on Fast DDS's LARGE_DATA transports) or ``defaults``
            (nothing set: the depth node takes its own profile).
    """

    minutes: float = 30.0
    width: int = 640
    height: int = 480
    rate_hz: float = 30.0
    sample_period_s: float = 10.0
    warmup_s: float = 60.0
    compare_s: float | None = None
    weights: str | None = None
    threads: int = 1
    domain_id: int | None = None
    max_rss_growth: float = 0.05
    max_latency_growth: float = 0.20
    dds: str = "large_data"


@dataclass
class _Window:
    """What arrived since the last sample."""

    counts: dict[str, int] = field(default_factory=dict)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)


def process_sample(pid: int) -> dict[str, float] | None:
    """Resident memory (MiB), threads and open descriptors of a live process; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kb = float(values["VmRSS"].split()[0])
    return {"rss_mib": rss_kb / _PAGE_KB, "threads": int(values["Threads"]), "fds": fds}


def _dds_env(settings: SoakSettings) -> dict[str, str]:
    if settings.dds not in DDS_CHOICES:
        raise ValueError(f"dds must be one of {', '.join(DDS_CHOICES)}, got {settings.dds!r}")
    return LARGE_DATA_ENV if settings.dds == "large_data" else {}


def _child_env(settings: SoakSettings, domain_id: int) -> dict[str, str]:
    return {
        **os.environ,
        **_dds_env(settings),
        "ROS_DOMAIN_ID": str(domain_id),
        "OMP_NUM_THREADS": str(settings.threads),
        "MKL_NUM_THREADS": str(settings.threads),
    }


def _node_command(node: str, weights: str) -> list[str]:
    return [
        sys.executable, "-m", f"monodepth2_ros.ros.{node}", "--ros-args",
        "-r", f"__ns:={NAMESPACE}", "-r", f"/diagnostics:={NAMESPACE}/diagnostics",
        "-p", f"weights:={weights}", "-p", "device:=cpu",
    ]  # fmt: skip


def _publisher_command(settings: SoakSettings) -> list[str]:
    return [
        sys.executable, "-m", "monodepth2_ros.tools.soak", "--publish",
        "--width", str(settings.width), "--height", str(settings.height), "--rate", str(settings.rate_hz),
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the camera publisher (its own process)


def run_publisher(width: int, height: int, rate_hz: float) -> None:
    """Publish bgr8 images with camera_info at ``rate_hz`` (wall-clock stamps) until SIGINT/SIGTERM."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import UInt64

    from monodepth2_ros.data.image_codec import rgb_to_image_fields

    rclpy.init()
    node = rclpy.create_node("soak_camera", namespace=NAMESPACE)
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = node.create_publisher(Image, "image", qos)
    info_pub = node.create_publisher(CameraInfo, "camera_info", qos)
    sent_pub = node.create_publisher(UInt64, SENT_TOPIC, 10)
    images = []
    for rgb in bench_frames(height, width):
        data, step = rgb_to_image_fields(rgb, "bgr8")
        msg = Image(height=height, width=width, encoding="bgr8", step=step, is_bigendian=False)
        msg.data = array.array("B", data)
        msg.header.frame_id = FRAME_ID
        images.append(msg)
    focal = 0.9 * width
    info = CameraInfo(height=height, width=width, distortion_model="plumb_bob")
    info.header.frame_id = FRAME_ID
    info.d = [0.0] * 5
    info.k = [focal, 0.0, width / 2, 0.0, focal, height / 2, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [focal, 0.0, width / 2, 0.0, 0.0, focal, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]

    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    period = 1.0 / rate_hz
    sent = 0
    next_time = time.monotonic()
    try:
        while not stopping.is_set():
            stamp = time.time_ns()
            msg = images[sent % len(images)]
            for message in (msg, info):
                message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp, 10**9)
            info_pub.publish(info)
            image_pub.publish(msg)
            sent += 1
            sent_pub.publish(UInt64(data=sent))
            next_time += period
            delay = next_time - time.monotonic()
            if delay > 0:
                stopping.wait(delay)
            else:  # behind (a loaded machine): do not burst to catch up
                next_time = time.monotonic()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


# ---------------------------------------------------------------------------------------------
# the monitor (this process)


class _Monitor:
    """Subscribes every output, the publisher's count and the nodes' diagnostics."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry, Path as PathMsg
        from rclpy.context import Context
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2
        from std_msgs.msg import UInt64

        from monodepth2_ros.ros.node_common import callback_executor

        self._lock = threading.Lock()
        self._window = _Window()
        self.sent = 0
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("soak_monitor", namespace=NAMESPACE, context=self.context)
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        types = {
            "depth": Image,
            "depth/colored": Image,
            "points": PointCloud2,
            "depth/camera_info": CameraInfo,
            "odom": Odometry,
            "path": PathMsg,
        }
        for topic, msg_type in types.items():
            self.node.create_subscription(msg_type, topic, self._arrival(topic), qos)
        self.node.create_subscription(UInt64, SENT_TOPIC, self._on_sent, 10)
        self.node.create_subscription(DiagnosticArray, "diagnostics", self._on_diagnostics, 10)
        self.executor = callback_executor(self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _arrival(self, topic: str):
        def callback(msg: Any) -> None:
            now = time.time_ns()
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            with self._lock:
                self._window.counts[topic] = self._window.counts.get(topic, 0) + 1
                self._window.latencies_ms.setdefault(topic, []).append((now - stamp) / 1e6)

        return callback

    def _on_sent(self, msg: Any) -> None:
        with self._lock:
            self.sent = max(self.sent, int(msg.data))

    def _on_diagnostics(self, msg: Any) -> None:
        with self._lock:
            for status in msg.status:
                node = status.name.split(":", 1)[0]
                self.diagnostics[node] = {value.key: value.value for value in status.values}

    def take(self) -> tuple[_Window, int, dict[str, dict[str, str]]]:
        """The window since the last call, the frames sent so far, the latest diagnostics per node."""
        with self._lock:
            window, self._window = self._window, _Window()
            return window, self.sent, {name: dict(values) for name, values in self.diagnostics.items()}

    def outputs_seen(self) -> set[str]:
        with self._lock:
            return set(self._window.counts)

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5.0)


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _diagnostic_int(values: dict[str, str], key: str) -> int | None:
    try:
        return int(values[key])
    except (KeyError, ValueError):
        return None


def _sample(
    elapsed: float, period: float, processes: dict[str, subprocess.Popen], monitor: _Monitor, previous_sent: int
) -> tuple[dict[str, Any], int]:
    window, sent, diagnostics = monitor.take()
    sample: dict[str, Any] = {"t_s": round(elapsed, 2), "sent": sent, "input_rate_hz": (sent - previous_sent) / period}
    for name, process in processes.items():
        stats = process_sample(process.pid) if process.poll() is None else None
        diag = diagnostics.get(name, {})
        sample[name] = {
            "alive": stats is not None,
            **(stats or {}),
            "received": _diagnostic_int(diag, "images received"),
            "published": _diagnostic_int(diag, "frames published"),
            "dropped": _diagnostic_int(diag, "frames dropped (busy)"),
            "rejected": _diagnostic_int(diag, "frames rejected (bad input)"),
        }
    sample["outputs"] = {
        topic: {
            "rate_hz": window.counts.get(topic, 0) / period,
            "latency_p50_ms": _percentile(window.latencies_ms.get(topic, []), 50),
            "latency_p95_ms": _percentile(window.latencies_ms.get(topic, []), 95),
        }
        for topic in (*DEPTH_OUTPUTS, *POSE_OUTPUTS)
    }
    sample["_latencies_ms"] = {topic: window.latencies_ms.get(topic, []) for topic in ("depth", "odom")}
    return sample, sent


def _growth(first: float, last: float) -> float:
    return (last - first) / first if first else float("inf")


def summarise(samples: list[dict[str, Any]], settings: SoakSettings) -> dict[str, Any]:
    """Growth of memory, threads and descriptors after warm-up, latency drift, crashes; and the verdict."""
    steady = [s for s in samples if s["t_s"] >= settings.warmup_s] or samples[-1:]
    duration = samples[-1]["t_s"] if samples else 0.0
    compare_s = settings.compare_s
    if compare_s is None:
        compare_s = min(300.0, max(settings.sample_period_s, (duration - settings.warmup_s) / 3))
    start = steady[0]["t_s"] if steady else 0.0
    early = [s for s in steady if s["t_s"] <= start + compare_s]
    late = [s for s in steady if s["t_s"] > duration - compare_s]
    summary: dict[str, Any] = {"duration_s": duration, "warmup_s": settings.warmup_s, "compare_window_s": compare_s, "nodes": {}}
    passed = True
    for name in NODES:
        alive = all(s[name]["alive"] for s in samples)
        node_steady = [s[name] for s in steady if s[name]["alive"]]
        entry: dict[str, Any] = {"crashed": not alive}
        if node_steady:
            first, last = node_steady[0], node_steady[-1]
            entry.update(
                rss_mib_after_warmup=round(first["rss_mib"], 1),
                rss_mib_end=round(last["rss_mib"], 1),
                rss_mib_max=round(max(s["rss_mib"] for s in node_steady), 1),
                rss_growth=round(_growth(first["rss_mib"], last["rss_mib"]), 4),
                threads_after_warmup=first["threads"],
                threads_end=last["threads"],
                threads_max=max(s["threads"] for s in node_steady),
                fds_after_warmup=first["fds"],
                fds_end=last["fds"],
                fds_max=max(s["fds"] for s in node_steady),
                dropped=last.get("dropped"),
                received=last.get("received"),
                published=last.get("published"),
            )
            entry["rss_ok"] = entry["rss_growth"] <= settings.max_rss_growth
            entry["threads_ok"] = last["threads"] <= first["threads"]
            entry["fds_ok"] = last["fds"] <= first["fds"]
        else:
            entry.update(rss_ok=False, threads_ok=False, fds_ok=False)
        topic = "depth" if name == "depth_node" else "odom"
        early_ms = [v for s in early for v in s["_latencies_ms"][topic]]
        late_ms = [v for s in late for v in s["_latencies_ms"][topic]]
        entry["latency_p95_first_ms"] = _percentile(early_ms, 95)
        entry["latency_p95_last_ms"] = _percentile(late_ms, 95)
        entry["latency_p50_all_ms"] = _percentile([v for s in steady for v in s["_latencies_ms"][topic]], 50)
        if entry["latency_p95_first_ms"] and entry["latency_p95_last_ms"] is not None:
            entry["latency_growth"] = round(_growth(entry["latency_p95_first_ms"], entry["latency_p95_last_ms"]), 4)
            entry["latency_ok"] = entry["latency_growth"] <= settings.max_latency_growth
        else:
            entry["latency_growth"], entry["latency_ok"] = None, False
        entry["outputs_served"] = {
            t: sum(s["outputs"][t]["rate_hz"] for s in steady) * settings.sample_period_s
            for t in (DEPTH_OUTPUTS if name == "depth_node" else POSE_OUTPUTS)
        }
        entry["ok"] = bool(
            not entry["crashed"] and entry["rss_ok"] and entry["threads_ok"] and entry["fds_ok"] and entry["latency_ok"]
        )
        passed = passed and entry["ok"]
        summary["nodes"][name] = entry
    summary["passed"] = passed
    return summary


def _plot(samples: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_s"] / 60 for s in samples]
    figure, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for name, style in zip(NODES, ("-", "--")):
        alive = [s[name] if s[name]["alive"] else {} for s in samples]
        axes[0, 0].plot(t, [a.get("rss_mib", np.nan) for a in alive], style, label=name)
        axes[0, 1].plot(t, [a.get("threads", np.nan) for a in alive], style, label=f"{name} threads")
        axes[0, 1].plot(t, [a.get("fds", np.nan) for a in alive], style, label=f"{name} fds")
    for topic in ("depth", "points", "odom"):
        axes[1, 0].plot(t, [s["outputs"][topic]["rate_hz"] for s in samples], label=topic)
        if topic != "points":
            p95 = [s["outputs"][topic]["latency_p95_ms"] for s in samples]
            axes[1, 1].plot(t, [np.nan if v is None else v for v in p95], label=f"{topic} p95")
    axes[1, 0].plot(t, [s["input_rate_hz"] for s in samples], ":", label="camera")
    for axis, title in zip(axes.flat, ("resident memory (MiB)", "threads, file descriptors", "rate (Hz)", "latency (ms)")):
        axis.set_title(title)
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    for axis in axes[1]:
        axis.set_xlabel("minutes")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run_soak(settings: SoakSettings, out: str | Path, progress=lambda line: None) -> dict[str, Any]:
    """Run the soak; write ``out/soak.json`` and ``out/soak.png``; return the JSON content."""
    import tempfile

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    domain_id = settings.domain_id if settings.domain_id is not None else int(os.environ.get("ROS_DOMAIN_ID", "0"))
    saved_env = {name: os.environ.get(name) for name in LARGE_DATA_ENV}
    os.environ.update(_dds_env(settings))  # this process's participant too, before rclpy starts it
    env = _child_env(settings, domain_id)
    processes: dict[str, subprocess.Popen] = {}
    logs = {name: (out / f"{name}.log").open("w") for name in (*NODES, "camera")}
    monitor = None
    camera = None
    samples: list[dict[str, Any]] = []
    exit_codes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="soak_weights_") as scratch:
        weights = settings.weights or str(write_random_checkpoint(Path(scratch) / "random", 96, 320, with_pose=True))
        try:
            monitor = _Monitor(domain_id)
            for name in NODES:
                processes[name] = subprocess.Popen(
                    _node_command(name, weights), env=env, stdout=logs[name], stderr=subprocess.STDOUT
                )
            camera = subprocess.Popen(_publisher_command(settings), env=env, stdout=logs["camera"], stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 120.0
            while not {"depth", "odom"} <= monitor.outputs_seen():
                if any(p.poll() is not None for p in (*processes.values(), camera)):
                    raise RuntimeError(f"a soak process exited at start-up; see the logs in {out}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no depth and odom within 120 s of the start; see the logs in {out}")
                time.sleep(0.2)
            progress("outputs flowing; measuring")
            monitor.take()
            start = time.monotonic()
            sent = monitor.sent
            end = start + settings.minutes * 60.0
            next_sample = start + settings.sample_period_s
            while next_sample <= end + 1e-6:
                time.sleep(max(0.0, next_sample - time.monotonic()))
                sample, sent = _sample(next_sample - start, settings.sample_period_s, processes, monitor, sent)
                samples.append(sample)
                depth = sample["depth_node"]
                progress(
                    f"{sample['t_s']:7.0f} s  depth_node {depth.get('rss_mib', 0):.0f} MiB {depth.get('threads')} thr "
                    f"{depth.get('fds')} fds  depth {sample['outputs']['depth']['rate_hz']:.1f} Hz "
                    f"odom {sample['outputs']['odom']['rate_hz']:.1f} Hz"
                )
                next_sample += settings.sample_period_s
        finally:
            if camera is not None:
                exit_codes["camera"] = stop_process(camera, _STOP_TIMEOUT_S)
            for name, process in processes.items():
                exit_codes[name] = stop_process(process, _STOP_TIMEOUT_S)
            if monitor is not None:
                monitor.close()
            for handle in logs.values():
                handle.close()
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    summary = summarise(samples, settings)
    summary["exit_codes"] = exit_codes
    for sample in samples:
        sample.pop("_latencies_ms")
    result = {"settings": asdict(settings), "summary": summary, "samples": samples}
    (out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(samples, out / "soak.png")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--out", default="soak_output", help="folder of soak.json, soak.png and the node logs")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate (Hz)")
    parser.add_argument("--sample-period", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the comparison starts")
    parser.add_argument("--weights", default=None, help="checkpoint with the pose network (default: random 320x96)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per node")
    parser.add_argument("--dds", choices=DDS_CHOICES, default="large_data",
                        help="large_data: FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA everywhere; defaults: nothing set "
                             "(the depth node takes its own profile)")
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)  # the camera process
    options = parser.parse_args(argv)
    if options.publish:
        run_publisher(options.width, options.height, options.rate)
        return 0
    settings = SoakSettings(
        minutes=options.minutes,
        width=options.width,
        height=options.height,
        rate_hz=options.rate,
        sample_period_s=options.sample_period,
        warmup_s=options.warmup,
        weights=options.weights,
        threads=options.threads,
        dds=options.dds,
    )
    result = run_soak(settings, options.out, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(result["summary"], indent=2))
    return 0 if result["summary"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
