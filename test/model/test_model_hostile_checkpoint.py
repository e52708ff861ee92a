"""Hostile checkpoint files are refused with a clear error: no code runs, nothing huge is read."""

from __future__ import annotations

import pickle
import resource

import pytest
import torch

from monodepth2_ros.errors import CheckpointError
from monodepth2_ros.model.checkpoint import (
    DEPTH_DECODER_FILE,
    DEPTH_ENCODER_FILE,
    POSE_DECODER_FILE,
    CheckpointInfo,
    load_checkpoint,
    save_checkpoint,
)
from monodepth2_ros.model.networks import DepthNet, PoseNet


class _WritesAFile:
    """Unpickling this would create ``path``: the proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def good_folder(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("good") / "weights"
    return save_checkpoint(folder, DepthNet(18), PoseNet(18), CheckpointInfo(height=64, width=96))


def _copy(good_folder, tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    for file in good_folder.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    return folder


@pytest.mark.parametrize("writer", ["torch_zip", "torch_legacy", "plain_pickle"])
def test_a_checkpoint_whose_pickle_would_run_code_is_refused_and_nothing_runs(good_folder, tmp_path, writer):
    folder = _copy(good_folder, tmp_path)
    marker = tmp_path / "code_ran"
    state = torch.load(folder / DEPTH_DECODER_FILE, weights_only=True)
    state["payload"] = _WritesAFile(str(marker))
    target = folder / DEPTH_DECODER_FILE
    if writer == "plain_pickle":
        target.write_bytes(pickle.dumps(state, protocol=2))
    else:
        torch.save(state, target, _use_new_zipfile_serialization=writer == "torch_zip")
    with pytest.raises(CheckpointError, match=DEPTH_DECODER_FILE):
        load_checkpoint(folder)
    assert not marker.exists()


def test_right_names_with_wrong_shapes_are_refused_naming_the_tensor(good_folder, tmp_path):
    folder = _copy(good_folder, tmp_path)
    state = torch.load(folder / POSE_DECODER_FILE, weights_only=True)
    key = next(k for k, v in state.items() if v.ndim == 4)
    state[key] = state[key].transpose(0, 1).contiguous()
    torch.save(state, folder / POSE_DECODER_FILE)
    with pytest.raises(CheckpointError, match=rf"{POSE_DECODER_FILE}.*shape mismatch at"):
        load_checkpoint(folder)


@pytest.mark.parametrize("dtype", [torch.int32, torch.bool, torch.complex64])
def test_right_names_and_shapes_with_a_non_float_dtype_are_refused(good_folder, tmp_path, dtype):
    folder = _copy(good_folder, tmp_path)
    state = torch.load(folder / DEPTH_DECODER_FILE, weights_only=True)
    state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
    torch.save(state, folder / DEPTH_DECODER_FILE)
    with pytest.raises(CheckpointError, match="dtype mismatch at"):
        load_checkpoint(folder)


def test_a_non_tensor_value_under_a_tensor_name_is_refused(good_folder, tmp_path):
    folder = _copy(good_folder, tmp_path)
    state = torch.load(folder / DEPTH_DECODER_FILE, weights_only=True)
    state[next(iter(state))] = "not a tensor"
    torch.save(state, folder / DEPTH_DECODER_FILE)
    with pytest.raises(CheckpointError, match="not tensors"):
        load_checkpoint(folder)


def test_a_float16_checkpoint_still_loads(good_folder, tmp_path):
    folder = save_checkpoint(tmp_path / "half", load_checkpoint(good_folder).depth_net, None, CheckpointInfo(64, 96), dtype=torch.float16)
    assert load_checkpoint(folder).info.width == 96


@pytest.mark.parametrize("size", [10 * 2**30, 2**20])
def test_a_sparse_or_zero_filled_encoder_file_is_refused_at_once(good_folder, tmp_path, size):
    folder = _copy(good_folder, tmp_path)
    encoder = folder / DEPTH_ENCODER_FILE
    encoder.unlink()
    with encoder.open("wb") as handle:
        handle.truncate(size)  # sparse: no disk used, only a claimed size
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="GiB; refused|not a PyTorch checkpoint"):
        load_checkpoint(folder)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024
