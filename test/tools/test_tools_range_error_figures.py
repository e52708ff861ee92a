"""The depth-error-by-distance table behind the README's Nav2 range limits."""

from __future__ import annotations

import numpy as np
import pytest

from monodepth2_ros.tools.range_error_figures import range_error_table


def test_bands_count_their_pixels_and_relative_errors():
    gt = np.array([1.0, 2.0, 6.0, 8.0, np.nan, 12.0], dtype=np.float32)
    pred = np.array([1.1, 1.8, 6.0, 10.0, 3.0, np.nan], dtype=np.float32)
    low, high = range_error_table(gt, pred, (0.0, 5.0, 10.0))
    assert (low["low"], low["high"], high["low"], high["high"]) == (0.0, 5.0, 5.0, 10.0)
    assert low["share"] == pytest.approx(0.5) and high["share"] == pytest.approx(0.5)  # 4 valid pixels
    assert low["median_signed"] == pytest.approx(0.0, abs=1e-6)  # +10 % and -10 %
    assert low["p90_abs"] == pytest.approx(0.1, rel=1e-5)
    assert high["median_signed"] == pytest.approx(0.125, rel=1e-5)  # 0 % and +25 %
    empty = range_error_table(gt, pred, (20.0, 40.0))[0]
    assert empty["share"] == 0.0 and np.isnan(empty["p90_abs"])
