"""Two processes on the gloo backend (``torchrun -m monodepth2_ros.training``) train one model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from monodepth2_ros.model.checkpoint import load_checkpoint
from monodepth2_ros.training.run_dir import STATE_FILE

SUBPROCESS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_two_process_gloo_run_writes_the_same_checkpoint_format(synthetic_bag, tmp_path):
    run_dir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "monodepth2_ros.training",
        "--bag", str(synthetic_bag), "--out", str(run_dir), "--device", "cpu",
        "--height", "64", "--width", "96", "--batch-size", "1", "--num-workers", "0", "--max-steps", "3",
        "--set", "data.val_fraction=0", "--set", "runtime.log_interval=1",
    ]  # fmt: skip
    finished = subprocess.run(
        command, env={**os.environ, **SUBPROCESS_ENV}, capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    checkpoint = load_checkpoint(run_dir / "last")
    assert (checkpoint.info.height, checkpoint.info.width) == (64, 96) and checkpoint.pose_net is not None
    assert {p.name for p in (run_dir / "last").iterdir()} == {
        "encoder.pth", "depth.pth", "pose_encoder.pth", "pose.pth", STATE_FILE
    }
    state = torch.load(run_dir / "last" / STATE_FILE, weights_only=True)
    assert (state["step"], state["world_size"]) == (3, 2)
    # Weights are saved without DDP's "module." prefix (load_checkpoint is strict about names).
    assert not any(key.startswith("module.") for key in torch.load(run_dir / "last" / "depth.pth", weights_only=True))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3]  # rank 0 logs alone
    assert next(r for r in records if r["kind"] == "data")["train"] == 8


def test_two_process_gloo_run_with_one_loss_scale(synthetic_bag, tmp_path):
    """With ``loss.scales=1`` the three coarser disparity heads get no gradient; DDP must not wait for them
    (it used to fail in the second step with "Expected to have finished reduction in the prior iteration")."""
    run_dir = tmp_path / "ddp_one_scale"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "monodepth2_ros.training",
        "--bag", str(synthetic_bag), "--out", str(run_dir), "--device", "cpu",
        "--height", "64", "--width", "96", "--batch-size", "1", "--num-workers", "0", "--max-steps", "2",
        "--set", "data.val_fraction=0", "--set", "loss.scales=1", "--set", "runtime.log_interval=1",
    ]  # fmt: skip
    finished = subprocess.run(
        command, env={**os.environ, **SUBPROCESS_ENV}, capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2]
    assert "photometric/scale0" in train[-1] and "photometric/scale1" not in train[-1]
    assert torch.load(run_dir / "last" / STATE_FILE, weights_only=True)["step"] == 2
