"""The model shipped in the package: official format, loads as the default, runs."""

import json

import numpy as np
import torch

from monodepth2_ros.inference import DepthEstimator, InferenceConfig, PoseEstimator
from monodepth2_ros.inference.weights import bundled_weights_dir, resolve_weights
from monodepth2_ros.model.checkpoint import load_checkpoint


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


def test_bundled_model_predicts_finite_depth_and_motion(make_image):
    config = InferenceConfig(device="cpu")
    rgb = make_image(96, 320)
    depth = DepthEstimator(bundled_weights_dir(), config).estimate(rgb).depth
    assert depth.shape == (96, 320) and np.isfinite(depth).all() and (depth > 0).all()
    motion = PoseEstimator(bundled_weights_dir(), config).estimate(rgb, make_image(96, 320, seed=1))
    assert np.isfinite(motion.T_a_b).all()
