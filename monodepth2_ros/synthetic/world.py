"""Procedural street world: yaw-oriented boxes along a curved centreline, a ground plane and a sky.

Layout across the street (metres left of the centreline, mirrored on the right)::

    0          dashed centre line          (driving lanes 0 .. 3.5, car drives at +-1.75)
    3.5        solid line; parking strip 3.5 .. 6.0 with parked cars
    6.0 .. 9.0 sidewalk (0.15 m kerb) with poles, signs, crates and bins
    >= 9.5     building facades (with gaps, set back 0 .. 2.5 m), 8 .. 20 m deep
    75 .. 110  far backdrop walls (20 .. 45 m high); end walls close the street at both ends
    sky        a cloud layer at ``sky_height_m`` (or the sky at infinity)

Every box is an oriented box ``centre + R_z(yaw) @ (+-half)``; its material decides its texture.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .path import CENTRELINE_START_M, Centreline

__all__ = ["Material", "Pattern", "BoxSet", "StreetWorld", "build_world", "PARAM_COUNT"]

ROAD_HALF_WIDTH_M = 6.0
LANE_LINE_M = 3.5
SIDEWALK_OUTER_M = 9.0
SIDEWALK_HEIGHT_M = 0.15
BUILDING_LINE_M = 9.5
ROAD_THICKNESS_M = 0.002  # paint-thin road surface above the ground plane, carrying the lane markings
PARKED_CAR_LATERAL_M = 4.75
POLE_LATERAL_M = 6.45
_CHORD_MAX_LENGTH_M = 30.0
_CHORD_MAX_TURN_RAD = np.deg2rad(4.0)
_VIEW_AHEAD_M = 300.0  # the street continues this far past the last frame
PARAM_COUNT = 6


class Material(IntEnum):
    """What a surface looks like; the renderer shades each kind with its own procedural texture."""

    GROUND = 0  # the infinite ground plane outside the road and sidewalks
    SKY = 1  # the cloud layer or the sky at infinity
    ROAD = 2  # params: along-street offset (m), dash period (m), dash length (m)
    SIDEWALK = 3  # params: along-street offset (m), slab size (m)
    FACADE = 4  # params: style, block height, window spacing, floor height, window w/h fractions
    CAR = 5
    GLASS = 6
    POLE = 7  # params: stripe period (m)
    SIGN = 8
    CRATE = 9  # params: checker size (m)
    BACKDROP = 10  # params: stripe period (m), window size (m)
    SURFACE = 11  # any pattern of :class:`Pattern`; params: pattern, scale (m), photo, aspect, joint, contrast


class Pattern(IntEnum):
    """Texture families of :attr:`Material.SURFACE` (``params[0]``) and of a patterned ground."""

    PLASTER = 0  # fractal noise only
    TILES = 1  # a grid of cells (running bond when aspect > 1.2) with joints and per-cell tint
    PLANKS = 2  # boards along u with per-board tint and grain
    CHECKER = 3
    STRIPES = 4
    PHOTO = 5  # a real photograph (see photos.py), ``params[2]`` picks it


@dataclass(frozen=True)
class BoxSet:
    """N oriented boxes (numpy, float64 geometry).

    Attributes:
        centre: (N, 3) box centres in the world (metres).
        half: (N, 3) half extents along the box's own x (along street), y (across), z (up).
        yaw: (N,) rotation about world z (radians).
        material: (N,) :class:`Material` values.
        colour: (N, 3) primary colour in [0, 1].
        colour2: (N, 3) secondary colour in [0, 1] (windows, stripes, checkers).
        params: (N, PARAM_COUNT) material parameters (see :class:`Material`).
    """

    centre: np.ndarray
    half: np.ndarray
    yaw: np.ndarray
    material: np.ndarray
    colour: np.ndarray
    colour2: np.ndarray
    params: np.ndarray

    def __len__(self) -> int:
        return int(self.centre.shape[0])

    def corners(self) -> np.ndarray:
        """(N, 8, 3) world corners of every box."""
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
        local = signs[None] * self.half[:, None, :]
        cos, sin = np.cos(self.yaw)[:, None], np.sin(self.yaw)[:, None]
        x = cos * local[..., 0] - sin * local[..., 1]
        y = sin * local[..., 0] + cos * local[..., 1]
        return np.stack([x, y, local[..., 2]], axis=-1) + self.centre[:, None, :]


@dataclass(frozen=True)
class StreetWorld:
    """Everything the renderer needs to know about one seeded world."""

    boxes: BoxSet
    ground_colour: np.ndarray  # (3,)
    asphalt_colour: np.ndarray  # (3,)
    sky_colour: np.ndarray  # (3,) zenith blue
    cloud_colour: np.ndarray  # (3,)
    sun_direction: np.ndarray  # (3,) unit vector towards the sun
    texture_seed: int
    # Optional look of the other scene families (the street leaves them at their defaults).
    ground_pattern: tuple[float, ...] | None = None  # SURFACE params for the ground plane (floors)
    ground_colour2: np.ndarray | None = None  # secondary colour of a patterned ground
    ambient: float = 0.55  # light from everywhere
    diffuse: float = 0.55  # light from ``sun_direction`` (Lambert)
    light_colour: np.ndarray | None = None  # (3,) tint of all light, ``None`` = white
    # The texture footprint grows as 1 / cos(incidence) on surfaces seen at a grazing angle, up to this
    # factor: more blurs the street's road into a view-dependent smear, less lets distant ground
    # texture alias (open grounds seen to the horizon need more).
    max_anisotropy: float = 3.0


class _BoxBuilder:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(
        self,
        centre_xy: np.ndarray,
        yaw: float,
        half: tuple[float, float, float],
        z_bottom: float,
        material: Material,
        colour: np.ndarray,
        colour2: np.ndarray | None = None,
        params: tuple[float, ...] = (),
    ) -> None:
        centre = (float(centre_xy[0]), float(centre_xy[1]), z_bottom + half[2])
        padded = tuple(params) + (0.0,) * (PARAM_COUNT - len(params))
        second = colour if colour2 is None else colour2
        self.rows.append((centre, half, yaw, int(material), tuple(colour), tuple(second), padded))

    def build(self) -> BoxSet:
        columns = list(zip(*self.rows))
        return BoxSet(
            centre=np.asarray(columns[0], dtype=np.float64),
            half=np.asarray(columns[1], dtype=np.float64),
            yaw=np.asarray(columns[2], dtype=np.float64),
            material=np.asarray(columns[3], dtype=np.int64),
            colour=np.asarray(columns[4], dtype=np.float32),
            colour2=np.asarray(columns[5], dtype=np.float32),
            params=np.asarray(columns[6], dtype=np.float32),
        )


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float64)


def _chords(centreline: Centreline, s_start: float, s_end: float) -> list[tuple[float, float]]:
    """Split [s_start, s_end] into straight pieces short enough to follow the curve."""
    chords = []
    a = s_start
    while a < s_end - 1e-6:
        _, heading_a = centreline.at(a)
        b = min(a + _CHORD_MAX_LENGTH_M, s_end)
        while b - a > 2.0 and abs(float(centreline.at(b)[1]) - float(heading_a)) > _CHORD_MAX_TURN_RAD:
            b = a + 0.5 * (b - a)
        chords.append((a, b))
        a = b
    return chords


def _chord_box(
    builder: _BoxBuilder,
    centreline: Centreline,
    chord: tuple[float, float],
    lateral: tuple[float, float],
    height: tuple[float, float],
    material: Material,
    colour: np.ndarray,
    colour2: np.ndarray | None = None,
    params: tuple[float, ...] = (),
    overlap: float = 0.0,
    along_offset: bool = False,
) -> None:
    """A box spanning a chord of the street between two lateral offsets, lengthened to close the
    wedge gaps that a curve opens at the outer edge.

    With ``along_offset``, ``params[0]`` is the arc length of the chord start and is shifted to the
    box's -x end, so that ``local x + half x + params[0]`` approximates the arc length.
    """
    a, b = chord
    inner, outer = lateral
    mid = 0.5 * (inner + outer)
    ends = centreline.offset(np.array([a, b]), np.array([mid, mid]))
    delta = ends[1] - ends[0]
    yaw = float(np.arctan2(delta[1], delta[0]))
    turn = abs(float(centreline.at(b)[1] - centreline.at(a)[1]))
    extra = max(abs(inner), abs(outer)) * np.tan(turn / 2.0) + overlap
    length = float(np.hypot(*delta)) + 2.0 * extra
    half = (0.5 * length, 0.5 * abs(outer - inner), 0.5 * (height[1] - height[0]))
    # Along-street coordinate of the box's -x end, for markings that continue across chords.
    full_params = (params[0] - extra,) + tuple(params[1:]) if along_offset else params
    builder.add(0.5 * (ends[0] + ends[1]), yaw, half, height[0], material, colour, colour2, full_params)


def _place_along(
    builder: _BoxBuilder,
    centreline: Centreline,
    s: float,
    lateral: float,
    half: tuple[float, float, float],
    z_bottom: float,
    material: Material,
    colour: np.ndarray,
    colour2: np.ndarray | None = None,
    params: tuple[float, ...] = (),
    yaw_offset: float = 0.0,
) -> None:
    centre = centreline.offset(s, lateral)
    _, heading = centreline.at(s)
    builder.add(centre, float(heading) + yaw_offset, half, z_bottom, material, colour, colour2, params)


def build_world(seed: int, centreline: Centreline, street_end_m: float) -> StreetWorld:
    """Generate the world of ``seed`` along ``centreline`` up to ``street_end_m`` (plus the view ahead).

    Each element kind (street, buildings per side, cars, street furniture, backdrop) draws from its own
    stream, in order along the street, so a longer street extends a shorter one of the same seed.
    """
    # One stream per kind and side: each is consumed in order along the street.
    names = ("look", "street", "buildings+", "buildings-", "cars+", "cars-", "poles+", "poles-",
             "crates+", "crates-", "backdrop+", "backdrop-", "ends")
    seeds = np.random.SeedSequence([seed, 0x5EED]).spawn(len(names))
    rngs = {name: np.random.default_rng(s) for name, s in zip(names, seeds)}
    look, street = rngs["look"], rngs["street"]
    s_start = CENTRELINE_START_M + 1.0
    s_end = min(street_end_m + _VIEW_AHEAD_M, float(centreline.s[-1]) - 1.0)
    builder = _BoxBuilder()

    # Global look: asphalt, ground, sky, sun.
    warm = look.uniform(-0.03, 0.03)
    asphalt = np.clip(np.array([0.33 + warm, 0.33, 0.34 - warm]) * look.uniform(0.85, 1.15), 0, 1)
    ground = _hsv(look.uniform(0.06, 0.3), look.uniform(0.2, 0.45), look.uniform(0.3, 0.45))
    sky = _hsv(look.uniform(0.55, 0.62), look.uniform(0.35, 0.6), look.uniform(0.75, 0.95))
    cloud = _hsv(look.uniform(0.0, 1.0), look.uniform(0.0, 0.08), look.uniform(0.88, 1.0))
    sun_azimuth = look.uniform(0.0, 2.0 * np.pi)
    sun_elevation = np.deg2rad(look.uniform(30.0, 60.0))
    sun = np.array([np.cos(sun_elevation) * np.cos(sun_azimuth), np.cos(sun_elevation) * np.sin(sun_azimuth),
                    np.sin(sun_elevation)])
    texture_seed = int(look.integers(0, 2**31 - 1))

    # Road surface and sidewalks, one box per chord.
    paving = _hsv(street.uniform(0.05, 0.15), street.uniform(0.05, 0.2), street.uniform(0.55, 0.7))
    kerb = _hsv(0.0, 0.0, street.uniform(0.5, 0.65))
    dash_period = float(street.uniform(8.0, 12.0))
    dash_length = float(street.uniform(2.5, 4.0))
    slab = float(street.uniform(0.5, 1.0))
    for chord in _chords(centreline, s_start, s_end):
        _chord_box(builder, centreline, chord, (-ROAD_HALF_WIDTH_M, ROAD_HALF_WIDTH_M), (0.0, ROAD_THICKNESS_M),
                   Material.ROAD, asphalt, params=(chord[0], dash_period, dash_length), along_offset=True)
        for sign in (1.0, -1.0):
            _chord_box(builder, centreline, chord, (sign * ROAD_HALF_WIDTH_M, sign * SIDEWALK_OUTER_M),
                       (0.0, SIDEWALK_HEIGHT_M), Material.SIDEWALK, paving, kerb, params=(chord[0], slab),
                       along_offset=True)

    # Buildings on both sides.
    for sign in (1.0, -1.0):
        rng = rngs["buildings+" if sign > 0 else "buildings-"]
        cursor = s_start - rng.uniform(0.0, 10.0)
        while cursor < s_end:
            frontage = float(rng.uniform(8.0, 30.0))
            setback = float(rng.uniform(0.0, 2.5))
            depth = float(rng.uniform(8.0, 20.0))
            height = float(rng.uniform(6.0, 24.0))
            style = float(rng.integers(0, 3))
            block = float(rng.uniform(0.08, 0.4))
            window_spacing = float(rng.uniform(2.4, 4.5))
            floor_height = float(rng.uniform(2.8, 3.6))
            window_w = float(rng.uniform(0.35, 0.6))
            window_h = float(rng.uniform(0.4, 0.6))
            base = _hsv(rng.uniform(0.0, 1.0), rng.uniform(0.15, 0.6), rng.uniform(0.45, 0.85))
            glass = _hsv(rng.uniform(0.5, 0.7), rng.uniform(0.2, 0.5), rng.uniform(0.12, 0.3))
            gap = float(rng.uniform(1.5, 8.0)) if rng.random() < 0.7 else 0.0
            lateral = sign * (BUILDING_LINE_M + setback + 0.5 * depth)
            _place_along(builder, centreline, cursor + 0.5 * frontage, lateral,
                         (0.5 * frontage, 0.5 * depth, 0.5 * height), 0.0, Material.FACADE, base, glass,
                         (style, block, window_spacing, floor_height, window_w, window_h))
            cursor += frontage + gap

    # Parked cars in the parking strips: a body and a glass cabin.
    for sign in (1.0, -1.0):
        cars = rngs["cars+" if sign > 0 else "cars-"]
        cursor = s_start + cars.uniform(0.0, 10.0)
        while cursor < s_end:
            if cars.random() < 0.55:
                colour = _hsv(cars.uniform(0.0, 1.0), cars.uniform(0.3, 0.9), cars.uniform(0.35, 0.95))
                lateral = sign * (PARKED_CAR_LATERAL_M + cars.uniform(-0.15, 0.15))
                yaw = float(np.deg2rad(cars.uniform(-3.0, 3.0)))
                length = float(cars.uniform(3.8, 4.8))
                centre_s = cursor + 0.5 * length
                _place_along(builder, centreline, centre_s, lateral, (0.5 * length, 0.9, 0.38), 0.22,
                             Material.CAR, colour, colour * 0.4, yaw_offset=yaw)
                cabin_shift = float(cars.uniform(-0.4, 0.1))
                _place_along(builder, centreline, centre_s + cabin_shift, lateral,
                             (0.27 * length, 0.8, 0.26), 0.98, Material.GLASS, colour * 0.25 + 0.05,
                             colour, yaw_offset=yaw)
                cursor += length + float(cars.uniform(0.8, 6.0))
            else:
                cursor += float(cars.uniform(5.0, 20.0))

    # Street furniture: poles (some with signs), crates, bins and planters on the sidewalks.
    for sign in (1.0, -1.0):
        furniture = rngs["poles+" if sign > 0 else "poles-"]
        cursor = s_start + furniture.uniform(0.0, 20.0)
        while cursor < s_end:
            height = float(furniture.uniform(3.5, 7.0))
            metal = _hsv(furniture.uniform(0.0, 1.0), furniture.uniform(0.0, 0.25), furniture.uniform(0.35, 0.7))
            stripe = _hsv(furniture.uniform(0.0, 1.0), furniture.uniform(0.6, 1.0), furniture.uniform(0.7, 1.0))
            _place_along(builder, centreline, cursor, sign * POLE_LATERAL_M, (0.07, 0.07, 0.5 * height), 0.0,
                         Material.POLE, metal, stripe, (float(furniture.uniform(0.2, 0.5)),),
                         yaw_offset=float(furniture.uniform(0.0, np.pi / 2)))
            if furniture.random() < 0.5:
                plate = _hsv(furniture.uniform(0.0, 1.0), furniture.uniform(0.6, 1.0), furniture.uniform(0.5, 0.9))
                size = float(furniture.uniform(0.5, 0.9))
                _place_along(builder, centreline, cursor + 0.06, sign * POLE_LATERAL_M,
                             (0.025, 0.5 * size, 0.5 * size), height - size - 0.3, Material.SIGN, plate,
                             np.array([0.95, 0.95, 0.95]))
            cursor += float(furniture.uniform(15.0, 35.0))
        furniture = rngs["crates+" if sign > 0 else "crates-"]
        cursor = s_start + furniture.uniform(0.0, 10.0)
        while cursor < s_end:
            size = (float(furniture.uniform(0.25, 0.75)), float(furniture.uniform(0.25, 0.6)),
                    float(furniture.uniform(0.25, 0.65)))
            colour = _hsv(furniture.uniform(0.0, 1.0), furniture.uniform(0.3, 0.9), furniture.uniform(0.3, 0.9))
            colour2 = _hsv(furniture.uniform(0.0, 1.0), furniture.uniform(0.0, 0.5), furniture.uniform(0.1, 0.95))
            lateral = sign * float(furniture.uniform(7.4, 8.6))
            _place_along(builder, centreline, cursor, lateral, size, SIDEWALK_HEIGHT_M, Material.CRATE, colour,
                         colour2, (float(furniture.uniform(0.08, 0.3)),),
                         yaw_offset=float(np.deg2rad(furniture.uniform(-20.0, 20.0))))
            cursor += float(furniture.uniform(5.0, 25.0))

    # Far backdrop walls on both sides, and end walls closing the street.
    ends = rngs["ends"]
    distances = {1.0: float(ends.uniform(75.0, 110.0)), -1.0: float(ends.uniform(75.0, 110.0))}
    end_looks = [(ends.uniform(0.0, 1.0), ends.uniform(0.05, 0.3), ends.uniform(0.35, 0.65),
                  ends.uniform(4.0, 15.0), ends.uniform(0.8, 2.5)) for _ in range(2)]
    for sign in (1.0, -1.0):
        backdrop = rngs["backdrop+" if sign > 0 else "backdrop-"]
        cursor = CENTRELINE_START_M
        while cursor < s_end:
            length = float(backdrop.uniform(40.0, 80.0))
            chord = (cursor, min(cursor + length, float(centreline.s[-1])))
            colour = _hsv(backdrop.uniform(0.0, 1.0), backdrop.uniform(0.05, 0.35), backdrop.uniform(0.35, 0.7))
            colour2 = _hsv(backdrop.uniform(0.0, 1.0), backdrop.uniform(0.0, 0.3), backdrop.uniform(0.15, 0.9))
            wall = distances[sign]
            _chord_box(builder, centreline, chord, (sign * wall, sign * (wall + 6.0)),
                       (0.0, float(backdrop.uniform(20.0, 45.0))), Material.BACKDROP, colour, colour2,
                       params=(float(backdrop.uniform(4.0, 15.0)), float(backdrop.uniform(0.8, 2.5))), overlap=4.0)
            cursor += length
    span = max(distances.values()) + 20.0
    for s_wall, (hue, saturation, value, stripes, windows) in zip((CENTRELINE_START_M + 0.5, s_end), end_looks):
        colour = _hsv(hue, saturation, value)
        _place_along(builder, centreline, s_wall, 0.0, (3.0, span, 30.0), 0.0, Material.BACKDROP, colour,
                     colour * 0.6, (float(stripes), float(windows)))

    return StreetWorld(
        boxes=builder.build(),
        ground_colour=ground,
        asphalt_colour=asphalt,
        sky_colour=sky,
        cloud_colour=cloud,
        sun_direction=sun / np.linalg.norm(sun),
        texture_seed=texture_seed,
    )
