"""The street's centreline and the car's drive along it (planar, on flat ground).

The world frame is z-up with the ground at ``z = 0``. The centreline starts at the origin heading +x
and bends in gentle clothoid-smoothed curves; the car follows it in a lane (weaving, with lane
changes) with a speed profile that cruises, changes speed and stops for whole seconds (speed exactly
zero, so consecutive frames are identical). Every generator draws from its own seeded stream in
order along the street, so a longer drive extends a shorter one of the same seed instead of
changing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Centreline",
    "SpeedProfile",
    "CarPath",
    "DriveState",
    "make_centreline",
    "make_speed_profile",
    "make_car_path",
    "LANE_OFFSET_M",
    "CENTRELINE_START_M",
]

# Sampling step of the centreline and the car path tables (metres); poses interpolate linearly.
_STEP_M = 0.05
# The street begins this far behind the car's start, so the first frames see buildings beside them.
CENTRELINE_START_M = -80.0
# Length over which curvature changes (a clothoid-like ramp): the moving average of a step profile.
_CURVATURE_RAMP_M = 25.0
# Lateral centre of the right driving lane (metres, +left); the left lane is at +LANE_OFFSET_M.
LANE_OFFSET_M = -1.75
_WEAVE_AMPLITUDE_M = 0.25


@dataclass(frozen=True)
class Centreline:
    """The street's centreline sampled every few centimetres.

    Attributes:
        s: (N,) arc length in metres, increasing, ``s = 0`` at the world origin.
        xy: (N, 2) world position of the centreline.
        heading: (N,) unwrapped tangent direction (radians, counter-clockwise from world +x).
    """

    s: np.ndarray
    xy: np.ndarray
    heading: np.ndarray

    @property
    def length_range(self) -> tuple[float, float]:
        return float(self.s[0]), float(self.s[-1])

    def at(self, s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Position (..., 2) and heading (...) at arc length(s) ``s`` (linear interpolation)."""
        s = np.asarray(s, dtype=np.float64)
        x = np.interp(s, self.s, self.xy[:, 0])
        y = np.interp(s, self.s, self.xy[:, 1])
        return np.stack([x, y], axis=-1), np.interp(s, self.s, self.heading)

    def offset(self, s: np.ndarray | float, lateral: np.ndarray | float) -> np.ndarray:
        """World (..., 2) point ``lateral`` metres left of the centreline at arc length ``s``."""
        xy, heading = self.at(s)
        normal = np.stack([-np.sin(heading), np.cos(heading)], axis=-1)
        return xy + np.asarray(lateral, dtype=np.float64)[..., None] * normal


def make_centreline(rng: np.random.Generator, length_m: float) -> Centreline:
    """A street of straights (30-120 m) and gentle curves (radius 120-350 m, 15-50 degrees).

    Args:
        rng: the centreline's own random stream.
        length_m: arc length needed ahead of the origin (the street also extends
            :data:`CENTRELINE_START_M` behind it).
    """
    s = np.arange(CENTRELINE_START_M, length_m + _STEP_M, _STEP_M)
    # Piecewise-constant curvature: a straight first (the drive starts looking down a street).
    edges = [CENTRELINE_START_M, float(rng.uniform(40.0, 100.0))]
    values = [0.0]
    curve = True
    while edges[-1] < length_m:
        if curve:
            radius = rng.uniform(120.0, 350.0)
            angle = np.deg2rad(rng.uniform(15.0, 50.0))
            sign = 1.0 if rng.random() < 0.5 else -1.0
            values.append(sign / radius)
            edges.append(edges[-1] + radius * angle)
        else:
            values.append(0.0)
            edges.append(edges[-1] + rng.uniform(30.0, 120.0))
        curve = not curve
    index = np.clip(np.searchsorted(np.asarray(edges), s, side="right") - 1, 0, len(values) - 1)
    kappa = np.asarray(values)[index]
    window = max(1, int(round(_CURVATURE_RAMP_M / _STEP_M)))
    padded = np.concatenate([np.full(window, kappa[0]), kappa, np.full(window, kappa[-1])])
    kappa = np.convolve(padded, np.ones(window) / window, mode="same")[window:-window]
    heading = _cumulative_trapezoid(kappa, _STEP_M)
    origin = int(np.argmin(np.abs(s)))
    heading = heading - heading[origin]  # the street heads along world +x at s = 0
    xy = np.stack(
        [_cumulative_trapezoid(np.cos(heading), _STEP_M), _cumulative_trapezoid(np.sin(heading), _STEP_M)],
        axis=-1,
    )
    xy = xy - xy[origin]
    return Centreline(s=s, xy=xy, heading=heading)


def _cumulative_trapezoid(values: np.ndarray, step: float) -> np.ndarray:
    out = np.zeros_like(values)
    out[1:] = np.cumsum((values[1:] + values[:-1]) * (0.5 * step))
    return out


@dataclass(frozen=True)
class SpeedProfile:
    """Piecewise speed with raised-cosine transitions; distance is integrated in closed form.

    Attributes:
        start: (P,) phase start times in seconds (``start[0] == 0``).
        duration: (P,) phase durations in seconds.
        v0, v1: (P,) speed at the start and end of each phase (m/s).
        distance0: (P,) distance driven at each phase start (metres).
    """

    start: np.ndarray
    duration: np.ndarray
    v0: np.ndarray
    v1: np.ndarray
    distance0: np.ndarray

    def _phase(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = np.clip(np.searchsorted(self.start, t, side="right") - 1, 0, len(self.start) - 1)
        tau = np.clip(t - self.start[index], 0.0, self.duration[index])
        return index, tau

    def speed(self, t: np.ndarray | float) -> np.ndarray:
        """Speed (m/s) at time(s) ``t`` in seconds."""
        index, tau = self._phase(np.asarray(t, dtype=np.float64))
        T = self.duration[index]
        blend = 0.5 * (1.0 - np.cos(np.pi * tau / T))
        return self.v0[index] + (self.v1[index] - self.v0[index]) * blend

    def distance(self, t: np.ndarray | float) -> np.ndarray:
        """Distance (metres) driven by time(s) ``t``; constant while the speed is zero."""
        index, tau = self._phase(np.asarray(t, dtype=np.float64))
        T = self.duration[index]
        v0, v1 = self.v0[index], self.v1[index]
        # Integral of v0 + (v1 - v0) (1 - cos(pi tau / T)) / 2 from 0 to tau.
        ramp = 0.5 * (tau - T / np.pi * np.sin(np.pi * tau / T))
        return self.distance0[index] + v0 * tau + (v1 - v0) * ramp


def make_speed_profile(rng: np.random.Generator, duration_s: float, max_speed_mps: float) -> SpeedProfile:
    """Cruise, change speed, and stop for 1-2.5 s; the first stop comes within the first ~7 s.

    Speeds stay in ``[0, max_speed_mps]``; the drive starts moving (5-9 m/s, capped).
    """
    phases: list[tuple[float, float, float]] = []  # (duration, v0, v1)
    speed = float(rng.uniform(5.0, 9.0)) * min(1.0, max_speed_mps / 9.0)
    elapsed = 0.0
    since_stop = 0.0
    first_stop = True

    def add(duration: float, target: float) -> None:
        nonlocal speed, elapsed, since_stop
        phases.append((duration, speed, target))
        speed = target
        elapsed += duration
        since_stop += duration

    add(float(rng.uniform(1.5, 2.5)), speed)  # cruise at the start
    while elapsed < duration_s:
        if first_stop or (since_stop > 10.0 and rng.random() < 0.4):
            first_stop = False
            add(max(1.5, speed / 3.5), 0.0)  # brake to a standstill
            add(float(rng.uniform(1.0, 2.5)), 0.0)  # stand still
            since_stop = 0.0
            add(float(rng.uniform(2.5, 4.0)), float(rng.uniform(min(5.0, max_speed_mps), max_speed_mps)))
        elif rng.random() < 0.5:
            add(float(rng.uniform(2.0, 6.0)), speed)  # cruise
        else:
            add(float(rng.uniform(2.0, 4.0)), float(rng.uniform(min(3.0, max_speed_mps), max_speed_mps)))
    duration = np.array([p[0] for p in phases])
    v0 = np.array([p[1] for p in phases])
    v1 = np.array([p[2] for p in phases])
    start = np.concatenate([[0.0], np.cumsum(duration)[:-1]])
    # Distance of a full phase: v0 T + (v1 - v0) T / 2.
    lengths = v0 * duration + (v1 - v0) * duration * 0.5
    distance0 = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    return SpeedProfile(start=start, duration=duration, v0=v0, v1=v1, distance0=distance0)


@dataclass(frozen=True)
class CarPath:
    """The car's (base_link's) trajectory as a table over its own arc length.

    Attributes:
        distance: (N,) car arc length in metres (0 at the start, increasing).
        xy: (N, 2) base_link position in the world.
        yaw: (N,) unwrapped heading (radians); the car always points where it moves.
        curvature: (N,) d yaw / d distance (1/m), for the yaw rate ``curvature * speed``.
    """

    distance: np.ndarray
    xy: np.ndarray
    yaw: np.ndarray
    curvature: np.ndarray

    def at(self, distance: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position (..., 2), yaw (...) and curvature (...) at car arc length(s) ``distance``."""
        d = np.asarray(distance, dtype=np.float64)
        x = np.interp(d, self.distance, self.xy[:, 0])
        y = np.interp(d, self.distance, self.xy[:, 1])
        return (
            np.stack([x, y], axis=-1),
            np.interp(d, self.distance, self.yaw),
            np.interp(d, self.distance, self.curvature),
        )


def make_car_path(rng: np.random.Generator, centreline: Centreline) -> CarPath:
    """Drive in the right lane, weave gently and change to the left lane now and then."""
    s = centreline.s[centreline.s >= -1e-6]
    wavelength = float(rng.uniform(60.0, 110.0))
    phase = float(rng.uniform(0.0, 2.0 * np.pi))
    lateral = np.full_like(s, LANE_OFFSET_M)
    cursor = float(rng.uniform(60.0, 140.0))
    while cursor < s[-1]:
        change = float(rng.uniform(25.0, 40.0))
        hold = float(rng.uniform(40.0, 100.0))
        shift = -2.0 * LANE_OFFSET_M
        for start, sign in ((cursor, 1.0), (cursor + change + hold, -1.0)):
            u = np.clip((s - start) / change, 0.0, 1.0)
            lateral += sign * shift * 0.5 * (1.0 - np.cos(np.pi * u))
        cursor += 2.0 * change + hold + float(rng.uniform(120.0, 300.0))
    lateral += _WEAVE_AMPLITUDE_M * (np.sin(2.0 * np.pi * s / wavelength + phase) - np.sin(phase))
    xy = centreline.offset(s, lateral)
    steps = np.diff(xy, axis=0)
    distance = np.concatenate([[0.0], np.cumsum(np.hypot(steps[:, 0], steps[:, 1]))])
    tangent = np.gradient(xy, distance, axis=0)
    yaw = np.unwrap(np.arctan2(tangent[:, 1], tangent[:, 0]))
    curvature = np.gradient(yaw, distance)
    return CarPath(distance=distance, xy=xy, yaw=yaw, curvature=curvature)


@dataclass(frozen=True)
class DriveState:
    """The car at one instant: base_link pose in the world and its body-frame velocity."""

    position: np.ndarray  # (2,) world x, y in metres (base_link is on the ground, z = 0)
    yaw: float  # radians
    speed: float  # m/s along base_link +x
    yaw_rate: float  # rad/s about base_link +z
