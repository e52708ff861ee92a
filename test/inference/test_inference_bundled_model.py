"""The model shipped in the package: official format, loads as the default, runs, has learned."""

import json
from pathlib import Path

import numpy as np
import torch

from monodepth2_ros.evaluation.baselines import flat_ground_depth
from monodepth2_ros.evaluation.depth_metrics import evaluate_depth_frame
from monodepth2_ros.evaluation.trajectory import relative_steps, snippet_ate
from monodepth2_ros.inference import DepthEstimator, InferenceConfig, PoseEstimator
from monodepth2_ros.inference.weights import BUNDLED_MODEL_NAME, bundled_model_names, bundled_weights_dir, resolve_weights
from monodepth2_ros.model.checkpoint import load_checkpoint
from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive

STREETS_MODEL = "synthetic_streets_320x96"
# Limits for the streets model on 10 held-out frames of its own world at its own 320x96 (see its
# MODEL_CARD.md for the full evaluation); set with a margin above what the shipped checkpoint scores.
MAX_HELD_OUT_ABS_REL = 0.15  # the shipped model: 0.10; the flat-ground prior: 0.42
MAX_HELD_OUT_SNIPPET_ATE_M = 0.02  # the shipped model: 0.005 m (an undertrained one: 0.87 m)


def _official_keys_and_shapes(folder: Path, shared_dir: Path) -> None:
    manifest = json.loads((shared_dir / "monodepth2_checkpoint_manifest.json").read_text())["variants"]["resnet18"]
    for file_name, expected in manifest.items():
        saved = torch.load(folder / file_name, weights_only=True)
        assert list(saved) == list(expected), file_name
        for key, spec in expected.items():
            if "shape" in spec:
                assert list(saved[key].shape) == spec["shape"], key


def test_the_default_is_the_4_to_3_families_model_and_every_bundled_model_is_official(shared_dir):
    folder = bundled_weights_dir()
    assert resolve_weights(None) == folder == resolve_weights("")
    assert folder.name == "synthetic_families_256x192"
    for name, size in [(BUNDLED_MODEL_NAME, (192, 256)), (STREETS_MODEL, (96, 320))]:
        _official_keys_and_shapes(bundled_weights_dir(name), shared_dir)
        info = load_checkpoint(bundled_weights_dir(name)).info
        assert (info.height, info.width, info.num_layers, info.has_pose, info.use_stereo) == (*size, 18, True, False)


def test_every_bundled_model_is_named_by_its_folder_and_a_path_wins_over_a_name(tmp_path, monkeypatch):
    names = bundled_model_names()
    assert BUNDLED_MODEL_NAME in names and STREETS_MODEL in names
    for word in ("default", "bundled", " ", None):
        assert resolve_weights(word) == bundled_weights_dir()
    for name in names:
        assert resolve_weights(name) == bundled_weights_dir(name)
        assert (resolve_weights(name) / "encoder.pth").is_file()
    monkeypatch.chdir(tmp_path)
    (tmp_path / names[0]).mkdir()  # a folder of the user's with a bundled model's name
    assert resolve_weights(names[0]) == Path(names[0])
    assert resolve_weights("no_such_model") == Path("no_such_model")  # the loader then says it is missing


def test_bundled_model_predicts_finite_depth_and_motion(make_image):
    config = InferenceConfig(device="cpu")
    rgb = make_image(480, 640)  # a 4:3 camera, resized to the network's 256x192
    depth = DepthEstimator(bundled_weights_dir(), config).estimate(rgb).depth
    assert depth.shape == (480, 640) and np.isfinite(depth).all() and (depth > 0).all()
    motion = PoseEstimator(bundled_weights_dir(), config).estimate(rgb, make_image(480, 640, seed=1))
    assert np.isfinite(motion.T_a_b).all()


def test_the_streets_model_learned_depth_and_motion_of_a_world_it_never_saw():
    """Regression guard for the streets weights: on a held-out drive of its world (seed 7; it trained
    on seeds 101-130) the model's median-scaled depth must beat the flat-ground prior by far and its
    5-frame snippets must follow the ground-truth motion; an untrained or collapsed model fails both."""
    drive = SyntheticDrive(SynthConfig(frames=10, width=320, height=96, seed=7))
    frames = [drive.frame(i) for i in range(len(drive))]
    config = InferenceConfig(device="cpu")
    depth_estimator = DepthEstimator(bundled_weights_dir(STREETS_MODEL), config)
    pose_estimator = PoseEstimator(bundled_weights_dir(STREETS_MODEL), config)
    prior = flat_ground_depth(drive.K, 96, 320, camera_height_m=drive.config.camera_height_m)

    model_abs_rel = np.mean([
        evaluate_depth_frame(f.depth, depth_estimator.estimate(f.rgb).depth).metrics.abs_rel for f in frames
    ])
    prior_abs_rel = np.mean([evaluate_depth_frame(f.depth, prior).metrics.abs_rel for f in frames])
    assert model_abs_rel < MAX_HELD_OUT_ABS_REL, model_abs_rel
    assert model_abs_rel < 0.5 * prior_abs_rel, (model_abs_rel, prior_abs_rel)

    predicted_steps = np.stack([pose_estimator.estimate(a.rgb, b.rgb).T_a_b for a, b in zip(frames, frames[1:])])
    true_steps = relative_steps(np.stack([f.T_world_camera for f in frames]))
    assert snippet_ate(predicted_steps, true_steps).mean < MAX_HELD_OUT_SNIPPET_ATE_M
    # Not trivially small: the camera really moved in these snippets.
    assert np.linalg.norm(true_steps[:, :3, 3], axis=1).sum() > 10 * MAX_HELD_OUT_SNIPPET_ATE_M


def test_the_default_model_beats_a_constant_on_held_back_drives_of_every_trained_family():
    """Regression guard for the default weights on drives of held-back seeds (see its MODEL_CARD.md):
    median-scaled abs_rel against a constant depth per frame. The streets model fails indoors (1.5x
    a constant); the table top's bound only says the room behind the table is not at infinity (an
    earlier families model scored 15x there)."""
    estimator = DepthEstimator(bundled_weights_dir(), InferenceConfig(device="cpu"))
    # the shipped model: street 0.18, indoor 0.50, warehouse 0.42, table top 1.15
    for family, max_ratio in [("street", 0.4), ("indoor", 0.75), ("warehouse", 0.65), ("tabletop", 1.5)]:
        drive = SyntheticDrive(SynthConfig(family=family, seed=9, frames=3, width=256, height=192, randomize=True))
        frames = [drive.frame(i) for i in range(len(drive))]
        model = np.mean([evaluate_depth_frame(f.depth, estimator.estimate(f.rgb).depth).metrics.abs_rel for f in frames])
        constant = np.mean([evaluate_depth_frame(f.depth, np.ones_like(f.depth)).metrics.abs_rel for f in frames])
        assert model < max_ratio * constant, (family, model, constant)


def test_the_default_models_depth_and_pose_share_one_scale():
    """The nodes give the pose network the depth node's metric scale (camera height, or any other
    source), so the two networks must agree on units: depth scaled to the truth times the predicted
    steps must give the true distance. A bundle of depth and pose from two runs failed this (4.96 on
    this drive: the odometry of the demo five times too long); the shipped model gives 1.19."""
    drive = SyntheticDrive(SynthConfig(seed=9, frames=10, width=320, height=240, randomize=True))
    frames = [drive.frame(i) for i in range(len(drive))]
    config = InferenceConfig(device="cpu")
    depth_estimator = DepthEstimator(bundled_weights_dir(), config)
    pose_estimator = PoseEstimator(bundled_weights_dir(), config)
    depth_scale = np.median([
        np.nanmedian(f.depth) / np.median(depth_estimator.estimate(f.rgb).depth[np.isfinite(f.depth)]) for f in frames
    ])
    predicted = np.stack([pose_estimator.estimate(a.rgb, b.rgb).T_a_b for a, b in zip(frames, frames[1:])])
    true = relative_steps(np.stack([f.T_world_camera for f in frames]))
    true_distance = np.linalg.norm(true[:, :3, 3], axis=1).sum()
    assert true_distance > 3.0  # a car's drive, not a standstill
    ratio = depth_scale * np.linalg.norm(predicted[:, :3, 3], axis=1).sum() / true_distance
    assert 0.67 < ratio < 1.5, ratio
    assert snippet_ate(predicted, true).mean < 0.05  # the shipped model: 0.019 m
