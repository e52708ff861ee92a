"""ONNX export round trip, the onnxruntime backend and int8 quantisation accuracy (tiny sizes)."""

import numpy as np
import pytest
import torch

from monodepth2_ros.cli.main import main
from monodepth2_ros.errors import ConfigError
from monodepth2_ros.evaluation.depth_metrics import evaluate_depth_frame
from monodepth2_ros.inference import DepthEstimator, InferenceConfig, PoseEstimator
from monodepth2_ros.inference.backends import OnnxRuntimeRunner, resolve_backend
from monodepth2_ros.inference.export import (
    DEPTH_INPUTS,
    DEPTH_OUTPUTS,
    POSE_INPUTS,
    POSE_OUTPUTS,
    export_depth_onnx,
    export_pose_onnx,
    run_onnx,
)
from monodepth2_ros.model.checkpoint import load_checkpoint
from monodepth2_ros.model.geometry import disp_to_depth

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

CPU = torch.device("cpu")
# Stated int8 tolerances (random-weight tiny network, synthetic frames): sigmoid disparity within
# 0.02 of fp32 (about 5 int8 steps of its activation range), GT abs_rel within 0.005 of fp32.
INT8_MAX_DISP_DIFF = 0.02
INT8_MAX_ABS_REL_CHANGE = 0.005


@pytest.fixture(scope="module")
def synthetic_drive():
    from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive

    drive = SyntheticDrive(SynthConfig(frames=3, width=96, height=64, seed=5))
    return list(drive.iter_frames())


def test_onnx_export_round_trip_has_opset_17_a_dynamic_batch_and_matches_pytorch(tiny_checkpoint, tmp_path):
    checkpoint = load_checkpoint(tiny_checkpoint)
    depth_path = export_depth_onnx(checkpoint.depth_net, tmp_path / "depth.onnx", 64, 96)
    pose_path = export_pose_onnx(checkpoint.pose_net, tmp_path / "pose.onnx", 64, 96)
    model = onnx.load(depth_path)
    onnx.checker.check_model(model)
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 17
    assert {node.op_type for node in model.graph.node} >= {"Pad", "Resize", "Conv", "Sigmoid"}
    assert [o.name for o in model.graph.output] == list(DEPTH_OUTPUTS)
    torch.manual_seed(0)
    images = torch.rand(3, 3, 64, 96)  # batch 3: the batch axis is dynamic
    with torch.inference_mode():
        expected = checkpoint.depth_net(images)[0].numpy()
        axis_angle, translation = checkpoint.pose_net(images[:2], images[1:])
    (disparity,) = run_onnx(depth_path, {"image": images.numpy()})
    assert disparity.shape == (3, 1, 64, 96)
    assert np.abs(disparity - expected).max() < 1e-4
    onnx_pose = run_onnx(pose_path, {"frame_a": images[:2].numpy(), "frame_b": images[1:].numpy()})
    assert np.abs(onnx_pose[0] - axis_angle.numpy()).max() < 1e-5
    assert np.abs(onnx_pose[1] - translation.numpy()).max() < 1e-5


def test_export_refuses_an_opset_older_than_17(tiny_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="opset 13 is too old; use 17"):
        export_depth_onnx(load_checkpoint(tiny_checkpoint).depth_net, tmp_path / "d.onnx", 64, 96, opset=13)


def test_onnxruntime_estimators_match_eager_fp32(tiny_checkpoint, make_image):
    image, other = make_image(75, 250), make_image(75, 250, seed=1)
    config = InferenceConfig(device="cpu", backend="onnxruntime")
    eager = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(image)
    onnx_depth = DepthEstimator(tiny_checkpoint, config)
    assert isinstance(onnx_depth.runner, OnnxRuntimeRunner)
    assert onnx_depth.runner.providers == ["CPUExecutionProvider"]
    result = onnx_depth.estimate(image)
    np.testing.assert_allclose(result.disparity, eager.disparity, atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.depth, eager.depth, rtol=1e-4)
    eager_pose = PoseEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(image, other)
    onnx_pose = PoseEstimator(tiny_checkpoint, config).estimate(image, other)
    np.testing.assert_allclose(onnx_pose.T_b_a, eager_pose.T_b_a, atol=1e-6)


def test_export_cli_writes_checked_fp32_and_int8_files_calibrated_on_a_bag(tiny_checkpoint, tmp_path, capsys, synthetic_drive):
    from monodepth2_ros.synthetic import SynthConfig, write_drive_bag

    bag = write_drive_bag(SynthConfig(frames=3, width=96, height=64, seed=9), tmp_path / "calibration_bag")
    out = tmp_path / "onnx"
    assert main(["export", "--format", "onnx", "--weights", str(tiny_checkpoint), "--out", str(out),
                 "--int8", "--calibration", str(bag), "--calibration-frames", "3"]) == 0
    printed = capsys.readouterr().out
    assert f"calibrating int8 on 3 frames of {bag}" in printed
    for name in ("depth.onnx", "pose.onnx", "depth.int8.onnx", "pose.int8.onnx"):
        assert (out / name).is_file()
        line = next(line for line in printed.splitlines() if line.strip().startswith(name + " "))
        assert float(line.split("max abs diff")[1].split()[0]) < (INT8_MAX_DISP_DIFF if "int8" in name else 1e-4)

    # the int8 files, used through the estimator, stay within the stated accuracy on ground truth
    eager = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu"))
    int8 = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", backend="onnxruntime", precision="int8", onnx_dir=str(out)))
    assert int8.backend.precision == "int8"
    changes, worst = [], 0.0
    for frame in synthetic_drive:
        a, b = eager.estimate(frame.rgb), int8.estimate(frame.rgb)
        worst = max(worst, float(np.abs(a.disparity - b.disparity).max()))
        changes.append(
            evaluate_depth_frame(frame.depth, b.depth).metrics.abs_rel - evaluate_depth_frame(frame.depth, a.depth).metrics.abs_rel
        )
    assert 0 < worst < INT8_MAX_DISP_DIFF  # quantised (not identical) yet close
    assert abs(float(np.mean(changes))) <= INT8_MAX_ABS_REL_CHANGE


def test_export_cli_reports_a_missing_checkpoint_with_status_2(tmp_path, capsys):
    assert main(["export", "--format", "onnx", "--weights", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "checkpoint folder not found" in capsys.readouterr().err


def test_onnx_file_of_another_size_is_refused(tiny_checkpoint, tmp_path):
    export_depth_onnx(load_checkpoint(tiny_checkpoint).depth_net, tmp_path / "depth.onnx", 64, 128)
    with pytest.raises(ConfigError, match=r"exported at \(64, 128\), the checkpoint runs at \(64, 96\)"):
        DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", backend="onnxruntime", onnx_dir=str(tmp_path)))


def test_int8_calibrated_at_start_up_runs_without_export_files(tiny_checkpoint, make_image):
    choice = resolve_backend("onnxruntime", "int8", CPU)
    assert choice.label == "onnxruntime int8" and not choice.fell_back
    estimator = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", backend="onnxruntime", precision="int8"))
    disparity = estimator.estimate(make_image(64, 96)).disparity
    reference = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(make_image(64, 96)).disparity
    assert np.abs(disparity - reference).max() < INT8_MAX_DISP_DIFF
    _, depth = disp_to_depth(torch.from_numpy(disparity), 0.1, 100.0)
    assert torch.isfinite(depth).all()
