"""Latency of the bare networks, measured the same way for every backend and device."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from monodepth2_ros.inference.device import autocast_context, resolve_device
from monodepth2_ros.model.networks import DepthNet, PoseNet

__all__ = ["LatencyResult", "measure_latency", "network_latency", "time_matmul", "peak_fraction"]


@dataclass(frozen=True)
class LatencyResult:
    """Latency figures of one configuration, milliseconds."""

    name: str
    device: str
    batch: int
    height: int
    width: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    runs: int

    def as_dict(self) -> dict:
        return asdict(self)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency(call: Callable[[], object], device: torch.device, warmup: int, runs: int) -> list[float]:
    """Wall-clock milliseconds of ``runs`` calls after ``warmup`` unmeasured ones."""
    for _ in range(warmup):
        call()
    _synchronize(device)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        _synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def network_latency(
    network: str = "depth",
    height: int = 192,
    width: int = 640,
    batch: int = 1,
    device: str = "auto",
    precision: str = "fp32",
    num_layers: int = 18,
    warmup: int = 3,
    runs: int = 20,
) -> LatencyResult:
    """Eager latency of the depth or pose network (random weights: the cost does not depend on them)."""
    torch_device = resolve_device(device)
    model = (DepthNet(num_layers) if network == "depth" else PoseNet(num_layers)).to(torch_device).eval()
    images = torch.rand(batch, 3, height, width, device=torch_device)

    @torch.inference_mode()
    def call():
        with autocast_context(torch_device, precision):
            return model(images) if network == "depth" else model(images, images)

    times = measure_latency(call, torch_device, warmup, runs)
    quantiles = statistics.quantiles(times, n=20) if len(times) > 1 else [times[0]] * 19
    return LatencyResult(
        name=f"{network} resnet{num_layers} eager {precision}",
        device=str(torch_device),
        batch=batch,
        height=height,
        width=width,
        p50_ms=statistics.median(times),
        p95_ms=quantiles[18],
        mean_ms=statistics.fmean(times),
        runs=runs,
    )


# --------------------------------------------------------------------------------------------------
# Backend comparison: `monodepth2 bench`.
# --------------------------------------------------------------------------------------------------

# Lanes of one 512-bit register per element type, and products per lane of the dot-product
# instructions: bf16 VDPBF16PS does 2 per fp32 lane, int8 VPDPBUSD (VNNI) 4 per int32 lane.
_AVX512_FP32_LANES = 16
_PRODUCTS_PER_LANE = {"fp32": 1, "fp16": 1, "bf16": 2, "int8": 4}
# 512-bit FMA pipes per core: two on Intel server cores (Skylake-SP and later with both ports);
# Zen 4 executes 512-bit instructions on two 256-bit pipes, i.e. one 512-bit FMA per cycle.
_FMA_PIPES_512 = {"GenuineIntel": 2.0, "AuthenticAMD": 1.0}
_FLOPS_PER_FMA = 2
_MATMUL_SIZE = 1024
_MATMUL_RUNS = 3
# On a GPU a 1024^2 product takes microseconds and its launch dominates: 8192^2 (1.1 TFLOP per
# product) keeps the tensor cores busy for milliseconds, timed with CUDA events over 20 runs.
_GPU_MATMUL_SIZE = 8192
_GPU_MATMUL_RUNS = 20
_GPU_MATMUL_WARMUP = 3


@dataclass(frozen=True)
class PeakEstimate:
    """The device's arithmetic peak for one precision.

    Attributes:
        precision: fp32, bf16, fp16 or int8.
        theoretical_gflops: from the formula in ``formula`` (None where unknown, e.g. GPUs).
        measured_gflops: a large matmul timed here (None when not measured for this precision).
        formula: how ``theoretical_gflops`` was obtained, with its assumptions.
        tf32: for fp32 on CUDA, whether the measured matmul used TF32 tensor cores (as cuDNN's
            convolutions do by default, ``torch.backends.cudnn.allow_tf32``); None elsewhere.
    """

    precision: str
    theoretical_gflops: float | None
    measured_gflops: float | None
    formula: str
    tf32: bool | None = None

    @property
    def gflops(self) -> float | None:
        """The peak used for the limit: the larger of the two (a measured rate above the formula
        means the formula's clock is too low, e.g. boost above the listed base clock)."""
        known = [g for g in (self.theoretical_gflops, self.measured_gflops) if g is not None]
        return max(known) if known else None


def _cpuinfo_field(name: str) -> str | None:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith(name):
                return line.partition(":")[2].strip()
    except OSError:
        return None
    return None


def time_matmul(device: torch.device, dtype: torch.dtype, size: int, runs: int, warmup: int = 1) -> list[float]:
    """Milliseconds of ``runs`` (size x size) @ (size x size) products: CUDA events on a GPU (the
    device's own clock, no host round trip per run), wall clock with a sync on the CPU."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    with torch.inference_mode():
        if device.type != "cuda":
            return measure_latency(lambda: a @ b, device, warmup=warmup, runs=runs)
        with torch.cuda.device(device):
            for _ in range(warmup):
                a @ b
            pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(runs)]
            for start, end in pairs:
                start.record()
                a @ b
                end.record()
            torch.cuda.synchronize(device)
            return [start.elapsed_time(end) for start, end in pairs]


def _measure_matmul_gflops(device: torch.device, dtype: torch.dtype) -> float:
    if device.type == "cuda":
        size, runs = _GPU_MATMUL_SIZE, _GPU_MATMUL_RUNS
        times = time_matmul(device, dtype, size, runs, warmup=_GPU_MATMUL_WARMUP)
        return 2 * size**3 / (statistics.median(times) * 1e-3) / 1e9
    times = time_matmul(device, dtype, _MATMUL_SIZE, _MATMUL_RUNS)
    return 2 * _MATMUL_SIZE**3 / (min(times) * 1e-3) / 1e9


def _measure_cuda_fp32_like_convolutions(device: torch.device) -> tuple[float, bool]:
    """fp32 matmul peak with TF32 set as cuDNN's convolutions have it (the networks are convolutions)."""
    tf32 = bool(torch.backends.cudnn.allow_tf32)
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        return _measure_matmul_gflops(device, torch.float32), tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def peak_fraction(flops: float, latency_ms: float, peak: PeakEstimate) -> float | None:
    """Share of the device's peak a network reached: ``(flops / latency) / peak``, at most 1
    (None when the device's peak is unknown).

    The peak is the largest rate known for the device at this precision: the formula's, the matmul
    measured here and the network's own. A network faster than the measured matmul means the
    measurement was short of the peak (clock ramp, launch overhead), not that it beat the hardware.
    """
    if latency_ms <= 0 or peak.gflops is None:
        return None
    achieved = flops / (latency_ms * 1e-3) / 1e9
    return achieved / max(peak.gflops, achieved)


def device_peak(device: torch.device, precision: str, measure: bool = True) -> PeakEstimate:
    """Peak GFLOP/s of ``device`` at ``precision``.

    CPU, theoretical: ``cores x GHz x FLOPs/cycle`` with FLOPs/cycle = 512-bit FMA pipes per core x
    16 fp32 lanes x 2 (multiply + add) x products per lane (1 fp32, 2 bf16, 4 int8 VNNI); the
    clock is /proc/cpuinfo's "cpu MHz" (no turbo), the cores are the threads torch uses. GPUs have
    no formula here: their peak is measured, the median of 20 8192^2 matmuls timed with CUDA events
    (fp32 with TF32 as cuDNN's convolutions use it, reported in ``tf32``; fp16, bf16).
    """
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    if device.type == "cuda":
        measured, tf32 = None, None
        if measure and dtype is not None:
            if precision == "fp32":
                measured, tf32 = _measure_cuda_fp32_like_convolutions(device)
            else:
                measured = _measure_matmul_gflops(device, dtype)
        tf32_note = "" if tf32 is None else f", TF32 {'on' if tf32 else 'off'}"
        formula = f"median of {_GPU_MATMUL_RUNS} {_GPU_MATMUL_SIZE}^2 matmuls, CUDA events{tf32_note}"
        return PeakEstimate(precision, None, measured, formula, tf32)
    measured = _measure_matmul_gflops(device, dtype) if measure and dtype is not None else None
    if device.type != "cpu":
        return PeakEstimate(precision, None, measured, f"measured {_MATMUL_SIZE}^2 matmul")
    vendor = _cpuinfo_field("vendor_id") or "unknown"
    mhz_text = _cpuinfo_field("cpu MHz")
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512") or mhz_text is None:
        return PeakEstimate(precision, None, measured, "no AVX-512 formula for this CPU; measured matmul only")
    cores = torch.get_num_threads()
    ghz = float(mhz_text) / 1000.0
    pipes = _FMA_PIPES_512.get(vendor, 2.0)
    per_cycle = pipes * _AVX512_FP32_LANES * _FLOPS_PER_FMA * _PRODUCTS_PER_LANE[precision]
    formula = (
        f"{cores} cores x {ghz:.3f} GHz x {per_cycle:g} FLOP/cycle "
        f"({pipes:g} x 512-bit FMA/cycle [{vendor}] x 16 lanes x 2 x {_PRODUCTS_PER_LANE[precision]} per lane)"
    )
    return PeakEstimate(precision, cores * ghz * per_cycle, measured, formula)


def network_flops(network: str, height: int, width: int, num_layers: int = 18) -> int:
    """FLOPs of one forward pass at batch 1 (convolutions and matmuls, 2 per multiply-add),
    counted by ``torch.utils.flop_counter.FlopCounterMode``."""
    from torch.utils.flop_counter import FlopCounterMode

    model = DepthNet(num_layers) if network == "depth" else PoseNet(num_layers)
    images = torch.rand(1, 3, height, width)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(images) if network == "depth" else model(images, images)
    return int(counter.get_total_flops())


def latency_summary(times: list[float]) -> tuple[float, float]:
    """(p50, p95) in ms of a list of times (p95 interpolated; the max for fewer than 2 runs)."""
    if len(times) < 2:
        return times[0], times[0]
    return statistics.median(times), statistics.quantiles(times, n=20, method="inclusive")[18]


def measure_interleaved(calls: dict[str, Callable[[], object]], device: torch.device, warmup: int, runs: int) -> dict[str, list[float]]:
    """Milliseconds of each call, measured round-robin (one call of each per round).

    On a shared machine the load changes during a benchmark; alternating the candidates puts the
    same load on each, so their ratios are fair even when their absolute times drift.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    _synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            _synchronize(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return times
