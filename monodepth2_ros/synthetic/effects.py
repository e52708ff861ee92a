"""Sensor effects on the rendered images (never on the ground truth): exposure and white balance,
vignetting, sensor noise; motion blur is rendered by the drive (sub-frame poses averaged).

All draws come from the drive's seed; the noise of a frame also from its index, so a frame renders
the same every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["SensorEffects", "draw_sensor_effects", "BLUR_SAMPLES"]

BLUR_SAMPLES = 3  # renders averaged over the exposure of a blurred frame


@dataclass(frozen=True)
class SensorEffects:
    """One drive's camera: a gain that drifts slowly (auto exposure), a gamma and a white balance,
    vignetting, Gaussian read noise plus signal-dependent shot noise, and an exposure time."""

    seed: int
    gain: float
    gain_drift: float  # relative amplitude of the slow gain change
    drift_hz: float
    gamma: float
    white_balance: tuple[float, float, float]
    vignette: float  # relative darkening at the image corners
    read_noise: float  # standard deviation in [0, 1] units
    shot_noise: float  # standard deviation per sqrt(signal)
    exposure_fraction: float  # exposure time / frame interval; 0 = no motion blur

    def apply(self, rgb: np.ndarray, index: int, time_s: float) -> np.ndarray:
        """(H, W, 3) float image in [0, 1] -> the uint8 image the sensor records."""
        gain = self.gain * (1.0 + self.gain_drift * np.sin(2 * np.pi * self.drift_hz * time_s))
        falloff = _vignette(rgb.shape[0], rgb.shape[1], self.vignette)
        image = rgb * (gain * falloff)[..., None] * np.asarray(self.white_balance, np.float32)
        image = np.clip(image, 0.0, 1.0) ** (1.0 / self.gamma)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5E45, int(index)]))
        sigma = np.sqrt(self.read_noise**2 + self.shot_noise**2 * image)
        image = image + sigma * rng.standard_normal(image.shape).astype(np.float32)
        return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@lru_cache(maxsize=8)
def _vignette(height: int, width: int, strength: float) -> np.ndarray:
    """(H, W) light falloff: 1 at the centre, ``1 - strength`` at the corners (quadratic in radius)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    corner2 = 0.25 * ((width - 1) ** 2 + (height - 1) ** 2)
    r2 = ((u - 0.5 * (width - 1)) ** 2 + (v - 0.5 * (height - 1)) ** 2) / corner2
    return 1.0 - strength * r2


def draw_sensor_effects(rng: np.random.Generator, seed: int) -> SensorEffects:
    blur = rng.random() < 0.3
    return SensorEffects(
        seed=int(seed),
        gain=float(rng.uniform(0.65, 1.4)),
        gain_drift=float(rng.uniform(0.0, 0.08)),
        drift_hz=float(rng.uniform(0.02, 0.2)),
        gamma=float(rng.uniform(0.8, 1.25)),
        white_balance=tuple(float(c) for c in rng.uniform(0.9, 1.1, size=3)),
        vignette=float(rng.uniform(0.0, 0.45)),
        read_noise=float(rng.uniform(0.002, 0.02)),
        shot_noise=float(rng.uniform(0.0, 0.03)),
        exposure_fraction=float(rng.uniform(0.15, 0.6)) if blur else 0.0,
    )
