"""scripts/bundle_model.py: fp16 official-format folders, the pose network optionally from another run."""

import subprocess
import sys
from pathlib import Path

import torch
import yaml

from monodepth2_ros.model.checkpoint import CheckpointInfo, save_checkpoint
from monodepth2_ros.model.networks import DepthNet, PoseNet

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bundle_model.py"


def _run_folder(root: Path, seed: int, lr: float) -> Path:
    torch.manual_seed(seed)
    best = root / "best"
    save_checkpoint(best, DepthNet(18), PoseNet(18), CheckpointInfo(height=64, width=96))
    (root / "config.yaml").write_text(yaml.safe_dump({"optim": {"lr": lr}, "data": {"bags": [str(root / "drive")]}}))
    return best


def _bundle(*args) -> None:
    subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], check=True, capture_output=True, text=True)


def _assert_bundled_from(dest: Path, name: str, source: Path) -> None:
    bundled, original = torch.load(dest / name, weights_only=True), torch.load(source / name, weights_only=True)
    assert list(bundled) == list(original), name
    for key, value in original.items():
        if not isinstance(value, torch.Tensor):  # the encoder's height, width, use_stereo
            assert bundled[key] == value, key
        elif value.is_floating_point():
            assert bundled[key].dtype == torch.float16, key
            torch.testing.assert_close(bundled[key].float(), value, atol=2e-3, rtol=1e-3)
        else:
            assert torch.equal(bundled[key], value), key


def test_pose_from_takes_the_pose_network_of_the_other_run_and_keeps_both_settings(tmp_path):
    depth_run = _run_folder(tmp_path / "rooms", seed=0, lr=1e-4)
    pose_run = _run_folder(tmp_path / "all", seed=1, lr=5e-5)
    dest = tmp_path / "bundled"
    dest.mkdir()
    (dest / "MODEL_CARD.md").write_text("card")

    _bundle(depth_run, dest, "--pose-from", pose_run)

    for name, source in [("encoder.pth", depth_run), ("depth.pth", depth_run), ("pose_encoder.pth", pose_run), ("pose.pth", pose_run)]:
        _assert_bundled_from(dest, name, source)
    assert (dest / "MODEL_CARD.md").read_text() == "card"
    assert yaml.safe_load((dest / "train_config.yaml").read_text())["optim"]["lr"] == 1e-4
    pose_settings = yaml.safe_load((dest / "pose_train_config.yaml").read_text())
    assert pose_settings["optim"]["lr"] == 5e-5
    assert str(tmp_path) not in (dest / "pose_train_config.yaml").read_text()  # no machine paths

    _bundle(depth_run, dest)  # bundled again from one run: the stale pose settings go
    assert not (dest / "pose_train_config.yaml").exists()
    _assert_bundled_from(dest, "pose_encoder.pth", depth_run)
    _assert_bundled_from(dest, "pose.pth", depth_run)
