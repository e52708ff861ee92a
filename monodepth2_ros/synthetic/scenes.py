"""The scene families besides the street: indoor rooms and corridors, warehouse aisles, table tops
and open yards. Each is a set of oriented boxes over the ground plane (the floor), as the street is,
so the renderer ray casts all of them exactly; each comes with a free path for the camera's carrier.

Coordinates: world z up, the floor at z = 0, the path starting near the origin heading roughly +x.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from .motion import PlanarPath, make_path
from .photos import photo_count
from .world import Material, Pattern, StreetWorld, _BoxBuilder

__all__ = ["Scene", "SCENE_BUILDERS", "random_surface"]

_WALL_M = 0.1  # thickness of walls, ceilings and table tops' supports


@dataclass(frozen=True)
class Scene:
    """A built world and where its camera may go.

    Attributes:
        world: the boxes and the look.
        path: the carrier's free path (clear of every object by the family's margin).
        ceiling_m: height of the ceiling (``None`` outdoors): drones and hands stay below it.
        look_at: (3,) point a circling camera keeps in view, or ``None``.
        surface_m: height of the surface the carrier moves over (a table top; 0 for floors).
    """

    world: StreetWorld
    path: PlanarPath
    ceiling_m: float | None
    look_at: np.ndarray | None = None
    surface_m: float = 0.0


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1))), dtype=np.float64)


_PATTERN_WEIGHTS = {Pattern.PLASTER: 0.18, Pattern.TILES: 0.2, Pattern.PLANKS: 0.14, Pattern.CHECKER: 0.08,
                    Pattern.STRIPES: 0.1, Pattern.PHOTO: 0.3}


def random_surface(rng: np.random.Generator, scale: tuple[float, float] = (0.1, 0.8),
                   photo_tile: tuple[float, float] = (0.6, 3.0), value: tuple[float, float] = (0.35, 0.9),
                   saturation: tuple[float, float] = (0.05, 0.6), hue: tuple[float, float] = (0.0, 1.0),
                   kinds: tuple[Pattern, ...] | None = None):
    """``(colour, colour2, params)`` of a :attr:`Material.SURFACE`: a texture family and its look."""
    kinds = kinds or tuple(_PATTERN_WEIGHTS)
    weights = np.array([_PATTERN_WEIGHTS[k] for k in kinds])
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    colour = _hsv(rng.uniform(*hue), rng.uniform(*saturation), rng.uniform(*value))
    colour2 = _hsv(rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.5), rng.uniform(0.1, 0.95))
    if kind == Pattern.PHOTO:
        size = float(rng.uniform(*photo_tile))
    else:
        size = float(rng.uniform(*scale))
    if kind in (Pattern.TILES, Pattern.CHECKER):
        aspect = float(rng.choice([1.0, rng.uniform(1.5, 3.0)]))
    else:
        aspect = float(rng.uniform(0.5, 2.0))
    params = (float(kind), size, float(rng.integers(0, photo_count())), aspect, float(rng.uniform(0.04, 0.14)),
              float(rng.uniform(0.5, 1.6)))
    return colour, colour2, params


def _add(builder: _BoxBuilder, centre_xy, yaw: float, half, z_bottom: float, look) -> None:
    colour, colour2, params = look
    builder.add(np.asarray(centre_xy, dtype=np.float64), float(yaw), tuple(float(h) for h in half), float(z_bottom),
                Material.SURFACE, colour, colour2, params)


def _world(builder: _BoxBuilder, rng: np.random.Generator, ground_look, indoor: bool) -> StreetWorld:
    colour, colour2, params = ground_look
    sky = _hsv(rng.uniform(0.55, 0.62), rng.uniform(0.3, 0.6), rng.uniform(0.75, 0.95))
    cloud = _hsv(rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.08), rng.uniform(0.88, 1.0))
    if indoor:  # light from the ceiling, slightly off vertical
        sun = np.array([rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), 1.0])
    else:
        azimuth, elevation = rng.uniform(0.0, 2 * np.pi), np.deg2rad(rng.uniform(25.0, 65.0))
        sun = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    return StreetWorld(
        boxes=builder.build(), ground_colour=colour, asphalt_colour=colour, sky_colour=sky, cloud_colour=cloud,
        sun_direction=sun / np.linalg.norm(sun), texture_seed=int(rng.integers(0, 2**31 - 1)),
        ground_pattern=tuple(params), ground_colour2=colour2,
        ambient=0.62 if indoor else 0.55, diffuse=0.4 if indoor else 0.55,
    )


# --------------------------------------------------------------------------------------- rooms


def _room_shell(builder: _BoxBuilder, rng: np.random.Generator, x0: float, x1: float, y0: float, y1: float,
                ceiling: float) -> None:
    """Four walls, a ceiling with light panels and baseboards around the rectangle [x0, x1] x [y0, y1]."""
    t = _WALL_M
    wall = random_surface(rng, value=(0.5, 0.95), saturation=(0.0, 0.4))
    accent = random_surface(rng) if rng.random() < 0.5 else wall
    cx, cy, hx, hy = 0.5 * (x0 + x1), 0.5 * (y0 + y1), 0.5 * (x1 - x0), 0.5 * (y1 - y0)
    sides = [((cx, y1 + t / 2), (hx + t, t / 2)), ((cx, y0 - t / 2), (hx + t, t / 2)),
             ((x1 + t / 2, cy), (t / 2, hy + t)), ((x0 - t / 2, cy), (t / 2, hy + t))]
    for k, (centre, half) in enumerate(sides):
        _add(builder, centre, 0.0, (*half, ceiling / 2 + t), -t, accent if k == 0 else wall)
    ceiling_look = random_surface(rng, value=(0.75, 0.95), saturation=(0.0, 0.1),
                                  kinds=(Pattern.PLASTER, Pattern.TILES), scale=(0.5, 1.2))
    _add(builder, (cx, cy), 0.0, (hx + t, hy + t, t / 2), ceiling, ceiling_look)
    panel = (np.array([0.97, 0.97, 0.95]), np.array([0.8, 0.8, 0.8]), (float(Pattern.PLASTER), 1.0, 0, 1, 0.1, 0.2))
    spacing = float(rng.uniform(2.0, 3.5))
    for x in np.arange(x0 + spacing / 2, x1, spacing):
        for y in np.arange(y0 + spacing / 2, y1, spacing):
            _add(builder, (x, y), 0.0, (0.3, 0.3, 0.01), ceiling - 0.02, panel)
    skirting = random_surface(rng, kinds=(Pattern.PLASTER,), value=(0.2, 0.9))
    for centre, half in sides:
        inner = (centre[0] - np.sign(centre[0] - cx) * (t / 2 + 0.01) if half[0] < half[1] else centre[0],
                 centre[1] - np.sign(centre[1] - cy) * (t / 2 + 0.01) if half[0] >= half[1] else centre[1])
        size = (half[0] - t, 0.01, 0.05) if half[0] >= half[1] else (0.01, half[1] - t, 0.05)
        _add(builder, inner, 0.0, size, 0.0, skirting)


def _wall_items(builder: _BoxBuilder, rng: np.random.Generator, start, direction, length: float, ceiling: float,
                furniture: bool, max_depth: float) -> None:
    """Doors, pictures, windows, radiators and (in rooms) furniture along one wall, facing inwards.

    ``start`` and ``direction`` (unit) run along the wall with the room on the left of ``direction``.
    """
    start, direction = np.asarray(start, dtype=np.float64), np.asarray(direction, dtype=np.float64)
    inward = np.array([-direction[1], direction[0]])
    yaw = float(np.arctan2(direction[1], direction[0]))
    cursor = float(rng.uniform(0.2, 1.0))
    kinds = ["door", "picture", "window", "radiator", "gap"]
    if furniture:
        kinds += ["cabinet", "shelf", "table", "sofa", "plant"] * 2
    while cursor < length - 0.5:
        kind = kinds[int(rng.integers(0, len(kinds)))]
        width = {"door": rng.uniform(0.8, 1.0), "picture": rng.uniform(0.4, 1.2), "window": rng.uniform(0.8, 2.0),
                 "radiator": rng.uniform(0.6, 1.4), "gap": rng.uniform(0.3, 1.5), "cabinet": rng.uniform(0.6, 1.6),
                 "shelf": rng.uniform(0.6, 1.2), "table": rng.uniform(0.8, 1.6), "sofa": rng.uniform(1.4, 2.2),
                 "plant": rng.uniform(0.3, 0.6)}[kind]
        width = float(min(width, length - cursor - 0.1))
        if width < 0.3:
            break
        mid = start + direction * (cursor + width / 2)

        def place(depth: float, height: float, z_bottom: float, look, off_wall: float = 0.0, w: float = width):
            centre = mid + inward * (off_wall + depth / 2)
            _add(builder, centre, yaw, (w / 2, depth / 2, height / 2), z_bottom, look)

        if kind == "door":
            frame = random_surface(rng, kinds=(Pattern.PLASTER,), value=(0.3, 0.95))
            place(0.02, 2.1, 0.0, frame, w=width + 0.12)
            leaf = random_surface(rng, kinds=(Pattern.PLANKS, Pattern.PLASTER, Pattern.TILES))
            place(0.04, 2.02, 0.0, leaf, w=width - 0.04)
        elif kind == "picture":
            height = float(rng.uniform(0.3, 0.9))
            z = float(rng.uniform(1.0, max(1.1, ceiling - height - 0.4)))
            place(0.03, height, z, random_surface(rng, kinds=(Pattern.PHOTO,), photo_tile=(0.3, 1.0)))
        elif kind == "window":
            z = float(rng.uniform(0.8, 1.1))
            height = float(min(rng.uniform(1.0, 1.6), ceiling - z - 0.3))
            frame = random_surface(rng, kinds=(Pattern.PLASTER,), value=(0.7, 0.95), saturation=(0, 0.1))
            place(0.03, height + 0.1, z - 0.05, frame, w=width + 0.1)
            pane = random_surface(rng, kinds=(Pattern.PLASTER, Pattern.STRIPES), value=(0.1, 0.4), hue=(0.5, 0.7))
            place(0.05, height, z, pane)
        elif kind == "radiator":
            fins = random_surface(rng, kinds=(Pattern.STRIPES,), scale=(0.05, 0.12), value=(0.6, 0.95))
            place(min(0.1, max_depth), 0.6, 0.15, fins)
        elif kind == "cabinet":
            depth = float(min(rng.uniform(0.35, 0.6), max_depth))
            height = float(rng.uniform(0.7, min(2.1, ceiling - 0.2)))
            front = random_surface(rng, kinds=(Pattern.PLANKS, Pattern.PLASTER, Pattern.TILES, Pattern.PHOTO))
            place(depth, height, 0.0, front)
        elif kind == "shelf":
            depth = float(min(rng.uniform(0.25, 0.4), max_depth))
            board = random_surface(rng, kinds=(Pattern.PLANKS, Pattern.PLASTER))
            levels = int(rng.integers(3, 6))
            for level in range(levels):
                z = level * 0.4
                place(depth, 0.025, z + 0.1, board)
                for item in range(int(rng.integers(0, 4))):
                    size = float(rng.uniform(0.08, 0.3))
                    offset = float(rng.uniform(-width / 2 + size / 2, width / 2 - size / 2))
                    centre = mid + direction * offset + inward * (depth / 2)
                    _add(builder, centre, yaw, (size / 2, min(size, depth) / 2 - 0.01, float(rng.uniform(0.05, 0.15))),
                         z + 0.125, random_surface(rng, photo_tile=(0.2, 0.6)))
            for side in (-1.0, 1.0):
                centre = mid + direction * side * (width / 2 - 0.015) + inward * (depth / 2)
                _add(builder, centre, yaw, (0.015, depth / 2, 0.2 * levels + 0.05), 0.0, board)
        elif kind == "table":
            depth = float(min(rng.uniform(0.6, 0.8), max_depth))
            top = random_surface(rng, kinds=(Pattern.PLANKS, Pattern.PLASTER, Pattern.PHOTO))
            place(depth, 0.04, 0.72, top)
            for sx in (-1.0, 1.0):
                for sy in (0.05, depth - 0.05):
                    centre = mid + direction * sx * (width / 2 - 0.05) + inward * sy
                    _add(builder, centre, yaw, (0.025, 0.025, 0.36), 0.0, top)
        elif kind == "sofa":
            depth = float(min(rng.uniform(0.7, 0.9), max_depth))
            cloth = random_surface(rng, kinds=(Pattern.PLASTER, Pattern.CHECKER, Pattern.STRIPES, Pattern.PHOTO))
            place(depth, 0.42, 0.0, cloth)
            place(0.2, 0.45, 0.42, cloth)
        elif kind == "plant":
            pot = random_surface(rng, kinds=(Pattern.PLASTER,))
            place(width * 0.8, 0.4, 0.0, pot, off_wall=0.05, w=width * 0.8)
            leaves = random_surface(rng, kinds=(Pattern.PHOTO, Pattern.PLASTER), hue=(0.22, 0.4), saturation=(0.4, 0.8),
                                    photo_tile=(0.3, 0.8))
            place(width, float(rng.uniform(0.5, 1.2)), 0.4, leaves, off_wall=0.0)
        cursor += width + float(rng.uniform(0.1, 1.2))


def _room(rng: np.random.Generator, builder: _BoxBuilder, width: float, depth: float, ceiling: float,
          furniture_depth: float) -> tuple[float, float, float, float]:
    x0, x1, y0, y1 = -width / 2, width / 2, -depth / 2, depth / 2
    _room_shell(builder, rng, x0, x1, y0, y1, ceiling)
    corners = [((x0, y0), (1.0, 0.0), width), ((x1, y0), (0.0, 1.0), depth), ((x1, y1), (-1.0, 0.0), width),
               ((x0, y1), (0.0, -1.0), depth)]
    for start, direction, length in corners:
        _wall_items(builder, rng, start, direction, length, ceiling, furniture=True, max_depth=furniture_depth)
    return x0, x1, y0, y1


def _floor_look(rng: np.random.Generator):
    return random_surface(rng, kinds=(Pattern.TILES, Pattern.PLANKS, Pattern.CHECKER, Pattern.PLASTER, Pattern.PHOTO),
                          scale=(0.15, 0.8), photo_tile=(0.8, 2.5))


def build_indoor(rng: np.random.Generator, path_length_m: float) -> Scene:
    """A furnished room circled on a loop, or a corridor with doors followed to its end."""
    builder = _BoxBuilder()
    ceiling = float(rng.uniform(2.4, 3.5))
    if rng.random() < 0.5:
        width, depth = float(rng.uniform(5.0, 12.0)), float(rng.uniform(4.5, 10.0))
        _room(rng, builder, width, depth, ceiling, furniture_depth=0.9)
        a, b = max(0.6, width / 2 - 1.5), max(0.6, depth / 2 - 1.5)
        angle = np.linspace(0.0, 2 * np.pi, 200, endpoint=False) - np.pi / 2
        wiggle = 1.0 + 0.1 * np.sin(3 * angle + rng.uniform(0, 2 * np.pi))
        loop = np.stack([a * np.cos(angle) * wiggle, b * np.sin(angle) * wiggle], axis=1)
        if rng.random() < 0.5:
            loop = loop[::-1]
        path = make_path(loop, closed=True, smoothing_m=0.5)
    else:
        width = float(rng.uniform(1.6, 3.0))
        length = path_length_m + 6.0
        x0, x1, y0, y1 = -4.0, length + 4.0, -width / 2, width / 2
        _room_shell(builder, rng, x0, x1, y0, y1, ceiling)
        for start, direction in (((x0, y0), (1.0, 0.0)), ((x1, y1), (-1.0, 0.0))):
            _wall_items(builder, rng, start, direction, x1 - x0, ceiling, furniture=False, max_depth=0.12)
        for start, direction, run in (((x1, y0), (0.0, 1.0), width), ((x0, y1), (0.0, -1.0), width)):
            _wall_items(builder, rng, start, direction, run, ceiling, furniture=False, max_depth=0.3)
        weave = min(0.2, 0.25 * (width / 2 - 0.5))
        xs = np.arange(0.0, length + 0.5, 0.5)
        ys = weave * np.sin(2 * np.pi * xs / rng.uniform(6.0, 12.0) + rng.uniform(0, 2 * np.pi))
        path = make_path(np.stack([xs, ys - ys[0]], axis=1), closed=False, smoothing_m=1.0)
    return Scene(world=_world(builder, rng, _floor_look(rng), indoor=True), path=path, ceiling_m=ceiling)


def build_tabletop(rng: np.random.Generator, path_length_m: float) -> Scene:
    """A table with objects in a furnished room, circled by a camera looking at it from 0.3-1.5 m."""
    builder = _BoxBuilder()
    ceiling = float(rng.uniform(2.4, 3.2))
    _room(rng, builder, float(rng.uniform(5.5, 8.0)), float(rng.uniform(5.5, 8.0)), ceiling, furniture_depth=0.8)
    table_z = float(rng.uniform(0.7, 0.8))
    half = (float(rng.uniform(0.6, 1.1)), float(rng.uniform(0.45, 0.7)))
    top = random_surface(rng, kinds=(Pattern.PLANKS, Pattern.TILES, Pattern.PLASTER, Pattern.PHOTO, Pattern.CHECKER),
                         scale=(0.03, 0.2), photo_tile=(0.3, 1.2))
    _add(builder, (0.0, 0.0), 0.0, (half[0], half[1], 0.02), table_z - 0.04, top)
    legs = random_surface(rng, kinds=(Pattern.PLASTER,))
    for sx in (-1.0, 1.0):
        for sy in (-1.0, 1.0):
            corner = (sx * (half[0] - 0.06), sy * (half[1] - 0.06))
            _add(builder, corner, 0.0, (0.03, 0.03, (table_z - 0.04) / 2), 0.0, legs)
    tallest = 0.0
    for _ in range(int(rng.integers(5, 14))):
        size = (float(rng.uniform(0.02, 0.14)), float(rng.uniform(0.02, 0.14)))
        height = float(rng.uniform(0.02, 0.3))
        radius, angle = float(rng.uniform(0.0, 0.42)), float(rng.uniform(0.0, 2 * np.pi))
        centre = (radius * np.cos(angle) * min(1.0, half[0] / 0.5), radius * np.sin(angle) * min(1.0, half[1] / 0.5))
        look = random_surface(rng, scale=(0.01, 0.06), photo_tile=(0.05, 0.3))
        _add(builder, centre, float(rng.uniform(0, np.pi)), (*size, height / 2), table_z, look)
        tallest = max(tallest, height)
    radius = float(rng.uniform(0.7, 1.15))
    angle = np.linspace(0.0, 2 * np.pi, 200, endpoint=False) + rng.uniform(0, 2 * np.pi)
    ellipse = np.stack([radius * np.cos(angle), radius * 0.85 * np.sin(angle)], axis=1)
    if rng.random() < 0.5:
        ellipse = ellipse[::-1]
    target = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), table_z + rng.uniform(0.0, 0.1)])
    return Scene(world=_world(builder, rng, _floor_look(rng), indoor=True), path=make_path(ellipse, closed=True),
                 ceiling_m=ceiling, look_at=target, surface_m=table_z + tallest)


# ------------------------------------------------------------------------------------ warehouse


def build_warehouse(rng: np.random.Generator, path_length_m: float) -> Scene:
    """Rows of pallet racks with goods, the camera down the middle aisle, inside a closed hall."""
    builder = _BoxBuilder()
    ceiling = float(rng.uniform(7.0, 11.0))
    aisle = float(rng.uniform(2.2, 3.6))
    rack_depth = float(rng.uniform(0.9, 1.2))
    bay = float(rng.uniform(2.4, 3.0))
    level_height = float(rng.uniform(1.2, 1.8))
    levels = int(min(rng.integers(3, 6), (ceiling - 1.0) // level_height))
    rows = int(rng.integers(1, 3))  # double racks on each side of the middle aisle
    length = path_length_m + 8.0
    x0, x1 = -6.0, length + 6.0
    upright = random_surface(rng, kinds=(Pattern.PLASTER,), hue=(0.55, 0.65), saturation=(0.5, 0.9), value=(0.3, 0.7))
    beam = random_surface(rng, kinds=(Pattern.PLASTER, Pattern.STRIPES), hue=(0.02, 0.1), saturation=(0.7, 1.0),
                          value=(0.7, 1.0))
    pallet = random_surface(rng, kinds=(Pattern.PLANKS,), hue=(0.07, 0.12), saturation=(0.3, 0.5), value=(0.5, 0.8),
                            scale=(0.08, 0.15))
    goods = [random_surface(rng, hue=(0.05, 0.12), saturation=(0.3, 0.6), value=(0.45, 0.8), photo_tile=(0.4, 1.5))
             for _ in range(6)]
    rack_x0, rack_x1 = 0.0 - 2.0, length + 2.0
    for side in (-1.0, 1.0):
        for row in range(rows):
            inner = aisle / 2 + row * (2 * rack_depth + aisle)
            for half_rack in range(2):  # back-to-back racks
                near = inner + half_rack * rack_depth
                y_mid = side * (near + rack_depth / 2)
                for x in np.arange(rack_x0, rack_x1 + 1e-6, bay):
                    for face in (near + 0.04, near + rack_depth - 0.04):
                        _add(builder, (x, side * face), 0.0, (0.04, 0.04, (levels * level_height) / 2), 0.0, upright)
                for level in range(levels):
                    z = 0.15 + level * level_height
                    for face in (near + 0.05, near + rack_depth - 0.05):
                        _add(builder, ((rack_x0 + rack_x1) / 2, side * face), 0.0,
                             ((rack_x1 - rack_x0) / 2, 0.05, 0.06), z - 0.12, beam)
                    for x in np.arange(rack_x0, rack_x1 - bay + 1e-6, bay):
                        for slot in range(2):
                            if rng.random() < 0.25:
                                continue
                            cx = x + bay * (0.27 + 0.46 * slot)
                            _add(builder, (cx, y_mid), 0.0, (0.5, rack_depth / 2 - 0.08, 0.06), z, pallet)
                            height = float(rng.uniform(0.3, level_height - 0.35))
                            look = goods[int(rng.integers(0, len(goods)))]
                            _add(builder, (cx + rng.uniform(-0.05, 0.05), y_mid), float(rng.uniform(-0.03, 0.03)),
                                 (0.48, rack_depth / 2 - 0.1, height / 2), z + 0.12, look)
    extent = aisle / 2 + rows * (2 * rack_depth + aisle) + 3.0
    wall = random_surface(rng, kinds=(Pattern.STRIPES, Pattern.TILES, Pattern.PLASTER, Pattern.PHOTO), scale=(0.3, 1.5),
                          photo_tile=(2.0, 5.0), saturation=(0.0, 0.4))
    t = _WALL_M
    for centre, half in (((0.5 * (x0 + x1), extent + t / 2), (0.5 * (x1 - x0) + t, t / 2)),
                         ((0.5 * (x0 + x1), -extent - t / 2), (0.5 * (x1 - x0) + t, t / 2)),
                         ((x1 + t / 2, 0.0), (t / 2, extent + t)), ((x0 - t / 2, 0.0), (t / 2, extent + t))):
        _add(builder, centre, 0.0, (*half, ceiling / 2 + t), -t, wall)
    roof = random_surface(rng, kinds=(Pattern.STRIPES, Pattern.PLASTER), value=(0.5, 0.9), saturation=(0.0, 0.1),
                          scale=(0.5, 2.0))
    _add(builder, (0.5 * (x0 + x1), 0.0), 0.0, (0.5 * (x1 - x0) + t, extent + t, t / 2), ceiling, roof)
    lamp = (np.array([0.98, 0.98, 0.95]), np.array([0.8, 0.8, 0.8]), (float(Pattern.PLASTER), 1.0, 0, 1, 0.1, 0.2))
    for x in np.arange(x0 + 3.0, x1, float(rng.uniform(4.0, 8.0))):
        _add(builder, (x, 0.0), 0.0, (0.6, 0.15, 0.05), ceiling - 0.6, lamp)
    floor = random_surface(rng, kinds=(Pattern.PLASTER, Pattern.TILES, Pattern.PHOTO), scale=(1.0, 3.0),
                           photo_tile=(1.0, 3.0), saturation=(0.0, 0.15), value=(0.4, 0.75))
    weave = 0.15 * aisle / 2
    xs = np.arange(0.0, length + 0.5, 0.5)
    ys = weave * np.sin(2 * np.pi * xs / rng.uniform(10.0, 20.0) + rng.uniform(0, 2 * np.pi))
    path = make_path(np.stack([xs, ys - ys[0]], axis=1), closed=False, smoothing_m=1.0)
    return Scene(world=_world(builder, rng, floor, indoor=True), path=path, ceiling_m=ceiling)


# ----------------------------------------------------------------------------------------- yard


def build_yard(rng: np.random.Generator, path_length_m: float) -> Scene:
    """Open ground with sparse objects (rocks, trees, crates, sheds, fences, parked cars) beside a
    winding path, closed by a far ring of tree lines and buildings under a cloud layer."""
    builder = _BoxBuilder()
    # The path: straights and arcs (radius 8-40 m), smoothed.
    points, heading, position = [np.zeros(2)], 0.0, np.zeros(2)
    total = 0.0
    while total < path_length_m + 20.0:
        run = float(rng.uniform(5.0, 25.0))
        turn = float(rng.uniform(-1.0, 1.0)) * run / float(rng.uniform(8.0, 40.0))
        for k in range(int(run / 0.5)):
            heading += turn / max(1, int(run / 0.5))
            position = position + 0.5 * np.array([np.cos(heading), np.sin(heading)])
            points.append(position.copy())
        total += run
    path = make_path(np.asarray(points), closed=False, smoothing_m=3.0)
    samples = path.xy[:: max(1, len(path.xy) // 400)]
    low, high = samples.min(axis=0) - 30.0, samples.max(axis=0) + 30.0
    area = float(np.prod(high - low))
    for _ in range(int(area / float(rng.uniform(40.0, 90.0)))):
        xy = rng.uniform(low, high)
        kind = int(rng.integers(0, 7))
        size = {0: 0.6, 1: 2.0, 2: 0.5, 3: 2.5, 4: 3.0, 5: 2.4, 6: 0.3}[kind]
        if np.min(np.hypot(*(samples - xy).T)) < 1.5 + size:
            continue
        yaw = float(rng.uniform(0, np.pi))
        if kind == 0:  # rock
            look = random_surface(rng, kinds=(Pattern.PHOTO, Pattern.PLASTER), saturation=(0.0, 0.2),
                                  photo_tile=(0.5, 1.5))
            _add(builder, xy, yaw, (rng.uniform(0.15, 0.6), rng.uniform(0.15, 0.5), rng.uniform(0.1, 0.4)), -0.05, look)
        elif kind == 1:  # tree: trunk and crown
            trunk_h = float(rng.uniform(1.2, 3.0))
            bark = random_surface(rng, kinds=(Pattern.PLANKS, Pattern.PHOTO), hue=(0.05, 0.1), saturation=(0.3, 0.6),
                                  value=(0.2, 0.45))
            _add(builder, xy, yaw, (0.12, 0.12, trunk_h / 2), 0.0, bark)
            crown = random_surface(rng, kinds=(Pattern.PHOTO, Pattern.PLASTER, Pattern.CHECKER), hue=(0.2, 0.4),
                                   saturation=(0.4, 0.8), value=(0.2, 0.6), photo_tile=(0.5, 2.0), scale=(0.2, 0.5))
            c = float(rng.uniform(0.8, 1.8))
            _add(builder, xy, yaw, (c, c * rng.uniform(0.7, 1.0), rng.uniform(0.8, 1.8)), trunk_h, crown)
        elif kind in (2, 6):  # crate, barrel or post
            look = random_surface(rng, scale=(0.05, 0.3), photo_tile=(0.3, 1.0))
            if kind == 2:
                half = (rng.uniform(0.1, 0.5), rng.uniform(0.1, 0.5), rng.uniform(0.2, 0.7))
            else:
                half = (0.06, 0.06, rng.uniform(0.4, 1.0))
            _add(builder, xy, yaw, half, 0.0, look)
        elif kind == 3:  # shed
            look = random_surface(rng, scale=(0.1, 0.6), photo_tile=(1.0, 3.0))
            _add(builder, xy, yaw, (rng.uniform(1.0, 2.5), rng.uniform(1.0, 2.0), rng.uniform(1.0, 1.6)), 0.0, look)
        elif kind == 4:  # fence segment
            look = random_surface(rng, kinds=(Pattern.PLANKS, Pattern.STRIPES, Pattern.CHECKER), scale=(0.08, 0.3))
            _add(builder, xy, yaw, (rng.uniform(1.5, 4.0), 0.03, rng.uniform(0.5, 0.8)), 0.0, look)
        else:  # parked car
            colour = _hsv(rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.35, 0.95))
            length = float(rng.uniform(3.8, 4.8))
            builder.add(xy, yaw, (length / 2, 0.9, 0.38), 0.22, Material.CAR, colour, colour * 0.4)
            builder.add(xy, yaw, (0.27 * length, 0.8, 0.26), 0.98, Material.GLASS, colour * 0.25 + 0.05, colour)
    # The far ring: tree lines and buildings 40-100 m beyond the area, 8-30 m high.
    centre = 0.5 * (low + high)
    radius = 0.5 * float(np.hypot(*(high - low))) + float(rng.uniform(40.0, 100.0))
    count = int(rng.integers(14, 24))
    for k in range(count):
        angle = 2 * np.pi * k / count
        chord = 2 * radius * np.sin(np.pi / count) * 1.15
        look = random_surface(rng, kinds=(Pattern.PHOTO, Pattern.STRIPES, Pattern.TILES, Pattern.PLASTER),
                              scale=(1.0, 5.0), photo_tile=(8.0, 25.0), value=(0.25, 0.7))
        xy = centre + radius * np.array([np.cos(angle), np.sin(angle)])
        _add(builder, xy, angle + np.pi / 2, (chord / 2, 3.0, rng.uniform(4.0, 15.0)), 0.0, look)
    ground = random_surface(rng, kinds=(Pattern.PHOTO, Pattern.PLASTER, Pattern.TILES), hue=(0.08, 0.35),
                            saturation=(0.2, 0.6), value=(0.3, 0.55), photo_tile=(1.0, 4.0), scale=(0.5, 2.0))
    return Scene(world=_world(builder, rng, ground, indoor=False), path=path, ceiling_m=None)


SCENE_BUILDERS = {"indoor": build_indoor, "warehouse": build_warehouse, "tabletop": build_tabletop, "yard": build_yard}
