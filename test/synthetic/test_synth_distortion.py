"""plumb_bob distortion: stated in D, exact per pixel, and cv2.undistort recovers the pinhole view."""

from __future__ import annotations

import cv2
import numpy as np

from monodepth2_ros.synthetic import (
    PLUMB_BOB_D,
    SynthConfig,
    SyntheticDrive,
    distort_normalized,
    undistort_normalized,
)

HEIGHT, WIDTH = 96, 320


def test_undistortion_inverts_the_plumb_bob_model():
    D = np.array(PLUMB_BOB_D)
    x, y = np.meshgrid(np.linspace(-0.9, 0.9, 31), np.linspace(-0.3, 0.3, 11))
    xd, yd = distort_normalized(x, y, D)
    assert np.abs(xd - x).max() > 0.03  # the distortion is not negligible at the image edge
    xu, yu = undistort_normalized(xd, yd, D)
    np.testing.assert_allclose(xu, x, atol=1e-9)
    np.testing.assert_allclose(yu, y, atol=1e-9)
    # OpenCV agrees on the model.
    points = cv2.undistortPoints(np.stack([xd, yd], -1).reshape(-1, 1, 2), np.eye(3), D).reshape(-1, 2)
    np.testing.assert_allclose(points, np.stack([x, y], -1).reshape(-1, 2), atol=1e-5)


def test_undistorting_the_distorted_render_gives_the_pinhole_render():
    distorted_drive = SyntheticDrive(SynthConfig(frames=3, width=WIDTH, height=HEIGHT, seed=2, distortion=True))
    pinhole_drive = SyntheticDrive(SynthConfig(frames=3, width=WIDTH, height=HEIGHT, seed=2))
    assert np.any(distorted_drive.D != 0.0)
    np.testing.assert_array_equal(distorted_drive.K, pinhole_drive.K)
    distorted, pinhole = distorted_drive.frame(2), pinhole_drive.frame(2)
    np.testing.assert_array_equal(distorted.T_world_camera, pinhole.T_world_camera)

    K, D = distorted_drive.K, distorted_drive.D
    valid = cv2.undistort(np.full((HEIGHT, WIDTH), 255, np.uint8), K, D) == 255
    valid = cv2.erode(valid.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert valid.mean() > 0.8
    undistorted = cv2.undistort(distorted.rgb, K, D).astype(np.float32)
    recovered_error = np.abs(undistorted - pinhole.rgb).mean(axis=2)[valid].mean()
    distortion_effect = np.abs(distorted.rgb.astype(np.float32) - pinhole.rgb).mean(axis=2)[valid].mean()
    assert recovered_error < 0.4 * distortion_effect

    # The depth is per distorted pixel too: undistorting it gives the pinhole depth.
    depth = cv2.undistort(distorted.depth, K, D, None, None)
    relative = np.abs(depth - pinhole.depth)[valid] / pinhole.depth[valid]
    assert np.median(relative) < 1e-3
