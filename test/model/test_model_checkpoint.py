import json

import numpy as np
import pytest
import torch

from monodepth2_ros.errors import CheckpointError, MissingInputError
from monodepth2_ros.model.checkpoint import (
    DEPTH_DECODER_FILE,
    DEPTH_ENCODER_FILE,
    POSE_DECODER_FILE,
    POSE_ENCODER_FILE,
    CheckpointInfo,
    load_checkpoint,
    save_checkpoint,
    strip_wrapper_prefixes,
)
from monodepth2_ros.model.networks import DepthNet, PoseNet

FILES = (DEPTH_ENCODER_FILE, DEPTH_DECODER_FILE, POSE_ENCODER_FILE, POSE_DECODER_FILE)


def _manifest(shared_dir):
    return json.loads((shared_dir / "monodepth2_checkpoint_manifest.json").read_text())["variants"]


@pytest.mark.parametrize("variant, num_layers", [("resnet18", 18), ("resnet50", 50)])
def test_saved_checkpoint_has_exactly_the_manifest_keys_and_shapes(tmp_path, shared_dir, variant, num_layers):
    manifest = _manifest(shared_dir)[variant]
    folder = save_checkpoint(tmp_path / "ckpt", DepthNet(num_layers), PoseNet(num_layers), CheckpointInfo(num_layers=num_layers))
    for file_name in FILES:
        saved = torch.load(folder / file_name, weights_only=True)
        expected = manifest[file_name]
        assert list(saved) == list(expected), file_name
        for key, spec in expected.items():
            if "shape" in spec:
                assert list(saved[key].shape) == spec["shape"], key
                assert str(saved[key].dtype).removeprefix("torch.") == spec["dtype"], key
            else:
                assert type(saved[key]).__name__ == spec["python"], key


@pytest.mark.parametrize("variant, seed", [("resnet18", 1), ("resnet50", 2)])
def test_official_format_checkpoint_reproduces_reference_outputs(tmp_path, shared_dir, reference_checkpoint_writer, variant, seed):
    import cv2

    reference_checkpoint_writer(tmp_path, variant, seed)
    expected = np.load(shared_dir / "reference" / f"outputs_{variant}.npz")
    frames = []
    for name in ("frame0.png", "frame1.png"):
        bgr = cv2.imread(str(shared_dir / "reference" / name))
        frames.append(torch.from_numpy(bgr[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255.0)
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint.info == CheckpointInfo(192, 640, False, int(variant.removeprefix("resnet")), True)
    with torch.no_grad():
        disparities = checkpoint.depth_net(frames[0])
        axis_angle, translation = checkpoint.pose_net(frames[0], frames[1])
    for scale, disp in enumerate(disparities):
        np.testing.assert_allclose(disp.numpy(), expected[f"disp{scale}"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(axis_angle.numpy(), expected["axisangle"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(translation.numpy(), expected["translation"], atol=1e-5, rtol=0)


def test_save_then_load_round_trip_keeps_every_tensor(tmp_path):
    torch.manual_seed(3)
    depth_net, pose_net = DepthNet(18), PoseNet(18)
    save_checkpoint(tmp_path / "ckpt", depth_net, pose_net, CheckpointInfo(height=96, width=320, use_stereo=True))
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.info == CheckpointInfo(height=96, width=320, use_stereo=True, num_layers=18, has_pose=True)
    for ours, theirs in ((depth_net, loaded.depth_net), (pose_net, loaded.pose_net)):
        for (key, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            assert torch.equal(a, b), key


def test_fp16_checkpoint_loads_into_float32_networks(tmp_path):
    torch.manual_seed(4)
    depth_net = DepthNet(18)
    save_checkpoint(tmp_path / "half", depth_net, None, CheckpointInfo(), dtype=torch.float16)
    assert torch.load(tmp_path / "half" / DEPTH_DECODER_FILE, weights_only=True)["decoder.0.conv.conv.weight"].dtype == torch.float16
    loaded = load_checkpoint(tmp_path / "half")
    assert loaded.pose_net is None and not loaded.info.has_pose
    weight = loaded.depth_net.decoder.stages[0].reduce.conv.weight
    assert weight.dtype == torch.float32
    torch.testing.assert_close(weight, depth_net.decoder.stages[0].reduce.conv.weight, atol=1e-3, rtol=1e-3)


def test_resnet50_weights_into_a_resnet18_network_names_the_file_and_the_first_mismatch(tmp_path):
    save_checkpoint(tmp_path / "r50", DepthNet(50), None, CheckpointInfo(num_layers=50))
    # Pretend the encoder is a ResNet-18 one: swap in a ResNet-18 encoder but keep the ResNet-50 decoder.
    save_checkpoint(tmp_path / "r18", DepthNet(18), None, CheckpointInfo())
    (tmp_path / "r18" / DEPTH_DECODER_FILE).write_bytes((tmp_path / "r50" / DEPTH_DECODER_FILE).read_bytes())
    with pytest.raises(CheckpointError, match=r"depth\.pth does not fit the DepthDecoder: shape mismatch at stages\.0\.reduce\.conv\.weight: file has \[256, 2048, 3, 3\], network expects \[256, 512, 3, 3\]"):
        load_checkpoint(tmp_path / "r18")


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    save_checkpoint(tmp_path / "ckpt", DepthNet(18), PoseNet(18), CheckpointInfo())
    path = tmp_path / "ckpt" / POSE_DECODER_FILE
    state = torch.load(path, weights_only=True)
    state["net.9.weight"] = state.pop("net.3.weight")
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"pose\.pth.*1 missing keys \(first: head\.weight\); 1 unexpected keys \(first: net\.9\.weight\)"):
        load_checkpoint(tmp_path / "ckpt")


def test_truncated_checkpoint_file_gives_a_clear_error(tmp_path):
    save_checkpoint(tmp_path / "ckpt", DepthNet(18), None, CheckpointInfo())
    path = tmp_path / "ckpt" / DEPTH_ENCODER_FILE
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint file .*encoder\.pth .*truncated"):
        load_checkpoint(tmp_path / "ckpt")


def test_missing_folder_and_missing_file_raise_missing_input(tmp_path):
    with pytest.raises(MissingInputError, match=r"checkpoint folder not found: .*nowhere \(expected a folder with encoder\.pth"):
        load_checkpoint(tmp_path / "nowhere")
    save_checkpoint(tmp_path / "ckpt", DepthNet(18), None, CheckpointInfo())
    (tmp_path / "ckpt" / DEPTH_DECODER_FILE).unlink()
    with pytest.raises(MissingInputError, match=r"checkpoint file not found: .*depth\.pth"):
        load_checkpoint(tmp_path / "ckpt")
    with pytest.raises(MissingInputError, match=r"pose_encoder\.pth"):
        save_checkpoint(tmp_path / "depth_only", DepthNet(18), None, CheckpointInfo())
        load_checkpoint(tmp_path / "depth_only", load_pose=True)


def test_saving_over_an_existing_checkpoint_replaces_it_whole_and_leaves_no_temporaries(tmp_path):
    save_checkpoint(tmp_path / "ckpt", DepthNet(18), PoseNet(18), CheckpointInfo())
    save_checkpoint(tmp_path / "ckpt", DepthNet(18), None, CheckpointInfo(height=128, width=416))
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [DEPTH_DECODER_FILE, DEPTH_ENCODER_FILE]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    assert load_checkpoint(tmp_path / "ckpt").info.height == 128


def test_wrapper_prefixes_from_ddp_and_compile_are_stripped():
    state = {"module._orig_mod.encoder.conv1.weight": 1, "encoder.fc.bias": 2}
    assert strip_wrapper_prefixes(state) == {"encoder.conv1.weight": 1, "encoder.fc.bias": 2}


def test_written_checkpoints_are_readable_by_others(tmp_path):
    import stat

    folder = save_checkpoint(tmp_path / "ckpt", DepthNet(18), None, CheckpointInfo())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o644}
