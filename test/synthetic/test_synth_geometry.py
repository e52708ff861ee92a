"""The synthetic world is geometrically right: GT depth + GT poses + K explain the images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from monodepth2_ros.model.geometry import (
    backproject,
    pixels_to_sampling_grid,
    project,
    scale_intrinsics,
    warp_image,
)
from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive, kitti_intrinsics

HEIGHT, WIDTH = 96, 320


@pytest.fixture(scope="module")
def drive() -> SyntheticDrive:
    return SyntheticDrive(SynthConfig(frames=12, width=WIDTH, height=HEIGHT, seed=4))


def _as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0


def _intrinsics(drive: SyntheticDrive) -> tuple[torch.Tensor, torch.Tensor]:
    K = torch.tensor(drive.K, dtype=torch.float32)[None]
    return K, torch.linalg.inv(K)


def _reprojection(drive: SyntheticDrive, target, source):
    """Where target pixels land in the source view: pixels (1, 2, N), z (H, W), T_source_target."""
    K, inv_K = _intrinsics(drive)
    T = torch.tensor(np.linalg.inv(source.T_world_camera) @ target.T_world_camera, dtype=torch.float32)[None]
    depth = torch.from_numpy(target.depth)[None, None]
    pixels, z = project(backproject(depth, inv_K), K, T)
    return pixels, z[0, 0].reshape(HEIGHT, WIDTH).numpy(), T, depth


def _inside(pixels: torch.Tensor) -> np.ndarray:
    u, v = pixels[0, 0], pixels[0, 1]
    return ((u >= 0) & (u <= WIDTH - 1) & (v >= 0) & (v <= HEIGHT - 1)).reshape(HEIGHT, WIDTH).numpy()


def _visible(drive: SyntheticDrive, target, source, tolerance: float = 0.02) -> np.ndarray:
    """Target pixels whose point is the surface the source camera sees there (not occluded)."""
    pixels, z, _, _ = _reprojection(drive, target, source)
    grid = pixels_to_sampling_grid(pixels, HEIGHT, WIDTH)
    seen = F.grid_sample(torch.from_numpy(source.depth)[None, None], grid, mode="nearest", align_corners=True)
    return _inside(pixels) & (np.abs(seen[0, 0].numpy() - z) < tolerance * z)


@pytest.mark.parametrize("index", [0, 6])
def test_gt_depth_and_pose_warp_next_frame_onto_current(drive, index):
    target, source = drive.frame(index), drive.frame(index + 1)
    assert target.speed > 3.0, "the pair must move for the check to mean anything"
    pixels, _, T, depth = _reprojection(drive, target, source)
    K, inv_K = _intrinsics(drive)
    warped = warp_image(_as_tensor(source.rgb), depth, T, K, inv_K)
    error = (warped - _as_tensor(target.rgb)).abs().mean(1)[0].numpy()
    unwarped = (_as_tensor(source.rgb) - _as_tensor(target.rgb)).abs().mean(1)[0].numpy()
    mask = _inside(pixels) & np.isfinite(target.depth)
    assert mask.mean() > 0.8
    assert error[mask].mean() < 0.35 * unwarped[mask].mean()
    visible = _visible(drive, target, source)
    assert error[visible].mean() < 0.3 * unwarped[visible].mean()


def test_gt_depth_is_consistent_between_frames(drive):
    target, source = drive.frame(2), drive.frame(3)
    pixels, z, _, _ = _reprojection(drive, target, source)
    grid = pixels_to_sampling_grid(pixels, HEIGHT, WIDTH)
    seen = F.grid_sample(torch.from_numpy(source.depth)[None, None], grid, mode="bilinear", align_corners=True)
    relative = np.abs(seen[0, 0].numpy() - z) / z
    inside = _inside(pixels)
    # Bilinear depth sampling is exact on planes; only occlusion and surface edges disagree.
    assert np.median(relative[inside]) < 1e-3
    assert (relative[inside] < 0.01).mean() > 0.85


def test_a_wrong_pose_does_not_explain_the_images(drive):
    target, source = drive.frame(0), drive.frame(1)
    K, inv_K = _intrinsics(drive)
    T_wrong = torch.tensor(np.linalg.inv(target.T_world_camera) @ source.T_world_camera, dtype=torch.float32)[None]
    depth = torch.from_numpy(target.depth)[None, None]
    wrong = warp_image(_as_tensor(source.rgb), depth, T_wrong, K, inv_K)
    _, _, T_right, _ = _reprojection(drive, target, source)
    right = warp_image(_as_tensor(source.rgb), depth, T_right, K, inv_K)
    reference = _as_tensor(target.rgb)
    assert (wrong - reference).abs().mean() > 2.0 * (right - reference).abs().mean()


def test_ground_is_at_zero_height_and_camera_mounted_above_it(drive):
    frame = drive.frame(0)
    _, inv_K = _intrinsics(drive)
    points = backproject(torch.from_numpy(frame.depth)[None, None], inv_K)[0].double().numpy()
    world = frame.T_world_camera[:3, :3] @ points + frame.T_world_camera[:3, 3:]
    assert world[2].min() > -1e-3
    bottom_row = world[2].reshape(HEIGHT, WIDTH)[-1]
    assert np.median(np.abs(bottom_row)) < 0.01  # the road right in front of the car
    assert frame.T_world_camera[2, 3] == pytest.approx(drive.config.camera_height_m)


def test_camera_mount_follows_rep103(drive):
    R = drive.T_base_camera[:3, :3]
    np.testing.assert_allclose(R @ [0, 0, 1], [1, 0, 0], atol=1e-12)  # optical z = base +x (forward)
    np.testing.assert_allclose(R @ [1, 0, 0], [0, -1, 0], atol=1e-12)  # optical x = base -y (right)
    np.testing.assert_allclose(R @ [0, 1, 0], [0, 0, -1], atol=1e-12)  # optical y = base -z (down)
    assert drive.T_base_camera[2, 3] == pytest.approx(1.65)
    frame = drive.frame(0)
    np.testing.assert_allclose(
        frame.T_world_camera, drive.T_world_odom @ frame.T_odom_base @ drive.T_base_camera, atol=1e-9
    )


def test_intrinsics_are_kitti_scaled_to_the_image_size():
    K_full = kitti_intrinsics()
    assert K_full[0, 0] == pytest.approx(721.5377)
    assert K_full[1, 2] == pytest.approx(172.854)
    K_small = SyntheticDrive(SynthConfig(frames=1, width=WIDTH, height=HEIGHT)).K
    np.testing.assert_allclose(K_small, scale_intrinsics(K_full, (375, 1242), (HEIGHT, WIDTH)))


def test_stereo_right_view_is_the_left_view_shifted_by_the_baseline():
    drive = SyntheticDrive(SynthConfig(frames=2, width=WIDTH, height=HEIGHT, seed=1, stereo=True))
    frame = drive.frame(0)
    np.testing.assert_allclose(drive.T_left_right[:3, 3], [0.54, 0.0, 0.0])
    right_rgb, right_depth = drive.render(frame.T_world_camera @ drive.T_left_right)
    np.testing.assert_array_equal(right_rgb, frame.right_rgb)
    np.testing.assert_array_equal(right_depth, frame.right_depth)
    K, inv_K = _intrinsics(drive)
    depth = torch.from_numpy(frame.depth)[None, None]
    left = _as_tensor(frame.rgb)
    columns = slice(0, int(WIDTH * 0.85))  # points right of this have no counterpart in the right view

    def error(baseline_x: float) -> float:
        T_right_left = torch.eye(4)[None]
        T_right_left[0, 0, 3] = -baseline_x
        warped = warp_image(_as_tensor(frame.right_rgb), depth, T_right_left, K, inv_K)
        return float((warped - left).abs().mean(1)[0, :, columns].mean())

    unwarped = float((_as_tensor(frame.right_rgb) - left).abs().mean(1)[0, :, columns].mean())
    assert error(0.54) < 0.35 * unwarped
    assert error(-0.54) > 2.0 * error(0.54)  # the right camera sits at +x of the left optical frame
