"""Process-group set-up for ``torchrun`` (DistributedDataParallel), and its no-op single-process form."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.device import resolve_device

__all__ = ["DistributedContext", "init_distributed", "shutdown_distributed"]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job (rank 0 of 1 without torchrun).

    Attributes:
        rank: global rank; rank 0 writes checkpoints and logs.
        world_size: number of processes.
        local_rank: rank on this machine (picks the GPU).
        device: the device this process trains on.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every process (so all of them take the same branch)."""
        if not self.enabled:
            return bool(flag)
        tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self._reduce_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return bool(tensor.item())

    def mean(self, value: float) -> float:
        """Mean of a number over all processes."""
        if not self.enabled:
            return float(value)
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self._reduce_device())
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def _reduce_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def init_distributed(device_spec: str) -> DistributedContext:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1), pick the device.

    Under torchrun with CUDA each process takes GPU ``LOCAL_RANK`` and the NCCL backend; on CPUs
    the processes use gloo.

    Raises:
        ConfigError: the device spec is invalid, or names CUDA where there is none.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext(device=resolve_device(device_spec))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    requested = resolve_device(device_spec)
    if requested.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"local rank {local_rank} has no GPU: {torch.cuda.device_count()} CUDA device(s) for "
                f"{world_size} processes; lower --nproc_per_node"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed(context: DistributedContext) -> None:
    """Leave the process group (if this process joined one)."""
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
