import numpy as np
import pytest

from monodepth2_ros.evaluation.baselines import constant_depth, constant_forward_steps
from monodepth2_ros.evaluation.photometric import reprojection_error_map, static_photometric_error
from monodepth2_ros.evaluation.trajectory import invert_poses
from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive


@pytest.fixture(scope="module")
def street_triplet():
    drive = SyntheticDrive(SynthConfig(frames=3, width=128, height=48, seed=4, family="street", randomize=False))
    shots = [drive.frame(k) for k in range(3)]
    return drive.K, shots


def test_true_depth_and_pose_explain_the_target_better_than_no_motion_or_a_flat_world(street_triplet):
    K, (prev, target, nxt) = street_triplet
    # T_source_target = inv(T_world_source) @ T_world_target
    poses = [invert_poses(s.T_world_camera) @ target.T_world_camera for s in (prev, nxt)]
    depth = np.where(np.isfinite(target.depth), target.depth, 1e3)
    truth = reprojection_error_map(target.rgb, [prev.rgb, nxt.rgb], depth, poses, K)
    static = static_photometric_error(target.rgb, [prev.rgb, nxt.rgb])
    flat = reprojection_error_map(target.rgb, [prev.rgb, nxt.rgb], constant_depth(*depth.shape) * np.median(depth), poses, K)
    assert truth.shape == depth.shape
    assert truth.mean() < 0.6 * static.mean()
    assert truth.mean() < flat.mean()


def test_a_source_equal_to_the_target_with_no_motion_has_zero_error_and_the_minimum_is_per_pixel(make_image):
    image = make_image(24, 32)
    other = make_image(24, 32, seed=5)
    K = np.array([[30.0, 0, 15.5], [0, 30.0, 11.5], [0, 0, 1]])
    depth = np.full((24, 32), 3.0)
    same = reprojection_error_map(image, [other, image], depth, [np.eye(4), np.eye(4)], K)
    np.testing.assert_allclose(same, 0.0, atol=1e-9)
    only_other = reprojection_error_map(image, [other], depth, [np.eye(4)], K)
    np.testing.assert_allclose(only_other, static_photometric_error(image, [other]), atol=1e-9)
    assert only_other.mean() > 0.05
    with pytest.raises(ValueError, match="finite and > 0"):
        reprojection_error_map(image, [other], np.zeros((24, 32)), [np.eye(4)], K)


def test_constant_forward_steps_move_along_the_optical_axis():
    steps = constant_forward_steps(3, 0.5)
    assert steps.shape == (3, 4, 4)
    np.testing.assert_array_equal(steps[:, :3, :3], np.broadcast_to(np.eye(3), (3, 3, 3)))
    np.testing.assert_array_equal(steps[:, :3, 3], [[0, 0, 0.5]] * 3)
