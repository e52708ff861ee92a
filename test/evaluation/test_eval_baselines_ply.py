import numpy as np
import pytest

from monodepth2_ros.evaluation.baselines import flat_ground_depth
from monodepth2_ros.evaluation.pointcloud_io import write_ply, xyzrgb_cloud_arrays


def test_flat_ground_prior_puts_the_road_at_camera_height():
    K = np.array([[100.0, 0, 49.5], [0, 100.0, 20.0], [0, 0, 1]])
    depth = flat_ground_depth(K, 40, 100, camera_height_m=1.5, far_depth_m=30.0)
    assert depth.shape == (40, 100) and depth.dtype == np.float32
    # row 30 is 10 px below the principal point: the ray y/z = 0.1 meets y = 1.5 m at z = 15 m
    assert depth[30, 7] == pytest.approx(15.0)
    assert (depth[:26] == 30.0).all()  # above the horizon, and road farther than the wall: the constant
    assert np.all(np.diff(depth[26:, 0]) < 0)  # lower rows are nearer


def test_ply_round_trip_of_a_packed_xyzrgb_cloud(tmp_path):
    points = np.array([[1.0, 2.0, 3.0, 0.0], [np.nan, np.nan, np.nan, 0.0], [-1.0, 0.5, 9.0, 0.0]], dtype=np.float32)
    packed = np.array([0x00FF8001, 0, 0x00010203], dtype=np.uint32)
    points[:, 3] = packed.view(np.float32)
    xyz, rgb = xyzrgb_cloud_arrays(points.tobytes())
    np.testing.assert_array_equal(xyz, [[1, 2, 3], [-1, 0.5, 9]])
    np.testing.assert_array_equal(rgb, [[255, 128, 1], [1, 2, 3]])
    write_ply(tmp_path / "c.ply", xyz, rgb)
    data = (tmp_path / "c.ply").read_bytes()
    header, body = data.split(b"end_header\n")
    assert b"element vertex 2" in header
    vertices = np.frombuffer(body, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    assert vertices["z"].tolist() == [3.0, 9.0] and vertices["r"].tolist() == [255, 1]
