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
