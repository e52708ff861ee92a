"""Device choice per rank, and rank 0's solo work seen from the other ranks (two gloo processes)."""

from __future__ import annotations

import multiprocessing
import os
import socket

import pytest
import torch

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.training.distributed import DistributedContext, rank_device


def test_each_local_rank_takes_its_own_gpu():
    assert rank_device(0, 4, None, 4) == torch.device("cuda", 0)
    assert rank_device(3, 4, None, 4) == torch.device("cuda", 3)
    assert rank_device(1, 2, "0,1", 2) == torch.device("cuda", 1)


def test_a_launcher_that_pins_one_gpu_per_process_gives_cuda_0():
    # SLURM / Kubernetes: CUDA_VISIBLE_DEVICES=<its GPU> in each process, so each sees one device.
    assert rank_device(1, 1, "1", 2) == torch.device("cuda", 0)
    assert rank_device(7, 1, "GPU-5d1b", 8) == torch.device("cuda", 0)
    assert rank_device(0, 1, None, 1) == torch.device("cuda", 0)


def test_more_processes_than_gpus_is_refused_with_the_remedy():
    with pytest.raises(ConfigError, match=r"local rank 1 has no GPU: 1 CUDA device\(s\) visible for 2 processes.*CUDA_VISIBLE_DEVICES"):
        rank_device(1, 1, None, 2)
    with pytest.raises(ConfigError, match="local rank 2 has no GPU"):
        rank_device(2, 2, "0,1", 3)
    with pytest.raises(ConfigError):
        rank_device(0, 0, None, 1)


def test_single_process_runs_the_work_itself():
    assert DistributedContext().run_on_main(lambda: 42, "answering") == 42


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_main(rank: int, port: int, fail_on_main: bool, results) -> None:
    os.environ.update(
        {"WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    )
    from monodepth2_ros.training.distributed import PeerFailedError, init_distributed, shutdown_distributed

    context = init_distributed("cpu")
    try:

        def work() -> str:
            if fail_on_main:
                raise ValueError("cache broken")
            return "built"

        try:
            outcome = repr(context.run_on_main(work, "building the cache"))
        except PeerFailedError as err:
            outcome = f"PeerFailedError: {err}"
        except ValueError as err:
            outcome = f"ValueError: {err}"
        # The group still works after the broadcast: both ranks agree on a flag.
        agreed = context.all_true(rank == 0 or not fail_on_main)
        results.put((rank, outcome, agreed))
    finally:
        shutdown_distributed(context)


def _run_two_ranks(fail_on_main: bool) -> dict[int, tuple[str, bool]]:
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    port = _free_port()
    processes = [ctx.Process(target=_rank_main, args=(rank, port, fail_on_main, results)) for rank in (0, 1)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    for process in processes:
        if process.is_alive():  # pragma: no cover - a hang is the failure this test is about
            process.kill()
    assert all(p.exitcode == 0 for p in processes), [p.exitcode for p in processes]
    return {rank: (outcome, agreed) for rank, outcome, agreed in (results.get(timeout=5) for _ in processes)}


def test_a_failure_of_rank_0_ends_the_waiting_rank_instead_of_hanging():
    outcomes = _run_two_ranks(fail_on_main=True)
    assert outcomes[0] == ("ValueError: cache broken", False)
    assert outcomes[1] == ("PeerFailedError: rank 0 failed while building the cache; see its error above", False)


def test_rank_0_work_returns_its_result_on_rank_0_only():
    outcomes = _run_two_ranks(fail_on_main=False)
    assert outcomes == {0: ("'built'", True), 1: ("None", True)}
