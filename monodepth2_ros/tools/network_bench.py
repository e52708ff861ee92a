"""Latency of the bare networks, measured the same way for every backend and device."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from monodepth2_ros.inference.device import autocast_context, resolve_device
from monodepth2_ros.model.networks import DepthNet, PoseNet

__all__ = ["LatencyResult", "measure_latency", "network_latency"]


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


@dataclass(frozen=True)
class PeakEstimate:
    """The device's arithmetic peak for one precision.

    Attributes:
        precision: fp32, bf16, fp16 or int8.
        theoretical_gflops: from the formula in ``formula`` (None where unknown, e.g. GPUs).
        measured_gflops: a large matmul timed here (None when not measured for this precision).
        formula: how ``theoretical_gflops`` was obtained, with its assumptions.
    """

    precision: str
    theoretical_gflops: float | None
    measured_gflops: float | None
    formula: str

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


def _measure_matmul_gflops(device: torch.device, dtype: torch.dtype) -> float:
    a = torch.randn(_MATMUL_SIZE, _MATMUL_SIZE, device=device).to(dtype)
    b = torch.randn(_MATMUL_SIZE, _MATMUL_SIZE, device=device).to(dtype)
    with torch.inference_mode():
        times = measure_latency(lambda: a @ b, device, warmup=1, runs=_MATMUL_RUNS)
    return 2 * _MATMUL_SIZE**3 / (min(times) * 1e-3) / 1e9


def device_peak(device: torch.device, precision: str, measure: bool = True) -> PeakEstimate:
    """Peak GFLOP/s of ``device`` at ``precision``.

    CPU, theoretical: ``cores x GHz x FLOPs/cycle`` with FLOPs/cycle = 512-bit FMA pipes per core x
    16 fp32 lanes x 2 (multiply + add) x products per lane (1 fp32, 2 bf16, 4 int8 VNNI); the
    clock is /proc/cpuinfo's "cpu MHz" (no turbo), the cores are the threads torch uses. GPUs have
    no formula here: their peak is measured (a 1024^2 matmul, fp32/fp16/bf16).
    """
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
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
