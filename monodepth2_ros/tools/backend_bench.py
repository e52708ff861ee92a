"""Every backend side by side against eager fp32, in one run: the library behind ``monodepth2 bench``.

For each backend x precision on one device it measures the depth and pose networks' latency at
batch 1 and throughput at a larger batch (round-robin with the eager fp32 baseline, so a shared
machine's load falls on all of them alike), their accuracy against eager fp32 on a small rendered
synthetic drive (ground-truth abs_rel change, largest disparity and pose differences), the depth
node's end-to-end latency when the ROS benchmark can run, and the hardware limit: the network's
FLOPs over the device's peak.
"""

from __future__ import annotations

import inspect
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monodepth2_ros.errors import Monodepth2Error
from monodepth2_ros.evaluation.depth_metrics import evaluate_depth_frame
from monodepth2_ros.inference.backends import (
    BackendChoice,
    NetworkRunner,
    build_runner,
    cpu_supports_bf16,
    inductor_cache_dir,
    onnxruntime_providers,
    resolve_backend,
)
from monodepth2_ros.tools.network_bench import (
    LatencyResult,
    PeakEstimate,
    device_peak,
    latency_summary,
    measure_interleaved,
    network_flops,
    peak_fraction,
)
from monodepth2_ros.inference.openvino_backend import openvino_version
from monodepth2_ros.inference.quantize import network_input, synthetic_frames
from monodepth2_ros.model.checkpoint import CheckpointInfo, LoadedCheckpoint, load_checkpoint, save_checkpoint
from monodepth2_ros.model.geometry import MAX_DEPTH, MIN_DEPTH, disp_to_depth
from monodepth2_ros.model.networks import DepthNet, PoseNet

__all__ = ["BenchSettings", "QUICK_SETTINGS", "BenchRow", "BenchReport", "default_candidates", "parse_candidates", "run_bench"]

_BASELINE = ("eager", "fp32")
_ACCURACY_SEED = 11
_NODE_PROBE_S = 0.5


@dataclass(frozen=True)
class BenchSettings:
    """What ``run_bench`` measures and how long.

    Attributes:
        height, width: network input size when no checkpoint is given (a checkpoint's own size wins).
        throughput_batch: batch of the throughput measurement.
        warmup, runs: unmeasured and measured calls per candidate (round-robin).
        accuracy_frames: rendered synthetic frames of the accuracy check (>= 2, for the pose pairs).
        node_frames: frames of the node benchmark (0 skips it).
        node_width, node_height: camera image size of the node benchmark.
        node_probe_s: seconds of each throughput probe of the node benchmark.
        measure_peak: also time a large matmul for the device's peak.
        calibration_frames: rendered frames for the int8 calibration (a drive apart from the test frames).
        threads: CPU threads for PyTorch and ONNX Runtime alike (0 keeps torch's current setting).
        node_rows: run the node benchmark for every row (the node takes the same backend and
            precision), not only the eager fp32 baseline.
    """

    height: int = 192
    width: int = 640
    throughput_batch: int = 8
    warmup: int = 2
    runs: int = 10
    accuracy_frames: int = 4
    node_frames: int = 20
    node_width: int = 1242
    node_height: int = 375
    node_probe_s: float = _NODE_PROBE_S
    measure_peak: bool = True
    calibration_frames: int = 4
    threads: int = 0
    node_rows: bool = False


# Few runs at a tiny size: every column, in seconds (the test suite runs it).
QUICK_SETTINGS = BenchSettings(
    height=64, width=96, throughput_batch=2, warmup=1, runs=3, accuracy_frames=2,
    node_frames=3, node_width=128, node_height=96, node_probe_s=0.2,
    calibration_frames=2,
)


@dataclass(frozen=True)
class BenchRow:
    """One backend x precision x device. Times in ms, throughput in images (pairs) per second.

    ``status`` is ``ok``, ``unavailable`` (cannot run here; ``note`` says why) or ``baseline``.
    Accuracy figures compare with the eager fp32 row of the same run; ``abs_rel`` is against the
    synthetic ground truth (median-scaled, 1e-3..80 m). ``limit_ms`` is the depth network's FLOPs
    over the device's peak at this precision, and ``peak_fraction`` = ``limit_ms / depth_p50_ms``.
    """

    backend: str
    precision: str
    device: str
    status: str
    note: str = ""
    setup_s: float | None = None
    depth_p50_ms: float | None = None
    depth_p95_ms: float | None = None
    pose_p50_ms: float | None = None
    pose_p95_ms: float | None = None
    depth_throughput: float | None = None
    pose_throughput: float | None = None
    depth_speedup: float | None = None
    abs_rel: float | None = None
    abs_rel_change: float | None = None
    max_disp_diff: float | None = None
    max_pose_diff: float | None = None
    limit_ms: float | None = None
    peak_fraction: float | None = None
    node_p50_ms: float | None = None
    node_p95_ms: float | None = None
    node_note: str = ""
    node_model_p50_ms: float | None = None
    node_sustained_hz: float | None = None
    node_stages_ms: dict[str, float | None] | None = None

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision}"


@dataclass(frozen=True)
class BenchReport:
    """The whole run: set-up, hardware limits and one row per candidate."""

    machine: str
    torch_version: str
    onnxruntime: str
    device: str
    height: int
    width: int
    throughput_batch: int
    runs: int
    depth_gflops: float
    pose_gflops: float
    peaks: tuple[PeakEstimate, ...]
    rows: tuple[BenchRow, ...]
    baseline_latency: tuple[LatencyResult, ...]
    inductor_cache_dir: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rows"] = [r.as_dict() for r in self.baseline_latency]  # the historical schema
        out["table"] = [asdict(row) for row in self.rows]
        out["peaks"] = [dict(asdict(p), gflops=p.gflops) for p in self.peaks]
        del out["baseline_latency"]
        return out


def default_candidates(device: torch.device) -> list[tuple[str, str]]:
    """The backend x precision pairs worth comparing on ``device`` (eager fp32 first).

    ``compile`` is included on CUDA only: on the CPU it costs ~40 s of compilation per graph for
    no gain over ``eager_optimized`` (measure it with ``--backends compile:bf16``).
    """
    if device.type == "cuda":
        return [
            _BASELINE, ("eager", "fp16"), ("eager_optimized", "fp16"), ("compile", "fp16"),
            ("onnxruntime", "fp32"), ("onnxruntime", "int8"),
        ]
    candidates = [_BASELINE, ("eager_optimized", "fp32")]
    if cpu_supports_bf16():
        candidates += [("eager", "bf16"), ("eager_optimized", "bf16")]
    candidates += [("onnxruntime", "fp32"), ("onnxruntime", "int8")]
    if openvino_version() is not None:
        candidates += [("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8")]
    return candidates


def parse_candidates(text: str) -> list[tuple[str, str]]:
    """``"eager_optimized:bf16,onnxruntime:int8"`` -> pairs (precision defaults to fp32)."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        backend, _, precision = item.partition(":")
        pairs.append((backend.strip(), precision.strip() or "fp32"))
    return pairs


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = next(
        (line.partition(":")[2].strip() for line in _read_lines("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    return f"{name}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}"


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


@dataclass
class _Candidate:
    choice: BackendChoice
    depth: NetworkRunner
    pose: NetworkRunner
    setup_s: float
    note: str = ""


def _depth_map(disparity: torch.Tensor) -> np.ndarray:
    _, depth = disp_to_depth(disparity, MIN_DEPTH, MAX_DEPTH)
    return depth[0, 0].double().cpu().numpy()


def _accuracy(
    candidate: _Candidate, inputs: Sequence[torch.Tensor], gt_depths: Sequence[np.ndarray]
) -> tuple[list[torch.Tensor], list[torch.Tensor], float]:
    """Disparities, pose outputs and mean abs_rel of one candidate on the accuracy frames."""
    disparities = [candidate.depth(x)[0] for x in inputs]
    poses = [torch.cat([t.flatten() for t in candidate.pose(a, b)]) for a, b in zip(inputs[:-1], inputs[1:])]
    abs_rels = [evaluate_depth_frame(gt, _depth_map(d)).metrics.abs_rel for gt, d in zip(gt_depths, disparities)]
    return disparities, poses, float(np.mean(abs_rels))


def _node_latency(
    weights: Path, row: BackendChoice, settings: BenchSettings, say: Callable[[str], None], baseline: bool
) -> tuple[float | None, float | None, str, dict[str, Any]]:
    """(p50, p95, note, extra) of the depth node end to end, or Nones and the reason.

    ``extra`` holds the BenchRow fields of the node's per-stage profile, the bare network's latency
    beside it and the sustained input rate, when measured.
    """
    result = _node_benchmark(weights, row, settings, say, baseline)
    if isinstance(result, str):
        return None, None, result, {}
    latency = result["node_latency_ms"]
    extra = {
        "node_model_p50_ms": float(result["model_latency_ms"]["p50"]),
        "node_sustained_hz": float(result["sustained_rate_hz"]),
        "node_stages_ms": result.get("node_stage_p50_ms"),
    }
    note = f"{settings.node_width}x{settings.node_height} camera frames"
    return float(latency["p50"]), float(latency["p95"]), note, extra


def _node_benchmark(
    weights: Path, row: BackendChoice, settings: BenchSettings, say: Callable[[str], None], baseline: bool
) -> dict[str, Any] | str:
    """The node benchmark's result, or why it did not run."""
    if settings.node_frames <= 0:
        return "n/a: node benchmark disabled"
    try:
        from monodepth2_ros.tools.depth_node_bench import run_node_benchmark
    except ImportError as err:
        return f"n/a: monodepth2_ros.tools.depth_node_bench cannot be imported ({err})"
    parameters = inspect.signature(run_node_benchmark).parameters
    kwargs: dict[str, Any] = {}
    if "threads" in parameters and settings.threads > 0:
        kwargs["threads"] = settings.threads
    if "backend" in parameters:
        kwargs["backend"] = row.backend
    elif row.backend != "eager":
        return "n/a: run_node_benchmark has no 'backend' parameter yet (node runs eager)"
    if row.precision not in ("fp32", "fp16", "bf16") and "backend" not in parameters:
        return f"n/a: the node does not run {row.precision}"
    if not (baseline or settings.node_rows):
        return "n/a: node benchmark run for the eager fp32 baseline only (--node-all for more)"
    say(f"node benchmark: {row.label}, {settings.node_frames} frames at {settings.node_width}x{settings.node_height}")
    try:
        result = run_node_benchmark(
            weights,
            frames=settings.node_frames,
            width=settings.node_width,
            height=settings.node_height,
            device=str(row.device),
            precision=row.precision,
            probe_s=settings.node_probe_s,
            warmup=1,
            **kwargs,
        )
    except (RuntimeError, Monodepth2Error) as err:  # ROS set-up problems on this machine
        return f"n/a: node benchmark failed ({str(err).splitlines()[0]})"
    return result


def run_bench(
    weights: str | Path | None,
    device: torch.device,
    candidates: Sequence[tuple[str, str]] | None = None,
    settings: BenchSettings = BenchSettings(),
    progress: Callable[[str], None] | None = None,
) -> BenchReport:
    """Measure every candidate backend against eager fp32 on ``device``.

    Args:
        weights: checkpoint folder; None uses a seeded random ResNet-18 checkpoint (same cost; the
            accuracy deltas then measure numerics only, not a trained model's sensitivity).
        device: where to run.
        candidates: backend x precision pairs; default :func:`default_candidates`. Eager fp32 is
            always measured first as the baseline.
        settings: sizes and run counts.
        progress: called with a line per phase.
    """
    say = progress or (lambda line: None)
    pairs = [_BASELINE] + [pair for pair in (candidates or default_candidates(device)) if pair != _BASELINE]
    with tempfile.TemporaryDirectory(prefix="monodepth2_bench_") as scratch:
        if weights is None:
            torch.manual_seed(0)
            weights = save_checkpoint(
                Path(scratch) / "random_weights",
                DepthNet(18),
                PoseNet(18),
                CheckpointInfo(height=settings.height, width=settings.width),
            )
        checkpoint: LoadedCheckpoint = load_checkpoint(weights, load_pose=True)
        previous_threads = torch.get_num_threads()
        if settings.threads > 0:
            torch.set_num_threads(settings.threads)
        try:
            return _run(Path(weights), checkpoint, device, pairs, settings, say)
        finally:
            torch.set_num_threads(previous_threads)


def _run(
    weights: Path,
    checkpoint: LoadedCheckpoint,
    device: torch.device,
    pairs: Sequence[tuple[str, str]],
    settings: BenchSettings,
    say: Callable[[str], None],
) -> BenchReport:
    info = checkpoint.info
    size = (info.height, info.width)
    depth_net = checkpoint.depth_net.to(device).eval()
    pose_net = checkpoint.pose_net.to(device).eval()

    say(f"rendering {settings.accuracy_frames} synthetic frames at {size[1]}x{size[0]} for the accuracy check")
    from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive

    drive = SyntheticDrive(
        SynthConfig(frames=max(settings.accuracy_frames, 2), width=size[1], height=size[0], seed=_ACCURACY_SEED)
    )
    frames = list(drive.iter_frames())
    calibration = synthetic_frames(settings.calibration_frames, *size)  # another drive: calibration never sees the test frames
    inputs = [torch.from_numpy(network_input(f.rgb, *size)).to(device) for f in frames]
    gt_depths = [f.depth for f in frames]

    candidates: dict[str, _Candidate] = {}
    unavailable: dict[str, BenchRow] = {}
    for backend, precision in pairs:
        choice = resolve_backend(backend, precision, device)
        label = f"{backend} {precision}"
        if choice.fell_back:
            unavailable[label] = BenchRow(backend, precision, str(device), "unavailable", choice.note)
            continue
        say(f"building {label}")
        threads = torch.get_num_threads()
        # TensorRT's optimisation profile and the CUDA graphs cover the throughput batch too
        # (compile keeps batch 1 at build: its setup time is the one-frame start-up cost).
        batches = (1,) if backend == "compile" else (1, settings.throughput_batch)
        runner_options = {"calibration_frames": calibration, "threads": threads, "batch_sizes": batches}
        depth = build_runner("depth", depth_net, choice, size, **runner_options)
        pose = build_runner("pose", pose_net, choice, size, **runner_options)
        note = ""
        if backend == "compile":
            events = {k: depth.cache_events[k] + pose.cache_events[k] for k in depth.cache_events}
            note = (
                f"compile {depth.setup_seconds + pose.setup_seconds:.1f} s (batch 1; a new batch size recompiles); "
                f"inductor FX-graph cache {events['hit']} hit, {events['miss']} miss, {events['bypass']} bypass "
                f"(freezing bypasses it; kernels in {depth.cache_dir} are reused across runs)"
            )
        candidates[label] = _Candidate(choice, depth, pose, depth.setup_seconds + pose.setup_seconds, note)

    batch_one = torch.rand(1, 3, *size, device=device)
    batch_many = torch.rand(settings.throughput_batch, 3, *size, device=device)

    def calls(network: str, images: torch.Tensor) -> dict[str, Callable[[], object]]:
        if network == "depth":
            return {label: (lambda c=c: c.depth(images)) for label, c in candidates.items()}
        return {label: (lambda c=c: c.pose(images, images)) for label, c in candidates.items()}

    say(f"latency: depth and pose at batch 1, {settings.runs} rounds over {len(candidates)} backends")
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    depth_times = measure_interleaved(calls("depth", batch_one), device, settings.warmup, settings.runs)
    pose_times = measure_interleaved(calls("pose", batch_one), device, settings.warmup, settings.runs)
    cpu_share = (time.process_time() - cpu_start) / (time.perf_counter() - wall_start)
    say(f"throughput: batch {settings.throughput_batch}")
    depth_many = measure_interleaved(calls("depth", batch_many), device, 1, max(1, settings.runs // 3))
    pose_many = measure_interleaved(calls("pose", batch_many), device, 1, max(1, settings.runs // 3))

    say("accuracy against eager fp32 on the synthetic frames")
    baseline_label = " ".join(_BASELINE)
    base_disp, base_pose, base_abs_rel = _accuracy(candidates[baseline_label], inputs, gt_depths)

    depth_flops = network_flops("depth", *size, info.num_layers)
    pose_flops = network_flops("pose", *size, info.num_layers)
    precisions = sorted({precision for _, precision in pairs}, key=["fp32", "bf16", "fp16", "int8"].index)
    say("device peak" + (" (timing a large matmul)" if settings.measure_peak else ""))
    peaks = {p: device_peak(device, p, measure=settings.measure_peak) for p in precisions}

    baseline_p50 = latency_summary(depth_times[baseline_label])[0]
    rows: list[BenchRow] = []
    for backend, precision in pairs:
        label = f"{backend} {precision}"
        if label in unavailable:
            rows.append(unavailable[label])
            continue
        candidate = candidates[label]
        disp, pose, abs_rel = _accuracy(candidate, inputs, gt_depths)
        d50, d95 = latency_summary(depth_times[label])
        p50, p95 = latency_summary(pose_times[label])
        peak = peaks[precision].gflops
        limit_ms = depth_flops / (peak * 1e9) * 1e3 if peak else None
        node_p50, node_p95, node_note, node_extra = _node_latency(
            weights, candidate.choice, settings, say, label == baseline_label
        )
        rows.append(
            BenchRow(
                backend=backend,
                precision=precision,
                device=str(device),
                status="baseline" if label == baseline_label else "ok",
                note=candidate.note,
                setup_s=candidate.setup_s,
                depth_p50_ms=d50,
                depth_p95_ms=d95,
                pose_p50_ms=p50,
                pose_p95_ms=p95,
                depth_throughput=settings.throughput_batch * 1e3 / float(np.median(depth_many[label])),
                pose_throughput=settings.throughput_batch * 1e3 / float(np.median(pose_many[label])),
                depth_speedup=baseline_p50 / d50,
                abs_rel=abs_rel,
                abs_rel_change=abs_rel - base_abs_rel,
                max_disp_diff=max(float((a - b).abs().max()) for a, b in zip(disp, base_disp)),
                max_pose_diff=max(float((a - b).abs().max()) for a, b in zip(pose, base_pose)),
                limit_ms=limit_ms,
                peak_fraction=peak_fraction(depth_flops, d50, peaks[precision]),
                node_p50_ms=node_p50,
                node_p95_ms=node_p95,
                node_note=node_note,
                **node_extra,
            )
        )

    baseline_latency = tuple(
        LatencyResult(
            name=f"{network} resnet{info.num_layers} eager fp32",
            device=str(device),
            batch=1,
            height=size[0],
            width=size[1],
            p50_ms=latency_summary(times[baseline_label])[0],
            p95_ms=latency_summary(times[baseline_label])[1],
            mean_ms=float(np.mean(times[baseline_label])),
            runs=len(times[baseline_label]),
        )
        for network, times in (("depth", depth_times), ("pose", pose_times))
    )
    providers = onnxruntime_providers()
    ort_text = "not installed"
    if providers is not None:
        import onnxruntime

        ort_text = f"{onnxruntime.__version__} ({', '.join(providers)})"
    return BenchReport(
        machine=_machine(device),
        torch_version=torch.__version__,
        onnxruntime=ort_text,
        device=str(device),
        height=size[0],
        width=size[1],
        throughput_batch=settings.throughput_batch,
        runs=settings.runs,
        depth_gflops=depth_flops / 1e9,
        pose_gflops=pose_flops / 1e9,
        peaks=tuple(peaks.values()),
        rows=tuple(rows),
        baseline_latency=baseline_latency,
        inductor_cache_dir=inductor_cache_dir(),
        notes=(
            f"latencies: round-robin over all backends in one run, {torch.get_num_threads()} CPU threads, "
            "network-size input already on the device",
            f"CPU share: this process used {cpu_share:.2f} cores on average while timing latency "
            f"({torch.get_num_threads()} threads asked; less means other processes shared the cores)",
            f"throughput: batch {settings.throughput_batch}, images (depth) or frame pairs (pose) per second",
            "accuracy: vs eager fp32 on rendered synthetic frames; abs_rel against their ground truth, median-scaled",
            "limit: depth FLOPs (FlopCounterMode) / peak, peak = max(formula, measured matmul); formula: "
            + peaks["fp32"].formula,
        ),
    )
