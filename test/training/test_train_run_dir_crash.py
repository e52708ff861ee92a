"""A checkpoint rotation that dies part-way (as under SIGKILL) leaves only folders that load."""

from __future__ import annotations

import shutil

import pytest
import torch

from monodepth2_ros.model.checkpoint import CheckpointInfo, load_checkpoint
from monodepth2_ros.model.networks import DepthNet
from monodepth2_ros.training import run_dir
from monodepth2_ros.training.run_dir import RunPaths, find_resume_point, write_checkpoint


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler catches it."""


def _state(step: int) -> dict:
    return {"step": step, "epoch": 0, "batch_in_epoch": step, "optimizer": {}, "scheduler": {}, "rng": {}}


def test_a_kill_while_the_old_previous_is_deleted_leaves_loadable_folders(tmp_path, monkeypatch):
    torch.manual_seed(0)
    paths = RunPaths(tmp_path)
    net, info = DepthNet(18), CheckpointInfo(height=64, width=96)
    write_checkpoint(paths, net, None, info, _state(1))
    write_checkpoint(paths, net, None, info, _state(2))
    real_rmtree = shutil.rmtree

    def rmtree_killed_half_way(path, *args, **kwargs):
        files = sorted(p for p in path.iterdir()) if path.is_dir() else []
        if files and any(f.suffix == ".pth" for f in files):
            files[0].unlink()  # one file gone, then the process dies
            raise _Killed
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(run_dir.shutil, "rmtree", rmtree_killed_half_way)
    with pytest.raises(_Killed):
        write_checkpoint(paths, net, None, info, _state(3))
    monkeypatch.undo()
    for folder in (paths.last, paths.previous):
        if folder.exists():
            load_checkpoint(folder)  # raises on a half-deleted folder
    assert find_resume_point(paths).state["step"] == 3
    write_checkpoint(paths, net, None, info, _state(4))  # the next write clears what the kill left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "previous"]
    assert find_resume_point(paths).state["step"] == 4
