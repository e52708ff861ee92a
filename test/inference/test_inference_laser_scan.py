"""The laser scan from depth: a hand-computed case and a wall of the synthetic world."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.laser_scan import ScanConfig, depth_to_scan, scan_angles, scan_rows


def test_hand_computed_scan_nearest_valid_range_per_column_and_rep117_values():
    # 5 columns, fx = cx = 2: column rays at x/z = -1, -0.5, 0, 0.5, 1 -> angles +45, +26.6, 0, -26.6, -45 deg.
    band = np.array(
        [
            [1.0, np.nan, 2.0, 0.1, 20.0],
            [3.0, 4.0, np.nan, np.nan, 30.0],
        ],
        dtype=np.float32,
    )
    scan = depth_to_scan(band, fx=2.0, cx=2.0, config=ScanConfig(height=2, range_min=0.3, range_max=10.0))
    assert scan.angle_min == pytest.approx(-math.pi / 4)
    assert scan.angle_max == pytest.approx(math.pi / 4)
    assert scan.angle_increment == pytest.approx(math.pi / 8)
    # Bins from angle_min (the right-most column) to angle_max (column 0); bins -22.5 and +22.5 deg take
    # the columns at -26.6 and +26.6 deg (the nearest rays).
    expected = [
        math.inf,  # column 4: 20 and 30 m along z are 28.3 and 42.4 m away, beyond range_max
        -math.inf,  # column 3: 0.1 m along z is 0.11 m away, nearer than range_min
        2.0,  # column 2: on the optical axis
        4.0 * math.sqrt(1.25),  # column 1: the only finite depth
        1.0 * math.sqrt(2.0),  # column 0: the nearer of 1 m and 3 m along z
    ]
    np.testing.assert_allclose(scan.ranges, expected, rtol=1e-6)
    assert scan.ranges.dtype == np.float32 and (scan.range_min, scan.range_max) == (0.3, 10.0)


def test_a_column_without_any_depth_is_nan():
    band = np.array([[np.nan, 1.0, np.inf]], dtype=np.float32)
    scan = depth_to_scan(band, fx=100.0, cx=1.0, config=ScanConfig(height=1))
    assert np.isnan(scan.ranges[0]) and np.isnan(scan.ranges[2])  # bins reversed: column 2, then column 0
    assert scan.ranges[1] == pytest.approx(1.0)


def test_band_rows_follow_the_optical_centre_and_the_offset_and_must_lie_inside_the_image():
    assert scan_rows(10, cy=4.6, config=ScanConfig(height=3)) == (4, 7)
    assert scan_rows(10, cy=4.6, config=ScanConfig(height=1, row_offset=-5)) == (0, 1)
    with pytest.raises(ConfigError, match=r"rows 8..10 lie outside the image's rows 0..9 .*scan_row_offset 4"):
        scan_rows(10, cy=4.6, config=ScanConfig(height=3, row_offset=4))


def test_scan_config_refuses_inconsistent_values():
    with pytest.raises(ConfigError, match="at least 1 row"):
        ScanConfig(height=0)
    with pytest.raises(ConfigError, match="range_min < range_max"):
        ScanConfig(range_min=5.0, range_max=2.0)


def test_angles_span_the_rays_of_the_first_and_last_column():
    angle_min, angle_max, increment = scan_angles(640, fx=320.0, cx=319.5)
    assert angle_max == pytest.approx(-angle_min) == pytest.approx(math.atan(319.5 / 320.0))
    assert increment == pytest.approx((angle_max - angle_min) / 639)


def test_scan_of_the_synthetic_world_measures_a_known_wall_within_one_percent():
    """A camera 1 m up, turned 0.3 rad from a wall's normal, 6 m from it: ranges are 6 / cos(yaw + angle)."""
    from monodepth2_ros.synthetic.camera import CameraModel, mount_transform
    from monodepth2_ros.synthetic.render import Renderer
    from monodepth2_ros.synthetic.world import BoxSet, Material, StreetWorld

    wall_distance, yaw = 6.0, 0.3
    wall = BoxSet(
        centre=np.array([[wall_distance + 0.5, 0.0, 5.0]]),
        half=np.array([[0.5, 40.0, 5.0]]),
        yaw=np.zeros(1),
        material=np.array([int(Material.CRATE)]),
        colour=np.array([[0.8, 0.3, 0.2]], dtype=np.float32),
        colour2=np.array([[0.2, 0.3, 0.8]], dtype=np.float32),
        params=np.array([[0.5, 0, 0, 0, 0, 0]], dtype=np.float32),
    )
    grey = np.array([0.5, 0.5, 0.5], dtype=np.float32)
    world = StreetWorld(boxes=wall, ground_colour=grey, asphalt_colour=grey, sky_colour=grey, cloud_colour=grey,
                        sun_direction=np.array([0.0, 0.0, 1.0]), texture_seed=0)
    camera = CameraModel.create(96, 320, distortion=False)
    T_world_base = np.eye(4)
    T_world_base[:2, :2] = [[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]]
    _, depth = Renderer(world, camera, sky_height_m=None, device="cpu").render(T_world_base @ mount_transform(1.0))

    K = camera.K
    config = ScanConfig(height=5, range_min=0.3, range_max=30.0)
    start, stop = scan_rows(depth.shape[0], K[1, 2], config)
    scan = depth_to_scan(depth[start:stop], K[0, 0], K[0, 2], config)
    angles = scan.angle_min + scan.angle_increment * np.arange(scan.ranges.size)
    expected = wall_distance / np.cos(yaw + angles)
    assert np.isfinite(scan.ranges).all()
    np.testing.assert_allclose(scan.ranges, expected, rtol=0.01)
