"""Every scene family renders with exact ground truth: GT depth + GT poses + the camera model (with
its lens distortion) explain the images, as for the street. Tiny images, few frames."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive, distort_normalized
from monodepth2_ros.synthetic.families import (
    FAMILIES,
    HELD_OUT_FAMILY,
    TRAINING_FAMILIES,
    held_out_drives,
    is_held_out,
    resolve_family,
    training_drives,
)

HEIGHT, WIDTH = 64, 160


def _drive(family: str, seed: int, frames: int = 4, **kwargs) -> SyntheticDrive:
    options = dict(randomize=True, sensor_effects=False) | kwargs
    return SyntheticDrive(SynthConfig(frames=frames, width=WIDTH, height=HEIGHT, seed=seed, family=family, **options))


def _as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0


def _reproject(drive: SyntheticDrive, target, source):
    """Target pixels moved into the source image through the exact camera model: (u, v, z), each (H, W)."""
    camera = drive.camera
    points = np.stack([camera.ray_x, camera.ray_y, np.ones_like(camera.ray_x)]) * target.depth[None]
    T = np.linalg.inv(source.T_world_camera) @ target.T_world_camera
    moved = np.einsum("ij,jhw->ihw", T[:3, :3], points) + T[:3, 3, None, None]
    z = moved[2]
    safe = np.where(z > 1e-6, z, 1.0)
    xd, yd = distort_normalized(moved[0] / safe, moved[1] / safe, camera.D)
    K = camera.K
    return K[0, 0] * xd + K[0, 2], K[1, 1] * yd + K[1, 2], z


def _sample(image: np.ndarray, u: np.ndarray, v: np.ndarray, mode: str = "bilinear") -> np.ndarray:
    grid = torch.from_numpy(np.stack([2 * u / (WIDTH - 1) - 1, 2 * v / (HEIGHT - 1) - 1], axis=-1)).float()[None]
    tensor = torch.from_numpy(np.ascontiguousarray(image)).float()
    tensor = tensor.permute(2, 0, 1)[None] if tensor.ndim == 3 else tensor[None, None]
    return F.grid_sample(tensor, grid, mode=mode, align_corners=True)[0].permute(1, 2, 0).numpy()


# One seed per family, chosen so that the set covers every carrier and both lens models.
GEOMETRY_CASES = [("street", 5), ("indoor", 6), ("indoor", 2), ("warehouse", 4), ("tabletop", 1), ("yard", 5),
                  ("yard", 1)]


@pytest.mark.parametrize("family,seed", GEOMETRY_CASES)
def test_gt_depth_and_pose_warp_the_source_onto_the_target(family, seed):
    drive = _drive(family, seed, frames=16)
    target = drive.frame(0)
    assert np.isfinite(target.depth).all() and (target.depth > 0).all()
    # The first frame that moved 3 % of the nearer depths: slow carriers need a longer stride for parallax.
    poses = drive.poses()
    needed = 0.03 * np.percentile(target.depth, 25)
    stride = next((k for k in range(1, 16) if np.linalg.norm(poses[k, :3, 3] - poses[0, :3, 3]) > needed), None)
    assert stride is not None, f"{family} carrier ({drive.carrier}) must move for the check to mean anything"
    source = drive.frame(stride)
    u, v, z = _reproject(drive, target, source)
    inside = (u >= 0) & (u <= WIDTH - 1) & (v >= 0) & (v <= HEIGHT - 1) & (z > 0)
    seen = _sample(source.depth[..., None], u, v, mode="nearest")[..., 0]
    visible = inside & (np.abs(seen - z) < 0.02 * z)
    assert visible.mean() > 0.4
    # Bilinear depth sampling is exact on planes: only occlusion edges disagree.
    bilinear = _sample(source.depth[..., None], u, v)[..., 0]
    relative = np.abs(bilinear - z) / z
    assert np.median(relative[inside]) < 1e-3
    warped = _sample(source.rgb.astype(np.float32) / 255.0, u, v)
    target_rgb = target.rgb.astype(np.float32) / 255.0
    error = np.abs(warped - target_rgb).mean(-1)
    unwarped = np.abs(source.rgb.astype(np.float32) / 255.0 - target_rgb).mean(-1)
    # Judged where the image moves by a pixel or more: far away (open yards) the motion is sub-pixel
    # and the bilinear resampling's own blur would dominate both errors.
    rows, columns = np.mgrid[0:HEIGHT, 0:WIDTH]
    moving = visible & (np.hypot(u - columns, v - rows) >= 1.0)
    assert moving.mean() > 0.25
    assert error[moving].mean() < 0.35 * unwarped[moving].mean()


def test_gt_poses_of_a_family_are_consistent_with_odometry_and_the_mount():
    drive = _drive("warehouse", 4, frames=3)
    for index in range(3):
        frame = drive.frame(index)
        np.testing.assert_allclose(
            frame.T_world_camera, drive.T_world_odom @ frame.T_odom_base @ drive.T_base_camera, atol=1e-9)
    np.testing.assert_allclose(drive.frame(0).T_odom_base, np.eye(4), atol=1e-12)


@pytest.mark.parametrize("family", FAMILIES)
def test_randomised_cameras_stay_in_their_ranges(family):
    carriers, fovs = set(), []
    for seed in range(6):
        drive = _drive(family, seed, frames=30)
        fov = 2 * np.degrees(np.arctan(0.5 * WIDTH / drive.K[0, 0]))
        assert 50.0 <= fov <= 110.0
        fovs.append(fov)
        heights = drive.poses()[:, 2, 3]
        assert heights.min() >= 0.1 and heights.max() <= 2.0, (seed, drive.carrier, heights.min(), heights.max())
        carriers.add(drive.carrier)
    assert max(fovs) - min(fovs) > 15.0  # the field of view really varies with the seed
    if family != "street":
        assert len(carriers) >= 2


def test_tabletop_scenes_are_seen_from_close_range():
    for seed in (1, 2):
        drive = _drive("tabletop", seed, frames=2)
        depth = drive.frame(1).depth
        centre = depth[HEIGHT // 4: 3 * HEIGHT // 4, WIDTH // 4: 3 * WIDTH // 4]
        assert 0.3 <= np.median(centre) <= 1.5
        assert depth.min() > 0.1


def test_families_differ_in_depth_range():
    medians = {family: float(np.median(_drive(family, 2, frames=1).frame(0).depth)) for family in FAMILIES}
    assert medians["tabletop"] < medians["indoor"] < medians["street"]


def test_sensor_effects_change_the_images_never_the_ground_truth():
    plain = _drive("indoor", 7, frames=2, sensor_effects=False)
    effects = _drive("indoor", 7, frames=2, sensor_effects=True)
    a, b = plain.frame(1), effects.frame(1)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.T_world_camera, b.T_world_camera)
    assert np.abs(a.rgb.astype(float) - b.rgb.astype(float)).mean() > 1.0
    np.testing.assert_array_equal(b.rgb, effects.frame(1).rgb)  # reproducible, noise included


def test_motion_blur_averages_renders_over_the_exposure():
    for seed in range(40):
        drive = _drive("yard", seed, frames=2, sensor_effects=True)
        if drive.effects.exposure_fraction > 0.3 and drive.carrier in ("car", "drone"):
            break
    else:
        pytest.fail("no seed drew a long exposure on a fast carrier")
    # Only the blur: a neutral sensor without noise, gain or vignetting.
    drive.effects = dataclasses.replace(drive.effects, gain=1.0, gain_drift=0.0, gamma=1.0, vignette=0.0,
                                        white_balance=(1.0, 1.0, 1.0), read_noise=0.0, shot_noise=0.0)
    frame = drive.frame(1)
    exposure = drive.effects.exposure_fraction / drive.config.rate_hz
    renders = [drive.render(drive.base_pose_at(0.1 + offset) @ drive.T_base_camera)[0].astype(float)
               for offset in np.linspace(-exposure / 2, exposure / 2, 3)]
    assert np.abs(frame.rgb - np.mean(renders, axis=0)).max() <= 1.0
    sharp = drive.render(frame.T_world_camera)[0].astype(float)
    blurred = frame.rgb.astype(float)
    assert np.abs(np.diff(blurred.mean(-1), axis=1)).mean() < np.abs(np.diff(sharp.mean(-1), axis=1)).mean()


def test_random_family_is_drawn_from_the_seed():
    drawn = [resolve_family("random", seed) for seed in range(40)]
    assert set(drawn) == set(FAMILIES)
    assert drawn == [resolve_family("random", seed) for seed in range(40)]
    seed = drawn.index("tabletop")
    a = SyntheticDrive(SynthConfig(frames=1, width=WIDTH, height=HEIGHT, seed=seed, family="random"))
    b = SyntheticDrive(SynthConfig(frames=1, width=WIDTH, height=HEIGHT, seed=seed, family="tabletop"))
    assert a.family == "tabletop"
    np.testing.assert_array_equal(a.frame(0).rgb, b.frame(0).rgb)


def test_the_training_split_holds_back_a_family_and_seeds():
    assert HELD_OUT_FAMILY not in TRAINING_FAMILIES and set(TRAINING_FAMILIES) | {HELD_OUT_FAMILY} == set(FAMILIES)
    train = training_drives(20)
    held = held_out_drives(5)
    assert len(train) == 20 * len(TRAINING_FAMILIES) and not set(train) & set(held)
    assert not any(is_held_out(family, seed) for family, seed in train)
    assert all(is_held_out(family, seed) for family, seed in held)
    assert {family for family, _ in held} == set(FAMILIES)


def test_the_twist_of_a_3d_carrier_moves_it_to_the_next_pose():
    drive = next(d for d in (_drive("indoor", seed, frames=3) for seed in range(10)) if d.carrier == "drone")
    linear, angular = drive.frame(1).twist
    step = 0.01  # seconds, around frame 1 (t = 0.1 s)
    before, after = drive.base_pose_at(0.1 - step), drive.base_pose_at(0.1 + step)
    now = drive.base_pose_at(0.1)
    np.testing.assert_allclose(now[:3, :3] @ linear * 2 * step, after[:3, 3] - before[:3, 3], atol=2e-4)
    relative = before[:3, :3].T @ after[:3, :3]
    skew = relative - relative.T
    small_angle = np.array([skew[2, 1], skew[0, 2], skew[1, 0]]) / 2
    np.testing.assert_allclose(angular * 2 * step, small_angle, atol=2e-4)
    assert abs(linear[2]) > 0 or abs(angular[0]) > 0  # a drone's twist is not planar
