"""The objective on the synthetic world's ground truth, and every ablation switch for one step."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torchvision.models import resnet18

from monodepth2_ros.model.checkpoint import load_checkpoint
from monodepth2_ros.model.geometry import axis_angle_to_matrix
from monodepth2_ros.model.losses import combine_reprojection, pose_error
from monodepth2_ros.synthetic.config import SynthConfig
from monodepth2_ros.synthetic.drive import SyntheticDrive
from monodepth2_ros.training.batch import Batch
from monodepth2_ros.training.config import LossConfig, ModelConfig
from monodepth2_ros.training.dataset import stereo_transform
from monodepth2_ros.model.networks import PoseNet
from monodepth2_ros.training.networks import PoseCNN, SharedPoseDecoder, build_model
from monodepth2_ros.training.objective import compute_losses, identity_errors, reprojection_errors

H, W = 64, 64  # the smallest size the decoder takes (reflection padding at 1/32 needs 2 pixels)


def _image(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1).float().unsqueeze(0) / 255.0


@pytest.fixture(scope="module")
def ground_truth_triplet():
    """Frames 4, 5, 6 of a synthetic drive (~8 m/s) with true depth and poses, and a stereo partner."""
    drive = SyntheticDrive(SynthConfig(frames=8, width=128, height=96, stereo=True))
    previous, target, following = (drive.frame(i) for i in (4, 5, 6))
    sources = torch.stack([_image(previous.rgb), _image(following.rgb)], dim=1)
    T_source_target = torch.stack(
        [torch.from_numpy(np.linalg.inv(f.T_world_camera) @ target.T_world_camera).float() for f in (previous, following)]
    ).unsqueeze(0)
    depth = torch.from_numpy(np.nan_to_num(target.depth, nan=1e3)).float()[None, None]
    return {
        "target": _image(target.rgb),
        "right": _image(target.right_rgb),
        "sources": sources,
        "depth": depth,
        "T": T_source_target,
        "K": torch.from_numpy(drive.K).float().unsqueeze(0),
        "baseline": drive.config.baseline_m,
    }


def _min_reprojection(gt, T, depth=None, sources=None) -> float:
    sources = gt["sources"] if sources is None else sources
    depth = gt["depth"] if depth is None else depth
    errors = reprojection_errors(gt["target"], sources, depth, T, gt["K"], LossConfig())
    return float(combine_reprojection(errors, None, "min").loss.mean())


def test_true_depth_and_pose_bring_the_photometric_loss_near_its_floor(ground_truth_triplet):
    gt = ground_truth_triplet
    loss = _min_reprojection(gt, gt["T"])
    unwarped = float(identity_errors(gt["target"], gt["sources"], LossConfig()).min(dim=1)[0].mean())
    # What is left is resampling blur and the pixels that see something new (occlusions, borders).
    assert loss < 0.3 * unwarped
    assert loss < 0.03


@pytest.mark.parametrize("perturbation", ["translation", "rotation", "depth"])
def test_the_photometric_loss_rises_when_the_geometry_is_perturbed(ground_truth_triplet, perturbation):
    gt = ground_truth_triplet
    baseline = _min_reprojection(gt, gt["T"])
    T, depth = gt["T"].clone(), gt["depth"]
    if perturbation == "translation":
        T[..., 0, 3] += 0.1  # 10 cm sideways
    elif perturbation == "rotation":
        R = axis_angle_to_matrix(torch.tensor([[0.0, math.radians(1.0), 0.0]]))  # 1 degree of yaw
        T[..., :3, :3] = R @ T[..., :3, :3]
    else:
        depth = depth * 1.5
    assert _min_reprojection(gt, T, depth) > 1.5 * baseline


def test_the_known_stereo_transform_warps_the_right_image_onto_the_left(ground_truth_triplet):
    gt = ground_truth_triplet
    # Network units: metric depth / STEREO_SCALE, so the transform's translation is B / STEREO_SCALE.
    from monodepth2_ros.model.constants import STEREO_SCALE

    depth = gt["depth"] / STEREO_SCALE
    right = gt["right"].unsqueeze(1)
    correct = stereo_transform(gt["baseline"], flipped=False)[None, None]
    wrong_sign = stereo_transform(gt["baseline"], flipped=True)[None, None]
    good = _min_reprojection(gt, correct, depth, right)
    bad = _min_reprojection(gt, wrong_sign, depth, right)
    unwarped = float(identity_errors(gt["target"], right, LossConfig()).mean())
    # A 0.54 m baseline occludes more than one frame of driving: the floor is higher than above.
    assert good < 0.3 * unwarped and bad > 3 * good


def _batch(stereo: bool = False, sources: int = 2, size: int = 1) -> Batch:
    """Random frames at 64x64, batch 1 by default: what each switch needs, at the least CPU cost."""
    torch.manual_seed(0)
    target = torch.rand(size, 3, H, W)
    src = torch.rand(size, sources, 3, H, W)
    K = torch.tensor([[0.6 * W, 0.0, (W - 1) / 2], [0.0, 0.6 * W, (H - 1) / 2], [0.0, 0.0, 1.0]]).expand(size, 3, 3)
    extra = {}
    if stereo:
        extra = {"stereo": torch.rand(size, 3, H, W), "T_stereo": stereo_transform(0.54, False).expand(size, 4, 4)}
    return Batch(target=target, sources=src, target_aug=target, sources_aug=src, K=K, **extra)


def _one_step(model, batch: Batch, loss_config: LossConfig):
    """compute_losses + backward + an SGD step; returns the terms and the parameters that moved."""
    parameters = {n: p for n, p in model.named_parameters() if p.requires_grad}
    before = {n: p.detach().clone() for n, p in parameters.items()}
    model.zero_grad(set_to_none=True)
    terms = compute_losses(model, batch, loss_config)
    terms.total.backward()
    torch.optim.SGD(parameters.values(), lr=1e-2).step()
    return terms, {n for n, p in parameters.items() if not torch.equal(p, before[n])}


LOSS_SWITCHES = {
    "paper": LossConfig(),
    "no_automask": LossConfig(automask=False),
    "average_reprojection": LossConfig(reprojection="avg"),
    "per_scale": LossConfig(multiscale="per_scale"),
    "no_ssim": LossConfig(use_ssim=False),
    "one_scale": LossConfig(scales=1),
}


def test_each_loss_switch_trains_one_step():
    torch.manual_seed(0)
    model = build_model(ModelConfig())
    batch = _batch()
    totals = {}
    for name, loss_config in LOSS_SWITCHES.items():
        terms, changed = _one_step(model, batch, loss_config)
        totals[name] = terms.total.item()
        assert math.isfinite(totals[name]), name
        assert len(terms.photometric) == loss_config.scales, name
        assert any(n.startswith("depth_net.") for n in changed), name
        assert any(n.startswith("pose_net.") for n in changed), name
        assert (float(terms.automask_fraction) == 1.0) == (not loss_config.automask), name
    # The switches change the objective, not just a flag.
    assert len({round(value, 6) for value in totals.values()}) == len(totals)


MODEL_SWITCHES = {
    "shared_pose": (ModelConfig(pose="shared"), SharedPoseDecoder),
    "posecnn": (ModelConfig(pose="posecnn"), PoseCNN),
    "one_source": (ModelConfig(frame_ids=(0, -1)), PoseNet),
}


@pytest.mark.parametrize("name", list(MODEL_SWITCHES))
def test_each_network_switch_trains_one_step(name):
    model_config, pose_type = MODEL_SWITCHES[name]
    torch.manual_seed(0)
    model = build_model(model_config)
    assert isinstance(model.pose_net, pose_type)
    assert model.depth_net.num_layers == model_config.num_layers
    terms, changed = _one_step(model, _batch(sources=len(model_config.source_offsets)), LossConfig())
    assert torch.isfinite(terms.total)
    assert any(n.startswith("depth_net.") for n in changed)
    assert any(n.startswith("pose_net.") for n in changed)


@pytest.mark.parametrize(("stereo", "num_layers"), [("mono+stereo", 18), ("stereo", 50)])
def test_stereo_modes_train_one_step(stereo, num_layers):
    # ResNet-50 is tried here, where there is no pose network to double its (large) cost.
    model_config = ModelConfig(stereo=stereo, num_layers=num_layers, frame_ids=(0,) if stereo == "stereo" else (0, -1, 1))
    model = build_model(model_config)
    assert (model.pose_net is None) == (stereo == "stereo")
    terms, changed = _one_step(model, _batch(stereo=True, sources=len(model_config.source_offsets)), LossConfig())
    assert torch.isfinite(terms.total)
    assert "depth_net.decoder.disp_heads.0.weight" in changed


def test_earlier_sources_get_the_inverted_pair_transform():
    torch.manual_seed(0)
    model = build_model(ModelConfig(frame_ids=(0, -1, 1))).eval()
    frame_a, frame_b = torch.rand(1, 3, H, W), torch.rand(1, 3, H, W)
    # Same frame as source -1 and +1: the pair is ordered (source, target) for -1 and (target, source) for +1.
    with torch.no_grad():
        T = model(frame_b, torch.stack([frame_a, frame_a], dim=1)).T_source_target[0]
        axis_angle, translation = model.pose_net(frame_a, frame_b)
    from monodepth2_ros.model.geometry import pose_vec_to_mat

    T_b_a = pose_vec_to_mat(axis_angle[:, 0], translation[:, 0])[0]
    torch.testing.assert_close(T[0], torch.linalg.inv(T_b_a), atol=1e-5, rtol=1e-4)


def test_pretrained_imagenet_file_initialises_both_encoders(tmp_path):
    torch.manual_seed(1)
    reference = resnet18().state_dict()
    path = tmp_path / "resnet18-test.pth"
    torch.save(reference, path)
    model = build_model(ModelConfig(pretrained=str(tmp_path)))  # a folder is searched for resnet18-*.pth
    torch.testing.assert_close(model.depth_net.encoder.encoder.conv1.weight, reference["conv1.weight"])
    # The pose encoder sees two frames: the first convolution is repeated and halved.
    torch.testing.assert_close(model.pose_net.encoder.encoder.conv1.weight[:, :3], reference["conv1.weight"] / 2)
    torch.testing.assert_close(model.pose_net.encoder.encoder.layer4[1].conv2.weight, reference["layer4.1.conv2.weight"])


def test_init_from_a_checkpoint_folder_loads_depth_and_pose(tiny_checkpoint):
    model = build_model(ModelConfig(init=str(tiny_checkpoint)))
    reference = load_checkpoint(tiny_checkpoint)
    for ours, theirs in ((model.depth_net, reference.depth_net), (model.pose_net, reference.pose_net)):
        for (name, value), other in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
            torch.testing.assert_close(value, other, msg=name)
    with pytest.raises(Exception, match="ResNet-18 depth network but model.num_layers is 50"):
        build_model(replace(ModelConfig(init=str(tiny_checkpoint)), num_layers=50))


@pytest.mark.parametrize("multiscale", ["full_resolution", "per_scale"])
def test_forward_and_loss_never_read_a_tensor_on_the_host(monkeypatch, multiscale):
    """On a GPU each host read (``.item()``, ``bool(t)``, a tensor built from a list, the general
    inverse's singularity check) stalls the CPU until the queue drains; the step reads once, after
    the loss. Every such entry point raises here while the networks and the loss run."""
    model = build_model(ModelConfig(), output_scales=2)
    batch = _batch()
    loss_config = LossConfig(scales=2, multiscale=multiscale)

    def host_read(*args, **kwargs):
        raise AssertionError("host synchronisation in the training forward pass")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "new_tensor", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, host_read)
    monkeypatch.setattr(torch.linalg, "inv", host_read)
    terms = compute_losses(model, batch, loss_config)
    monkeypatch.undo()
    assert math.isfinite(terms.total.item()) and len(terms.photometric) == 2


def test_non_finite_predictions_give_a_nan_total_even_where_automasking_would_hide_them():
    model = build_model(ModelConfig())
    batch = _batch()
    poisoned = Batch(**{**batch.__dict__, "target_aug": torch.full_like(batch.target_aug, float("nan"))})
    assert math.isnan(compute_losses(model, poisoned, LossConfig()).total.item())


def test_odometry_distances_add_the_weighted_velocity_error_to_the_loss():
    torch.manual_seed(0)
    model = build_model(ModelConfig())
    batch = _batch()
    distances = replace(batch, source_distance_m=torch.tensor([[0.7, float("nan")]]))
    torch.manual_seed(1)  # the automask's tie-break noise: the same draw for each call
    plain = compute_losses(model, batch, LossConfig())
    torch.manual_seed(1)
    supervised = compute_losses(model, distances, LossConfig(velocity_weight=0.5))
    torch.manual_seed(1)
    switched_off = compute_losses(model, distances, LossConfig(velocity_weight=0.0))

    assert plain.velocity is None and switched_off.velocity is None and "velocity_m" not in plain.log_values()
    with torch.no_grad():
        translation = model(batch.target_aug, batch.sources_aug).T_source_target[0, 0, :3, 3].norm()
    assert float(supervised.velocity) == pytest.approx(abs(float(translation) - 0.7), rel=1e-4)
    assert supervised.total.item() == pytest.approx(plain.total.item() + 0.5 * float(supervised.velocity), rel=1e-5)
    assert switched_off.total.item() == pytest.approx(plain.total.item(), rel=1e-6)
    assert supervised.log_values()["velocity_m"] == pytest.approx(float(supervised.velocity))


def test_measured_camera_motion_adds_the_weighted_pose_error_to_the_loss():
    torch.manual_seed(0)
    model = build_model(ModelConfig())
    batch = _batch()
    measured = torch.eye(4).repeat(1, 2, 1, 1)
    measured[0, 0, :3, 3] = torch.tensor([0.0, 0.0, 0.4])
    measured[0, 1] = float("nan")  # unknown: skipped
    with_motion = replace(batch, source_motion=measured)
    torch.manual_seed(1)
    plain = compute_losses(model, batch, LossConfig())
    torch.manual_seed(1)
    supervised = compute_losses(model, with_motion, LossConfig(pose_weight=2.0))
    torch.manual_seed(1)
    default_off = compute_losses(model, with_motion, LossConfig())

    assert plain.pose is None and default_off.pose is None and "pose_error" not in default_off.log_values()
    with torch.no_grad():
        predicted = model(batch.target_aug, batch.sources_aug).T_source_target[0, 0]
    expected = float(pose_error(predicted[None, None], measured[:, :1]))
    assert expected > 0.01
    assert float(supervised.pose) == pytest.approx(expected, rel=1e-4)
    assert supervised.total.item() == pytest.approx(plain.total.item() + 2.0 * expected, rel=1e-5)
    assert default_off.total.item() == pytest.approx(plain.total.item(), rel=1e-6)
    assert supervised.log_values()["pose_error"] == pytest.approx(expected, rel=1e-4)
