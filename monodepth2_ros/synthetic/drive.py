"""A seeded drive through a synthetic world (the street or another scene family): poses, stamps and
rendered frames with ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from monodepth2_ros.errors import ConfigError

from .camera import CameraModel, mount_transform
from .config import SynthConfig
from .effects import BLUR_SAMPLES, SensorEffects, draw_sensor_effects
from .families import FAMILIES, resolve_family
from .motion import Trajectory
from .path import CarPath, DriveState, SpeedProfile, make_car_path, make_centreline, make_speed_profile
from .render import Renderer
from .scenes import SCENE_BUILDERS
from .variation import draw_camera, draw_carrier, draw_lighting, make_trajectory, path_length_needed
from .world import StreetWorld, build_world

__all__ = ["SynthFrame", "SyntheticDrive"]

_CENTRELINE_MARGIN_M = 400.0  # street length beyond the drive (the view ahead plus slack)


@dataclass(frozen=True)
class SynthFrame:
    """One rendered frame with its ground truth.

    Attributes:
        index: frame number from 0.
        stamp_ns: capture time (ns since the epoch), shared by every message of this frame.
        rgb: (H, W, 3) uint8 image of the (left) camera.
        depth: (H, W) float32 depth along the optical axis in metres, NaN where nothing is hit.
        T_world_camera: (4, 4) float64 pose of the (left) camera optical frame in the world.
        T_odom_base: (4, 4) float64 pose of base_link in odom (REP 105; odom = the first base pose).
        speed: base_link forward speed in m/s.
        yaw_rate: base_link yaw rate in rad/s (counter-clockwise about +z).
        right_rgb, right_depth: the right camera's image and depth when stereo, else ``None``.
        twist: ``(linear, angular)`` (3,) each, base_link's full body-frame velocity (m/s, rad/s) for
            carriers that move in 3-D (off the street); ``None`` for the planar car (speed, yaw_rate).
    """

    index: int
    stamp_ns: int
    rgb: np.ndarray
    depth: np.ndarray
    T_world_camera: np.ndarray
    T_odom_base: np.ndarray
    speed: float
    yaw_rate: float
    right_rgb: np.ndarray | None = None
    right_depth: np.ndarray | None = None
    twist: tuple[np.ndarray, np.ndarray] | None = None


def _rotation_vector(R: np.ndarray) -> np.ndarray:
    """Axis times angle of a rotation matrix (small and moderate angles)."""
    angle = float(np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)))
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if angle < 1e-12:
        return 0.5 * axis
    return axis * (angle / (2.0 * np.sin(angle)))


def _planar_pose(position: np.ndarray, yaw: float) -> np.ndarray:
    T = np.eye(4)
    c, s = np.cos(yaw), np.sin(yaw)
    T[:2, :2] = [[c, -s], [s, c]]
    T[:2, 3] = position
    return T


class SyntheticDrive:
    """The world, the trajectory and the cameras of one :class:`SynthConfig`.

    The world frame is z-up with the ground at z = 0; base_link (x forward, y left, z up) sits on the
    ground for a car or a robot and flies or is held above it for a drone or a hand; the optical frame
    is mounted ``T_base_camera`` on it (REP 103: x right, y down, z forward): ``camera_height_m`` above
    the street's car, drawn with pitch and roll when randomised. ``odom`` is the world frame moved to
    the first base_link pose, so ``T_odom_base`` of frame 0 is the identity. ``family`` is the scene
    family actually rendered (``"random"`` resolved) and ``carrier`` what carries the camera.

    Example:
        >>> drive = SyntheticDrive(SynthConfig(frames=3, width=160, height=48))
        >>> [frame.rgb.shape for frame in drive.iter_frames()]
        [(48, 160, 3), (48, 160, 3), (48, 160, 3)]
    """

    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        self.family = resolve_family(config.family, config.seed)
        randomized = config.randomized
        # Randomisation draws from streams of its own, so the plain street is the same as ever.
        sequence = np.random.SeedSequence([config.seed, 0x7A81, FAMILIES.index(self.family)])
        randomisation = [np.random.default_rng(s) for s in sequence.spawn(5)]
        carrier_rng, scene_rng, camera_rng, light_rng, effects_rng = randomisation
        duration_s = (config.frames - 1) / config.rate_hz
        self.trajectory: Trajectory | None = None
        scene = None
        if self.family == "street":
            streams = [np.random.default_rng(s) for s in np.random.SeedSequence([config.seed, 0xD71E]).spawn(3)]
            self.speed_profile: SpeedProfile = make_speed_profile(streams[0], duration_s + 1.0, config.max_speed_mps)
            drive_length = float(self.speed_profile.distance(duration_s + 1.0))
            self.centreline = make_centreline(streams[1], 1.05 * drive_length + _CENTRELINE_MARGIN_M)
            self.car_path: CarPath = make_car_path(streams[2], self.centreline)
            world = build_world(config.seed, self.centreline, 1.05 * drive_length + 20.0)
            self.carrier = "car"
        else:
            carrier = draw_carrier(carrier_rng, self.family, randomized)
            scene = SCENE_BUILDERS[self.family](scene_rng, path_length_needed(carrier, duration_s + 1.0))
            self.trajectory = make_trajectory(carrier_rng, scene, carrier, randomized)
            world = scene.world
            self.carrier = carrier.kind
        if randomized:
            world = draw_lighting(light_rng, world, indoor=scene is not None and scene.ceiling_m is not None)
        self.world: StreetWorld = world
        if self.family == "street" and not randomized:
            self.camera = CameraModel.create(config.height, config.width, config.distortion)
            self.T_base_camera = mount_transform(config.camera_height_m)
        else:
            self.camera, self.T_base_camera = draw_camera(camera_rng, config, self.carrier, scene, randomized)
        self.effects: SensorEffects | None = (
            draw_sensor_effects(effects_rng, config.seed) if config.with_sensor_effects else None)
        if self.trajectory is None:
            start = self.state(0)
            self.T_world_odom = _planar_pose(start.position, start.yaw)
        else:
            self.T_world_odom = self.trajectory.pose(0.0)
        self._device = self._resolve_device(config.device)
        sky = config.sky_height_m if config.sky_surface else None
        self.renderer = Renderer(self.world, self.camera, sky, self._device, config.antialias)

    @staticmethod
    def _resolve_device(device: str) -> str:
        import torch

        if device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        try:
            resolved = torch.device(device)
        except RuntimeError as err:
            raise ConfigError(f"SynthConfig.device {device!r} is not a torch device") from err
        if resolved.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"SynthConfig.device is {device!r} but no CUDA device is available")
        return device

    @property
    def device(self) -> str:
        """The torch device rendering runs on (``"auto"`` resolved)."""
        return self._device

    # ---------------------------------------------------------------------------------- cameras

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float64 intrinsics of both cameras at the configured size."""
        return self.camera.K.copy()

    @property
    def D(self) -> np.ndarray:
        """(5,) plumb_bob distortion (k1, k2, p1, p2, k3); zeros without distortion."""
        return self.camera.D.copy()

    @property
    def T_left_right(self) -> np.ndarray:
        """(4, 4) pose of the right optical frame in the left one: ``baseline_m`` along +x."""
        T = np.eye(4)
        T[0, 3] = self.config.baseline_m
        return T

    def __len__(self) -> int:
        return self.config.frames

    # ------------------------------------------------------------------------------------ poses

    def stamp_ns(self, index: int) -> int:
        """Capture time of frame ``index`` in nanoseconds."""
        return self.config.start_stamp_ns + int(round(index * 1e9 / self.config.rate_hz))

    def state(self, index: int) -> DriveState:
        """The carrier at frame ``index`` (off the street: the forward and yaw parts of :meth:`twist`)."""
        t = index / self.config.rate_hz
        if self.trajectory is not None:
            now = self.trajectory.pose(t)
            linear, angular = self.twist(index)
            return DriveState(position=now[:2, 3].copy(), yaw=float(np.arctan2(now[1, 0], now[0, 0])),
                              speed=float(linear[0]), yaw_rate=float(angular[2]))
        distance = float(self.speed_profile.distance(t))
        speed = float(self.speed_profile.speed(t))
        position, yaw, curvature = self.car_path.at(distance)
        return DriveState(position=position, yaw=float(yaw), speed=speed, yaw_rate=float(curvature) * speed)

    def twist(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """base_link's body-frame ``(linear, angular)`` velocity at frame ``index`` by central differences
        of the exact poses (``None`` on the street, whose car is planar: see :meth:`state`)."""
        if self.trajectory is None:
            return None
        t, dt = index / self.config.rate_hz, 1e-4
        before, now, after = (self.trajectory.pose(t + k * dt) for k in (-1, 0, 1))
        linear = now[:3, :3].T @ (after[:3, 3] - before[:3, 3]) / (2 * dt)
        angular = _rotation_vector(before[:3, :3].T @ after[:3, :3]) / (2 * dt)
        return linear, angular

    def base_pose_at(self, t: float) -> np.ndarray:
        """(4, 4) T_world_base at any time ``t`` in seconds from frame 0 (sub-frame poses for blur)."""
        if self.trajectory is not None:
            return self.trajectory.pose(t)
        distance = float(self.speed_profile.distance(t))
        position, yaw, _ = self.car_path.at(distance)
        return _planar_pose(position, float(yaw))

    def T_world_base(self, index: int) -> np.ndarray:
        if self.trajectory is not None:
            return self.trajectory.pose(index / self.config.rate_hz)
        state = self.state(index)
        return _planar_pose(state.position, state.yaw)

    def T_odom_base(self, index: int) -> np.ndarray:
        """(4, 4) base_link pose in odom at frame ``index``."""
        return np.linalg.inv(self.T_world_odom) @ self.T_world_base(index)

    def T_world_camera(self, index: int) -> np.ndarray:
        """(4, 4) (left) optical frame pose in the world at frame ``index``."""
        return self.T_world_base(index) @ self.T_base_camera

    def poses(self) -> np.ndarray:
        """(frames, 4, 4) camera poses ``T_world_camera`` of the whole drive (no rendering)."""
        return np.stack([self.T_world_camera(i) for i in range(self.config.frames)])

    # ---------------------------------------------------------------------------------- frames

    def render(self, T_world_camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Render the configured camera at any pose: ``(rgb (H, W, 3) uint8, depth (H, W) float32)``."""
        return self.renderer.render(T_world_camera)

    def frame(self, index: int) -> SynthFrame:
        """Render frame ``index`` (0 <= index < frames)."""
        if not 0 <= index < self.config.frames:
            raise IndexError(f"frame {index} outside the drive of {self.config.frames} frames")
        state = self.state(index)
        T_world_base = self.T_world_base(index)
        T_world_camera = T_world_base @ self.T_base_camera
        rgb, depth = self.renderer.render(T_world_camera)
        if self.effects is not None:
            rgb = self._sensor_image(index, rgb)
        right_rgb = right_depth = None
        if self.config.stereo:
            right_rgb, right_depth = self.renderer.render(T_world_camera @ self.T_left_right)
            if self.effects is not None:
                right_rgb = self._sensor_image(index, right_rgb, self.T_left_right)
        return SynthFrame(
            index=index,
            stamp_ns=self.stamp_ns(index),
            rgb=rgb,
            depth=depth,
            T_world_camera=T_world_camera,
            T_odom_base=np.linalg.inv(self.T_world_odom) @ T_world_base,
            speed=state.speed,
            yaw_rate=state.yaw_rate,
            right_rgb=right_rgb,
            right_depth=right_depth,
            twist=self.twist(index),
        )

    def _sensor_image(self, index: int, rgb: np.ndarray, T_camera_view: np.ndarray | None = None) -> np.ndarray:
        """Motion blur (renders over the exposure averaged) and the sensor's effects on one image."""
        effects = self.effects
        t = index / self.config.rate_hz
        image = rgb.astype(np.float32) / 255.0
        if effects.exposure_fraction > 0.0:
            exposure = effects.exposure_fraction / self.config.rate_hz
            image = np.zeros_like(image)
            for offset in np.linspace(-0.5 * exposure, 0.5 * exposure, BLUR_SAMPLES):
                T = self.base_pose_at(t + float(offset)) @ self.T_base_camera
                if T_camera_view is not None:
                    T = T @ T_camera_view
                image += self.renderer.render(T)[0].astype(np.float32) / (255.0 * BLUR_SAMPLES)
        return effects.apply(image, index, t)

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[SynthFrame]:
        """Render frames ``start .. stop - 1`` (default: the whole drive) in order."""
        stop = self.config.frames if stop is None else min(stop, self.config.frames)
        for index in range(start, stop):
            yield self.frame(index)
