"""Kill-anywhere training, scaled down: three SIGKILLs (in the cache build, in a checkpoint write, at
a random instant), the same command re-run each time, and a full disk while writing a checkpoint."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from monodepth2_ros.cli.main import main as cli_main
from monodepth2_ros.model import checkpoint
from monodepth2_ros.model.checkpoint import load_checkpoint
from monodepth2_ros.synthetic.bag import write_drive_bag
from monodepth2_ros.synthetic.config import SynthConfig
from monodepth2_ros.tools.kill_training import KillSettings, run_kill_training, train_command


@pytest.fixture(scope="module")
def synthetic_bag(tmp_path_factory):
    """A 10-frame MCAP drive at 128x96 (the training tests' size)."""
    return write_drive_bag(SynthConfig(frames=10, width=128, height=96), tmp_path_factory.mktemp("drive") / "drive", "mcap")


def test_a_run_killed_three_times_resumes_each_time_and_ends_equal_to_an_uninterrupted_one(tmp_path, synthetic_bag):
    settings = KillSettings(kills=3, max_steps=6, checkpoint_interval=2, check_enospc=False)
    result = run_kill_training(settings, tmp_path, bag=synthetic_bag)
    assert [a["kind"] for a in result["attempts"]][:2] == ["cache", "checkpoint"]
    assert result["kills_delivered"] == len(result["attempts"]) == 3
    for attempt in result["attempts"]:
        assert attempt["unloadable"] == [] and attempt["resume_error"] is None, attempt
        assert attempt["steps_lost"] <= settings.checkpoint_interval, attempt
    assert result["final_step"] == settings.max_steps
    assert result["max_weight_difference"] == 0.0  # fp32 on a CPU: resuming replays the same arithmetic
    assert result["leftovers_at_end"] == []
    assert result["passed"]


def test_a_full_disk_while_writing_a_checkpoint_is_a_clear_error_and_keeps_the_last_one(tmp_path, synthetic_bag, monkeypatch, capsys):
    settings = KillSettings(max_steps=4, checkpoint_interval=2)
    run_dir = tmp_path / "run"
    real_save = torch.save
    calls = []

    def save_until_the_disk_is_full(obj, target, *args, **kwargs):
        calls.append(1)
        if len(calls) > 5:  # the first checkpoint's five files fit, the second one's do not
            target.write(b"\0" * 1024)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, target, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", save_until_the_disk_is_full)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cli_main(train_command(settings, synthetic_bag, run_dir)[3:]) == 1
    error = capsys.readouterr().err
    assert "No space left on device" in error and "last/ are kept" in error
    monkeypatch.undo()
    assert torch.load(run_dir / "last" / "training_state.pt", weights_only=True)["step"] == 2
    assert load_checkpoint(run_dir / "last").info.width == settings.width
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []  # no half-written staging left
