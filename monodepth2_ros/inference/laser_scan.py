"""A laser scan from a depth map: the depthimage_to_laserscan idea, done on metric depth.

A band of rows around the optical centre is reduced to one range per column, the nearest valid
one; the range is measured in the camera's x-z plane (``sqrt(x^2 + z^2)`` of the back-projected
point), so a vertical wall gives the same range in every row of the band. The scan turns about the
camera's up axis counter-clockwise (REP 103: angle 0 looks along the optical axis, positive angles
look left, i.e. towards the image's column 0), with one bin per image column spaced evenly in
angle; each bin takes the column whose ray is nearest to its angle.

REP 117 values: a column whose nearest finite depth is beyond ``range_max`` is ``+inf`` (nothing
within range: free space up to ``range_max``), nearer than ``range_min`` ``-inf``, no finite depth
at all ``NaN``.

Pure numpy, no ROS: the depth node wraps the result in a ``sensor_msgs/LaserScan``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from monodepth2_ros.errors import ConfigError

__all__ = ["ScanConfig", "Scan", "scan_rows", "scan_angles", "depth_to_scan"]


@dataclass(frozen=True)
class ScanConfig:
    """Which rows make the scan and which ranges it reports.

    Attributes:
        height: rows in the band (its nearest valid depth per column counts).
        row_offset: rows from the optical-centre row to the band's centre (positive: down).
        range_min, range_max: metres; nearer or farther ranges are reported as -inf / +inf.
    """

    height: int = 5
    row_offset: int = 0
    range_min: float = 0.3
    range_max: float = 10.0

    def __post_init__(self) -> None:
        if self.height < 1:
            raise ConfigError(f"scan height must be at least 1 row, got {self.height}")
        if not (math.isfinite(self.range_min) and math.isfinite(self.range_max) and 0.0 <= self.range_min < self.range_max):
            raise ConfigError(
                f"scan ranges must satisfy 0 <= range_min < range_max, got {self.range_min} .. {self.range_max}"
            )


@dataclass(frozen=True)
class Scan:
    """One scan: ``ranges[i]`` is at ``angle_min + i * angle_increment`` (radians, counter-clockwise)."""

    angle_min: float
    angle_max: float
    angle_increment: float
    range_min: float
    range_max: float
    ranges: np.ndarray  # (W,) float32


def scan_rows(image_height: int, cy: float, config: ScanConfig) -> tuple[int, int]:
    """Rows ``[start, stop)`` of the band in an image ``image_height`` rows high.

    Raises:
        ConfigError: the band does not lie inside the image (naming rows, centre and parameters).
    """
    centre = int(round(cy)) + config.row_offset
    start = centre - config.height // 2
    stop = start + config.height
    if start < 0 or stop > image_height:
        raise ConfigError(
            f"scan band rows {start}..{stop - 1} lie outside the image's rows 0..{image_height - 1} "
            f"(optical centre row {cy:.1f}, scan_row_offset {config.row_offset}, scan_height {config.height}); "
            "expected a band inside the image"
        )
    return start, stop


def scan_angles(width: int, fx: float, cx: float) -> tuple[float, float, float]:
    """``(angle_min, angle_max, angle_increment)`` of a ``width``-column image: the rays through the
    centres of its last and first columns, one bin per column."""
    angle_min = math.atan2(-(width - 1 - cx), fx)
    angle_max = math.atan2(cx, fx)
    increment = (angle_max - angle_min) / max(width - 1, 1)
    return angle_min, angle_max, increment


def depth_to_scan(band: np.ndarray, fx: float, cx: float, config: ScanConfig) -> Scan:
    """The scan of a band of depth rows.

    Args:
        band: (rows, W) depth along the optical axis in metres (NaN or inf: no depth), e.g.
            ``depth[start:stop]`` with the rows of :func:`scan_rows`.
        fx, cx: the depth image's horizontal focal length and principal point, pixels.
        config: the range limits (its ``height``/``row_offset`` chose the band).
    Returns:
        One range per column; see the module docstring for the non-finite values.
    """
    band = np.asarray(band, dtype=np.float32)
    if band.ndim != 2 or band.shape[1] < 1:
        raise ConfigError(f"expected a (rows, width) depth band, got shape {band.shape}")
    width = band.shape[1]
    # Horizontal range per metre of depth for each column: |(x, z)| / z = sqrt(1 + ((u - cx) / fx)^2).
    columns = np.arange(width, dtype=np.float64)
    per_metre = np.sqrt(1.0 + ((columns - cx) / fx) ** 2).astype(np.float32)
    finite = np.isfinite(band) & (band > 0.0)
    ranges = np.where(finite, band, np.float32(np.inf)) * per_metre
    in_range = finite & (ranges >= config.range_min) & (ranges <= config.range_max)
    nearest = np.where(in_range, ranges, np.float32(np.inf)).min(axis=0)
    too_near = (finite & (ranges < config.range_min)).any(axis=0)
    any_finite = finite.any(axis=0)
    column_ranges = np.where(
        in_range.any(axis=0), nearest, np.where(too_near, -np.inf, np.where(any_finite, np.inf, np.nan))
    ).astype(np.float32)

    angle_min, angle_max, increment = scan_angles(width, fx, cx)
    bin_angles = angle_min + increment * np.arange(width, dtype=np.float64)
    # The column whose ray is nearest each bin's angle (columns grow to the right, angles to the left).
    bin_columns = np.clip(np.rint(cx - fx * np.tan(bin_angles)), 0, width - 1).astype(np.int64)
    return Scan(
        angle_min=angle_min,
        angle_max=angle_max,
        angle_increment=increment,
        range_min=config.range_min,
        range_max=config.range_max,
        ranges=column_ranges[bin_columns],
    )
