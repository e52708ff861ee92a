"""TUM and KITTI pose files, quaternions and timestamp association."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monodepth2_ros.errors import DatasetError, MissingInputError
from monodepth2_ros.evaluation import (
    Trajectory,
    associate_timestamps,
    associate_trajectories,
    matrix_to_quaternion,
    quaternion_to_matrix,
    read_kitti_poses,
    read_tum_trajectory,
    write_kitti_poses,
    write_tum_trajectory,
)


def random_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    quaternions = rng.normal(size=(n, 4))
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = quaternion_to_matrix(quaternions)
    poses[:, :3, 3] = rng.normal(scale=10.0, size=(n, 3))
    return poses


def test_quaternion_of_a_quarter_turn_about_z():
    half = math.sqrt(0.5)
    np.testing.assert_allclose(
        quaternion_to_matrix(np.array([0.0, 0.0, half, half])),
        [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
        atol=1e-15,
    )
    np.testing.assert_allclose(
        matrix_to_quaternion(np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])),
        [0.0, 0.0, half, half],
    )


def test_quaternion_matrix_round_trip_including_half_turns():
    rng = np.random.default_rng(0)
    quaternions = rng.normal(size=(50, 4))
    # Half turns about each axis (qw = 0) exercise every branch of the conversion.
    quaternions[:3] = np.eye(4)[:3]
    quaternions /= np.linalg.norm(quaternions, axis=1, keepdims=True)
    quaternions *= np.where(quaternions[:, 3:] < 0, -1.0, 1.0)
    rotations = quaternion_to_matrix(quaternions)
    np.testing.assert_allclose(
        rotations @ np.swapaxes(rotations, 1, 2), np.broadcast_to(np.eye(3), (50, 3, 3)), atol=1e-12
    )
    back = matrix_to_quaternion(rotations)
    np.testing.assert_allclose(quaternion_to_matrix(back), rotations, atol=1e-12)
    np.testing.assert_allclose(back[3:], quaternions[3:], atol=1e-12)


def test_tum_file_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    trajectory = Trajectory(1_700_000_000.0 + np.arange(5) * 0.1, random_poses(rng, 5))
    path = tmp_path / "traj.txt"
    write_tum_trajectory(path, trajectory)
    read = read_tum_trajectory(path)
    np.testing.assert_allclose(read.timestamps, trajectory.timestamps, rtol=0, atol=1e-6)
    np.testing.assert_allclose(read.poses, trajectory.poses, atol=1e-12)
    first = path.read_text().splitlines()[1].split()
    assert len(first) == 8 and float(first[7]) >= 0.0  # qw last, non-negative


def test_tum_reader_skips_comments_and_accepts_commas(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("# ground truth\n\n1.0 1 2 3 0 0 0 1\n2.0,4,5,6,0,0,1,0\n")
    trajectory = read_tum_trajectory(path)
    np.testing.assert_allclose(trajectory.timestamps, [1.0, 2.0])
    np.testing.assert_allclose(trajectory.positions, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_allclose(trajectory.poses[1, :3, :3], np.diag([-1.0, -1.0, 1.0]), atol=1e-15)


def test_malformed_tum_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("# header\n1.0 0 0 0 0 0 0 1\n2.0 0 0 0 0 0 1\n")
    with pytest.raises(DatasetError, match=r"bad\.txt:3: expected 8 numbers .* found 7"):
        read_tum_trajectory(path)


def test_non_numeric_kitti_line_names_file_and_line(tmp_path):
    path = tmp_path / "poses.txt"
    path.write_text("1 0 0 0 0 1 0 0 0 0 1 0\n1 0 0 x 0 1 0 0 0 0 1 0\n")
    with pytest.raises(DatasetError, match=r"poses\.txt:2: not a number"):
        read_kitti_poses(path)


def test_zero_quaternion_is_a_dataset_error(tmp_path):
    path = tmp_path / "zero.txt"
    path.write_text("1.0 0 0 0 0 0 0 0\n")
    with pytest.raises(DatasetError, match=r"zero\.txt:1: quaternion"):
        read_tum_trajectory(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(MissingInputError, match="does not exist"):
        read_kitti_poses(tmp_path / "absent.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(DatasetError, match="holds no pose"):
        read_tum_trajectory(empty)


def test_kitti_file_round_trips(tmp_path):
    rng = np.random.default_rng(2)
    poses = random_poses(rng, 4)
    path = tmp_path / "09.txt"
    write_kitti_poses(path, poses)
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and all(len(line.split()) == 12 for line in lines)
    np.testing.assert_allclose(read_kitti_poses(path), poses, rtol=0, atol=1e-15)


def test_kitti_reader_parses_row_major(tmp_path):
    path = tmp_path / "poses.txt"
    path.write_text("1 0 0 10 0 1 0 20 0 0 1 30\n")
    pose = read_kitti_poses(path)[0]
    np.testing.assert_allclose(pose[:3, 3], [10, 20, 30])
    np.testing.assert_allclose(pose[3], [0, 0, 0, 1])


def test_association_matches_nearest_within_tolerance():
    index_a, index_b = associate_timestamps(
        [0.0, 1.0, 2.0, 3.0], [0.005, 1.5, 2.01, 10.0], max_difference=0.02
    )
    np.testing.assert_array_equal(index_a, [0, 2])
    np.testing.assert_array_equal(index_b, [0, 2])


def test_association_is_one_to_one_closest_first():
    index_a, index_b = associate_timestamps([0.0, 0.01], [0.006], max_difference=0.02)
    np.testing.assert_array_equal(index_a, [1])
    np.testing.assert_array_equal(index_b, [0])


def test_association_applies_offset_and_handles_unsorted_stamps():
    index_a, index_b = associate_timestamps([1.0, 2.0], [1.5, 0.5], max_difference=0.01, offset=0.5)
    np.testing.assert_array_equal(index_a, [0, 1])
    np.testing.assert_array_equal(index_b, [1, 0])


def test_associate_trajectories_returns_matched_pairs_or_raises():
    poses = np.tile(np.eye(4), (3, 1, 1))
    first = Trajectory(np.array([0.0, 1.0, 2.0]), poses)
    second = Trajectory(np.array([1.001, 5.0]), poses[:2])
    a, b = associate_trajectories(first, second)
    np.testing.assert_allclose(a.timestamps, [1.0])
    np.testing.assert_allclose(b.timestamps, [1.001])
    with pytest.raises(DatasetError, match="no timestamps"):
        associate_trajectories(first, Trajectory(np.array([9.0]), poses[:1]))
