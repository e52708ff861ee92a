"""Domain randomisation: what each seed draws besides the world's geometry, i.e. the carrier (car,
ground robot, drone, handheld), the camera (field of view 50-110 degrees, height 0.1-2 m, pitch,
roll, lens distortion) and the lighting. Without randomisation a family keeps its nominal carrier, the
KITTI-like intrinsics and neutral light.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from monodepth2_ros.errors import ConfigError

from .camera import CameraModel, fov_intrinsics, mount_transform
from .config import SynthConfig
from .motion import Trajectory, make_wobble
from .scenes import Scene
from .world import StreetWorld

__all__ = ["FAMILY_MOTIONS", "CarrierDraw", "draw_carrier", "make_trajectory", "draw_camera", "draw_lighting",
           "HFOV_RANGE_DEG", "CAMERA_HEIGHT_RANGE_M"]

FAMILY_MOTIONS = {
    "street": ("car",),
    "indoor": ("robot", "handheld", "drone"),
    "warehouse": ("robot", "drone", "handheld", "car"),
    "tabletop": ("handheld", "drone"),
    "yard": ("robot", "car", "drone", "handheld"),
}
HFOV_RANGE_DEG = (50.0, 110.0)
CAMERA_HEIGHT_RANGE_M = (0.1, 2.0)
# Mean speeds (low, high, nominal) in m/s; a table top is circled slowly whatever carries the camera.
_SPEEDS = {"car": (3.0, 8.0, 5.0), "robot": (0.3, 1.5, 0.8), "drone": (0.5, 2.5, 1.2), "handheld": (0.3, 1.2, 0.7)}
_FORKLIFT_SPEED = (1.5, 3.5, 2.5)
_TABLETOP_SPEED = (0.1, 0.35, 0.2)
# Wobble amplitudes (x, y, z m; roll, pitch, yaw rad) and frequency band (Hz) per carrier.
_WOBBLE = {
    "car": ((0.003, 0.003, 0.01, 0.004, 0.004, 0.003), (0.5, 2.0)),
    "robot": ((0.004, 0.004, 0.004, 0.01, 0.01, 0.03), (1.0, 4.0)),
    "drone": ((0.05, 0.05, 0.05, 0.04, 0.04, 0.06), (0.2, 1.0)),
    "handheld": ((0.03, 0.03, 0.03, 0.04, 0.04, 0.05), (0.3, 1.5)),
}


@dataclass(frozen=True)
class CarrierDraw:
    kind: str
    speed_mps: float
    speed_swing: float


def draw_carrier(rng: np.random.Generator, family: str, randomized: bool) -> CarrierDraw:
    motions = FAMILY_MOTIONS[family]
    kind = motions[int(rng.integers(0, len(motions)))] if randomized else motions[0]
    low, high, nominal = _TABLETOP_SPEED if family == "tabletop" else (
        _FORKLIFT_SPEED if (family == "warehouse" and kind == "car") else _SPEEDS[kind])
    speed = float(rng.uniform(low, high)) if randomized else nominal
    return CarrierDraw(kind=kind, speed_mps=speed, speed_swing=float(rng.uniform(0.0, 0.4)))


def path_length_needed(carrier: CarrierDraw, duration_s: float) -> float:
    return carrier.speed_mps * (1.0 + 2.0 * carrier.speed_swing) * duration_s + 2.0


def make_trajectory(rng: np.random.Generator, scene: Scene, carrier: CarrierDraw, randomized: bool) -> Trajectory:
    """The carrier's trajectory over the scene's path, its height kept under the ceiling."""
    kind = carrier.kind
    ceiling = scene.ceiling_m if scene.ceiling_m is not None else 10.0
    height, swing = 0.0, 0.0
    if scene.look_at is not None:  # over a table: the hand (or arm) 0.12-0.45 m above its objects
        height = scene.surface_m + (float(rng.uniform(0.12, 0.45)) if randomized else 0.25)
        swing = float(rng.uniform(0.0, 0.06))
    elif kind == "drone":
        top = min(CAMERA_HEIGHT_RANGE_M[1] - 0.2, ceiling - 0.6)
        height = float(rng.uniform(0.7, top)) if randomized else min(1.2, top)
        swing = float(rng.uniform(0.0, min(0.2, height - 0.3)))
    elif kind == "handheld":
        top = min(CAMERA_HEIGHT_RANGE_M[1] - 0.1, ceiling - 0.5)
        height = float(rng.uniform(0.9, top)) if randomized else min(1.4, top)
        swing = float(rng.uniform(0.0, 0.04))
    amplitudes, band = _WOBBLE[kind]
    return Trajectory(
        path=scene.path, kind=kind, speed_mps=carrier.speed_mps, speed_swing=carrier.speed_swing,
        speed_w=2 * np.pi * float(rng.uniform(0.05, 0.2)), speed_phase=float(rng.uniform(0, 2 * np.pi)),
        height_m=height, height_swing_m=swing, height_w=2 * np.pi * float(rng.uniform(0.05, 0.3)),
        height_phase=float(rng.uniform(0, 2 * np.pi)), look_at=scene.look_at, wobble=make_wobble(rng, amplitudes, band),
    )


def _distortion(rng: np.random.Generator, K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Mild plumb_bob: -12 % (barrel) .. +4 % (pincushion) radial change at the image corner."""
    corner = np.hypot(0.5 * width / K[0, 0], 0.5 * height / K[1, 1])
    change = float(rng.uniform(-0.12, 0.04))
    k1 = change / corner**2
    k2 = -0.1 * k1 / corner**2
    return np.array([k1, k2, rng.uniform(-1e-3, 1e-3), rng.uniform(-1e-3, 1e-3), 0.0])


def draw_camera(rng: np.random.Generator, config: SynthConfig, carrier: str, scene: Scene | None,
                randomized: bool) -> tuple[CameraModel, np.ndarray]:
    """The camera model and its mount ``T_base_camera`` for ``carrier``."""
    height, width = config.height, config.width
    if not randomized:
        mount = {"car": config.camera_height_m, "robot": 0.3}.get(carrier, 0.0)
        pitch = np.deg2rad(5.0) if carrier == "robot" else 0.0
        return CameraModel.create(height, width, config.distortion), mount_transform(mount, pitch, 0.0)
    K = fov_intrinsics(height, width, float(rng.uniform(*HFOV_RANGE_DEG)))
    distorted = config.distortion or rng.random() < 0.5
    D = _distortion(rng, K, height, width) if distorted else np.zeros(5)
    try:
        camera = CameraModel.from_intrinsics(height, width, K, D)
    except ConfigError:  # pragma: no cover - the draw is mild enough to invert; stay safe anyway
        camera = CameraModel.from_intrinsics(height, width, K, np.zeros(5))
    look_at = scene is not None and scene.look_at is not None
    if carrier == "car":
        mount = float(rng.uniform(1.2, 1.8))
        pitch, roll = rng.uniform(-2.0, 5.0), rng.uniform(-1.5, 1.5)
    elif carrier == "robot":
        mount = float(rng.uniform(0.1, 0.6))
        pitch, roll = rng.uniform(-5.0, 10.0), rng.uniform(-3.0, 3.0)
    elif carrier == "drone":
        mount = 0.0
        pitch, roll = (rng.uniform(-5.0, 5.0) if look_at else rng.uniform(-5.0, 15.0)), rng.uniform(-5.0, 5.0)
    else:
        mount = 0.0
        pitch, roll = (rng.uniform(-5.0, 5.0) if look_at else rng.uniform(-10.0, 15.0)), rng.uniform(-10.0, 10.0)
    return camera, mount_transform(mount, float(np.deg2rad(pitch)), float(np.deg2rad(roll)))


def draw_lighting(rng: np.random.Generator, world: StreetWorld, indoor: bool) -> StreetWorld:
    """Light level, contrast and colour, and (outdoors) the sun's direction."""
    ambient = float(rng.uniform(0.45, 0.8) if indoor else rng.uniform(0.3, 0.7))
    diffuse = float(rng.uniform(0.2, 0.5) if indoor else rng.uniform(0.4, 0.85))
    warmth = float(rng.uniform(-0.12, 0.12))
    tint = np.array([1.0 + warmth, 1.0, 1.0 - warmth]) * float(rng.uniform(0.85, 1.15))
    sun = world.sun_direction
    if not indoor:
        azimuth, elevation = rng.uniform(0.0, 2 * np.pi), np.deg2rad(rng.uniform(15.0, 70.0))
        sun = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    return dataclasses.replace(world, ambient=ambient, diffuse=diffuse, light_colour=tint, sun_direction=sun)

