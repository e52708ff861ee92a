"""Scale sources: the fixed modes, camera height on ground-truth depth, odometry distance, shared."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.ground_plane import GroundPlaneConfig, find_ground_plane, fit_ground_plane, region_points
from monodepth2_ros.inference.odometry import mount_transform
from monodepth2_ros.inference.scale import (
    OBSERVES_DEPTH,
    OBSERVES_MOTION,
    CameraHeightScale,
    MotionObservation,
    OdometryScale,
    ScaleRequest,
    SharedScale,
    make_scale_source,
    register_scale_mode,
    scale_modes,
)
from monodepth2_ros.model.checkpoint import CheckpointInfo
from monodepth2_ros.model.constants import STEREO_SCALE
from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive

UNKNOWN_FACTOR = 7.3  # the "network" depth is ground truth divided by this


@pytest.fixture(autouse=True)
def single_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _units(depth: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(depth / UNKNOWN_FACTOR).float()[None, None]


def test_every_mode_is_registered_and_the_fixed_ones_keep_their_values():
    assert scale_modes() == ("auto", "none", "fixed", "stereo", "shared", "camera_height", "odometry")
    assert make_scale_source(ScaleRequest("auto", info=CheckpointInfo(use_stereo=True))).scale == STEREO_SCALE
    assert make_scale_source(ScaleRequest("stereo")).scale == 5.4
    assert make_scale_source(ScaleRequest("fixed", factor=2.5)).scale == 2.5
    none = make_scale_source(ScaleRequest("none"))
    assert none.scale == 1.0 and not none.is_metric and none.observes is None
    assert make_scale_source(ScaleRequest("camera_height")).observes == OBSERVES_DEPTH
    assert make_scale_source(ScaleRequest("odometry", origin="/wheel_odom")).observes == OBSERVES_MOTION
    with pytest.raises(ConfigError, match="unknown scale_mode 'lidar'.*camera_height"):
        make_scale_source(ScaleRequest("lidar"))
    with pytest.raises(ConfigError, match="already registered"):
        register_scale_mode("fixed", lambda request: None)
    with pytest.raises(ConfigError, match="camera_height must be a positive"):
        make_scale_source(ScaleRequest("camera_height", camera_height_m=0.0))
    with pytest.raises(ConfigError, match="scale_window"):
        make_scale_source(ScaleRequest("odometry", window=0))


@pytest.mark.parametrize("seed", [0, 5])
def test_camera_height_recovers_the_scale_of_ground_truth_depth_within_two_percent(seed):
    config = SynthConfig(frames=3, width=160, height=48, seed=seed)
    drive = SyntheticDrive(config)
    source = make_scale_source(ScaleRequest("camera_height", camera_height_m=config.camera_height_m, window=5))
    assert not source.is_metric and source.scale == 1.0
    for frame in drive.iter_frames():
        search = find_ground_plane(_units(frame.depth), drive.K)
        assert search.found, search.reason
        assert search.plane.height * UNKNOWN_FACTOR == pytest.approx(config.camera_height_m, rel=0.02)
        assert search.plane.tilt_deg < 2.0  # the synthetic camera is level
        source.observe(_units(frame.depth), drive.K)
        assert source.scale == pytest.approx(UNKNOWN_FACTOR, rel=0.02)
    assert source.is_metric and source.warning is None
    assert source.details()["ground plane"] == "found"


def test_camera_height_keeps_the_last_scale_when_the_plane_is_implausible():
    drive = SyntheticDrive(SynthConfig(frames=1, width=160, height=48, seed=1))
    frame = drive.frame(0)
    source = CameraHeightScale(camera_height_m=1.65, window=3)
    wall = np.full(frame.depth.shape, 4.0)  # a facade filling the view: normal along the optical axis
    source.observe(_units(wall), drive.K)
    assert not source.is_metric and "no ground plane found yet" in source.warning and "deg" in source.warning

    source.observe(_units(frame.depth), drive.K)
    found = source.scale
    assert found == pytest.approx(UNKNOWN_FACTOR, rel=0.02)
    source.observe(_units(wall), drive.K)
    source.observe(_units(np.full_like(frame.depth, np.nan)), drive.K)
    assert source.scale == found
    assert "keeping scale" in source.warning and "2 frame(s)" in source.warning
    assert "valid points" in source.details()["ground plane"]


def test_plane_search_rejects_tilted_planes_and_sparse_support():
    rng = np.random.default_rng(0)
    ground = np.column_stack([rng.uniform(-3, 3, 500), np.full(500, 1.5), rng.uniform(3, 20, 500)])
    found = fit_ground_plane(ground)
    assert found.found and found.plane.height == pytest.approx(1.5) and found.plane.tilt_deg < 1e-6
    tilt = math.radians(30.0)  # a steep ramp: outside the default 20 degrees
    R = np.array([[1, 0, 0], [0, math.cos(tilt), -math.sin(tilt)], [0, math.sin(tilt), math.cos(tilt)]])
    assert not fit_ground_plane(ground @ R.T).found
    assert fit_ground_plane(ground @ R.T, GroundPlaneConfig(max_tilt_deg=35.0)).found
    clutter = np.vstack([ground[:100], rng.uniform([-3, -5, 3], [3, 1.4, 20], (900, 3))])
    sparse = fit_ground_plane(clutter)
    assert not sparse.found and "explains" in sparse.reason and sparse.candidate is not None
    with pytest.raises(ConfigError, match="max_tilt_deg"):
        GroundPlaneConfig(max_tilt_deg=95.0)


def test_region_points_back_project_the_lower_rows_with_strided_intrinsics():
    K = np.array([[100.0, 0.0, 79.5], [0.0, 100.0, 23.5], [0.0, 0.0, 1.0]])
    height, width = 48, 160
    depth = torch.full((1, 1, height, width), 10.0)
    points = region_points(depth, K, region_fraction=0.5, max_pixels=400)
    rows = np.unique(np.round(points[:, 1] / 10.0 * 100.0 + 23.5, 6))  # v = fy * y / z + cy
    assert rows.min() >= 24 - 1e-6 and rows.max() <= 47 + 1e-6
    assert len(points) <= 2 * 400 and np.allclose(points[:, 2], 10.0)
    columns = np.round(points[:, 0] / 10.0 * 100.0 + 79.5, 6)
    assert np.allclose(columns, np.round(columns)) and columns.min() == 0.0  # exactly on pixel centres


def _base_pose(drive: SyntheticDrive, index: float) -> np.ndarray:
    return drive.T_odom_base(index)  # fractional indices: the drive between frames


def test_odometry_scale_recovers_a_known_factor_from_reference_odometry():
    drive = SyntheticDrive(SynthConfig(frames=40, width=160, height=48, seed=8))
    mount = mount_transform((1.5, 0.2, 1.3))  # camera ahead of the reference point: a lever arm in turns
    source = make_scale_source(ScaleRequest("odometry", window=10, min_distance_m=1.0, origin="/wheel_odom"))
    rate = drive.config.rate_hz
    reference_per_frame = 5  # a 50 Hz reference for a 10 Hz camera
    # The camera runs ahead of the reference by two frames: motions wait until it covers them.
    for i in range(1, 30):
        for k in range(reference_per_frame):
            index = (i - 2) + k / reference_per_frame
            if index >= 0:
                stamp = drive.config.start_stamp_ns + int(round(index * 1e9 / rate))
                source.add_reference(stamp, _base_pose(drive, index))
        T_c0_c1 = np.linalg.inv(_base_pose(drive, i - 1) @ mount) @ (_base_pose(drive, i) @ mount)
        source.observe_motion(
            MotionObservation(drive.stamp_ns(i - 1), drive.stamp_ns(i), T_c0_c1[:3, 3] / UNKNOWN_FACTOR, mount)
        )
    assert source.is_metric and source.warning is None
    assert source.scale == pytest.approx(UNKNOWN_FACTOR, rel=1e-3)
    details = source.details()
    assert details["scale motions in window"] == "10" and "/wheel_odom" in details["scale source"]


def test_odometry_scale_waits_for_travel_and_keeps_the_last_value_when_standing_still():
    source = OdometryScale(window=3, min_distance_m=1.0, origin="/odom_ref")
    assert not source.is_metric and "/odom_ref" in source.warning
    mount = np.eye(4)
    s = 1_000_000_000

    def pose(x: float) -> np.ndarray:
        T = np.eye(4)
        T[0, 3] = x
        return T

    for i in range(6):
        source.add_reference(i * s, pose(0.4 * i))
    for i in range(1, 4):  # 0.4 m each: the window reaches 1.2 m at the third motion
        source.observe_motion(MotionObservation((i - 1) * s, i * s, np.array([0.1, 0.0, 0.0]), mount))
        assert source.is_metric == (i == 3)
    assert source.scale == pytest.approx(4.0)
    for i in range(6, 12):
        source.add_reference(i * s, pose(2.0))  # standing still
    for i in range(6, 10):
        source.observe_motion(MotionObservation(i * s, (i + 1) * s, np.array([0.001, 0.0, 0.0]), mount))
    assert source.scale == pytest.approx(4.0) and "keeping scale 4" in source.details()["scale note"]
    source.add_reference(3 * s, pose(0.0))  # the reference went back in time: it restarts
    source.observe_motion(MotionObservation(20 * s, 21 * s, np.array([0.1, 0.0, 0.0]), mount))
    assert source.scale == pytest.approx(4.0)


def test_shared_scale_waits_then_follows_updates():
    source = make_scale_source(ScaleRequest("shared", origin="/robot/scale"))
    assert isinstance(source, SharedScale)
    assert source.scale == 1.0 and not source.is_metric and "/robot/scale" in source.warning
    assert source.update(3.2) and source.scale == 3.2 and source.is_metric and source.warning is None
    assert not source.update(float("nan")) and not source.update(-1.0)
    assert source.scale == 3.2 and source.details()["scale updates"] == "1"


def test_ground_plane_figures_command_reports_the_scale_error(capsys):
    from monodepth2_ros.tools.ground_plane_figures import main

    assert main(["--seeds", "1", "--frames", "2", "--width", "160", "--height", "48", "--factor", "3.0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("seed 1: 2/2 frames with a plane") and lines[-1].startswith("all: 2 frames")
    smoothed = float(lines[0].split("smoothed scale error ")[1].rstrip(" %"))
    assert abs(smoothed) < 2.0
