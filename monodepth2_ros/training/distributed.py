"""Process-group set-up for ``torchrun`` (DistributedDataParallel), and its no-op single-process form."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.device import make_current, resolve_device

__all__ = [
    "DistributedContext",
    "PeerFailedError",
    "SOLO_WORK_TIMEOUT",
    "init_distributed",
    "rank_device",
    "shutdown_distributed",
]

# How long the other ranks wait while rank 0 works alone (decoding a large bag into the frame cache,
# validating). NCCL's default of 10 minutes is far too short for the first and would kill the job.
SOLO_WORK_TIMEOUT = timedelta(hours=6)

_T = TypeVar("_T")


class PeerFailedError(RuntimeError):
    """Rank 0 failed in work the other ranks were waiting for (its own error is in its log)."""


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job (rank 0 of 1 without torchrun).

    Attributes:
        rank: global rank; rank 0 writes checkpoints and logs.
        world_size: number of processes.
        local_rank: rank on this machine (picks the GPU).
        device: the device this process trains on.
        control_group: a gloo group with a long timeout for waiting on rank 0's solo work (None
            without a process group).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    control_group: Any = field(default=None, compare=False, repr=False)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process, on the long-timeout gloo group (no GPU guess, no NCCL timeout)."""
        if self.enabled:
            dist.barrier(group=self.control_group)

    def run_on_main(self, work: Callable[[], _T], what: str) -> _T | None:
        """Rank 0 runs ``work`` while the others wait; returns its result on rank 0, None elsewhere.

        The outcome is broadcast on the gloo group, so a failure on rank 0 ends the other ranks with
        :class:`PeerFailedError` instead of leaving them blocked until a timeout.

        Raises:
            PeerFailedError: on ranks > 0, when ``work`` raised on rank 0 (which re-raises it).
        """
        if not self.enabled:
            return work()
        if self.is_main:
            try:
                result = work()
            except BaseException:
                self._broadcast_outcome(False)
                raise
            self._broadcast_outcome(True)
            return result
        if not self._broadcast_outcome(False):
            raise PeerFailedError(f"rank 0 failed while {what}; see its error above")
        return None

    def _broadcast_outcome(self, ok: bool) -> bool:
        flag = torch.tensor([1 if ok else 0], dtype=torch.int32)
        dist.broadcast(flag, src=0, group=self.control_group)
        return bool(flag.item())

    def all_true_tensor(self, flag: torch.Tensor) -> torch.Tensor:
        """``flag`` (a 0-dim bool tensor) AND-ed over every process, without reading it on the host."""
        if not self.enabled:
            return flag
        tensor = flag.reshape(1).to(device=self._reduce_device(), dtype=torch.int32)
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return tensor[0].bool()

    def all_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every process (so all of them take the same branch)."""
        if not self.enabled:
            return bool(flag)
        return bool(self.all_true_tensor(torch.tensor(bool(flag))).item())

    def mean(self, value: float) -> float:
        """Mean of a number over all processes."""
        if not self.enabled:
            return float(value)
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self._reduce_device())
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def _reduce_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def rank_device(local_rank: int, device_count: int, visible_devices: str | None, processes: int) -> torch.device:
    """The GPU of local rank ``local_rank`` when training on CUDA.

    Each process takes GPU ``local_rank``; a launcher that gives every process its own GPU through
    ``CUDA_VISIBLE_DEVICES`` (SLURM, Kubernetes device plugins) leaves one visible device, ``cuda:0``.

    Args:
        local_rank: ``LOCAL_RANK``.
        device_count: ``torch.cuda.device_count()``.
        visible_devices: ``CUDA_VISIBLE_DEVICES`` (None when unset).
        processes: processes on this machine (``LOCAL_WORLD_SIZE``), for the error message.
    Raises:
        ConfigError: this rank has no GPU of its own.
    """
    if 0 <= local_rank < device_count and device_count > 1:
        return torch.device("cuda", local_rank)
    pinned_by_launcher = bool(visible_devices and visible_devices.strip())
    if device_count == 1 and (local_rank == 0 or pinned_by_launcher):
        return torch.device("cuda", 0)
    raise ConfigError(
        f"local rank {local_rank} has no GPU: {device_count} CUDA device(s) visible for {processes} processes; "
        "lower --nproc_per_node, or give each process its own GPU with CUDA_VISIBLE_DEVICES"
    )


def init_distributed(device_spec: str) -> DistributedContext:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1), pick the device.

    Under torchrun with CUDA each process takes its GPU (:func:`rank_device`) and the NCCL backend;
    on CPUs the processes use gloo. A CUDA device is made the current one, so pinned host memory
    and the DataLoader's pinning thread use its context rather than creating one on GPU 0.

    Raises:
        ConfigError: the device spec is invalid, or names CUDA where there is none.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        device = resolve_device(device_spec)
        make_current(device)
        return DistributedContext(device=device)
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    requested = resolve_device(device_spec)
    if requested.type == "cuda":
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
        device = rank_device(local_rank, torch.cuda.device_count(), os.environ.get("CUDA_VISIBLE_DEVICES"), local_processes)
        make_current(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        init_options: dict[str, Any] = {"backend": backend}
        if backend == "nccl":
            init_options["device_id"] = device  # binds the communicator to this rank's GPU
        dist.init_process_group(**init_options)
    control_group = dist.new_group(backend="gloo", timeout=SOLO_WORK_TIMEOUT)
    return DistributedContext(
        rank=rank, world_size=world_size, local_rank=local_rank, device=device, control_group=control_group
    )


def shutdown_distributed(context: DistributedContext) -> None:
    """Leave the process group (if this process joined one)."""
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
