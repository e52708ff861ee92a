"""``backend: auto``: the fastest backend that runs here and keeps the accuracy, measured once.

For one network (depth or pose) of one checkpoint on one machine, every candidate backend x
precision that runs on the device is built, timed at batch 1 (round-robin, so a shared machine's
load falls on all alike) and checked against eager fp32 on a few rendered synthetic frames:

* depth: abs_rel against the frames' ground truth (the evaluation protocol, median-scaled) may get
  worse by at most ``abs_rel_bound`` (0.002);
* pose: the translation may differ from eager fp32's by at most ``translation_bound`` of its length
  (2 %, a scale error of the odometry) and the rotation by ``rotation_bound`` rad.

The fastest candidate within the bounds wins (eager fp32 always qualifies). The result is written to
``<user cache>/backend_auto/<key>.json``, the key made of the network's weights, the input size,
the machine (CPU model and instructions or GPU, threads) and the library versions, so a later start
reads it and builds only the winner. It lives here, above ``inference``, because the accuracy check
is the evaluation's depth metric.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from monodepth2_ros.errors import ConfigError, Monodepth2Error
from monodepth2_ros.evaluation.depth_metrics import evaluate_depth_frame
from monodepth2_ros.inference.backends import (
    AUTO_BACKEND,
    NetworkRunner,
    build_runner,
    cpu_supports_bf16,
    onnxruntime_providers,
    resolve_backend,
)
from monodepth2_ros.inference.estimators import InferenceConfig
from monodepth2_ros.inference.openvino_backend import openvino_version
from monodepth2_ros.inference.quantize import network_input, synthetic_frames
from monodepth2_ros.inference.user_cache import user_cache_dir
from monodepth2_ros.model.checkpoint import LoadedCheckpoint, load_checkpoint
from monodepth2_ros.model.geometry import MAX_DEPTH, MIN_DEPTH, disp_to_depth

__all__ = [
    "AutoSettings",
    "CandidateResult",
    "AutoSelection",
    "auto_candidates",
    "select_backend",
    "resolve_auto_config",
]

_LOG = logging.getLogger(__name__)
_BASELINE = ("eager", "fp32")
_ACCURACY_SEED = 11
_CALIBRATION_SEED = 7
_CACHE_VERSION = 1


@dataclass(frozen=True)
class AutoSettings:
    """How much the ``auto`` measurement does, and the accuracy bounds.

    Attributes:
        warmup, runs: unmeasured and measured batch-1 calls per candidate (round-robin).
        accuracy_frames: rendered frames of the accuracy check (>= 2: the pose pairs).
        calibration_frames: rendered frames (another drive) for int8 calibration.
        abs_rel_bound: most a depth candidate's abs_rel may exceed eager fp32's.
        translation_bound: most |t - t_eager| / |t_eager| of a pose candidate (mean over pairs).
        rotation_bound: most |axis_angle - axis_angle_eager| (rad) of a pose candidate.
        threads: CPU threads of the runners (0: torch's current setting).
    """

    warmup: int = 1
    runs: int = 5
    accuracy_frames: int = 3
    calibration_frames: int = 4
    abs_rel_bound: float = 0.002
    translation_bound: float = 0.02
    rotation_bound: float = 0.002
    threads: int = 0


@dataclass(frozen=True)
class CandidateResult:
    """One candidate's measurement: ``status`` ``ok``, ``inaccurate`` or ``unavailable`` (``note`` says why)."""

    backend: str
    precision: str
    status: str
    latency_ms: float | None = None
    accuracy_change: float | None = None
    note: str = ""


@dataclass(frozen=True)
class AutoSelection:
    """What ``auto`` picked for one network, and from what."""

    network: str
    backend: str
    precision: str
    latency_ms: float
    baseline_ms: float
    source: str  # "measured" now or read from the "cache"
    cache_file: str
    candidates: tuple[CandidateResult, ...]

    def describe(self) -> str:
        """One line for the logs: the pick, its speed-up and where it came from."""
        chosen = next(c for c in self.candidates if (c.backend, c.precision) == (self.backend, self.precision))
        what = "abs_rel change" if self.network == "depth" else "translation change"
        accuracy = "" if chosen.accuracy_change is None else f", {what} {chosen.accuracy_change:+.4f}"
        return (
            f"backend auto: {self.network} runs {self.backend} {self.precision} ({self.latency_ms:.1f} ms at batch 1, "
            f"{self.baseline_ms / self.latency_ms:.1f}x eager fp32{accuracy}); {self.source} ({self.cache_file})"
        )

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AutoSelection":
        candidates = tuple(CandidateResult(**c) for c in data["candidates"])
        return cls(**{**data, "candidates": candidates})


def auto_candidates(device: torch.device) -> list[tuple[str, str]]:
    """The backend x precision pairs ``auto`` considers on ``device`` (eager fp32 first)."""
    if device.type == "cuda":
        return [_BASELINE, ("eager", "fp16"), ("eager_optimized", "fp16"), ("onnxruntime", "fp32")]
    pairs = [_BASELINE, ("eager_optimized", "fp32")]
    if cpu_supports_bf16():
        pairs.append(("eager_optimized", "bf16"))
    if onnxruntime_providers() is not None:
        pairs += [("onnxruntime", "fp32"), ("onnxruntime", "int8")]
    if openvino_version() is not None:
        pairs += [("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8")]
    return pairs


def _machine_key(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            text = ""
        model = next((line.partition(":")[2].strip() for line in text.splitlines() if line.startswith("model name")), "")
        flags = next((line.partition(":")[2].strip() for line in text.splitlines() if line.startswith("flags")), "")
        hardware = f"{model or platform.processor()}|{torch.backends.cpu.get_cpu_capability()}|{flags}"
    providers = onnxruntime_providers()
    return "|".join(
        [hardware, str(device), f"threads={threads}", torch.__version__, str(openvino_version()), str(providers)]
    )


def _cache_file(network: str, net: nn.Module, size: tuple[int, int], device: torch.device, threads: int, settings: AutoSettings) -> Path:
    digest = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(f"{network}|{size}|{_CACHE_VERSION}|{settings}".encode())
    digest.update(_machine_key(device, threads).encode())
    return user_cache_dir("backend_auto") / f"{network}_{digest.hexdigest()[:24]}.json"


def _time_round_robin(calls: dict[str, Callable[[], object]], device: torch.device, warmup: int, runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {label: [] for label in calls}
    for round_index in range(warmup + runs):
        for label, call in calls.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            call()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if round_index >= warmup:
                times[label].append(time.perf_counter() - start)
    return {label: float(np.median(values)) * 1e3 for label, values in times.items()}


def _depth_abs_rel(runner: NetworkRunner, inputs: Sequence[torch.Tensor], gt_depths: Sequence[np.ndarray]) -> float:
    values = []
    for x, gt in zip(inputs, gt_depths):
        _, depth = disp_to_depth(runner(x)[0], MIN_DEPTH, MAX_DEPTH)
        values.append(evaluate_depth_frame(gt, depth[0, 0].double().cpu().numpy()).metrics.abs_rel)
    return float(np.mean(values))


def _pose_outputs(runner: NetworkRunner, inputs: Sequence[torch.Tensor]) -> list[tuple[np.ndarray, np.ndarray]]:
    outputs = []
    for a, b in zip(inputs[:-1], inputs[1:]):
        axis_angle, translation = runner(a, b)
        outputs.append((axis_angle[0, 0, 0].double().cpu().numpy(), translation[0, 0, 0].double().cpu().numpy()))
    return outputs


def _pose_change(candidate: list, baseline: list) -> tuple[float, float]:
    """(mean relative translation change, largest rotation change in rad) against the baseline."""
    translation = [np.linalg.norm(t - t0) / max(np.linalg.norm(t0), 1e-9) for (_, t), (_, t0) in zip(candidate, baseline)]
    rotation = [np.abs(r - r0).max() for (r, _), (r0, _) in zip(candidate, baseline)]
    return float(np.mean(translation)), float(np.max(rotation))


def _measure(
    network: str,
    net: nn.Module,
    device: torch.device,
    size: tuple[int, int],
    candidates: Sequence[tuple[str, str]],
    settings: AutoSettings,
    onnx_dir: str | Path | None,
    say: Callable[[str], None],
) -> tuple[list[CandidateResult], dict[str, NetworkRunner]]:
    from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive

    threads = settings.threads or torch.get_num_threads()
    drive = SyntheticDrive(
        SynthConfig(frames=max(settings.accuracy_frames, 2), width=size[1], height=size[0], seed=_ACCURACY_SEED)
    )
    frames = list(drive.iter_frames())
    inputs = [torch.from_numpy(network_input(f.rgb, *size)).to(device) for f in frames]
    calibration = synthetic_frames(settings.calibration_frames, *size, seed=_CALIBRATION_SEED)

    runners: dict[str, NetworkRunner] = {}
    results: dict[str, CandidateResult] = {}
    pairs = [_BASELINE] + [pair for pair in candidates if pair != _BASELINE]
    for backend, precision in pairs:
        label = f"{backend} {precision}"
        try:
            choice = resolve_backend(backend, precision, device)
            if choice.fell_back:
                results[label] = CandidateResult(backend, precision, "unavailable", note=choice.note)
                continue
            say(f"backend auto: building {network} {label}")
            runners[label] = build_runner(
                network, net, choice, size, onnx_dir=onnx_dir, calibration_frames=calibration, threads=threads
            )
        except (Monodepth2Error, RuntimeError, ImportError) as err:  # a backend that cannot build here
            results[label] = CandidateResult(backend, precision, "unavailable", note=str(err).splitlines()[0])

    one = torch.rand(1, 3, *size, device=device)
    calls = {
        label: ((lambda r=runner: r(one)) if network == "depth" else (lambda r=runner: r(one, one)))
        for label, runner in runners.items()
    }
    say(f"backend auto: timing {len(calls)} {network} candidates ({settings.runs} rounds)")
    latency = _time_round_robin(calls, device, settings.warmup, settings.runs)

    baseline_label = " ".join(_BASELINE)
    if network == "depth":
        gt = [f.depth for f in frames]
        reference = _depth_abs_rel(runners[baseline_label], inputs, gt)
    else:
        reference_pose = _pose_outputs(runners[baseline_label], inputs)
    for label, runner in runners.items():
        backend, precision = label.split(" ")
        if network == "depth":
            change = _depth_abs_rel(runner, inputs, gt) - reference
            accurate = change <= settings.abs_rel_bound
            note = "" if accurate else f"abs_rel +{change:.4f} > {settings.abs_rel_bound}"
        else:
            change, rotation = _pose_change(_pose_outputs(runner, inputs), reference_pose)
            accurate = change <= settings.translation_bound and rotation <= settings.rotation_bound
            note = "" if accurate else f"translation {change:.4f} / rotation {rotation:.2e} rad beyond the bounds"
        status = "ok" if accurate or label == baseline_label else "inaccurate"
        results[label] = CandidateResult(backend, precision, status, latency[label], change, note)
    ordered = [results[f"{b} {p}"] for b, p in pairs]
    return ordered, runners


def select_backend(
    network: str,
    net: nn.Module,
    device: torch.device,
    size: tuple[int, int],
    *,
    settings: AutoSettings = AutoSettings(),
    candidates: Sequence[tuple[str, str]] | None = None,
    onnx_dir: str | Path | None = None,
    use_cache: bool = True,
    say: Callable[[str], None] | None = None,
) -> AutoSelection:
    """The fastest accurate backend for ``net`` (``depth`` or ``pose``) here, measured or cached.

    Args:
        net: a ``DepthNet`` or ``PoseNet`` in eval mode on ``device``.
        size: (height, width) of the network input.
        candidates: backend x precision pairs (default :func:`auto_candidates`); part of what is
            measured, not of the cache key, so pass the same ones or ``use_cache=False``.
        use_cache: read a previous measurement and write this one.
        say: progress lines (default: the module's logger at INFO).
    """
    say = say or _LOG.info
    threads = settings.threads or torch.get_num_threads()
    cache_file = _cache_file(network, net, size, device, threads, settings)
    if use_cache and cache_file.is_file():
        try:
            cached = AutoSelection.from_dict(json.loads(cache_file.read_text()))
            return dataclasses.replace(cached, source="cache", cache_file=str(cache_file))
        except (ValueError, TypeError, KeyError) as err:
            say(f"backend auto: ignoring an unreadable cache file {cache_file} ({err})")
    pairs = list(candidates or auto_candidates(device))
    results, _ = _measure(network, net, device, size, pairs, settings, onnx_dir, say)
    usable = [r for r in results if r.status == "ok"]
    best = min(usable, key=lambda r: r.latency_ms)
    baseline = next(r for r in results if (r.backend, r.precision) == _BASELINE)
    selection = AutoSelection(
        network=network,
        backend=best.backend,
        precision=best.precision,
        latency_ms=float(best.latency_ms),
        baseline_ms=float(baseline.latency_ms),
        source="measured",
        cache_file=str(cache_file),
        candidates=tuple(results),
    )
    if use_cache:
        partial = cache_file.with_suffix(".partial")
        partial.write_text(json.dumps(selection.as_dict(), indent=1))
        partial.replace(cache_file)
    return selection


def resolve_auto_config(
    config: InferenceConfig,
    weights: str | Path | LoadedCheckpoint,
    network: str,
    say: Callable[[str], None] | None = None,
    settings: AutoSettings = AutoSettings(),
) -> tuple[InferenceConfig, AutoSelection | None]:
    """``config`` with ``backend: auto`` replaced by the pick for ``network``; other configs as they are.

    Returns:
        The config to build the estimator with, and the selection (None when not ``auto``).
    Raises:
        ConfigError: an unknown network; the checkpoint's own errors.
    """
    if config.backend != AUTO_BACKEND:
        return config, None
    if network not in ("depth", "pose"):
        raise ConfigError(f"network must be depth or pose, got {network!r}")
    from monodepth2_ros.inference.device import resolve_device

    checkpoint = weights if isinstance(weights, LoadedCheckpoint) else load_checkpoint(weights, load_pose=network == "pose")
    net = checkpoint.depth_net if network == "depth" else checkpoint.pose_net
    if net is None:
        raise ConfigError(f"{checkpoint.folder} has no {network} network")
    device = resolve_device(config.device)
    net = net.to(device).eval()
    size = (checkpoint.info.height, checkpoint.info.width)
    selection = select_backend(network, net, device, size, settings=settings, onnx_dir=config.onnx_dir, say=say)
    return dataclasses.replace(config, backend=selection.backend, precision=selection.precision), selection
