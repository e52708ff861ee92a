"""Exact ray casting of the street world in torch: nearest hit per pixel, then deferred shading.

Per frame: every pixel's ray meets the ground plane and the sky in closed form; each box whose
projection overlaps the image is slab-tested only on the pixel rectangle its (near-plane-clipped)
corners project to, updating a depth buffer; finally all pixels are shaded at once, grouped by
material. No meshes, no Python loop over pixels.
"""

from __future__ import annotations

import numpy as np
import torch

from .camera import CameraModel
from .photos import PhotoAtlas
from .textures import NoiseField, filtered_band, filtered_pulse, hash2, smoothstep
from .world import Material, Pattern, StreetWorld

__all__ = ["Renderer", "NO_HIT", "GROUND_HIT", "SKY_HIT"]

# Primitive ids in the id buffer besides box indices (>= 0).
NO_HIT = -3
SKY_HIT = -2
GROUND_HIT = -1

_NEAR_M = 0.05  # near plane for projecting box corners when culling
# Boxes covering at most this fraction of the image are slab-tested together in one batch (no
# per-box Python overhead); larger ones one by one on views of their rectangle (no gathers).
_BATCH_MAX_AREA_FRACTION = 0.01
# Texture filter width in pixels: a little wider than one pixel, like the blur of a real lens, so the
# images are smooth enough for bilinear resampling (view synthesis) to reproduce them closely.
_FILTER_PIXELS = 1.5
_FINEST_NOISE_M = 0.004  # finest noise cell anywhere (seen only from up close)
_LOW_NOISE_CELL_M = 3.0  # cell of the fixed large-scale noise octave on surfaces
_SKY_AT_INFINITY_M = 1000.0  # virtual height of the cloud pattern when the sky is at infinity
_CLOUD_CELL_M = 40.0  # cloud noise cell on the cloud layer
_CLOUD_CELL_INFINITE_M = 300.0  # ... and on the virtual layer of the sky at infinity
_PAINT = (0.92, 0.92, 0.88)
_MORTAR = (0.78, 0.77, 0.74)
_FRAME = (0.86, 0.86, 0.84)

_EDGES = np.array([(i, j) for i in range(8) for j in range(i + 1, 8) if bin(i ^ j).count("1") == 1])


# Columns of the per-box attribute table the shader gathers per pixel.
_A_CENTRE = slice(0, 3)
_A_HALF = slice(3, 6)
_A_COS = 6
_A_SIN = 7
_A_COLOUR = slice(8, 11)
_A_COLOUR2 = slice(11, 14)
_A_PARAMS = slice(14, 20)
_A_NOISE_SHIFT = 20


_ID_BIAS = 8  # primitive ids (>= NO_HIT) are stored with this bias in the low half of a hit key


def _pack_key(t: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """int64 keys ordered like ``t`` (>= 0, float32, +inf allowed), ties broken by id."""
    bits = t.to(torch.float32).contiguous().view(torch.int32).to(torch.int64)
    return (bits << 32) | (ids.to(torch.int64) + _ID_BIAS)


def _unpack_key(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    t = (keys >> 32).to(torch.int32).view(torch.float32)
    return t, (keys & 0xFFFFFFFF) - _ID_BIAS


class _RayTable:
    """Camera-frame rays ``(x, y, 1)`` of an image grid on the render device, with the per-column
    and per-row bounds of x and y that turn a projected box extent into a pixel rectangle
    (exact for a pinhole camera, conservative with distortion)."""

    def __init__(self, ray_x: np.ndarray, ray_y: np.ndarray, pixel_angle: float, device: torch.device) -> None:
        self.x = torch.as_tensor(ray_x, device=device, dtype=torch.float32)
        self.y = torch.as_tensor(ray_y, device=device, dtype=torch.float32)
        self.norm = torch.sqrt(1.0 + self.x**2 + self.y**2)
        self.col_min, self.col_max = ray_x.min(axis=0), ray_x.max(axis=0)
        self.row_min, self.row_max = ray_y.min(axis=1), ray_y.max(axis=1)
        self.pixel_angle = pixel_angle  # radians per sample near the optical axis


class Renderer:
    """Renders one camera model of one world.

    Args:
        world: the geometry and look to render.
        camera: intrinsics, distortion and per-pixel rays of the output image.
        sky_height_m: height of the cloud layer, or ``None`` for a sky at infinity (NaN depth).
        device: torch device to render on.
        samples_per_side: anti-aliasing; colours average ``k x k`` rays per pixel (cost ~k^2),
            depth always comes from the ray through the pixel centre.
    """

    def __init__(
        self,
        world: StreetWorld,
        camera: CameraModel,
        sky_height_m: float | None,
        device,
        samples_per_side: int = 1,
    ) -> None:
        self.world = world
        self.camera = camera
        self.sky_height_m = sky_height_m
        self.device = torch.device(device)
        self.samples_per_side = samples_per_side
        f32 = dict(device=self.device, dtype=torch.float32)
        boxes = world.boxes
        self._corners = boxes.corners()
        self._centre = boxes.centre
        self._half = boxes.half
        self._cos = np.cos(boxes.yaw)
        self._sin = np.sin(boxes.yaw)
        self.t_material = torch.as_tensor(boxes.material, device=self.device)
        # A per-box offset of the noise on vertical faces, a function of the box itself (not of its
        # index) so that a longer street of the same seed keeps every box's look.
        noise_shift = np.remainder(boxes.centre[:, 0] * 12.9898 + boxes.centre[:, 1] * 78.233, 1000.0)
        self.t_attributes = torch.as_tensor(
            np.concatenate(
                [boxes.centre, boxes.half, self._cos[:, None], self._sin[:, None], boxes.colour,
                 boxes.colour2, boxes.params, noise_shift[:, None]], axis=1),
            **f32,
        )
        angle = 1.0 / float(camera.K[0, 0])
        self.centre_rays = _RayTable(camera.ray_x, camera.ray_y, angle, self.device)
        if samples_per_side > 1:
            fine_x, fine_y = camera.subpixel_rays(samples_per_side)
            self.sample_rays = _RayTable(fine_x, fine_y, angle / samples_per_side, self.device)
        else:
            self.sample_rays = self.centre_rays
        self.noise = NoiseField(world.texture_seed, self.device)
        uses_photos = world.ground_pattern is not None and int(world.ground_pattern[0]) == Pattern.PHOTO
        surfaces = boxes.material == int(Material.SURFACE)
        uses_photos |= bool(np.any(boxes.params[surfaces, 0] == float(Pattern.PHOTO)))
        self.photos = PhotoAtlas.on(self.device) if uses_photos else None
        self._sun = torch.as_tensor(world.sun_direction, **f32)

    # ----------------------------------------------------------------------------------- culling

    def _visible_boxes(self, rays: _RayTable, R: np.ndarray, origin: np.ndarray) -> np.ndarray:
        """(M, 5) int64 rows ``(box, u0, u1, v0, v1)``: every box whose projection overlaps the image
        and the pixel rectangle ``[v0:v1, u0:u1]`` that contains it."""
        cam = (self._corners - origin) @ R  # (N, 8, 3): R^T (p - o) for row vectors
        z = cam[..., 2]
        front = z >= _NEAR_M
        any_front = front.any(axis=1)
        cam, z, front = cam[any_front], z[any_front], front[any_front]
        ids = np.nonzero(any_front)[0]
        if ids.size == 0:
            return np.zeros((0, 5), dtype=np.int64)
        safe_z = np.where(front, z, 1.0)
        cx = np.where(front, cam[..., 0] / safe_z, np.nan)
        cy = np.where(front, cam[..., 1] / safe_z, np.nan)
        # Edges crossing the near plane bound the visible part of boxes the camera is beside.
        a, b = cam[:, _EDGES[:, 0]], cam[:, _EDGES[:, 1]]  # (M, 12, 3)
        za, zb = a[..., 2], b[..., 2]
        crossing = (za - _NEAR_M) * (zb - _NEAR_M) < 0.0
        t = np.where(crossing, (_NEAR_M - za) / np.where(crossing, zb - za, 1.0), 0.0)
        ex = np.where(crossing, (a[..., 0] + t * (b[..., 0] - a[..., 0])) / _NEAR_M, np.nan)
        ey = np.where(crossing, (a[..., 1] + t * (b[..., 1] - a[..., 1])) / _NEAR_M, np.nan)
        xs = np.concatenate([cx, ex], axis=1)
        ys = np.concatenate([cy, ey], axis=1)
        x0, x1 = np.nanmin(xs, axis=1), np.nanmax(xs, axis=1)
        y0, y1 = np.nanmin(ys, axis=1), np.nanmax(ys, axis=1)
        cols = (rays.col_max[None] >= x0[:, None]) & (rays.col_min[None] <= x1[:, None])
        rows = (rays.row_max[None] >= y0[:, None]) & (rays.row_min[None] <= y1[:, None])
        keep = cols.any(axis=1) & rows.any(axis=1)
        cols, rows, ids = cols[keep], rows[keep], ids[keep]
        width, height = cols.shape[1], rows.shape[1]
        u0 = cols.argmax(axis=1)
        u1 = width - cols[:, ::-1].argmax(axis=1)
        v0 = rows.argmax(axis=1)
        v1 = height - rows[:, ::-1].argmax(axis=1)
        return np.stack([ids, u0, u1, v0, v1], axis=1).astype(np.int64)

    # ------------------------------------------------------------------------------ intersection

    def _trace(self, rays: _RayTable, R: np.ndarray, origin: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """Nearest hit per ray: ``(t, id, (dx, dy, dz))`` with ``t`` in units of the z=1 ray (= depth),
        ``id`` a box index or one of NO_HIT / SKY_HIT / GROUND_HIT, and the world ray directions."""
        Rf = [[float(v) for v in row] for row in R]
        dx = rays.x * Rf[0][0] + rays.y * Rf[0][1] + Rf[0][2]
        dy = rays.x * Rf[1][0] + rays.y * Rf[1][1] + Rf[1][2]
        dz = rays.x * Rf[2][0] + rays.y * Rf[2][1] + Rf[2][2]
        ox, oy, oz = (float(v) for v in origin)
        inv_dz = 1.0 / dz
        inf = torch.full_like(dz, float("inf"))
        down = dz < 0.0
        t_buf = torch.where(down, -oz * inv_dz, inf)
        pid = torch.where(down, GROUND_HIT, NO_HIT).to(torch.int64)
        if self.sky_height_m is not None:
            up = dz > 0.0
            t_buf = torch.where(up, (self.sky_height_m - oz) * inv_dz, t_buf)
            pid = torch.where(up, SKY_HIT, pid)
        t_buf = t_buf.contiguous()
        visible = self._visible_boxes(rays, R, origin)
        area = (visible[:, 2] - visible[:, 1]) * (visible[:, 4] - visible[:, 3])
        small = area <= _BATCH_MAX_AREA_FRACTION * t_buf.numel()
        if small.any():
            t_buf, pid = self._trace_batch(visible[small], dx, dy, inv_dz, t_buf, pid, origin)
        for box, u0, u1, v0, v1 in visible[~small].tolist():
            # Slab test in the box's frame, on the box's pixel rectangle only.
            c, s = float(self._cos[box]), float(self._sin[box])
            rx, ry = ox - float(self._centre[box, 0]), oy - float(self._centre[box, 1])
            lox, loy = c * rx + s * ry, c * ry - s * rx
            loz = oz - float(self._centre[box, 2])
            hx, hy, hz = (float(v) for v in self._half[box])
            dxv, dyv = dx[v0:v1, u0:u1], dy[v0:v1, u0:u1]
            inv_x = torch.add(dxv * c, dyv, alpha=s).reciprocal_()
            inv_y = torch.add(dyv * c, dxv, alpha=-s).reciprocal_()
            ta = inv_x * (-hx - lox)
            tb = inv_x.mul_(hx - lox)
            t_near = torch.minimum(ta, tb)
            t_far = torch.maximum(ta, tb)
            ta = inv_y * (-hy - loy)
            tb = inv_y.mul_(hy - loy)
            t_near = torch.maximum(t_near, torch.minimum(ta, tb))
            t_far = torch.minimum(t_far, torch.maximum(ta, tb))
            izv = inv_dz[v0:v1, u0:u1]
            ta = izv * (-hz - loz)
            tb = izv * (hz - loz)
            t_near = torch.maximum(t_near, torch.minimum(ta, tb))
            t_far = torch.minimum(t_far, torch.maximum(ta, tb))
            t_view = t_buf[v0:v1, u0:u1]
            hit = (t_near <= torch.minimum(t_far, t_view)).logical_and_(t_near > 0.0)
            t_view.copy_(torch.where(hit, t_near, t_view))
            pid[v0:v1, u0:u1].masked_fill_(hit, box)
        return t_buf, pid, (dx, dy, dz)

    def _trace_batch(self, visible: np.ndarray, dx, dy, inv_dz, t_buf, pid, origin: np.ndarray):
        """Slab-test many small boxes at once: one (box, pixel) pair per pixel of each rectangle.

        The nearest hit per pixel is a ``scatter_reduce(amin)`` over int64 keys that pack the
        (non-negative) float32 distance's bits above the primitive id, so ties resolve the same way
        on every device.
        """
        device = t_buf.device
        height, width = t_buf.shape
        boxes = visible[:, 0]
        u0, u1, v0, v1 = (torch.as_tensor(visible[:, i], device=device) for i in range(1, 5))
        w = u1 - u0
        area = w * (v1 - v0)
        pair_box = torch.repeat_interleave(torch.arange(len(boxes), device=device), area)
        offset = torch.arange(pair_box.numel(), device=device) - (torch.cumsum(area, 0) - area)[pair_box]
        row = torch.div(offset, w[pair_box], rounding_mode="floor")
        pixel = (v0[pair_box] + row) * width + u0[pair_box] + (offset - row * w[pair_box])
        # Per-box constants in the box's frame: camera origin (lox, loy, loz), yaw and half sizes.
        c, s = self._cos[boxes], self._sin[boxes]
        rel = origin[None] - self._centre[boxes]
        table = np.stack([c, s, c * rel[:, 0] + s * rel[:, 1], c * rel[:, 1] - s * rel[:, 0], rel[:, 2],
                          *self._half[boxes].T], axis=1)
        k = torch.as_tensor(table, device=device, dtype=torch.float32)[pair_box]
        dxp, dyp = dx.reshape(-1)[pixel], dy.reshape(-1)[pixel]
        izp = inv_dz.reshape(-1)[pixel]
        inv_x = (k[:, 0] * dxp + k[:, 1] * dyp).reciprocal_()
        inv_y = (k[:, 0] * dyp - k[:, 1] * dxp).reciprocal_()
        ta, tb = (-k[:, 5] - k[:, 2]) * inv_x, (k[:, 5] - k[:, 2]) * inv_x
        t_near, t_far = torch.minimum(ta, tb), torch.maximum(ta, tb)
        ta, tb = (-k[:, 6] - k[:, 3]) * inv_y, (k[:, 6] - k[:, 3]) * inv_y
        t_near = torch.maximum(t_near, torch.minimum(ta, tb))
        t_far = torch.minimum(t_far, torch.maximum(ta, tb))
        ta, tb = (-k[:, 7] - k[:, 4]) * izp, (k[:, 7] - k[:, 4]) * izp
        t_near = torch.maximum(t_near, torch.minimum(ta, tb))
        t_far = torch.minimum(t_far, torch.maximum(ta, tb))
        hit = (t_near <= t_far) & (t_near > 0.0)
        if not bool(hit.any()):
            return t_buf, pid
        hit_box = torch.as_tensor(boxes, device=device)[pair_box[hit]]
        keys = _pack_key(t_near[hit], hit_box)
        buffer = _pack_key(t_buf.reshape(-1), pid.reshape(-1))
        buffer.scatter_reduce_(0, pixel[hit], keys, reduce="amin", include_self=True)
        t_new, pid_new = _unpack_key(buffer)
        return t_new.view(height, width), pid_new.view(height, width)

    # ----------------------------------------------------------------------------------- shading

    def render(self, T_world_camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Render one view.

        Args:
            T_world_camera: (4, 4) pose of the optical frame in the world.
        Returns:
            ``(rgb, depth)``: (H, W, 3) uint8 and (H, W) float32 depth along the optical axis in
            metres at the pixel centres, NaN where the ray meets nothing (only possible with the
            sky at infinity).
        """
        R = np.asarray(T_world_camera[:3, :3], dtype=np.float64)
        origin = np.asarray(T_world_camera[:3, 3], dtype=np.float64)
        k = self.samples_per_side
        with torch.no_grad():
            t_buf, pid, directions = self._trace(self.sample_rays, R, origin)
            rgb = self._shade(self.sample_rays, t_buf, pid, directions, origin)
            if k > 1:
                rgb = torch.nn.functional.avg_pool2d(rgb.permute(2, 0, 1)[None], k)[0].permute(1, 2, 0)
                t_buf, _, _ = self._trace(self.centre_rays, R, origin)
            depth = torch.where(torch.isfinite(t_buf), t_buf, torch.full_like(t_buf, float("nan")))
        rgb_np = (rgb.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
        return rgb_np, depth.cpu().numpy().astype(np.float32, copy=False)

    def _shade(self, rays: _RayTable, t_buf, pid, directions, origin: np.ndarray) -> torch.Tensor:
        """Colour of every pixel; pixels are sorted by material once so each shader works on a slice."""
        height, width = t_buf.shape
        dx, dy, dz = directions
        ids = pid.reshape(-1)
        box_ids = ids.clamp(min=0)
        material = torch.where(
            ids >= 0,
            self.t_material[box_ids],
            torch.where(ids == GROUND_HIT, int(Material.GROUND), int(Material.SKY)),
        )
        material, order = torch.sort(material, stable=True)
        counts = torch.bincount(material, minlength=len(Material)).tolist()
        packed = torch.stack([t_buf.reshape(-1), dx.reshape(-1), dy.reshape(-1), dz.reshape(-1),
                              rays.norm.reshape(-1)], dim=1)[order]
        t, d, norm = packed[:, 0], packed[:, 1:4], packed[:, 4]
        ids = ids[order]
        finite = torch.isfinite(t)
        t_safe = torch.where(finite, t, torch.zeros_like(t))
        points = d.new_tensor(origin.astype(np.float32)) + d * t_safe[:, None]
        if self.sky_height_m is None:
            # The sky at infinity: its pattern is a function of the direction only.
            up = d[:, 2].clamp(min=1e-3)
            virtual = torch.cat([d[:, :2] / up[:, None] * _SKY_AT_INFINITY_M,
                                 torch.full_like(up[:, None], _SKY_AT_INFINITY_M)], dim=1)
            points = torch.where(finite[:, None], points, virtual)
            t_safe = torch.where(finite, t_safe, _SKY_AT_INFINITY_M / up)

        # Ground and sky first in the sorted order, then the boxes, which need their local frames.
        first_box = counts[int(Material.GROUND)] + counts[int(Material.SKY)]
        normal = torch.zeros_like(points)
        normal[:first_box, 2] = torch.where(ids[:first_box] == SKY_HIT, -1.0, 1.0)
        face = torch.zeros((points.shape[0], 3), device=points.device)  # u, v, axis
        face[:first_box, 2] = 2.0
        attributes = torch.zeros((points.shape[0], self.t_attributes.shape[1]), device=points.device)
        if first_box < points.shape[0]:
            attr = self.t_attributes[ids[first_box:]]
            attributes[first_box:] = attr
            centre, h, c, s = attr[:, _A_CENTRE], attr[:, _A_HALF], attr[:, _A_COS], attr[:, _A_SIN]
            rel = points[first_box:] - centre
            lx = c * rel[:, 0] + s * rel[:, 1]
            ly = c * rel[:, 1] - s * rel[:, 0]
            local = torch.stack([lx, ly, rel[:, 2]], dim=1)
            # The face hit is the one the point lies closest to (relative to the box's size).
            gap = (local.abs() - h).abs() / h.clamp(min=1e-3).sqrt()
            axis = gap.argmin(dim=1)
            sign = torch.where(local.gather(1, axis[:, None]).squeeze(1) >= 0.0, 1.0, -1.0)
            on_x, on_y, on_z = axis == 0, axis == 1, axis == 2
            zero = torch.zeros_like(c)
            normal[first_box:] = torch.stack(
                [torch.where(on_x, c, torch.where(on_y, -s, zero)) * sign,
                 torch.where(on_x, s, torch.where(on_y, c, zero)) * sign,
                 torch.where(on_z, sign, zero)], dim=1)
            face[first_box:, 0] = torch.where(on_x, ly + h[:, 1], lx + h[:, 0])
            face[first_box:, 1] = torch.where(on_z, ly + h[:, 1], rel[:, 2] + h[:, 2])
            face[first_box:, 2] = axis.to(face.dtype)

        # Footprint: metres one pixel covers, growing at grazing incidence (capped).
        distance = t_safe * norm
        cos_incidence = (d * normal).sum(1).abs() / norm
        grazing = cos_incidence.clamp(min=1.0 / self.world.max_anisotropy)
        footprint = (_FILTER_PIXELS * rays.pixel_angle) * distance / grazing
        low_wavelength = torch.full_like(t, _LOW_NOISE_CELL_M)
        cloud_cell = _CLOUD_CELL_M if self.sky_height_m is not None else _CLOUD_CELL_INFINITE_M
        low_wavelength[counts[int(Material.GROUND)]:first_box] = cloud_cell
        # Noise coordinates: world x, y on horizontal surfaces (continuous across road pieces and
        # the ground), face u and height on vertical ones, shifted per box and face.
        noise_uv = points[:, :2].clone()
        if first_box < points.shape[0]:
            vertical_face = face[first_box:, 2] < 1.5
            shift = attributes[first_box:, _A_NOISE_SHIFT] + 37.0 * face[first_box:, 2]
            vertical_uv = torch.stack([face[first_box:, 0] + shift, points[first_box:, 2]], dim=1)
            noise_uv[first_box:] = torch.where(vertical_face[:, None], vertical_uv, noise_uv[first_box:])
        noise, low = self.noise.fractal(noise_uv, footprint, _FINEST_NOISE_M, low_wavelength)

        pieces = []
        begin = 0
        for mat in Material:
            end = begin + counts[int(mat)]
            if end > begin:
                ctx = _ShadeContext(self, points[begin:end], face[begin:end], footprint[begin:end],
                                    noise[begin:end], low[begin:end], attributes[begin:end])
                pieces.append(_SHADERS[mat](ctx))
            begin = end
        colour = torch.cat(pieces, dim=0)

        lambert = self.world.ambient + self.world.diffuse * (normal @ self._sun).clamp(min=0.0)
        lambert[counts[int(Material.GROUND)]:first_box] = 1.0  # the sky is not lit, it glows
        # Soft darkening near the ground on vertical faces (a fixed, view-independent occlusion term).
        vertical = normal[:, 2].abs() < 0.5
        occlusion = torch.where(vertical, 0.7 + 0.3 * smoothstep(0.0, 1.2, points[:, 2]), torch.ones_like(lambert))
        shaded = colour * (lambert * occlusion)[:, None]
        if self.world.light_colour is not None:
            shaded = shaded * shaded.new_tensor(self.world.light_colour.astype(np.float32).tolist())
        rgb = torch.empty_like(shaded)
        rgb[order] = shaded
        return rgb.reshape(height, width, 3)


class _ShadeContext:
    """One material's slice of the shading inputs."""

    def __init__(self, renderer: Renderer, points, face, footprint, noise, low, attributes) -> None:
        self.r = renderer
        self.points = points
        self.u = face[:, 0]
        self.v = face[:, 1]
        self.axis = face[:, 2]
        self.half = attributes[:, _A_HALF]
        self.colour = attributes[:, _A_COLOUR]
        self.colour2 = attributes[:, _A_COLOUR2]
        self.params = attributes[:, _A_PARAMS]
        self.fp = footprint
        self.noise = noise
        self.low = low

    @property
    def count(self) -> int:
        return int(self.points.shape[0])

    def const(self, value) -> torch.Tensor:
        return self.points.new_tensor(value).expand(self.count, 3)


def _mix(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * w[:, None]


def _scale(colour: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return colour * factor[:, None]


def _shade_ground(ctx: _ShadeContext) -> torch.Tensor:
    world = ctx.r.world
    base = ctx.const(world.ground_colour.astype(np.float32).tolist())
    if world.ground_pattern is None:
        return _scale(base, 1.0 + 0.3 * ctx.noise + 0.2 * ctx.low)
    second = world.ground_colour2 if world.ground_colour2 is not None else world.ground_colour * 0.6
    params = ctx.points.new_tensor([float(p) for p in world.ground_pattern]).expand(ctx.count, -1)
    return _surface_pattern(ctx, ctx.points[:, 0], ctx.points[:, 1], base,
                            ctx.const(np.asarray(second, dtype=np.float32).tolist()), params)


def _surface_pattern(ctx: _ShadeContext, u: torch.Tensor, v: torch.Tensor, colour: torch.Tensor,
                     colour2: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """One of the :class:`Pattern` families at surface coordinates ``u, v`` (metres), box-filtered over
    the footprint like every other texture; each point evaluates only its own pattern."""
    fp, n, low = ctx.fp, ctx.noise, ctx.low
    kind, scale, aspect, joint, contrast = params[:, 0], params[:, 1], params[:, 3], params[:, 4], params[:, 5]
    out = _scale(colour, 1.0 + contrast * (0.3 * n + 0.2 * low))  # PLASTER, and the base of the others
    tiles = kind == float(Pattern.TILES)
    if bool(tiles.any()):
        i = tiles
        cell_h = scale[i]
        cell_w = cell_h * aspect[i]
        row = torch.floor(v[i] / cell_h)
        bond = torch.where(aspect[i] > 1.2, 0.5 * torch.remainder(row, 2.0), torch.zeros_like(row))
        across = u[i] / cell_w + bond
        ww, wh = fp[i] / cell_w, fp[i] / cell_h
        joints = 1.0 - (1.0 - filtered_pulse(v[i] / cell_h, 0.0, joint[i], wh)) * (
            1.0 - filtered_pulse(across, 0.0, joint[i] / aspect[i], ww))
        tint = 1.0 + contrast[i] * 0.5 * (hash2(across, row, 5) - 0.5) * (1.0 - wh).clamp(0.0, 1.0)
        cells = _scale(colour[i], tint + 0.15 * n[i])
        out[i] = _mix(cells, _scale(colour2[i], 1.0 + 0.1 * n[i]), joints)
    planks = kind == float(Pattern.PLANKS)
    if bool(planks.any()):
        i = planks
        board = scale[i]
        index = torch.floor(v[i] / board)
        wb = fp[i] / board
        seam = filtered_pulse(v[i] / board, 0.0, joint[i], wb)
        tint = 1.0 + contrast[i] * 0.6 * (hash2(index, index * 0.0, 9) - 0.5) * (1.0 - wb).clamp(0.0, 1.0)
        grain_period = 0.07 * board
        grain = filtered_pulse((v[i] + 0.02 * torch.sin(u[i] * 3.0 + index)) / grain_period, 0.0, 0.4,
                               fp[i] / grain_period)
        wood = _scale(colour[i], tint * (1.0 - 0.12 * grain) + 0.2 * n[i])
        out[i] = _mix(wood, colour2[i], 0.8 * seam)
    checker = kind == float(Pattern.CHECKER)
    if bool(checker.any()):
        i = checker
        pu = filtered_pulse(u[i] / scale[i], 0.0, 0.5, fp[i] / scale[i])
        pv = filtered_pulse(v[i] / (scale[i] * aspect[i]), 0.0, 0.5, fp[i] / (scale[i] * aspect[i]))
        out[i] = _scale(_mix(colour[i], colour2[i], pu + pv - 2.0 * pu * pv), 1.0 + 0.15 * n[i])
    stripes = kind == float(Pattern.STRIPES)
    if bool(stripes.any()):
        i = stripes
        along = torch.where(aspect[i] > 1.0, u[i], v[i])
        band = filtered_pulse(along / scale[i], 0.0, joint[i].clamp(0.1, 0.9), fp[i] / scale[i])
        out[i] = _scale(_mix(colour[i], colour2[i], band), 1.0 + 0.2 * n[i] + 0.1 * low[i])
    photo = kind == float(Pattern.PHOTO)
    if bool(photo.any()) and ctx.r.photos is not None:
        i = photo
        rgb, grey = ctx.r.photos.sample(u[i], v[i], params[i, 2], scale[i], fp[i])
        tinted = rgb * (0.35 + 1.3 * colour[i])  # grey photos take the surface's colour
        out[i] = _mix(rgb, tinted, grey) * (1.0 + 0.05 * n[i])[:, None]
    return out


def _shade_surface(ctx: _ShadeContext) -> torch.Tensor:
    # Vertical faces: u across the face, v up; top faces: u, v in the box's plane.
    return _surface_pattern(ctx, ctx.u, ctx.v, ctx.colour, ctx.colour2, ctx.params)


def _shade_sky(ctx: _ShadeContext) -> torch.Tensor:
    world = ctx.r.world
    sky = ctx.const(world.sky_colour.astype(np.float32).tolist())
    cloud = ctx.const(world.cloud_colour.astype(np.float32).tolist())
    cover = smoothstep(-0.3, 0.9, ctx.low + 0.15 * ctx.noise)
    return _scale(_mix(sky, cloud, cover), 1.0 + 0.04 * ctx.noise)


def _shade_road(ctx: _ShadeContext) -> torch.Tensor:
    offset, period, dash_length = ctx.params[:, 0], ctx.params[:, 1], ctx.params[:, 2]
    along = ctx.u + offset
    across = ctx.v - ctx.half[:, 1]
    base = _scale(ctx.colour, 1.0 + 0.28 * ctx.noise + 0.08 * ctx.low)
    dash = filtered_pulse(along / period, 0.0, dash_length / period, ctx.fp / period)
    centre = filtered_band(across, -0.075, 0.075, ctx.fp) * dash
    lanes = filtered_band(across.abs(), 3.44, 3.56, ctx.fp)
    paint = torch.maximum(centre, lanes) * (ctx.axis == 2)
    return _mix(base, ctx.const(_PAINT), 0.9 * paint)


def _shade_sidewalk(ctx: _ShadeContext) -> torch.Tensor:
    slab = ctx.params[:, 1]
    along = (ctx.u + ctx.params[:, 0]) / slab
    across = ctx.v / slab
    width = ctx.fp / slab
    joints = 1.0 - (1.0 - filtered_pulse(along, 0.0, 0.05, width)) * (1.0 - filtered_pulse(across, 0.0, 0.05, width))
    tint = 1.0 + 0.16 * (hash2(along, across, 3) - 0.5) * (1.0 - width).clamp(0.0, 1.0)
    top = _scale(ctx.colour, tint * (1.0 - 0.35 * joints) + 0.2 * ctx.noise)
    side = _scale(ctx.colour2, 1.0 + 0.2 * ctx.noise)
    return torch.where((ctx.axis == 2)[:, None], top, side)


def _shade_facade(ctx: _ShadeContext) -> torch.Tensor:
    fp, u, v, n = ctx.fp, ctx.u, ctx.v, ctx.noise
    style, block, spacing, floor_h, win_w, win_h = ctx.params.unbind(1)
    # Wall: bricks (style 0), large panels (1) or plaster with floor bands (2).
    is_panel = style == 1.0
    cell_h = torch.where(is_panel, block * 6.0, block)
    cell_w = cell_h * torch.where(is_panel, 1.5, 2.2)
    row = torch.floor(v / cell_h)
    shifted = u / cell_w + 0.5 * torch.remainder(row, 2.0) * (~is_panel)
    joint_h = filtered_pulse(v / cell_h, 0.0, 0.12, fp / cell_h)
    joint_v = filtered_pulse(shifted, 0.0, 0.06, fp / cell_w)
    joints = 1.0 - (1.0 - joint_h) * (1.0 - joint_v)
    tint = 1.0 + 0.3 * (hash2(shifted, row, 7) - 0.5) * (1.0 - fp / cell_h).clamp(0.0, 1.0)
    wall = _scale(ctx.colour, tint + 0.18 * n + 0.1 * ctx.low)
    mortar = _scale(ctx.const(_MORTAR), 1.0 + 0.1 * n)
    jointed = _mix(wall, torch.where(is_panel[:, None], wall * 0.55, mortar), joints)
    plaster = _scale(ctx.colour, 1.0 + 0.3 * n + 0.15 * ctx.low)
    plaster = _mix(plaster, plaster * 0.7, filtered_pulse(v / floor_h, 0.0, 0.08, fp / floor_h))
    wall = torch.where((style == 2.0)[:, None], plaster, jointed)
    # Windows with frames on the upper floors, a shop front on the ground floor.
    upper = (v >= floor_h).to(v.dtype)
    wu, wv = u / spacing, v / floor_h
    fu, fv = fp / spacing, fp / floor_h
    window = filtered_pulse(wu, 0.5 - 0.5 * win_w, 0.5 + 0.5 * win_w, fu) * filtered_pulse(wv, 0.3, 0.3 + win_h, fv)
    frame_w = win_w + 0.2 / spacing
    frame = filtered_pulse(wu, 0.5 - 0.5 * frame_w, 0.5 + 0.5 * frame_w, fu) * filtered_pulse(
        wv, 0.3 - 0.1 / floor_h, 0.3 + win_h + 0.1 / floor_h, fv)
    shop = filtered_pulse(wu, 0.08, 0.92, fu) * filtered_pulse(wv, 0.12, 0.8, fv)
    lit = hash2(wu, wv, 11) * (1.0 - fu).clamp(0.0, 1.0)
    pane = _scale(ctx.colour2, 0.85 + 0.9 * lit * lit + 0.25 * ctx.low + 0.1 * n)
    opening = upper * window + (1.0 - upper) * shop
    out = _mix(wall, ctx.const(_FRAME), (upper * (frame - window)).clamp(0.0, 1.0))
    out = _mix(out, pane, opening)
    roof = _scale(ctx.const((0.3, 0.3, 0.32)), 1.0 + 0.3 * n)
    return torch.where((ctx.axis == 2)[:, None], roof, out)


def _shade_car(ctx: _ShadeContext) -> torch.Tensor:
    seam = filtered_pulse(ctx.u / 1.1, 0.0, 0.03, ctx.fp / 1.1) * (ctx.axis == 1)
    sill = filtered_band(ctx.v, -1.0, 0.12, ctx.fp) * (ctx.axis != 2)
    body = _scale(ctx.colour, 1.0 + 0.12 * ctx.noise)
    return _mix(body, ctx.colour2, torch.maximum(seam, sill))


def _shade_glass(ctx: _ShadeContext) -> torch.Tensor:
    pillars = filtered_pulse(ctx.u / 0.9, 0.0, 0.08, ctx.fp / 0.9) * (ctx.axis != 2)
    glass = _scale(ctx.colour, 1.0 + 0.5 * ctx.low + 0.25 * ctx.noise)
    return _mix(glass, ctx.colour2, 0.8 * pillars)


def _shade_pole(ctx: _ShadeContext) -> torch.Tensor:
    period = ctx.params[:, 0]
    stripes = filtered_pulse(ctx.v / period, 0.0, 0.5, ctx.fp / period) * (ctx.v < 2.2)
    return _mix(_scale(ctx.colour, 1.0 + 0.15 * ctx.noise), ctx.colour2, stripes)


def _shade_sign(ctx: _ShadeContext) -> torch.Tensor:
    u, v, fp, h = ctx.u, ctx.v, ctx.fp, ctx.half
    inner = filtered_band(u, 0.06, 2.0 * h[:, 1] - 0.06, fp) * filtered_band(v, 0.06, 2.0 * h[:, 2] - 0.06, fp)
    symbol = filtered_pulse((u + v) / 0.25, 0.0, 0.35, fp / 0.25) * filtered_band(v, 0.2, 2.0 * h[:, 2] - 0.2, fp)
    face = _mix(ctx.colour, ctx.colour * 0.35, symbol)
    return _scale(_mix(ctx.colour2, face, inner), 1.0 + 0.08 * ctx.noise)


def _shade_crate(ctx: _ShadeContext) -> torch.Tensor:
    size = ctx.params[:, 0]
    pu = filtered_pulse(ctx.u / size, 0.0, 0.5, ctx.fp / size)
    pv = filtered_pulse(ctx.v / size, 0.0, 0.5, ctx.fp / size)
    checker = pu + pv - 2.0 * pu * pv  # box-filtered XOR (the filter is separable)
    return _scale(_mix(ctx.colour, ctx.colour2, checker), 1.0 + 0.15 * ctx.noise)


def _shade_backdrop(ctx: _ShadeContext) -> torch.Tensor:
    period, window = ctx.params[:, 0], ctx.params[:, 1]
    stripes = filtered_pulse(ctx.u / period, 0.0, 0.45, ctx.fp / period)
    dots = filtered_pulse(ctx.u / window, 0.3, 0.7, ctx.fp / window) * filtered_pulse(
        ctx.v / window, 0.3, 0.7, ctx.fp / window)
    base = _scale(_mix(ctx.colour, ctx.colour2, 0.35 * stripes), 1.0 + 0.2 * ctx.low + 0.15 * ctx.noise)
    return _scale(base, 1.0 - 0.3 * dots)


_SHADERS = {
    Material.GROUND: _shade_ground,
    Material.SKY: _shade_sky,
    Material.ROAD: _shade_road,
    Material.SIDEWALK: _shade_sidewalk,
    Material.FACADE: _shade_facade,
    Material.CAR: _shade_car,
    Material.GLASS: _shade_glass,
    Material.POLE: _shade_pole,
    Material.SIGN: _shade_sign,
    Material.CRATE: _shade_crate,
    Material.BACKDROP: _shade_backdrop,
    Material.SURFACE: _shade_surface,
}
