"""The first GPU run: every CUDA path once, in at most 8 minutes, one JSON and one Markdown table.

Run through ``scripts/gpu_check.sh [OUT_DIR]`` (which picks or installs the Python environment), or
``python -m monodepth2_ros.tools.gpu_check --out OUT_DIR``. In order:

1. ``eager_optimized`` fp16 against eager on two different frames on ``cuda:0`` (and ``cuda:1``):
   outputs differ per frame, no "CUDA Graph is empty" warning;
2. two runners first called at once from two threads while a third copies to the host (batch 1,
   captured at construction, and batch 3, captured on first use);
3. onnxruntime fp32 and int8 on CUDA: the providers actually used and the nodes on the CPU;
4. ``compile`` fp16 called from another thread at batch 1 and 2;
5. 20 training steps (the Trainer's own step) in fp16 and bf16: finite loss, skipped steps,
   GradScaler, with ``torch.cuda.set_sync_debug_mode("warn")`` over one step and one frame;
6. the peak matmul (CUDA events, TF32 stated);
7. the CUDA tests, 8. ``monodepth2 bench`` on CUDA, 9. the depth node benchmark, 10. a 2-minute
   training throughput run.

Each part is timed and reported as ok / failed / skipped (a missing module, no time left); the
script goes on after a failure. Without a CUDA device it stops at once with "no CUDA device",
before importing torch.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "NO_CUDA_EXIT",
    "TOTAL_BUDGET_S",
    "CheckResult",
    "CheckRun",
    "cuda_device_present",
    "parse_pytest_counts",
    "markdown_report",
    "write_report",
    "main",
]

NO_CUDA_EXIT = 2
TOTAL_BUDGET_S = 480.0  # 8 minutes for everything
JSON_NAME = "gpu_check.json"
MARKDOWN_NAME = "gpu_check.md"
_REPO = Path(__file__).resolve().parents[2]
_NVIDIA_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version")
# fp16 against fp32 on a sigmoid disparity: a few fp16 steps of its [0, 1] range.
_FP16_DISP_TOLERANCE = 5e-3
_FP32_DISP_TOLERANCE = 1e-4  # onnxruntime against eager, both without TF32
_TRAINING_STEPS = 20


def cuda_device_present() -> bool:
    """Whether this machine has an NVIDIA driver with a device, without importing torch (instant
    where there is none: no device node and no ``nvidia-smi``)."""
    if any(Path(node).exists() for node in _NVIDIA_NODES):
        return True
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


@dataclass
class CheckResult:
    """One part of the check.

    Attributes:
        name: short name (the table's first column).
        status: ``ok``, ``failed`` or ``skipped``.
        seconds: wall time spent.
        summary: one line of figures for the table.
        details: everything measured, for the JSON.
        error: why it failed or was skipped.
    """

    name: str
    status: str
    seconds: float
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    error: str = ""


# A check returns (passed, one-line summary, details).
Check = Callable[[], tuple[bool, str, dict[str, Any]]]


class CheckRun:
    """Runs checks in order within one time budget; a failing check never stops the next.

    Args:
        budget_s: seconds for all checks together.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, budget_s: float = TOTAL_BUDGET_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.deadline = clock() + budget_s
        self.results: list[CheckResult] = []

    def remaining(self) -> float:
        return self.deadline - self._clock()

    def run(self, name: str, check: Check, needs_s: float = 0.0) -> CheckResult:
        """Run ``check`` unless less than ``needs_s`` seconds of the budget are left."""
        if self.remaining() < needs_s:
            result = CheckResult(name, "skipped", 0.0, error=f"time budget: {self.remaining():.0f} s left, needs {needs_s:.0f} s")
            self.results.append(result)
            return result
        start = self._clock()
        try:
            passed, summary, details = check()
            result = CheckResult(name, "ok" if passed else "failed", 0.0, summary, details)
        except ModuleNotFoundError as err:
            result = CheckResult(name, "skipped", 0.0, error=f"missing module {err.name!r}")
        except Exception as err:  # a broken part is reported, the next one still runs
            lines = traceback.format_exception(type(err), err, err.__traceback__)
            result = CheckResult(name, "failed", 0.0, error=f"{type(err).__name__}: {err}", details={"traceback": "".join(lines)[-4000:]})
        result.seconds = self._clock() - start
        self.results.append(result)
        print(f"[gpu_check] {name}: {result.status} ({result.seconds:.1f} s) {result.summary or result.error}", flush=True)
        return result


def parse_pytest_counts(output: str) -> dict[str, int]:
    """``{"passed": 12, "skipped": 1, ...}`` from pytest's closing line."""
    counts: dict[str, int] = {}
    lines = [line for line in output.strip().splitlines() if re.search(r"\d+ (passed|failed|error|skipped)", line)]
    if lines:
        for number, word in re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)", lines[-1]):
            counts["errors" if word.startswith("error") else word] = int(number)
    return counts


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_report(header: dict[str, Any], results: Sequence[CheckResult]) -> str:
    """The Markdown page: the machine, then one table row per check."""
    lines = ["# GPU check", ""]
    lines += [f"- **{key}**: {_cell(str(value))}" for key, value in header.items()]
    lines += ["", "| # | check | status | seconds | figures / error |", "|---|---|---|---:|---|"]
    for number, result in enumerate(results, 1):
        text = result.summary if result.status == "ok" else (result.error or result.summary)
        if result.status == "failed" and result.summary and result.error:
            text = f"{result.summary}; {result.error}"
        lines.append(f"| {number} | {_cell(result.name)} | {result.status} | {result.seconds:.1f} | {_cell(text)} |")
    passed = sum(r.status == "ok" for r in results)
    lines += ["", f"{passed} of {len(results)} checks ok."]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | Path, header: dict[str, Any], results: Sequence[CheckResult]) -> tuple[Path, Path]:
    """Write ``gpu_check.json`` and ``gpu_check.md`` into ``out_dir`` (created)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = out_dir / JSON_NAME, out_dir / MARKDOWN_NAME
    payload = {"header": header, "checks": [asdict(r) for r in results], "ok": all(r.status != "failed" for r in results)}
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    markdown_path.write_text(markdown_report(header, results))
    return json_path, markdown_path


# ---------------------------------------------------------------------------------------- the checks


def _frames(count: int, height: int = 192, width: int = 640) -> list:
    """Smooth textured RGB frames, each different (no synthetic renderer needed)."""
    import numpy as np

    frames = []
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    for index in range(count):
        channels = [127 + 100 * np.sin((u + 7 * index) / (5 + 3 * c)) * np.cos((v - 3 * index) / (6 + 2 * c)) for c in range(3)]
        frames.append(np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8))
    return frames


def _max_diff(a, b) -> float:
    import numpy as np

    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def check_cuda_graphs(weights: Path) -> tuple[bool, str, dict[str, Any]]:
    import torch

    from monodepth2_ros.inference import DepthEstimator, InferenceConfig

    frames = _frames(2)
    details: dict[str, Any] = {}
    passed = True
    for index in range(min(torch.cuda.device_count(), 2)):
        device = f"cuda:{index}"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fast = DepthEstimator(weights, InferenceConfig(device=device, backend="eager_optimized", precision="fp16"))
            eager = DepthEstimator(weights, InferenceConfig(device=device))
            fast_out = [fast.estimate(frame).disparity for frame in frames]
            eager_out = [eager.estimate(frame).disparity for frame in frames]
        empty = [str(w.message) for w in caught if "empty" in str(w.message).lower()]
        row = {
            "max_diff_vs_eager": max(_max_diff(a, b) for a, b in zip(fast_out, eager_out)),
            "frames_differ": _max_diff(fast_out[0], fast_out[1]) > 0,
            "empty_graph_warnings": empty,
            "captured_shapes": [list(map(list, key)) for key in fast.runner.captured_shapes],
        }
        row["ok"] = row["max_diff_vs_eager"] < _FP16_DISP_TOLERANCE and row["frames_differ"] and not empty
        passed &= row["ok"]
        details[device] = row
    summary = "; ".join(f"{d}: max|fp16-eager| {r['max_diff_vs_eager']:.1e}, frames differ {r['frames_differ']}, empty-graph warnings {len(r['empty_graph_warnings'])}" for d, r in details.items())
    return passed, summary, details


def check_concurrent_first_calls(weights: Path) -> tuple[bool, str, dict[str, Any]]:
    import torch

    from monodepth2_ros.inference import DepthEstimator, InferenceConfig
    from monodepth2_ros.inference.backends import HostStaging

    frames = _frames(2)
    config = InferenceConfig(device="cuda", backend="eager_optimized", precision="fp16")
    runners = [DepthEstimator(weights, config) for _ in range(2)]
    reference = DepthEstimator(weights, InferenceConfig(device="cuda"))
    size = runners[0].network_size
    batch3 = torch.rand(3, 3, *size, device="cuda")
    results: dict[str, Any] = {}
    errors: list[str] = []
    start_together = threading.Barrier(2)
    stop = threading.Event()
    copies = [0]

    def infer(i: int) -> None:
        try:
            start_together.wait()
            results[f"frame{i}"] = runners[i].estimate(frames[i]).disparity
            results[f"batch3_{i}"] = runners[i].runner(batch3)[0].cpu().numpy()  # a shape captured now
        except Exception as err:  # reported in the result
            errors.append(f"runner {i}: {type(err).__name__}: {err}")

    def copy_to_host() -> None:
        staging = HostStaging()
        while not stop.is_set():
            staging.to_numpy(torch.rand(512, 512, device="cuda"))
            copies[0] += 1

    copier = threading.Thread(target=copy_to_host, daemon=True)
    copier.start()
    threads = [threading.Thread(target=infer, args=(i,), daemon=True) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stop.set()
    copier.join(timeout=30)
    details: dict[str, Any] = {"errors": errors, "host_copies_meanwhile": copies[0]}
    if not errors and len(results) == 4:
        details["max_diff_vs_eager"] = max(_max_diff(results[f"frame{i}"], reference.estimate(frames[i]).disparity) for i in range(2))
        with torch.inference_mode():
            eager3 = reference.runner(batch3)[0].cpu().numpy()
        details["batch3_max_diff_vs_eager"] = max(_max_diff(results[f"batch3_{i}"], eager3) for i in range(2))
    passed = not errors and details.get("max_diff_vs_eager", 1.0) < _FP16_DISP_TOLERANCE and details.get("batch3_max_diff_vs_eager", 1.0) < _FP16_DISP_TOLERANCE
    summary = (
        f"errors {len(errors)}, max|fp16-eager| {details.get('max_diff_vs_eager', float('nan')):.1e} "
        f"(batch 3 captured concurrently: {details.get('batch3_max_diff_vs_eager', float('nan')):.1e}), "
        f"{copies[0]} host copies meanwhile"
    )
    return passed, summary, details


def check_onnxruntime(weights: Path, work_dir: Path, device: str = "cuda") -> tuple[bool, str, dict[str, Any]]:
    import onnxruntime
    import torch

    from monodepth2_ros.inference import DepthEstimator, InferenceConfig
    from monodepth2_ros.inference.export import export_depth_onnx
    from monodepth2_ros.inference.quantize import depth_feeds, quantize_int8
    from monodepth2_ros.model.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(weights)
    height, width = checkpoint.info.height, checkpoint.info.width
    folder = work_dir / "onnx"
    export_depth_onnx(checkpoint.depth_net, folder / "depth.onnx", height, width)
    frames = _frames(4)
    # The file TensorRT runs (symmetric); on the CPU the asymmetric one, as `monodepth2 export --int8` writes it.
    symmetric = device.startswith("cuda")
    quantize_int8(folder / "depth.onnx", folder / "depth.int8.onnx", depth_feeds(frames, height, width), symmetric=symmetric)
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # true fp32 on both sides
    details: dict[str, Any] = {"available_providers": onnxruntime.get_available_providers()}
    passed = True
    try:
        eager = DepthEstimator(weights, InferenceConfig(device=device))
        reference = [eager.estimate(frame).disparity for frame in frames[:2]]
        for precision in ("fp32", "int8"):
            estimator = DepthEstimator(
                weights, InferenceConfig(device=device, backend="onnxruntime", precision=precision, onnx_dir=str(folder))
            )
            row: dict[str, Any] = {"runs": estimator.backend.label, "note": estimator.backend.note}
            runner = estimator.runner
            if hasattr(runner, "providers_used"):
                row["providers_used"] = runner.providers_used
                row["note"] = runner.choice.note
                row["node_placement"] = runner.node_placement()
            diff = max(_max_diff(estimator.estimate(f).disparity, r) for f, r in zip(frames[:2], reference))
            row["max_diff_vs_eager_fp32"] = diff
            tolerance = _FP32_DISP_TOLERANCE if estimator.backend.precision == "fp32" else 0.03
            row["ok"] = diff < tolerance
            passed &= row["ok"]
            details[precision] = row
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
    summary = "; ".join(
        f"{p}: runs {r['runs']} on {','.join(r.get('providers_used', []))} nodes {r.get('node_placement', {})} max|d| {r['max_diff_vs_eager_fp32']:.1e}"
        for p, r in details.items()
        if isinstance(r, dict)
    )
    return passed, summary, details


def check_compile_other_thread(weights: Path) -> tuple[bool, str, dict[str, Any]]:
    import torch

    from monodepth2_ros.inference.backends import build_runner, resolve_backend
    from monodepth2_ros.model.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(weights)
    size = (checkpoint.info.height, checkpoint.info.width)
    device = torch.device("cuda", 0)
    net = checkpoint.depth_net.to(device).eval()
    start = time.perf_counter()
    compiled = build_runner("depth", net, resolve_backend("compile", "fp16", device), size, batch_sizes=(1, 2))
    build_s = time.perf_counter() - start
    eager = build_runner("depth", net, resolve_backend("eager", "fp16", device), size)
    inputs = {batch: torch.rand(batch, 3, *size, device=device) for batch in (1, 2)}
    outputs: dict[int, Any] = {}
    call_ms: dict[int, list[float]] = {}
    errors: list[str] = []

    def worker() -> None:
        try:
            for batch in (1, 2, 1, 2):
                t0 = time.perf_counter()
                outputs[batch] = compiled(inputs[batch])[0].cpu()
                call_ms.setdefault(batch, []).append((time.perf_counter() - t0) * 1e3)
        except Exception as err:  # reported
            errors.append(f"{type(err).__name__}: {err}")

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    thread.join(timeout=240)
    details: dict[str, Any] = {"build_s": build_s, "warm_batch_sizes": compiled.warm_batch_sizes, "errors": errors, "worker_call_ms": call_ms}
    if not errors and len(outputs) == 2:
        details["max_diff_vs_eager_fp16"] = max(_max_diff(outputs[b], eager(inputs[b])[0].cpu()) for b in (1, 2))
    passed = not errors and details.get("max_diff_vs_eager_fp16", 1.0) < _FP16_DISP_TOLERANCE
    summary = (
        f"built {build_s:.0f} s; worker thread calls (ms) "
        + ", ".join(f"b{b}: {', '.join(f'{t:.1f}' for t in ts)}" for b, ts in call_ms.items())
        + f"; max|compiled-eager| {details.get('max_diff_vs_eager_fp16', float('nan')):.1e}"
    )
    return passed, summary, details


class _TexturedTriplets:
    """A tiny training dataset of textured frames (what the Trainer's loader needs, no bag)."""

    def __init__(self, count: int, height: int, width: int) -> None:
        import numpy as np
        import torch

        from monodepth2_ros.training.batch import Sample

        frames = [torch.from_numpy(np.ascontiguousarray(f.transpose(2, 0, 1))) for f in _frames(count + 2, height, width)]
        focal = 0.58 * width
        K = torch.tensor([[focal, 0.0, (width - 1) / 2], [0.0, 1.92 * focal * height / width, (height - 1) / 2], [0.0, 0.0, 1.0]])
        self.samples = [
            Sample(
                target=frames[i + 1], sources=torch.stack([frames[i], frames[i + 2]]), target_aug=frames[i + 1],
                sources_aug=torch.stack([frames[i], frames[i + 2]]), K=K, stereo=None, T_stereo=None, gt_depth=None, index=i,
            )  # fmt: skip
            for i in range(count)
        ]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        return self.samples[index]


def _sync_warnings(caught: Sequence[warnings.WarningMessage]) -> dict[str, int]:
    return dict(Counter(f"{Path(w.filename).name}:{w.lineno}" for w in caught if "synchroniz" in str(w.message).lower()))


def check_training_steps(
    weights: Path,
    work_dir: Path,
    precision: str,
    device: str = "cuda",
    size: tuple[int, int] = (192, 640),
    steps: int = _TRAINING_STEPS,
) -> tuple[bool, str, dict[str, Any]]:
    """``steps`` steps of the Trainer's own ``train_step``; on CUDA then one step and one depth
    frame under ``set_sync_debug_mode("warn")``, counting the host synchronisations by source line."""
    import math

    import torch

    from monodepth2_ros.training.config import LossConfig, ModelConfig, OptimConfig, RuntimeConfig, TrainConfig
    from monodepth2_ros.training.data import TrainingData
    from monodepth2_ros.training.distributed import init_distributed
    from monodepth2_ros.training.run_dir import RunPaths
    from monodepth2_ros.training.trainer import Trainer, seed_everything

    (height, width), batch_size = size, 4
    config = TrainConfig(
        model=ModelConfig(),
        loss=LossConfig(),
        optim=OptimConfig(batch_size=batch_size, max_steps=steps),
        runtime=RuntimeConfig(device=device, precision=precision, num_workers=0, channels_last=True),
    )
    dataset = _TexturedTriplets(batch_size * 2, height, width)
    data = TrainingData(cache=None, split=None, train=dataset, val=None)  # type: ignore[arg-type]
    context = init_distributed(device)  # one process: picks the device and makes it current
    seed_everything(0)  # the same initial weights every run
    trainer = Trainer(config, RunPaths(work_dir / f"train_{precision}"), data, context)
    batches = [batch for batch in trainer.loader]
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        trainer.train_step(batches[step % len(batches)])
        losses.append(trainer.last_loss)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    seconds = time.perf_counter() - start
    step_warnings: list[warnings.WarningMessage] = []
    frame_warnings: list[warnings.WarningMessage] = []
    if trainer.device.type == "cuda":
        # One step and one frame under the sync debugger: every host synchronisation is a warning.
        from monodepth2_ros.inference import DepthEstimator, InferenceConfig

        estimator = DepthEstimator(weights, InferenceConfig(device=str(trainer.device)))
        frame = _frames(1, 96, 320)[0]
        estimator.estimate(frame)
        for record, work in ((step_warnings, lambda: trainer.train_step(batches[0])), (frame_warnings, lambda: estimator.estimate(frame))):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    work()
                finally:
                    torch.cuda.set_sync_debug_mode("default")
            record.extend(caught)
    trainer.logger.close()
    details = {
        "device": str(trainer.device),
        "losses": losses,
        "skipped_steps": trainer.skipped_steps,
        "grad_scaler": trainer.scaler.is_enabled(),
        "grad_scale": float(trainer.scaler.get_scale()) if trainer.scaler.is_enabled() else None,
        "steps_per_s": steps / seconds,
        "syncs_in_one_step": _sync_warnings(step_warnings),
        "syncs_in_one_frame": _sync_warnings(frame_warnings),
    }
    finite = sum(math.isfinite(loss) for loss in losses)
    # The loader's two batches alternate: step 0 and step ``last_same`` see the same one.
    last_same = steps - 1 - (steps - 1) % len(batches)
    passed = finite + trainer.skipped_steps >= steps and math.isfinite(losses[last_same]) and losses[last_same] < losses[0]
    summary = (
        f"{trainer.device}: loss (same batch) {losses[0]:.4f} -> {losses[last_same]:.4f}, {finite}/{steps} finite, {trainer.skipped_steps} skipped, "
        f"GradScaler {'on, scale ' + format(details['grad_scale'], 'g') if details['grad_scaler'] else 'off'}, "
        f"{details['steps_per_s']:.1f} steps/s; host syncs: step {sum(details['syncs_in_one_step'].values())}, "
        f"frame {sum(details['syncs_in_one_frame'].values())}"
    )
    return passed, summary, details


def check_peak_matmul() -> tuple[bool, str, dict[str, Any]]:
    import torch

    from monodepth2_ros.tools.network_bench import device_peak

    device = torch.device("cuda", 0)
    peaks = {precision: device_peak(device, precision) for precision in ("fp32", "fp16", "bf16")}
    details = {p: asdict(peak) for p, peak in peaks.items()}
    passed = all(peak.measured_gflops and peak.measured_gflops > 0 for peak in peaks.values())
    summary = ", ".join(f"{p} {peak.measured_gflops / 1e3:.0f} TFLOP/s" for p, peak in peaks.items()) + (
        f" (fp32 with TF32 {'on' if peaks['fp32'].tf32 else 'off'})"
    )
    return passed, summary, details


def _subprocess_check(command: Sequence[str], timeout_s: float, parse: Callable[[str], tuple[bool, str, dict[str, Any]]]) -> tuple[bool, str, dict[str, Any]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO), env.get("PYTHONPATH", "")) if p)
    try:
        finished = subprocess.run(list(command), cwd=_REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        tail = (err.stdout or b"")[-2000:] if isinstance(err.stdout, bytes) else (err.stdout or "")[-2000:]
        return False, f"timed out after {timeout_s:.0f} s", {"command": list(command), "output_tail": str(tail)}
    output = finished.stdout + finished.stderr
    passed, summary, details = parse(output)
    details.update(command=list(command), returncode=finished.returncode, output_tail=output[-3000:])
    return passed and finished.returncode == 0, summary, details


def check_cuda_tests(timeout_s: float) -> tuple[bool, str, dict[str, Any]]:
    tests = [
        "test/inference/test_inference_cuda_paths.py",
        "test/inference/test_inference_backends.py",
        "test/inference/test_inference_estimators.py",
        "test/tools/test_tools_backend_bench.py",
    ]

    def parse(output: str):
        counts = parse_pytest_counts(output)
        return counts.get("failed", 0) == 0 and counts.get("errors", 0) == 0, ", ".join(f"{n} {w}" for w, n in counts.items()), {"counts": counts}

    return _subprocess_check([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], timeout_s, parse)


def check_bench(weights: Path, out_dir: Path, timeout_s: float) -> tuple[bool, str, dict[str, Any]]:
    _require("onnxruntime")  # the bench's onnxruntime rows

    json_path = out_dir / "bench.json"
    backends = "eager:fp32,eager:fp16,eager_optimized:fp16,eager_optimized:bf16,onnxruntime:fp32,onnxruntime:int8"
    command = [
        sys.executable, "-m", "monodepth2_ros", "bench", "--device", "cuda", "--weights", str(weights),
        "--backends", backends, "--runs", "20", "--node-frames", "0", "--json", str(json_path),
    ]  # fmt: skip

    def parse(output: str):
        details: dict[str, Any] = {}
        if json_path.is_file():
            details["bench"] = json.loads(json_path.read_text())
        rows = [line for line in output.splitlines() if re.match(r"\s*(eager|onnxruntime|compile)", line)]
        return bool(details), f"{len(rows)} rows (bench.json)", details

    return _subprocess_check(command, timeout_s, parse)


def _require(module: str) -> None:
    """Raise ModuleNotFoundError (the check is then skipped) when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)


def check_node_bench(weights: Path, out_dir: Path, timeout_s: float) -> tuple[bool, str, dict[str, Any]]:
    _require("rclpy")  # the node benchmark runs real DDS (in its own process)

    json_path = out_dir / "node_bench.json"
    command = [
        sys.executable, "-m", "monodepth2_ros.tools.depth_node_bench", "--weights", str(weights),
        "--device", "cuda", "--frames", "60", "--json", str(json_path),
    ]  # fmt: skip

    def parse(output: str):
        details = json.loads(json_path.read_text()) if json_path.is_file() else {}
        lines = [line for line in output.splitlines() if "p50" in line]
        return bool(details), "; ".join(lines[-2:])[:300], {"node_bench": details}

    return _subprocess_check(command, timeout_s, parse)


def check_training_throughput(seconds: float) -> tuple[bool, str, dict[str, Any]]:
    from monodepth2_ros.tools.training_bench import BenchSetting, training_throughput

    settings = [BenchSetting("fp16 channels_last", precision="fp16", channels_last=True), BenchSetting("bf16 channels_last", precision="bf16", channels_last=True)]
    rows = []
    share = seconds / len(settings)
    for setting in settings:
        probe = training_throughput(192, 640, 12, setting, steps=3, warmup=2, device="cuda")
        steps = max(5, int((share - 3 * probe.first_step_s) / probe.seconds_per_step))
        rows.append(training_throughput(192, 640, 12, setting, steps=steps, warmup=2, device="cuda").as_dict())
    summary = ", ".join(f"{r['setting']}: {r['triplets_per_s']:.0f} triplets/s ({r['steps']} steps)" for r in rows)
    return all(r["triplets_per_s"] > 0 for r in rows), summary, {"rows": rows}


def _header() -> dict[str, Any]:
    import torch

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
        "python": platform.python_version(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check_out"), help="folder for gpu_check.json / gpu_check.md")
    parser.add_argument("--budget-s", type=float, default=TOTAL_BUDGET_S, help="time for everything (480)")
    parser.add_argument("--weights", type=Path, default=None, help="checkpoint the checks run (default: the bundled model)")
    args = parser.parse_args(argv)
    if not cuda_device_present():
        print(f"gpu_check: no CUDA device (none of {', '.join(_NVIDIA_NODES)} exists, no GPU in nvidia-smi -L)", file=sys.stderr)
        return NO_CUDA_EXIT
    import torch

    if not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device usable by torch {torch.__version__} (built for CUDA {torch.version.cuda})", file=sys.stderr)
        return NO_CUDA_EXIT
    from monodepth2_ros.inference.weights import bundled_weights_dir  # imports torch: after the quick exit

    weights = args.weights or bundled_weights_dir()
    run = CheckRun(args.budget_s)
    work_dir = args.out / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    header = _header()
    print(f"[gpu_check] {header}", flush=True)
    run.run("eager_optimized fp16 vs eager, CUDA graphs per GPU", lambda: check_cuda_graphs(weights), needs_s=20)
    run.run("two runners first called at once + host copies", lambda: check_concurrent_first_calls(weights), needs_s=20)
    run.run("onnxruntime fp32/int8 on CUDA: providers and node placement", lambda: check_onnxruntime(weights, work_dir), needs_s=30)
    run.run("compile fp16 from another thread, batch 1 and 2", lambda: check_compile_other_thread(weights), needs_s=90)
    for precision in ("fp16", "bf16"):
        run.run(f"{_TRAINING_STEPS} training steps {precision} + sync debug", lambda p=precision: check_training_steps(weights, work_dir, p), needs_s=20)
    run.run("peak matmul (CUDA events)", check_peak_matmul, needs_s=10)
    run.run("CUDA tests", lambda: check_cuda_tests(min(150.0, run.remaining() - 180)), needs_s=60)
    run.run("monodepth2 bench on CUDA", lambda: check_bench(weights, args.out, min(120.0, run.remaining() - 150)), needs_s=60)
    run.run("depth node benchmark on CUDA", lambda: check_node_bench(weights, args.out, min(60.0, run.remaining() - 130)), needs_s=40)
    run.run("training throughput (2 minutes)", lambda: check_training_throughput(max(30.0, min(120.0, run.remaining() - 10))), needs_s=40)
    header["total_s"] = round(args.budget_s - run.remaining(), 1)
    json_path, markdown_path = write_report(args.out, header, run.results)
    shutil.rmtree(work_dir, ignore_errors=True)
    print(markdown_path.read_text())
    print(f"[gpu_check] wrote {json_path} and {markdown_path}")
    return 0 if all(r.status != "failed" for r in run.results) else 1


if __name__ == "__main__":
    sys.exit(main())
