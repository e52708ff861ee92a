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

# Limits for the bundled model on 10 held-out frames at its own 320x96 (see its MODEL_CARD.md for
# the full evaluation); set with a margin above what the shipped checkpoint scores.
MAX_HELD_OUT_ABS_REL = 0.15  # the shipped model: 0.10; the flat-ground prior: 0.42
MAX_HELD_OUT_SNIPPET_ATE_M = 0.02  # the shipped model: 0.005 m (an undertrained one: 0.87 m)


def test_bundled_model_is_the_default_and_has_exactly_the_official_keys_and_shapes(shared_dir):
    folder = bundled_weights_dir()
    assert resolve_weights(None) == folder == resolve_weights("")
    manifest = json.loads((shared_dir / "monodepth2_checkpoint_manifest.json").read_text())["variants"]["resnet18"]
    for file_name, expected in manifest.items():
        saved = torch.load(folder / file_name, weights_only=True)
        assert list(saved) == list(expected), file_name
        for key, spec in expected.items():
            if "shape" in spec:
                assert list(saved[key].shape) == spec["shape"], key
    info = load_checkpoint(folder).info
    assert (info.height, info.width, info.num_layers, info.has_pose, info.use_stereo) == (96, 320, 18, True, False)


def test_every_bundled_model_is_named_by_its_folder_and_a_path_wins_over_a_name(tmp_path, monkeypatch):
    names = bundled_model_names()
    assert BUNDLED_MODEL_NAME in names and "synthetic_streets_320x96" in names
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
    rgb = make_image(96, 320)
    depth = DepthEstimator(bundled_weights_dir(), config).estimate(rgb).depth
    assert depth.shape == (96, 320) and np.isfinite(depth).all() and (depth > 0).all()
    motion = PoseEstimator(bundled_weights_dir(), config).estimate(rgb, make_image(96, 320, seed=1))
    assert np.isfinite(motion.T_a_b).all()


def test_bundled_model_learned_depth_and_motion_of_a_world_it_never_saw():
    """Regression guard for the bundled weights: on the held-out world (seed 7; it trained on seeds 101-130) the
    model's median-scaled depth must beat the flat-ground prior by far and its 5-frame snippets
    must follow the ground-truth motion; an untrained or collapsed model fails both."""
    drive = SyntheticDrive(SynthConfig(frames=10, width=320, height=96, seed=7))
    frames = [drive.frame(i) for i in range(len(drive))]
    config = InferenceConfig(device="cpu")
    depth_estimator = DepthEstimator(bundled_weights_dir(), config)
    pose_estimator = PoseEstimator(bundled_weights_dir(), config)
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


def test_the_opt_in_families_model_is_official_and_beats_a_constant_on_held_back_drives(shared_dir):
    """The 4:3 model shipped beside the default (see its MODEL_CARD.md): official format; on a
    warehouse drive of a held-back seed its median-scaled depth beats a constant by far (0.21 vs 0.63
    here), and on a held-back table top the room behind the table is not at infinity (0.48 vs 0.44
    here; its stage-1 weights, shipped before, scored 6.8)."""
    folder = bundled_weights_dir().parent / "synthetic_families_256x192"
    manifest = json.loads((shared_dir / "monodepth2_checkpoint_manifest.json").read_text())["variants"]["resnet18"]
    for file_name, expected in manifest.items():
        assert list(torch.load(folder / file_name, weights_only=True)) == list(expected), file_name
    info = load_checkpoint(folder).info
    assert (info.height, info.width, info.has_pose, info.use_stereo) == (192, 256, True, False)

    estimator = DepthEstimator(folder, InferenceConfig(device="cpu"))
    for family, max_ratio in [("warehouse", 0.6), ("tabletop", 1.5)]:
        drive = SyntheticDrive(SynthConfig(family=family, seed=9, frames=3, width=256, height=192))
        frames = [drive.frame(i) for i in range(len(drive))]
        model = np.mean([evaluate_depth_frame(f.depth, estimator.estimate(f.rgb).depth).metrics.abs_rel for f in frames])
        constant = np.mean([evaluate_depth_frame(f.depth, np.ones_like(f.depth)).metrics.abs_rel for f in frames])
        assert model < max_ratio * constant, (family, model, constant)
