"""The OpenVINO backend at a tiny size: fp32 matches eager, bf16 close, int8 quantised once and cached."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monodepth2_ros.errors import ConfigError, MissingInputError
from monodepth2_ros.inference import DepthEstimator, InferenceConfig, PoseEstimator
from monodepth2_ros.inference.backends import build_runner, resolve_backend
from monodepth2_ros.model.checkpoint import load_checkpoint

pytest.importorskip("openvino")

CPU = torch.device("cpu")
SIZE = (64, 96)


@pytest.fixture(scope="module")
def nets(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint, load_pose=True)
    return checkpoint.depth_net.eval(), checkpoint.pose_net.eval()


def test_fp32_matches_eager_at_any_batch_and_bf16_stays_close(nets):
    depth_net, pose_net = nets
    torch.manual_seed(1)
    images = torch.rand(3, 3, *SIZE)
    eager_depth = build_runner("depth", depth_net, resolve_backend("eager", "fp32", CPU), SIZE)
    eager_pose = build_runner("pose", pose_net, resolve_backend("eager", "fp32", CPU), SIZE)
    choice = resolve_backend("openvino", "fp32", CPU)
    assert not choice.fell_back
    depth = build_runner("depth", depth_net, choice, SIZE, threads=1)
    pose = build_runner("pose", pose_net, choice, SIZE, threads=1)
    for batch in (1, 3):  # batch 1 runs the static latency model, 3 the dynamic one
        x = images[:batch]
        assert (depth(x)[0] - eager_depth(x)[0]).abs().max() < 1e-4
        out, reference = pose(x, x.flip(0)), eager_pose(x, x.flip(0))
        assert out[0].shape == (batch, 2, 1, 3)
        assert max(float((a - b).abs().max()) for a, b in zip(out, reference)) < 1e-3
    bf16 = build_runner("depth", depth_net, resolve_backend("openvino", "bf16", CPU), SIZE, threads=1)
    assert (bf16(images[:1])[0] - eager_depth(images[:1])[0]).abs().max() < 0.03


def test_int8_is_quantised_once_then_read_from_the_cache(nets, tmp_path, monkeypatch):
    pytest.importorskip("nncf")
    import nncf

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _, pose_net = nets
    frames = [np.random.default_rng(i).integers(0, 255, (*SIZE, 3), dtype=np.uint8) for i in range(3)]
    choice = resolve_backend("openvino", "int8", CPU)
    first = build_runner("pose", pose_net, choice, SIZE, calibration_frames=frames, threads=1)
    cached = list((tmp_path / "monodepth2_ros" / "openvino").glob("pose.*.int8.xml"))
    assert len(cached) == 1 and cached[0].with_suffix(".bin").is_file()

    def no_quantisation(*args, **kwargs):
        raise AssertionError("the cached int8 model should have been used")

    monkeypatch.setattr(nncf, "quantize", no_quantisation)
    second = build_runner("pose", pose_net, choice, SIZE, calibration_frames=frames, threads=1)
    x = torch.rand(1, 3, *SIZE)
    assert all(torch.equal(a, b) for a, b in zip(first(x, x), second(x, x)))


def test_estimators_run_openvino_and_say_what_they_lack(tiny_checkpoint, tmp_path):
    config = InferenceConfig(device="cpu", backend="openvino", precision="fp32")
    rgb = np.random.default_rng(0).integers(0, 255, (80, 120, 3), dtype=np.uint8)
    reference = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(rgb).depth
    depth = DepthEstimator(tiny_checkpoint, config)
    assert depth.backend.label == "openvino fp32"
    assert np.allclose(depth.estimate(rgb).depth, reference, rtol=1e-3)
    pose = PoseEstimator(tiny_checkpoint, config)
    motions = pose.estimate_pairs([(rgb, rgb[::-1].copy()), (rgb[::-1].copy(), rgb)])
    assert len(motions) == 2 and all(np.isfinite(m.T_b_a).all() for m in motions)
    with pytest.raises(MissingInputError, match="depth.onnx"):
        DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", backend="openvino", onnx_dir=str(tmp_path)))
    with pytest.raises(ConfigError, match="auto"):
        DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", backend="auto"))
