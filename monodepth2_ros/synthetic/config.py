"""Configuration of a synthetic drive and the fixed constants of the synthetic camera."""

from __future__ import annotations

from dataclasses import dataclass

from monodepth2_ros.errors import ConfigError

__all__ = [
    "SynthConfig",
    "KITTI_WIDTH",
    "KITTI_HEIGHT",
    "KITTI_FX",
    "KITTI_FY",
    "KITTI_CX",
    "KITTI_CY",
    "PLUMB_BOB_D",
    "START_STAMP_NS",
]

# KITTI raw-data rectified left colour camera (P_rect_02 of 2011_09_26), the size Monodepth2 evaluates on.
KITTI_WIDTH = 1242
KITTI_HEIGHT = 375
KITTI_FX = 721.5377
KITTI_FY = 721.5377
KITTI_CX = 609.5593
KITTI_CY = 172.854

# plumb_bob (k1, k2, p1, p2, k3) used with ``distortion=True``: mild barrel, ~6 % at the corners.
PLUMB_BOB_D = (-0.1, 0.02, 0.001, -0.0015, 0.0)

# Stamp of frame 0: a fixed epoch (2023-11-14T22:13:20Z) so bags are reproducible bit for bit.
START_STAMP_NS = 1_700_000_000 * 1_000_000_000

_MIN_IMAGE_SIDE = 8
_MAX_ANTIALIAS = 4


@dataclass(frozen=True)
class SynthConfig:
    """What to render: the world (``seed``), the drive length and the camera.

    Attributes:
        frames: number of frames of the drive.
        seed: world and drive seed; equal seeds give identical worlds, drives and images.
        width, height: image size in pixels; the KITTI intrinsics are scaled to it.
        rate_hz: camera frame rate; frame ``i`` is stamped ``start_stamp_ns + i / rate_hz``.
        stereo: also render a right camera ``baseline_m`` along the left camera's +x axis.
        baseline_m: stereo baseline in metres.
        distortion: render through the plumb_bob model :data:`PLUMB_BOB_D` (exactly, per pixel).
        device: torch device of the renderer (``"cpu"``, ``"cuda"``, ...).
        camera_height_m: height of the optical centre above the ground.
        sky_surface: close the world with a textured cloud layer ``sky_height_m`` up, so every pixel
            has a finite depth; ``False`` puts the sky at infinity (colour by direction, NaN depth).
        sky_height_m: height of the cloud layer.
        max_speed_mps: top speed of the drive.
        antialias: rays per pixel side for the colours (1 = one ray through each pixel centre;
            2 = 2x2 supersampling, ~4x slower). Depth is always the pixel-centre ray's.
        start_stamp_ns: stamp of frame 0 in nanoseconds.
        family: scene family (:data:`~.families.FAMILIES`) or ``"random"`` (drawn from the seed).
        randomize: draw the camera (field of view, height, pitch, roll, lens distortion), the motion
            (car, ground robot, drone, handheld), the lighting and the textures from the seed;
            ``None``: on for every family but an explicit ``"street"`` (today's fixed KITTI camera).
            When on, ``camera_height_m`` and ``distortion`` are drawn instead of taken from here.
        sensor_effects: exposure and white balance changes, vignetting, sensor noise and motion
            blur on the images (never on the ground truth); ``None``: follows ``randomize``.
    """

    frames: int = 200
    seed: int = 0
    width: int = KITTI_WIDTH
    height: int = KITTI_HEIGHT
    rate_hz: float = 10.0
    stereo: bool = False
    baseline_m: float = 0.54
    distortion: bool = False
    device: str = "cpu"
    camera_height_m: float = 1.65
    sky_surface: bool = True
    sky_height_m: float = 60.0
    max_speed_mps: float = 12.0
    antialias: int = 1
    start_stamp_ns: int = START_STAMP_NS
    family: str = "street"
    randomize: bool | None = None
    sensor_effects: bool | None = None

    @property
    def randomized(self) -> bool:
        """Whether camera, motion, lighting and textures are drawn from the seed."""
        return self.randomize if self.randomize is not None else self.family != "street"

    @property
    def with_sensor_effects(self) -> bool:
        return self.sensor_effects if self.sensor_effects is not None else self.randomized

    def __post_init__(self) -> None:
        from .families import FAMILY_CHOICES

        if self.family not in FAMILY_CHOICES:
            raise ConfigError(f"SynthConfig.family is {self.family!r}; expected one of {', '.join(FAMILY_CHOICES)}")
        if self.frames < 1:
            raise ConfigError(f"SynthConfig.frames is {self.frames}; expected at least 1")
        if self.width < _MIN_IMAGE_SIDE or self.height < _MIN_IMAGE_SIDE:
            raise ConfigError(
                f"SynthConfig size is {self.width}x{self.height}; expected both sides >= {_MIN_IMAGE_SIDE} px"
            )
        if not self.rate_hz > 0.0:
            raise ConfigError(f"SynthConfig.rate_hz is {self.rate_hz}; expected a positive frame rate")
        if self.stereo and not self.baseline_m > 0.0:
            raise ConfigError(f"SynthConfig.baseline_m is {self.baseline_m}; expected a positive baseline")
        if not 0.3 <= self.camera_height_m <= 5.0:
            raise ConfigError(f"SynthConfig.camera_height_m is {self.camera_height_m}; expected 0.3 .. 5 m")
        if self.sky_height_m <= 45.0:
            raise ConfigError(
                f"SynthConfig.sky_height_m is {self.sky_height_m}; expected above the tallest walls (45 m)"
            )
        if not 1 <= self.antialias <= _MAX_ANTIALIAS:
            raise ConfigError(
                f"SynthConfig.antialias is {self.antialias}; expected 1 .. {_MAX_ANTIALIAS} rays per side"
            )
        if not 1.0 <= self.max_speed_mps <= 40.0:
            raise ConfigError(f"SynthConfig.max_speed_mps is {self.max_speed_mps}; expected 1 .. 40 m/s")
