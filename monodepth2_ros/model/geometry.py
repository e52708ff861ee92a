"""Camera geometry as small pure functions, batch-first, shared by training, evaluation and the nodes.

Conventions (used everywhere in the package):

* Cameras follow the optical frame of REP 103: x right, y down, z forward, metres.
* Pixel ``(u, v)`` is the *centre* of column ``u`` / row ``v`` (ROS ``CameraInfo`` convention), so
  the pixel grid of an ``H x W`` image runs over ``0 .. W-1`` and ``0 .. H-1``.
* ``K`` is a (B, 3, 3) pinhole matrix in pixels for one image size. *Normalised* intrinsics are
  size-free: ``fx/W``, ``fy/H`` and the principal point measured from the image's top-left corner
  as a fraction of its size, ``(cx + 0.5)/W``, ``(cy + 0.5)/H`` (0.5 = image centre). Resizing an
  image and converting its K through the normalised form is exact for any size.
* ``T_a_b`` is a (B, 4, 4) rigid transform that maps points expressed in frame ``b`` into frame
  ``a``: ``p_a = T_a_b @ p_b``. Hence ``T_a_b @ T_b_c = T_a_c`` and ``inv(T_a_b) = T_b_a``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "MIN_DEPTH",
    "MAX_DEPTH",
    "disp_to_depth",
    "depth_to_disp",
    "pixel_grid",
    "invert_intrinsics",
    "backproject",
    "transform_points",
    "project",
    "pixels_to_sampling_grid",
    "warp_image",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "pose_vec_to_mat",
    "invert_transform",
    "normalize_intrinsics",
    "denormalize_intrinsics",
    "scale_intrinsics",
]

# The depth range the official Monodepth2 models were trained with; disparities map into it.
MIN_DEPTH = 0.1
MAX_DEPTH = 100.0

# Depths closer than this are treated as behind the camera when projecting.
_EPS = 1e-7


def disp_to_depth(
    disp: torch.Tensor, min_depth: float = MIN_DEPTH, max_depth: float = MAX_DEPTH
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map the network's sigmoid output to a disparity in [1/max_depth, 1/min_depth] and its depth.

    Args:
        disp: sigmoid disparity in [0, 1], any shape.
    Returns:
        ``(scaled_disp, depth)``, both of ``disp``'s shape; depth in the network's (unscaled) units.
    """
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    scaled_disp = min_disp + (max_disp - min_disp) * disp
    return scaled_disp, 1.0 / scaled_disp


def depth_to_disp(
    depth: torch.Tensor, min_depth: float = MIN_DEPTH, max_depth: float = MAX_DEPTH
) -> torch.Tensor:
    """Inverse of :func:`disp_to_depth`: the sigmoid disparity that decodes to ``depth``."""
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    return (1.0 / depth - min_disp) / (max_disp - min_disp)


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Homogeneous pixel-centre coordinates, (3, H*W): rows u, v, 1 in row-major order."""
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)], dim=0)


def invert_intrinsics(K: torch.Tensor) -> torch.Tensor:
    """Inverse of (..., 3, 3) pinhole matrices ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``, in closed form.

    Elementwise arithmetic only: unlike ``torch.linalg.inv`` it never waits for the GPU (the
    general inverse checks for singular matrices on the host), so the training step does not stall.
    The last row of ``K`` is taken to be ``0 0 1`` and the ``[1, 0]`` entry 0, as in every pinhole camera.
    """
    fx, skew, cx = K[..., 0, 0], K[..., 0, 1], K[..., 0, 2]
    fy, cy = K[..., 1, 1], K[..., 1, 2]
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    inv_fy = 1.0 / fy
    rows = (
        torch.stack([1.0 / fx, -skew / (fx * fy), (skew * cy - cx * fy) / (fx * fy)], dim=-1),
        torch.stack([zero, inv_fy, -cy * inv_fy], dim=-1),
        torch.stack([zero, zero, one], dim=-1),
    )
    return torch.stack(rows, dim=-2)


def backproject(depth: torch.Tensor, inv_K: torch.Tensor) -> torch.Tensor:
    """Lift every pixel to a 3-D point in its camera frame.

    Args:
        depth: (B, 1, H, W) depth along the optical axis (z), metres or network units.
        inv_K: (B, 3, 3) inverse intrinsics for this H x W.
    Returns:
        (B, 3, H*W) points, row-major pixel order.
    """
    batch, _, height, width = depth.shape
    rays = inv_K @ pixel_grid(height, width, depth.device, depth.dtype)  # (B, 3, N)
    return rays * depth.reshape(batch, 1, height * width)


def transform_points(T: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply (B, 4, 4) rigid transforms to (B, 3, N) points."""
    return T[:, :3, :3] @ points + T[:, :3, 3:]


def project(
    points: torch.Tensor, K: torch.Tensor, T: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project (B, 3, N) points (optionally moved by ``T`` first) with intrinsics K.

    Returns:
        ``(pixels, z)``: (B, 2, N) pixel coordinates and (B, 1, N) depths in the projecting camera.
    """
    if T is not None:
        points = transform_points(T, points)
    z = points[:, 2:3]
    pixels = (K[:, :2] @ points) / z.clamp(min=_EPS)
    return pixels, z


def pixels_to_sampling_grid(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 2, H*W) pixel coordinates -> (B, H, W, 2) grid for ``grid_sample(align_corners=True)``."""
    batch = pixels.shape[0]
    # Python numbers, not a tensor built from a list: that would be a host-to-device copy per warp.
    u = pixels[:, 0] * (2.0 / max(width - 1, 1)) - 1.0
    v = pixels[:, 1] * (2.0 / max(height - 1, 1)) - 1.0
    return torch.stack([u, v], dim=-1).reshape(batch, height, width, 2)


def warp_image(
    source: torch.Tensor,
    target_depth: torch.Tensor,
    T_source_target: torch.Tensor,
    K: torch.Tensor,
    inv_K: torch.Tensor,
    padding_mode: str = "border",
) -> torch.Tensor:
    """Synthesise the target view by sampling ``source`` where target pixels land in it.

    Args:
        source: (B, C, H, W) source image.
        target_depth: (B, 1, H, W) depth of the target view.
        T_source_target: (B, 4, 4) maps target-camera points into the source camera.
        K, inv_K: (B, 3, 3) intrinsics for H x W (same camera for both views).
    Returns:
        (B, C, H, W) the source resampled into the target view.
    """
    height, width = target_depth.shape[-2:]
    points = backproject(target_depth, inv_K)
    pixels, _ = project(points, K, T_source_target)
    # A NaN sampling position (from a diverging depth or pose) crashes grid_sample's backward pass
    # on the CPU; send such pixels off the image, where the padding mode decides their value.
    grid = torch.nan_to_num(pixels_to_sampling_grid(pixels, height, width), nan=2.0, posinf=2.0, neginf=-2.0)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: (B, 3) axis * angle (radians) -> (B, 3, 3) rotation matrices.

    Stable at zero angle (a first-order expansion takes over below 1e-6 rad).
    """
    angle = axis_angle.norm(dim=-1, keepdim=True)  # (B, 1)
    small = angle < 1e-6
    safe_angle = torch.where(small, torch.ones_like(angle), angle)
    axis = axis_angle / safe_angle
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).view(-1, 3, 3)
    sin = torch.sin(angle).unsqueeze(-1)
    one_minus_cos = (1.0 - torch.cos(angle)).unsqueeze(-1)
    eye = torch.eye(3, device=axis_angle.device, dtype=axis_angle.dtype).expand_as(skew)
    rotation = eye + sin * skew + one_minus_cos * (skew @ skew)
    # First order for tiny angles: R ~ I + [axis_angle]x, exact derivative at zero.
    ax, ay, az = axis_angle.unbind(-1)
    first_order = eye + torch.stack([zero, -az, ay, az, zero, -ax, -ay, ax, zero], -1).view(-1, 3, 3)
    return torch.where(small.unsqueeze(-1), first_order, rotation)


def matrix_to_axis_angle(rotation: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) rotations -> (B, 3) axis * angle, for angles below pi (inverse of Rodrigues)."""
    cos = ((rotation.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0).clamp(-1.0, 1.0)
    angle = torch.acos(cos)
    vee = torch.stack(
        [
            rotation[:, 2, 1] - rotation[:, 1, 2],
            rotation[:, 0, 2] - rotation[:, 2, 0],
            rotation[:, 1, 0] - rotation[:, 0, 1],
        ],
        dim=-1,
    )
    sin = torch.sin(angle)
    factor = torch.where(sin.abs() < 1e-6, torch.full_like(angle, 0.5), angle / (2.0 * sin))
    return vee * factor.unsqueeze(-1)


def pose_vec_to_mat(
    axis_angle: torch.Tensor, translation: torch.Tensor, invert: bool = False
) -> torch.Tensor:
    """Axis-angle + translation -> (B, 4, 4) transform ``p' = R p + t`` (or its inverse).

    Args:
        axis_angle: (B, 3) or (B, 1, 3) rotation vector.
        translation: (B, 3) or (B, 1, 3).
        invert: return the inverse transform ``p = R^T (p' - t)`` instead.
    """
    axis_angle = axis_angle.reshape(-1, 3)
    translation = translation.reshape(-1, 3)
    rotation = axis_angle_to_matrix(axis_angle)
    T = torch.eye(4, device=axis_angle.device, dtype=axis_angle.dtype).repeat(rotation.shape[0], 1, 1)
    if invert:
        rotation_t = rotation.transpose(1, 2)
        T[:, :3, :3] = rotation_t
        T[:, :3, 3] = -(rotation_t @ translation.unsqueeze(-1)).squeeze(-1)
    else:
        T[:, :3, :3] = rotation
        T[:, :3, 3] = translation
    return T


def invert_transform(T: torch.Tensor) -> torch.Tensor:
    """Inverse of (B, 4, 4) rigid transforms without a general matrix inverse."""
    rotation_t = T[:, :3, :3].transpose(1, 2)
    inverse = torch.eye(4, device=T.device, dtype=T.dtype).repeat(T.shape[0], 1, 1)
    inverse[:, :3, :3] = rotation_t
    inverse[:, :3, 3:] = -rotation_t @ T[:, :3, 3:]
    return inverse


def normalize_intrinsics(K, height: int, width: int):
    """Pixel intrinsics of an H x W image -> normalised (size-free) intrinsics; see module doc.

    Works on numpy arrays and torch tensors of shape (..., 3, 3) alike (the data layer uses numpy).
    """
    K_norm = K * 1.0  # a copy, whatever the array type
    K_norm[..., 0, 0] = K[..., 0, 0] / width
    K_norm[..., 0, 1] = K[..., 0, 1] / width
    K_norm[..., 1, 1] = K[..., 1, 1] / height
    K_norm[..., 0, 2] = (K[..., 0, 2] + 0.5) / width
    K_norm[..., 1, 2] = (K[..., 1, 2] + 0.5) / height
    return K_norm


def denormalize_intrinsics(K_norm, height: int, width: int):
    """Normalised intrinsics -> pixel intrinsics for an H x W image (numpy or torch)."""
    K = K_norm * 1.0
    K[..., 0, 0] = K_norm[..., 0, 0] * width
    K[..., 0, 1] = K_norm[..., 0, 1] * width
    K[..., 1, 1] = K_norm[..., 1, 1] * height
    K[..., 0, 2] = K_norm[..., 0, 2] * width - 0.5
    K[..., 1, 2] = K_norm[..., 1, 2] * height - 0.5
    return K


def scale_intrinsics(K, from_size: tuple[int, int], to_size: tuple[int, int]):
    """Intrinsics of an image resized from ``(H, W)`` to ``(H', W')`` (whole image, no crop)."""
    return denormalize_intrinsics(normalize_intrinsics(K, *from_size), *to_size)
