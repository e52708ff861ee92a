"""The drive: seeded determinism, stops, turns, speeds, stamps, odometry and image content."""

from __future__ import annotations

import numpy as np
import pytest

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.synthetic import START_STAMP_NS, SynthConfig, SyntheticDrive

SMALL = dict(width=160, height=48)


def _yaw(T: np.ndarray) -> float:
    return float(np.arctan2(T[1, 0], T[0, 0]))


def test_same_seed_renders_identical_frames():
    a = SyntheticDrive(SynthConfig(frames=4, seed=7, **SMALL)).frame(3)
    b = SyntheticDrive(SynthConfig(frames=4, seed=7, **SMALL)).frame(3)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.T_world_camera, b.T_world_camera)


def test_different_seeds_render_different_worlds():
    frames = [SyntheticDrive(SynthConfig(frames=1, seed=seed, **SMALL)).frame(0) for seed in (0, 1)]
    rgb_change = np.abs(frames[0].rgb.astype(np.int16) - frames[1].rgb).mean()
    depth_change = np.nanmean(np.abs(np.log(frames[0].depth / frames[1].depth)))
    assert rgb_change > 10.0
    assert depth_change > 0.1


def test_a_longer_drive_extends_a_shorter_one_of_the_same_seed():
    short = SyntheticDrive(SynthConfig(frames=30, seed=2, **SMALL))
    long = SyntheticDrive(SynthConfig(frames=300, seed=2, **SMALL))
    np.testing.assert_allclose(short.poses(), long.poses()[:30], atol=1e-9)
    a, b = short.frame(10), long.frame(10)
    near = (a.depth < 200.0) & (b.depth < 200.0)  # the short street's far end wall may show beyond
    assert near.mean() > 0.8
    np.testing.assert_array_equal(a.rgb[near], b.rgb[near])
    np.testing.assert_array_equal(a.depth[near], b.depth[near])


def test_drive_stands_still_for_whole_stretches():
    drive = SyntheticDrive(SynthConfig(frames=80, seed=0, **SMALL))
    poses = drive.poses()
    still = [i for i in range(len(poses) - 1) if np.array_equal(poses[i], poses[i + 1])]
    assert len(still) >= 5
    assert drive.state(still[0]).speed == 0.0
    a, b = drive.frame(still[0]), drive.frame(still[0] + 1)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.T_odom_base, b.T_odom_base)
    moving = [i for i in range(len(poses) - 1) if not np.array_equal(poses[i], poses[i + 1])]
    assert len(moving) >= 20


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_drive_turns_and_keeps_speed_within_limits(seed):
    config = SynthConfig(frames=600, seed=seed, **SMALL)
    drive = SyntheticDrive(config)
    speeds = np.array([drive.state(i).speed for i in range(config.frames)])
    assert speeds.min() == 0.0
    assert speeds.max() <= config.max_speed_mps + 1e-9
    assert speeds.max() > 8.0
    yaws = np.unwrap([_yaw(drive.T_world_base(i)) for i in range(config.frames)])
    assert np.ptp(yaws) > np.deg2rad(10.0)


def test_odometry_twist_matches_the_pose_differences():
    drive = SyntheticDrive(SynthConfig(frames=40, seed=3, **SMALL))
    dt = 1.0 / drive.config.rate_hz
    for i in (5, 25):
        before, after = drive.T_odom_base(i - 1), drive.T_odom_base(i + 1)
        motion = np.linalg.inv(drive.T_odom_base(i)) @ after
        state = drive.state(i)
        assert np.hypot(*(after[:2, 3] - before[:2, 3])) / (2 * dt) == pytest.approx(state.speed, rel=0.05, abs=0.05)
        assert abs(motion[1, 3]) < 0.02 * max(state.speed, 1.0)  # no sideways slip in base_link
        yaw_rate = (_yaw(after) - _yaw(before)) / (2 * dt)
        assert yaw_rate == pytest.approx(state.yaw_rate, abs=0.01)


def test_odom_starts_at_identity_and_stamps_follow_the_rate():
    drive = SyntheticDrive(SynthConfig(frames=5, rate_hz=20.0, **SMALL))
    np.testing.assert_allclose(drive.T_odom_base(0), np.eye(4), atol=1e-12)
    frames = list(drive.iter_frames())
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert frames[0].stamp_ns == START_STAMP_NS
    assert np.all(np.diff([f.stamp_ns for f in frames]) == 50_000_000)


def test_every_pixel_has_a_finite_depth_under_the_cloud_layer():
    for index in (0, 20):
        depth = SyntheticDrive(SynthConfig(frames=21, seed=5, **SMALL)).frame(index).depth
        assert np.isfinite(depth).all()
        assert depth.min() > 0.5


def test_sky_at_infinity_has_nan_depth_only_above_the_horizon():
    drive = SyntheticDrive(SynthConfig(frames=1, seed=5, sky_surface=False, **SMALL))
    depth = drive.frame(0).depth
    rows = np.nonzero(np.isnan(depth).any(axis=1))[0]
    assert rows.size > 0
    horizon = drive.K[1, 2]  # the camera looks level: rays above cy point up
    assert rows.max() < horizon


def test_images_have_contrast_at_fine_and_coarse_scales():
    frame = SyntheticDrive(SynthConfig(frames=30, seed=1, width=320, height=96)).frame(25)
    grey = frame.rgb.astype(np.float32).mean(axis=2)
    assert np.abs(np.diff(grey, axis=1)).mean() > 3.0  # pixel-scale detail (SSIM's 3x3 windows)
    blocks = grey[: 96 // 16 * 16].reshape(6, 16, 20, 16).mean(axis=(1, 3))
    assert blocks.std() > 10.0  # structure at the scale of tens of pixels


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("frames", 0, "frames"), ("width", 4, "size"), ("rate_hz", 0.0, "rate_hz"), ("antialias", 9, "antialias")],
)
def test_config_rejects_invalid_values(field, value, message):
    with pytest.raises(ConfigError, match=message):
        SynthConfig(**{field: value})


def test_unavailable_device_is_a_config_error():
    with pytest.raises(ConfigError, match="not a torch device"):
        SyntheticDrive(SynthConfig(frames=1, device="no-such-device", **SMALL))


@pytest.mark.parametrize("max_speed", [0.5, 2.0, 4.5])
def test_slow_speed_profiles_never_exceed_their_limit(max_speed):
    """A slow (handheld-like) drive: every phase's speed stays within [0, max_speed]."""
    from monodepth2_ros.synthetic.path import make_speed_profile

    for seed in range(30):
        profile = make_speed_profile(np.random.default_rng(seed), 60.0, max_speed)
        speeds = np.concatenate([profile.v0, profile.v1])
        assert speeds.min() >= 0.0 and speeds.max() <= max_speed + 1e-9, (seed, speeds.max())
