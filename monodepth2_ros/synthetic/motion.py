"""Camera carriers of the scene families: a car, a ground robot, a drone and a handheld camera.

A :class:`Trajectory` is a planar path (an arc-length table) driven at a smoothly varying speed,
plus the carrier's own motion: altitude changes (drone), a hand's bob and sway, a robot's vibration,
or keeping a point in view (a camera circling a table). Poses are closed-form functions of time, so
the ground truth is exact at any instant (motion blur renders sub-frame poses of the same function).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MOTIONS", "PlanarPath", "Trajectory", "make_path", "rotation_zyx", "make_wobble"]

MOTIONS = ("car", "robot", "drone", "handheld")
_RESAMPLE_M = 0.02


@dataclass(frozen=True)
class PlanarPath:
    """A path in the ground plane sampled every few centimetres (closed paths wrap around)."""

    s: np.ndarray  # (N,) arc length from 0
    xy: np.ndarray  # (N, 2)
    heading: np.ndarray  # (N,) unwrapped tangent direction
    closed: bool

    @property
    def length(self) -> float:
        return float(self.s[-1])

    def at(self, distance: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        d = np.asarray(distance, dtype=np.float64)
        d = np.remainder(d, self.length) if self.closed else np.clip(d, 0.0, self.length)
        x = np.interp(d, self.s, self.xy[:, 0])
        y = np.interp(d, self.s, self.xy[:, 1])
        return np.stack([x, y], axis=-1), np.interp(d, self.s, self.heading)


def make_path(points: np.ndarray, closed: bool, smoothing_m: float = 0.0) -> PlanarPath:
    """Resample a polyline (optionally closed) evenly and smooth it with a moving average."""
    points = np.asarray(points, dtype=np.float64)
    if closed:
        points = np.concatenate([points, points[:1]], axis=0)
    steps = np.hypot(*np.diff(points, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    s = np.arange(0.0, along[-1], _RESAMPLE_M)
    xy = np.stack([np.interp(s, along, points[:, 0]), np.interp(s, along, points[:, 1])], axis=1)
    window = int(round(smoothing_m / _RESAMPLE_M))
    if window > 1:
        kernel = np.ones(window) / window
        if closed:
            padded = np.concatenate([xy[-window:], xy, xy[:window]])
        else:
            padded = np.concatenate([np.repeat(xy[:1], window, 0), xy, np.repeat(xy[-1:], window, 0)])
        xy = np.stack([np.convolve(padded[:, k], kernel, mode="same")[window:-window] for k in range(2)], axis=1)
    steps = np.hypot(*np.diff(xy, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(steps)])
    tangent = np.gradient(xy, axis=0)
    heading = np.unwrap(np.arctan2(tangent[:, 1], tangent[:, 0]))
    return PlanarPath(s=s, xy=xy, heading=heading, closed=closed)


def rotation_zyx(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(yaw) Ry(pitch) Rx(roll) (REP 103 body axes; positive pitch tilts +x down)."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def make_wobble(rng: np.random.Generator, amplitudes: tuple[float, ...], hz: tuple[float, float]) -> np.ndarray:
    """(6, 2, 3) two sinusoids (amplitude, angular frequency, phase) per axis x, y, z, roll, pitch, yaw."""
    wobble = np.zeros((6, 2, 3))
    for axis, amplitude in enumerate(amplitudes):
        for k in range(2):
            wobble[axis, k] = (amplitude * rng.uniform(0.3, 0.7), 2.0 * np.pi * rng.uniform(*hz),
                               rng.uniform(0, 2 * np.pi))
    return wobble


@dataclass(frozen=True)
class Trajectory:
    """base_link over time: along ``path`` at ``speed(t)``, at ``height(t)``, plus the carrier's wobble.

    Attributes:
        path: where the carrier goes in the ground plane.
        kind: one of :data:`MOTIONS`.
        speed_mps: mean speed; ``speed(t) = speed_mps (1 + speed_swing sin(speed_w t + speed_phase))``.
        height_m: mean height of base_link (0 for wheels on the ground).
        height_swing_m, height_w, height_phase: a sinusoidal altitude change (drone, hand).
        look_at: (3,) world point base_link keeps facing (yaw and pitch), or ``None`` to face the path.
        wobble: (6, 2, 3) see :func:`make_wobble`; positions in metres, angles in radians.
    """

    path: PlanarPath
    kind: str
    speed_mps: float
    speed_swing: float = 0.0
    speed_w: float = 1.0
    speed_phase: float = 0.0
    height_m: float = 0.0
    height_swing_m: float = 0.0
    height_w: float = 1.0
    height_phase: float = 0.0
    look_at: np.ndarray | None = None
    wobble: np.ndarray | None = None

    def distance(self, t: float) -> float:
        a, w, phi = self.speed_swing, self.speed_w, self.speed_phase
        return float(self.speed_mps * (t - a / w * (np.cos(w * t + phi) - np.cos(phi))))

    def _wobble(self, t: float) -> np.ndarray:
        if self.wobble is None:
            return np.zeros(6)
        w = self.wobble
        return (w[..., 0] * np.sin(w[..., 1] * t + w[..., 2])).sum(axis=1)

    def pose(self, t: float) -> np.ndarray:
        """(4, 4) T_world_base at time ``t`` seconds."""
        xy, heading = self.path.at(self.distance(t))
        z = self.height_m + self.height_swing_m * np.sin(self.height_w * t + self.height_phase)
        extra = self._wobble(t)
        position = np.array([xy[0], xy[1], z]) + extra[:3]
        yaw, pitch = float(heading), 0.0
        if self.look_at is not None:
            delta = self.look_at - position
            yaw = float(np.arctan2(delta[1], delta[0]))
            pitch = float(np.arctan2(-delta[2], np.hypot(delta[0], delta[1])))
        T = np.eye(4)
        T[:3, :3] = rotation_zyx(yaw + extra[5], pitch + extra[4], extra[3])
        T[:3, 3] = position
        return T
