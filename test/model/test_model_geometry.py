import math

import numpy as np
import pytest
import torch

from monodepth2_ros.model.geometry import (
    axis_angle_to_matrix,
    backproject,
    denormalize_intrinsics,
    invert_intrinsics,
    depth_to_disp,
    disp_to_depth,
    invert_transform,
    matrix_to_axis_angle,
    normalize_intrinsics,
    pixel_grid,
    pixels_to_sampling_grid,
    pose_vec_to_mat,
    project,
    scale_intrinsics,
    transform_points,
    warp_image,
)

K_KITTI = torch.tensor([[[721.5377, 0.0, 609.5593], [0.0, 721.5377, 172.854], [0.0, 0.0, 1.0]]], dtype=torch.float64)


def test_backproject_then_project_returns_the_pixel_grid_and_the_depth():
    depth = torch.rand(2, 1, 5, 7, dtype=torch.float64) * 50 + 0.5
    K = K_KITTI.repeat(2, 1, 1)
    pixels, z = project(backproject(depth, torch.linalg.inv(K)), K)
    torch.testing.assert_close(pixels, pixel_grid(5, 7, dtype=torch.float64)[:2].expand(2, 2, 35))
    torch.testing.assert_close(z.reshape(2, 1, 5, 7), depth)


def test_backprojected_point_of_the_principal_point_lies_on_the_optical_axis():
    K = torch.tensor([[[100.0, 0, 2.0], [0, 100.0, 1.0], [0, 0, 1]]])
    points = backproject(torch.full((1, 1, 3, 5), 4.0), torch.linalg.inv(K))
    centre = points[0, :, 1 * 5 + 2]
    torch.testing.assert_close(centre, torch.tensor([0.0, 0.0, 4.0]))
    # one pixel to the right at 4 m is 4/100 m along +x (REP 103: x right)
    torch.testing.assert_close(points[0, :, 1 * 5 + 3], torch.tensor([0.04, 0.0, 4.0]))


def test_known_rotation_about_the_optical_axis():
    R = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, math.pi / 2]]))
    torch.testing.assert_close(R[0] @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(1))


def test_rodrigues_is_stable_and_first_order_at_zero_angle():
    tiny = torch.tensor([[1e-9, -2e-9, 3e-9]], requires_grad=True)
    R = axis_angle_to_matrix(tiny)
    torch.testing.assert_close(R[0], torch.eye(3), atol=1e-8, rtol=0)
    R.sum().backward()
    assert torch.isfinite(tiny.grad).all()


def test_axis_angle_round_trip():
    axis_angle = torch.tensor([[0.3, -0.2, 0.1], [1.0, 2.0, -0.5], [0.0, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(matrix_to_axis_angle(axis_angle_to_matrix(axis_angle)), axis_angle)


def test_pose_vec_to_mat_applies_rotation_then_translation_and_invert_is_its_inverse():
    axis_angle = torch.tensor([[0.0, math.pi / 2, 0.0]])
    translation = torch.tensor([[1.0, 2.0, 3.0]])
    T = pose_vec_to_mat(axis_angle, translation)
    point = torch.tensor([[[0.0], [0.0], [1.0]]])  # on the z axis
    # rotating z by +90 deg about y gives +x, then translate
    torch.testing.assert_close(transform_points(T, point)[0, :, 0], torch.tensor([2.0, 2.0, 3.0]), atol=1e-6, rtol=0)
    T_inv = pose_vec_to_mat(axis_angle, translation, invert=True)
    torch.testing.assert_close(T_inv @ T, torch.eye(4)[None], atol=1e-6, rtol=0)
    torch.testing.assert_close(invert_transform(T), T_inv, atol=1e-6, rtol=0)


def test_disp_to_depth_spans_the_depth_range_and_inverts():
    scaled, depth = disp_to_depth(torch.tensor([0.0, 1.0]), 0.1, 100.0)
    torch.testing.assert_close(depth, torch.tensor([100.0, 0.1]))
    torch.testing.assert_close(scaled, 1.0 / depth)
    disp = torch.rand(10)
    torch.testing.assert_close(depth_to_disp(disp_to_depth(disp)[1]), disp, atol=1e-5, rtol=0)


@pytest.mark.parametrize("to_size", [(192, 640), (375, 1242), (96, 320), (750, 2484)])
def test_scaled_intrinsics_project_a_point_to_the_same_relative_image_position(to_size):
    point = torch.tensor([[[2.0], [-0.7], [15.0]]], dtype=torch.float64)
    from_size = (375, 1242)
    pixels_from, _ = project(point, K_KITTI)
    pixels_to, _ = project(point, scale_intrinsics(K_KITTI, from_size, to_size))
    # relative position measured from the image corner, in units of image size (pixel centres at +0.5)
    rel_from = (pixels_from[0, :, 0] + 0.5) / torch.tensor([from_size[1], from_size[0]], dtype=torch.float64)
    rel_to = (pixels_to[0, :, 0] + 0.5) / torch.tensor([to_size[1], to_size[0]], dtype=torch.float64)
    torch.testing.assert_close(rel_to, rel_from)


def test_intrinsics_normalisation_works_on_numpy_and_round_trips():
    K = K_KITTI[0].numpy()
    K_norm = normalize_intrinsics(K, 375, 1242)
    assert isinstance(K_norm, np.ndarray)
    np.testing.assert_allclose(K_norm[0, 2], (609.5593 + 0.5) / 1242)
    np.testing.assert_allclose(denormalize_intrinsics(K_norm, 375, 1242), K)
    assert K[0, 2] == 609.5593  # input untouched


def test_warp_with_identity_pose_returns_the_source_image():
    image = torch.rand(1, 3, 6, 8)
    K = torch.tensor([[[5.0, 0, 3.5], [0, 5.0, 2.5], [0, 0, 1]]])
    warped = warp_image(image, torch.full((1, 1, 6, 8), 3.0), torch.eye(4)[None], K, torch.linalg.inv(K))
    torch.testing.assert_close(warped, image, atol=1e-5, rtol=0)


def test_warp_with_a_sideways_motion_shifts_a_fronto_parallel_plane_by_the_disparity():
    # Camera b sits 0.5 m to the right of a; a plane at 5 m with f = 10 moves by f * b / z = 1 px.
    image = torch.arange(8.0).repeat(1, 1, 4, 1)
    K = torch.tensor([[[10.0, 0, 3.5], [0, 10.0, 1.5], [0, 0, 1]]])
    T_source_target = torch.eye(4)[None].clone()
    T_source_target[0, 0, 3] = -0.5  # target points are 0.5 m further left in the source camera
    warped = warp_image(image, torch.full((1, 1, 4, 8), 5.0), T_source_target, K, torch.linalg.inv(K))
    torch.testing.assert_close(warped[0, 0, :, 1:], image[0, 0, :, :-1], atol=1e-4, rtol=0)


def test_warp_with_nan_depth_samples_the_border_and_backpropagates():
    image = torch.rand(1, 3, 6, 8, requires_grad=True)
    depth = torch.full((1, 1, 6, 8), 3.0)
    depth[0, 0, 2, 3] = float("nan")
    K = torch.tensor([[[5.0, 0, 3.5], [0, 5.0, 2.5], [0, 0, 1]]])
    warped = warp_image(image, depth, torch.eye(4)[None], K, torch.linalg.inv(K))
    assert torch.isfinite(warped).all()
    warped.sum().backward()
    assert torch.isfinite(image.grad).all()


def test_closed_form_pinhole_inverse_equals_the_general_inverse():
    generator = torch.Generator().manual_seed(3)
    K = torch.zeros(6, 3, 3, dtype=torch.float64)
    K[:, 0, 0] = 50 + 900 * torch.rand(6, generator=generator, dtype=torch.float64)
    K[:, 1, 1] = 50 + 900 * torch.rand(6, generator=generator, dtype=torch.float64)
    K[:, 0, 1] = torch.randn(6, generator=generator, dtype=torch.float64)  # skew
    K[:, 0, 2] = 1000 * torch.rand(6, generator=generator, dtype=torch.float64)
    K[:, 1, 2] = 400 * torch.rand(6, generator=generator, dtype=torch.float64)
    K[:, 2, 2] = 1.0
    torch.testing.assert_close(invert_intrinsics(K), torch.linalg.inv(K))
    torch.testing.assert_close(invert_intrinsics(K_KITTI.float()), torch.linalg.inv(K_KITTI).float())
    # any leading shape, and a gradient flows (the loss's per-scale intrinsics are differentiable inputs)
    K_leaf = K.reshape(2, 3, 3, 3).clone().requires_grad_(True)
    invert_intrinsics(K_leaf).sum().backward()
    assert K_leaf.grad is not None and torch.isfinite(K_leaf.grad).all()


def test_sampling_grid_maps_the_pixel_corners_to_minus_one_and_one():
    height, width = 4, 6
    pixels = pixel_grid(height, width)[:2].unsqueeze(0)
    grid = pixels_to_sampling_grid(pixels, height, width)
    assert grid.shape == (1, height, width, 2)
    torch.testing.assert_close(grid[0, 0, 0], torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(grid[0, -1, -1], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(grid[0, 2, 3], torch.tensor([2 * 3 / 5 - 1, 2 * 2 / 3 - 1]))
    # a one-pixel-wide image keeps finite coordinates
    assert torch.isfinite(pixels_to_sampling_grid(pixel_grid(1, 1)[:2].unsqueeze(0), 1, 1)).all()
