"""Texture building blocks: exact box filtering, and noise that is smooth in the pixel footprint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monodepth2_ros.synthetic.textures import NoiseField, filtered_band, filtered_pulse


@pytest.mark.parametrize("width", [0.05, 0.37, 1.6])
def test_filtered_pulse_is_the_pattern_averaged_over_the_footprint(width):
    centres = np.linspace(-2.0, 2.0, 17)
    filtered = filtered_pulse(torch.tensor(centres), 0.2, 0.5, torch.full((17,), width, dtype=torch.float64))
    for centre, value in zip(centres, filtered.tolist()):
        samples = np.linspace(centre - width / 2, centre + width / 2, 200_001)
        assert value == pytest.approx((((samples % 1.0) >= 0.2) & ((samples % 1.0) < 0.5)).mean(), abs=1e-4)


def test_far_patterns_fade_to_their_mean():
    x = torch.linspace(0.0, 3.0, 50)
    np.testing.assert_allclose(filtered_pulse(x, 0.2, 0.5, torch.full_like(x, 20.0)), 0.3, atol=0.02)
    band = filtered_band(torch.tensor([0.0, 1.0, 5.0]), -0.5, 0.5, torch.full((3,), 1e-6))
    np.testing.assert_allclose(band, [1.0, 0.0, 0.0])


def test_noise_is_seeded_and_continuous_in_the_footprint():
    coords = torch.rand(2000, 2, generator=torch.Generator().manual_seed(0)) * 40.0
    footprint = torch.full((2000,), 0.013)
    low_cell = torch.full((2000,), 3.0)
    detail, low = NoiseField(1).fractal(coords, footprint, 0.004, low_cell)
    again, _ = NoiseField(1).fractal(coords, footprint, 0.004, low_cell)
    other, _ = NoiseField(2).fractal(coords, footprint, 0.004, low_cell)
    torch.testing.assert_close(detail, again)
    assert (detail - other).abs().mean() > 0.2 * detail.std()
    assert 0.3 < float(detail.std()) < 2.0 and 0.3 < float(low.std()) < 2.0
    # One frame closer (a few % smaller footprint) barely changes the texture: views stay consistent.
    nearer, _ = NoiseField(1).fractal(coords, footprint * 0.97, 0.004, low_cell)
    assert (nearer - detail).abs().mean() < 0.1 * detail.std()
