"""The evaluation pipeline on a real synthetic bag: ground truth in, known figures out."""

import json

import numpy as np
import pytest

from monodepth2_ros.cli.main import main
from monodepth2_ros.errors import DatasetError
from monodepth2_ros.evaluation.runner import EvaluationConfig, evaluate_bag
from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive, write_drive_bag


@pytest.fixture(scope="module")
def drive_bag(tmp_path_factory):
    config = SynthConfig(frames=10, width=160, height=48, seed=5)
    drive = SyntheticDrive(config)
    frames = list(drive.iter_frames())
    path = write_drive_bag(config, tmp_path_factory.mktemp("eval") / "drive", drive=drive)
    return path, frames


def _oracles(frames):
    """Predictors that look the frame up by its pixels and answer with the ground truth."""
    by_image = {frame.rgb.tobytes(): frame for frame in frames}

    def depth_fn(rgb):
        return by_image[np.ascontiguousarray(rgb).tobytes()].depth.copy()

    def motion_fn(rgb_a, rgb_b):
        a = by_image[np.ascontiguousarray(rgb_a).tobytes()].T_world_camera
        b = by_image[np.ascontiguousarray(rgb_b).tobytes()].T_world_camera
        return np.linalg.inv(a) @ b

    return depth_fn, motion_fn


def test_ground_truth_predictions_score_perfectly(tmp_path, drive_bag):
    path, frames = drive_bag
    depth_fn, motion_fn = _oracles(frames)
    config = EvaluationConfig(median_scaling=False)
    result = evaluate_bag(path, tmp_path, config, depth_fn, motion_fn)
    depth = result.figures["depth"]["model"]
    assert depth["num_frames"] == len(frames)
    assert depth["abs_rel"] < 1e-6 and depth["a1"] == 1.0
    odometry = result.figures["odometry"]
    assert odometry["frames"] == len(frames)
    assert odometry["snippet_ate"]["mean"] < 1e-6
    assert odometry["trajectory_ate"]["rmse"] < 1e-6
    assert odometry["rpe"]["rotation_deg"]["rmse"] < 1e-4
    for name in ("json", "markdown", "trajectory_plot", "depth_panels"):
        assert result.files[name].stat().st_size > 0
    assert json.loads(result.files["json"].read_text())["depth"]["model"]["a1"] == 1.0


def test_scaled_predictions_are_perfect_only_after_median_scaling_and_scale_is_reported(tmp_path, drive_bag):
    path, frames = drive_bag
    depth_fn, motion_fn = _oracles(frames)
    half = lambda rgb: depth_fn(rgb) * 0.5  # noqa: E731
    scaled = evaluate_bag(path, tmp_path / "a", EvaluationConfig(gt_odom_topic=None), half, None).figures["depth"]["model"]
    assert scaled["abs_rel"] < 1e-6 and scaled["scale_ratio_median"] == pytest.approx(2.0)
    metric = evaluate_bag(path, tmp_path / "b", EvaluationConfig(gt_odom_topic=None, median_scaling=False), half, None).figures["depth"]["model"]
    assert metric["abs_rel"] == pytest.approx(0.5, abs=1e-5)


def test_odometry_uses_the_camera_mount_from_tf_static(tmp_path, drive_bag):
    """Scaled, noisy camera motion still aligns; motion of the wrong frame (base, not camera) does not."""
    path, frames = drive_bag
    _, motion_fn = _oracles(frames)
    scaled = lambda a, b: _scale_translation(motion_fn(a, b), 3.0)  # noqa: E731
    figures = evaluate_bag(path, tmp_path, EvaluationConfig(gt_depth_topic=None), None, scaled).figures["odometry"]
    assert figures["snippet_ate"]["mean"] < 1e-6  # per-snippet scale absorbs the factor
    assert figures["trajectory_ate"]["rmse"] < 1e-6  # Sim(3) too
    by_image = {frame.rgb.tobytes(): frame.T_odom_base for frame in frames}
    base_motion = lambda a, b: np.linalg.inv(by_image[a.tobytes()]) @ by_image[b.tobytes()]  # noqa: E731
    wrong = evaluate_bag(path, tmp_path / "wrong", EvaluationConfig(gt_depth_topic=None), None, base_motion).figures["odometry"]
    assert wrong["snippet_ate"]["mean"] > 100 * max(figures["snippet_ate"]["mean"], 1e-4)


def _scale_translation(T, factor):
    T = T.copy()
    T[:3, 3] *= factor
    return T


def test_evaluate_cli_writes_all_figures_for_a_checkpoint(tmp_path, drive_bag, tiny_checkpoint, capsys):
    path, _ = drive_bag
    status = main(["evaluate", "--bag", str(path), "--weights", str(tiny_checkpoint), "--device", "cpu", "--out", str(tmp_path / "out")])
    assert status == 0
    figures = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(figures["depth"]["model"]) >= {"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "scale_ratio_median", "scale_ratio_std"}
    assert set(figures["odometry"]) >= {"snippet_ate", "trajectory_ate", "rpe"}
    assert "| model |" in capsys.readouterr().out


def test_missing_ground_truth_topic_lists_the_bag_topics(tmp_path, drive_bag):
    path, frames = drive_bag
    depth_fn, _ = _oracles(frames)
    with pytest.raises(DatasetError, match=r"ground-truth depth topic /lidar/depth is not in .*/camera/image_raw"):
        evaluate_bag(path, tmp_path, EvaluationConfig(gt_depth_topic="/lidar/depth", gt_odom_topic=None), depth_fn, None)


def test_image_folder_with_kitti_style_npz_and_pose_files(tmp_path, drive_bag):
    """The KITTI route: images in a folder, gt_depths.npz in file order, KITTI and TUM camera poses."""
    import cv2

    from monodepth2_ros.evaluation.pose_io import Trajectory, write_kitti_poses, write_tum_trajectory

    _, frames = drive_bag
    folder = tmp_path / "images"
    folder.mkdir()
    for frame in frames:
        cv2.imwrite(str(folder / f"{frame.index:06d}.png"), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
    depths = np.empty(len(frames), dtype=object)
    for i, frame in enumerate(frames):
        depths[i] = np.nan_to_num(frame.depth, nan=0.0)  # the KITTI export marks "no depth" with 0
    np.savez(tmp_path / "gt_depths.npz", data=depths)
    poses = np.stack([frame.T_world_camera for frame in frames])
    write_kitti_poses(tmp_path / "poses.txt", poses)
    write_tum_trajectory(tmp_path / "poses_tum.txt", Trajectory(np.arange(len(frames)) / 10.0, poses))
    depth_fn, motion_fn = _oracles(frames)

    from monodepth2_ros.evaluation.runner import EvaluationConfig as Config
    from monodepth2_ros.evaluation.runner import evaluate_image_folder

    result = evaluate_image_folder(folder, tmp_path / "a", Config(median_scaling=False), depth_fn, motion_fn,
                                   gt_depth_npz=tmp_path / "gt_depths.npz", gt_poses_file=tmp_path / "poses.txt")
    assert result.figures["depth"]["model"]["abs_rel"] < 1e-6
    assert result.figures["odometry"]["snippet_ate"]["mean"] < 1e-6
    tum = evaluate_image_folder(folder, tmp_path / "b", Config(), None, motion_fn, gt_poses_file=tmp_path / "poses_tum.txt")
    assert tum.figures["odometry"]["trajectory_ate"]["rmse"] < 1e-6
    with pytest.raises(DatasetError, match="holds 3 depth maps but the folder has 10 images"):
        np.savez(tmp_path / "short.npz", data=depths[:3])
        evaluate_image_folder(folder, tmp_path / "c", Config(), depth_fn, None, gt_depth_npz=tmp_path / "short.npz")


def test_evaluate_cli_on_an_image_folder_needs_ground_truth(tmp_path, drive_bag, tiny_checkpoint):
    import cv2

    _, frames = drive_bag
    folder = tmp_path / "images"
    folder.mkdir()
    for frame in frames:
        cv2.imwrite(str(folder / f"{frame.index:06d}.png"), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
    depths = np.empty(len(frames), dtype=object)
    for i, frame in enumerate(frames):
        depths[i] = np.nan_to_num(frame.depth, nan=0.0)
    np.savez(tmp_path / "gt.npz", data=depths)
    base = ["evaluate", "--images", str(folder), "--weights", str(tiny_checkpoint), "--device", "cpu", "--no-odometry"]
    assert main(base + ["--out", str(tmp_path / "none")]) == 1  # no ground truth given
    assert main(base + ["--gt-depth-npz", str(tmp_path / "gt.npz"), "--garg-crop", "--out", str(tmp_path / "out")]) == 0
    figures = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert figures["depth"]["model"]["num_frames"] == len(frames) and figures["config"]["garg_crop"] is True
