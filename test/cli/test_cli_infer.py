import subprocess
import sys

import cv2
import numpy as np
import pytest

from monodepth2_ros.cli.main import main
from monodepth2_ros.evaluation.pose_io import read_tum_trajectory
from monodepth2_ros.inference import DepthEstimator, InferenceConfig, PoseEstimator


def _write_inputs(folder, make_image):
    folder.mkdir()
    frames = {}
    for i in range(3):
        rgb = make_image(50, 150, seed=i)
        cv2.imwrite(str(folder / f"frame_{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        frames[f"frame_{i}"] = rgb
    return frames


def test_infer_writes_disparity_depth_and_colour_per_image_matching_the_api(tmp_path, tiny_checkpoint, make_image):
    frames = _write_inputs(tmp_path / "images", make_image)
    (tmp_path / "images" / "README.txt").write_text("not an image")
    status = main(["infer", "--weights", str(tiny_checkpoint), "--device", "cpu", str(tmp_path / "images"), "--out", str(tmp_path / "out")])
    assert status == 0
    estimator = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu"))
    for stem, rgb in frames.items():
        disparity = np.load(tmp_path / "out" / f"{stem}_disp.npy")
        depth = np.load(tmp_path / "out" / f"{stem}_depth.npy")
        expected = estimator.estimate(rgb)
        assert disparity.dtype == depth.dtype == np.float32
        assert disparity.shape == (64, 96) and depth.shape == (50, 150)
        np.testing.assert_allclose(depth, expected.depth, rtol=1e-5)
        colour = cv2.imread(str(tmp_path / "out" / f"{stem}_depth.png"))
        assert colour.shape == (50, 150, 3) and colour.std() > 0
    assert not (tmp_path / "out" / "README_depth.npy").exists()


def test_infer_with_pose_writes_raw_pose_outputs_and_a_tum_trajectory(tmp_path, tiny_checkpoint, make_image):
    frames = _write_inputs(tmp_path / "images", make_image)
    status = main(["infer", "--weights", str(tiny_checkpoint), "--device", "cpu", "--pose", "--rate", "5",
                   str(tmp_path / "images"), "--out", str(tmp_path / "out")])
    assert status == 0
    axis_angle = np.load(tmp_path / "out" / "pose_axisangle.npy")
    translation = np.load(tmp_path / "out" / "pose_translation.npy")
    assert axis_angle.shape == translation.shape == (2, 3)
    motion = PoseEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(frames["frame_1"], frames["frame_2"])
    np.testing.assert_allclose(axis_angle[1], motion.axis_angle, atol=1e-6)
    np.testing.assert_allclose(translation[1], motion.translation, atol=1e-6)
    trajectory = read_tum_trajectory(tmp_path / "out" / "trajectory.txt")
    np.testing.assert_allclose(trajectory.timestamps, [0.0, 0.2, 0.4])
    np.testing.assert_allclose(trajectory.poses[0], np.eye(4))
    step = np.linalg.inv(trajectory.poses[1]) @ trajectory.poses[2]
    np.testing.assert_allclose(step, motion.T_a_b, atol=1e-6)


def test_infer_converts_grey_rgba_and_16_bit_images(tmp_path, tiny_checkpoint, make_image):
    folder = tmp_path / "mixed"
    folder.mkdir()
    rgb = make_image(40, 60)
    cv2.imwrite(str(folder / "grey.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    cv2.imwrite(str(folder / "rgba.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA))
    cv2.imwrite(str(folder / "deep.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    assert main(["infer", "--weights", str(tiny_checkpoint), "--device", "cpu", str(folder), "--out", str(tmp_path / "out")]) == 0
    for stem in ("grey", "rgba", "deep"):
        assert np.load(tmp_path / "out" / f"{stem}_depth.npy").shape == (40, 60)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "deep_depth.npy"), DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(rgb).depth, rtol=1e-5)


def test_infer_refuses_to_overwrite_without_force(tmp_path, tiny_checkpoint, make_image, capsys):
    _write_inputs(tmp_path / "images", make_image)
    args = ["infer", "--weights", str(tiny_checkpoint), "--device", "cpu", str(tmp_path / "images"), "--out", str(tmp_path / "out")]
    assert main(args) == 0
    before = (tmp_path / "out" / "frame_0_depth.npy").read_bytes()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "output file(s) already exist" in err and "use --force" in err
    assert (tmp_path / "out" / "frame_0_depth.npy").read_bytes() == before
    assert main(args + ["--force"]) == 0


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda t, w: ["infer", "--weights", w, str(t / "missing.png"), "--out", str(t / "o")], "input not found: .*missing.png"),
        (lambda t, w: ["infer", "--weights", str(t / "no_weights"), str(t / "images"), "--out", str(t / "o")], "checkpoint folder not found: .*no_weights"),
    ],
)
def test_missing_inputs_exit_2_with_one_line_and_no_traceback(tmp_path, tiny_checkpoint, make_image, make_args, message):
    import re

    _write_inputs(tmp_path / "images", make_image)
    result = subprocess.run(
        [sys.executable, "-m", "monodepth2_ros", *make_args(tmp_path, str(tiny_checkpoint))],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert re.search(message, result.stderr)
    assert "Traceback" not in result.stderr


def test_corrupt_checkpoint_is_reported_without_traceback(tmp_path, tiny_checkpoint, make_image):
    import shutil

    _write_inputs(tmp_path / "images", make_image)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    (broken / "depth.pth").write_bytes(b"this is not a checkpoint")
    result = subprocess.run(
        [sys.executable, "-m", "monodepth2_ros", "infer", "--weights", str(broken), str(tmp_path / "images"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert "error: " in result.stderr and "depth.pth is not a PyTorch checkpoint" in result.stderr
    assert "Traceback" not in result.stderr


def test_infer_with_the_optimised_backend_matches_eager(tmp_path, tiny_checkpoint, make_image):
    frames = _write_inputs(tmp_path / "images", make_image)
    assert main(["infer", "--weights", str(tiny_checkpoint), "--device", "cpu", "--backend", "eager_optimized",
                 str(tmp_path / "images"), "--out", str(tmp_path / "out")]) == 0
    expected = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(frames["frame_0"]).depth
    np.testing.assert_allclose(np.load(tmp_path / "out" / "frame_0_depth.npy"), expected, rtol=1e-3)


def test_infer_with_a_distorted_calibration_rectifies_and_writes_the_rectified_camera(tmp_path, tiny_checkpoint, make_image):
    from monodepth2_ros.data.camera import CameraModel, load_camera_yaml, save_camera_yaml
    from monodepth2_ros.inference.camera_input import CameraInput

    frames = _write_inputs(tmp_path / "images", make_image)
    P = np.array([[120.0, 0.0, 74.0, 0.0], [0.0, 119.0, 24.5, 0.0], [0.0, 0.0, 1.0, 0.0]])
    camera = CameraModel(
        width=150, height=50, K=[[135.0, 0, 74.6], [0, 134.0, 24.8], [0, 0, 1]],
        D=[-0.3, 0.09, 0.001, -0.001, 0.0], distortion_model="plumb_bob", P=P,
    )
    calibration = save_camera_yaml(camera, tmp_path / "camera.yaml")
    status = main(["infer", "--weights", str(tiny_checkpoint), "--device", "cpu", "--calibration", str(calibration),
                   str(tmp_path / "images"), "--out", str(tmp_path / "out")])
    assert status == 0
    rectified = load_camera_yaml(tmp_path / "out" / "camera_rect.yaml")
    np.testing.assert_allclose(rectified.K, P[:, :3])
    assert not rectified.is_distorted
    estimator = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu"))
    camera_input = CameraInput(camera, (50, 150), rectify=True)
    for stem, rgb in frames.items():
        depth = np.load(tmp_path / "out" / f"{stem}_depth.npy")
        np.testing.assert_allclose(depth, estimator.estimate(camera_input.rectify_image(rgb)).depth, rtol=1e-5)
        assert not np.allclose(depth, estimator.estimate(rgb).depth, rtol=1e-3)
