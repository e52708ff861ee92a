"""Kill ``monodepth2 train`` with SIGKILL after its first checkpoint; the same command resumes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch

from monodepth2_ros.model.checkpoint import load_checkpoint
from monodepth2_ros.training.run_dir import STATE_FILE

MAX_STEPS = 8
INTERVAL = 3
START_TIMEOUT_S = 240
# One thread per process: OpenMP threads waiting on each other are slow on a shared CPU.
SUBPROCESS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _command(bag, run_dir) -> list[str]:
    return [
        sys.executable, "-m", "monodepth2_ros", "train",
        "--bag", str(bag), "--out", str(run_dir),
        "--height", "64", "--width", "96", "--batch-size", "2", "--num-workers", "0", "--device", "cpu",
        "--max-steps", str(MAX_STEPS), "--checkpoint-interval", str(INTERVAL),
        "--set", "data.val_fraction=0", "--set", "runtime.log_interval=1",
    ]  # fmt: skip


def _records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_killed_run_resumes_from_its_last_checkpoint(synthetic_bag, tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, **SUBPROCESS_ENV}
    process = subprocess.Popen(_command(synthetic_bag, run_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state_file = run_dir / "last" / STATE_FILE
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while not state_file.exists():
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    saved_step = torch.load(state_file, weights_only=True)["step"]
    assert saved_step % INTERVAL == 0 or saved_step % 4 == 0  # an interval or an epoch end (4 steps)
    steps_before_kill = max(r["step"] for r in _records(run_dir) if r["kind"] == "train")
    assert steps_before_kill - saved_step < INTERVAL  # at most one interval is lost

    finished = subprocess.run(_command(synthetic_bag, run_dir), env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert f"resumed from step {saved_step}" in finished.stdout

    records = _records(run_dir)
    resume_at = next(i for i, r in enumerate(records) if r["kind"] == "resume")
    assert records[resume_at]["step"] == saved_step
    after = [r["step"] for r in records[resume_at:] if r["kind"] == "train"]
    assert after == list(range(saved_step + 1, MAX_STEPS + 1))
    state = torch.load(state_file, weights_only=True)
    assert state["step"] == MAX_STEPS
    assert load_checkpoint(run_dir / "last").info.width == 96


def test_a_run_resumed_with_more_epochs_decays_its_rate_on_the_new_schedule(synthetic_bag, tmp_path):
    from monodepth2_ros.cli.main import main

    run_dir = tmp_path / "run"
    common = [
        "train", "--bag", str(synthetic_bag), "--out", str(run_dir), "--height", "64", "--width", "96",
        "--batch-size", "2", "--num-workers", "0", "--device", "cpu", "--lr", "1e-4",
        "--set", "data.val_fraction=0", "--set", "runtime.log_interval=1",
    ]  # fmt: skip
    assert main([*common, "--epochs", "1"]) == 0  # planned decay from epoch 1: after this run's only epoch
    assert main([*common, "--epochs", "4"]) == 0  # decay from epoch 3 now
    rates: dict[int, set[float]] = {}
    for record in _records(run_dir):
        if record["kind"] == "train":
            rates.setdefault(record["epoch"], set()).add(round(record["lr"], 12))
    assert rates == {0: {1e-4}, 1: {1e-4}, 2: {1e-4}, 3: {1e-5}}
