"""Choosing the device and the numeric precision a network runs in."""

from __future__ import annotations

import contextlib
import re

import torch

from monodepth2_ros.errors import ConfigError

__all__ = ["resolve_device", "make_current", "cuda_device_guard", "resolve_precision", "autocast_context", "PRECISIONS"]

PRECISIONS = ("fp32", "fp16", "bf16")
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(spec: str) -> torch.device:
    """``auto`` (GPU 0 when CUDA is present, else CPU), ``cpu``, ``cuda`` (GPU 0) or ``cuda:N``, checked now.

    A CUDA device always carries its index, so it can be made current (:func:`make_current`).

    Raises:
        ConfigError: the spec is malformed or names a GPU this machine does not have.
    """
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if match is None:
        raise ConfigError(f"device '{spec}' is not one of auto, cpu, cuda, cuda:N")
    if not torch.cuda.is_available():
        raise ConfigError(f"device '{spec}' requested but CUDA is not available here; use 'auto' or 'cpu'")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise ConfigError(f"device '{spec}' requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return torch.device("cuda", index)


def make_current(device: torch.device) -> None:
    """Make a CUDA device the calling thread's current one (nothing for the CPU).

    The current device is per thread, and work that names no device (pinned host buffers, new
    streams, the DataLoader's pinning thread, CUDA graph capture) goes to it: left at GPU 0, a
    process that runs on ``cuda:1`` would also create a context and allocate on GPU 0.
    """
    if device.type == "cuda":
        torch.cuda.set_device(device.index if device.index is not None else 0)


def cuda_device_guard(device: torch.device):
    """``torch.cuda.device(device)`` for a CUDA device (current for the block, restored after), else a no-op."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return torch.cuda.device(device.index if device.index is not None else 0)


def resolve_precision(precision: str, device: torch.device) -> str:
    """Validate a precision for a device. fp16 on the CPU is refused (slow and lossy there)."""
    precision = (precision or "fp32").strip().lower()
    if precision not in PRECISIONS:
        raise ConfigError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("precision 'fp16' needs a CUDA device; on the CPU use 'bf16' or 'fp32'")
    return precision


def autocast_context(device: torch.device, precision: str):
    """A context running the networks in ``precision`` (autocast), or a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])
