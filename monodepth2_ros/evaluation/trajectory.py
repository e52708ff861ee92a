"""Trajectory alignment and error (ATE, Monodepth2's 5-frame snippet ATE, TUM RPE) on numpy poses.

Conventions (those of :mod:`monodepth2_ros.model.geometry`, in numpy):

* A trajectory is an (N, 4, 4) array of poses ``T_world_camera``: the camera's pose in the
  world / odom frame, mapping camera points into the world (``p_w = T_w_c @ p_c``). Positions are
  ``poses[:, :3, 3]``.
* A *relative step* ``T_prev_curr = inv(T_w_prev) @ T_w_curr`` maps points of frame ``k`` into
  frame ``k-1``: the camera motion from ``k-1`` to ``k`` expressed in frame ``k-1``. This is what a
  pose network predicts for a consecutive pair; :func:`integrate_relative` and
  :func:`relative_steps` convert between steps and poses.
* A similarity ``(s, R, t)`` acts on a pose as ``[R_c | p] -> [R R_c | s R p + t]``: the world is
  rotated, scaled and shifted, the camera's own axes are not scaled.

``geometry.py`` is torch-only, so the few 4x4 helpers needed here are numpy versions of the same maths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from monodepth2_ros.errors import ConfigError

__all__ = [
    "ALIGN_MODES",
    "SNIPPET_NORMALIZATIONS",
    "ErrorStats",
    "TrajectoryAlignment",
    "TrajectoryError",
    "SnippetAte",
    "RelativePoseError",
    "invert_poses",
    "integrate_relative",
    "relative_steps",
    "rotation_angle",
    "umeyama_alignment",
    "apply_similarity",
    "align_trajectory",
    "error_stats",
    "ate",
    "trajectory_ate",
    "snippet_ate",
    "relative_pose_error",
]

# sim3: rotation + translation + scale (monocular); se3: rotation + translation; scale: scale only,
# about the world origin (both trajectories must start at the same origin, e.g. both from identity).
ALIGN_MODES = ("sim3", "se3", "scale")
_NO_ALIGNMENT = "none"

# "paper": sqrt(sum of squared errors) / L, what SfMLearner's and Monodepth2's released evaluation
# compute and their tables report (it is the RMSE divided by sqrt(L)); "rmse": the true RMSE.
SNIPPET_NORMALIZATIONS = ("paper", "rmse")

DEFAULT_SNIPPET_LENGTH = 5
_MIN_SPREAD = 1e-12  # below this the source points coincide and no scale can be fitted


@dataclass(frozen=True)
class ErrorStats:
    """Summary of per-item errors (metres for positions, degrees for rotations)."""

    rmse: float
    mean: float
    median: float
    std: float
    max: float
    count: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "rmse": self.rmse,
            "mean": self.mean,
            "median": self.median,
            "std": self.std,
            "max": self.max,
            "count": self.count,
        }


@dataclass(frozen=True)
class TrajectoryAlignment:
    """The similarity that maps the predicted trajectory onto the ground truth, and its result.

    Attributes:
        scale: ``s`` (1.0 for ``se3``).
        rotation: (3, 3) ``R`` (identity for ``scale``).
        translation: (3,) ``t`` (zero for ``scale``).
        poses: (N, 4, 4) the aligned predicted poses.
        mode: one of :data:`ALIGN_MODES`, or ``"none"``.
    """

    scale: float
    rotation: np.ndarray = field(repr=False)
    translation: np.ndarray = field(repr=False)
    poses: np.ndarray = field(repr=False)
    mode: str = "sim3"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary (the aligned poses are left out)."""
        return {
            "mode": self.mode,
            "scale": self.scale,
            "rotation": self.rotation.tolist(),
            "translation": self.translation.tolist(),
        }

    def matrix(self) -> np.ndarray:
        """(4, 4) similarity ``[[s R, t], [0, 1]]`` acting on world points."""
        out = np.eye(4)
        out[:3, :3] = self.scale * self.rotation
        out[:3, 3] = self.translation
        return out


@dataclass(frozen=True)
class TrajectoryError:
    """Whole-trajectory ATE: position error statistics after alignment, and the alignment."""

    stats: ErrorStats
    alignment: TrajectoryAlignment

    def as_dict(self) -> dict[str, object]:
        return {**self.stats.as_dict(), "alignment": self.alignment.as_dict()}


@dataclass(frozen=True)
class SnippetAte:
    """Monodepth2 / SfMLearner snippet ATE (metres).

    Attributes:
        mean, std: over snippets (population std), the paper's ``mean ± std``.
        snippet_length: frames per snippet.
        normalization: one of :data:`SNIPPET_NORMALIZATIONS`.
        errors: (num_snippets,) the per-snippet errors.
    """

    mean: float
    std: float
    snippet_length: int
    normalization: str
    errors: np.ndarray = field(repr=False)

    @property
    def num_snippets(self) -> int:
        return int(self.errors.shape[0])

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "mean": self.mean,
            "std": self.std,
            "num_snippets": self.num_snippets,
            "snippet_length": self.snippet_length,
            "normalization": self.normalization,
        }


@dataclass(frozen=True)
class RelativePoseError:
    """TUM relative pose error over a fixed frame delta.

    Attributes:
        translation: statistics of ``||trans(E_i)||``, metres (after the alignment's scale).
        rotation_deg: statistics of ``angle(E_i)``, degrees.
        delta: frame distance ``j - i`` of the compared pairs.
        mode: the alignment applied first (one of :data:`ALIGN_MODES` or ``"none"``).
    """

    translation: ErrorStats
    rotation_deg: ErrorStats
    delta: int
    mode: str

    def as_dict(self) -> dict[str, object]:
        return {
            "translation": self.translation.as_dict(),
            "rotation_deg": self.rotation_deg.as_dict(),
            "delta": self.delta,
            "mode": self.mode,
        }


def _check_poses(name: str, poses: np.ndarray) -> np.ndarray:
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f"{name} must be an (N, 4, 4) pose array, got shape {poses.shape}")
    return poses


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = _check_poses("pred_poses", pred)
    gt = _check_poses("gt_poses", gt)
    if pred.shape[0] != gt.shape[0]:
        raise ValueError(
            f"trajectories differ in length: {pred.shape[0]} predicted vs {gt.shape[0]} ground-truth "
            "poses (associate them by timestamp first)"
        )
    return pred, gt


def _check_mode(mode: str, allowed: tuple[str, ...]) -> None:
    if mode not in allowed:
        raise ConfigError(f"unknown alignment mode {mode!r}; expected one of {', '.join(allowed)}")


def invert_poses(poses: np.ndarray) -> np.ndarray:
    """Inverse of (..., 4, 4) rigid transforms (``R^T``, ``-R^T t``), without a general inverse."""
    poses = np.asarray(poses, dtype=np.float64)
    rotation_t = np.swapaxes(poses[..., :3, :3], -1, -2)
    out = np.zeros_like(poses)
    out[..., :3, :3] = rotation_t
    out[..., :3, 3] = -(rotation_t @ poses[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def integrate_relative(steps: np.ndarray, initial: np.ndarray | None = None) -> np.ndarray:
    """Chain relative steps into absolute poses.

    Args:
        steps: (M, 4, 4) ``T_prev_curr`` for frames 1..M.
        initial: (4, 4) pose of frame 0 (identity when omitted).
    Returns:
        (M + 1, 4, 4) poses ``T_world_k`` with ``T_world_k = T_world_(k-1) @ steps[k-1]``.
    """
    steps = _check_poses("steps", steps)
    poses = np.empty((steps.shape[0] + 1, 4, 4))
    poses[0] = np.eye(4) if initial is None else np.asarray(initial, dtype=np.float64)
    for k, step in enumerate(steps):
        poses[k + 1] = poses[k] @ step
    return poses


def relative_steps(poses: np.ndarray) -> np.ndarray:
    """(N, 4, 4) absolute poses -> (N - 1, 4, 4) steps ``T_prev_curr = inv(T_w_prev) @ T_w_curr``."""
    poses = _check_poses("poses", poses)
    return invert_poses(poses[:-1]) @ poses[1:]


def rotation_angle(rotations: np.ndarray) -> np.ndarray:
    """Rotation angle in radians, [0, pi], of (..., 3, 3) rotation matrices.

    Uses ``atan2(|vee(R - R^T)| / 2, (trace - 1) / 2)``, accurate for small and large angles alike.
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    cos = (np.trace(rotations, axis1=-2, axis2=-1) - 1.0) / 2.0
    vee = np.stack(
        [
            rotations[..., 2, 1] - rotations[..., 1, 2],
            rotations[..., 0, 2] - rotations[..., 2, 0],
            rotations[..., 1, 0] - rotations[..., 0, 1],
        ],
        axis=-1,
    )
    sin = np.linalg.norm(vee, axis=-1) / 2.0
    return np.arctan2(sin, cos)


def umeyama_alignment(
    src: np.ndarray, dst: np.ndarray, with_scale: bool = True
) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama 1991): minimise ``sum ||dst_i - (s R src_i + t)||^2``.

    ``R`` is always a proper rotation (det +1): when the best orthogonal fit is a reflection, the
    singular direction of least weight is flipped, as in Umeyama's Lemma.

    Args:
        src: (N, 3) points to move (e.g. predicted positions), N >= 2.
        dst: (N, 3) target points (e.g. ground-truth positions).
        with_scale: fit ``s``; otherwise ``s = 1`` (rigid SE(3) fit).
    Returns:
        ``(s, R (3, 3), t (3,))``.
    Raises:
        ValueError: shapes differ, fewer than 2 points, or (with scale) all source points coincide.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 3 or src.shape != dst.shape:
        raise ValueError(f"expected two (N, 3) point arrays, got {src.shape} and {dst.shape}")
    if src.shape[0] < 2:
        raise ValueError(f"need at least 2 point pairs to align, got {src.shape[0]}")
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    src_var = float(np.mean(np.sum(src_c**2, axis=1)))
    covariance = dst_c.T @ src_c / src.shape[0]  # Sigma_xy of the paper, (3, 3)
    u, singular, vt = np.linalg.svd(covariance)
    flip = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0.0:
        flip[2] = -1.0
    rotation = u @ np.diag(flip) @ vt
    if with_scale:
        if src_var < _MIN_SPREAD:
            raise ValueError("cannot fit a scale: all source points coincide")
        scale = float(np.sum(singular * flip) / src_var)
    else:
        scale = 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return scale, rotation, translation


def apply_similarity(
    poses: np.ndarray, scale: float, rotation: np.ndarray, translation: np.ndarray
) -> np.ndarray:
    """Move (N, 4, 4) poses by the world similarity ``(s, R, t)`` (see the module doc)."""
    poses = _check_poses("poses", poses)
    out = poses.copy()
    out[:, :3, :3] = rotation @ poses[:, :3, :3]
    out[:, :3, 3] = scale * poses[:, :3, 3] @ np.asarray(rotation).T + translation
    return out


def align_trajectory(
    pred_poses: np.ndarray, gt_poses: np.ndarray, mode: str = "sim3"
) -> TrajectoryAlignment:
    """Align a predicted trajectory to the ground truth using their positions.

    Args:
        pred_poses, gt_poses: (N, 4, 4) ``T_world_camera`` of the same N instants.
        mode: ``"sim3"`` (Umeyama with scale, for monocular odometry), ``"se3"`` (rigid), or
            ``"scale"`` (only ``s = <gt, pred> / <pred, pred>`` about the world origin).
    Raises:
        ConfigError: unknown mode.
        ValueError: shapes differ or the positions are degenerate.
    """
    _check_mode(mode, ALIGN_MODES)
    pred_poses, gt_poses = _check_pair(pred_poses, gt_poses)
    pred_xyz = pred_poses[:, :3, 3]
    gt_xyz = gt_poses[:, :3, 3]
    if mode == "scale":
        scale = _least_squares_scale(pred_xyz, gt_xyz)
        rotation, translation = np.eye(3), np.zeros(3)
    else:
        scale, rotation, translation = umeyama_alignment(pred_xyz, gt_xyz, with_scale=mode == "sim3")
    aligned = apply_similarity(pred_poses, scale, rotation, translation)
    return TrajectoryAlignment(scale, rotation, translation, aligned, mode)


def _least_squares_scale(pred_xyz: np.ndarray, gt_xyz: np.ndarray) -> float:
    """``argmin_s ||gt - s pred||^2 = <gt, pred> / <pred, pred>``."""
    denominator = float(np.sum(pred_xyz * pred_xyz))
    if denominator < _MIN_SPREAD:
        raise ValueError("cannot fit a scale: all predicted positions are at the origin")
    return float(np.sum(gt_xyz * pred_xyz)) / denominator


def error_stats(errors: np.ndarray) -> ErrorStats:
    """RMSE, mean, median, population std and max of (N,) non-negative errors, N >= 1."""
    errors = np.asarray(errors, dtype=np.float64).reshape(-1)
    if errors.size == 0:
        raise ValueError("no errors to summarise")
    return ErrorStats(
        rmse=float(np.sqrt(np.mean(errors**2))),
        mean=float(np.mean(errors)),
        median=float(np.median(errors)),
        std=float(np.std(errors)),
        max=float(np.max(errors)),
        count=int(errors.size),
    )


def ate(pred_positions: np.ndarray, gt_positions: np.ndarray) -> ErrorStats:
    """Absolute trajectory error of (N, 3) positions as given (align them first): ``||pred - gt||``."""
    pred_positions = np.asarray(pred_positions, dtype=np.float64)
    gt_positions = np.asarray(gt_positions, dtype=np.float64)
    if (
        pred_positions.ndim != 2
        or pred_positions.shape[1] != 3
        or pred_positions.shape != gt_positions.shape
    ):
        raise ValueError(
            f"expected two (N, 3) position arrays, got {pred_positions.shape} and {gt_positions.shape}"
        )
    return error_stats(np.linalg.norm(pred_positions - gt_positions, axis=1))


def trajectory_ate(pred_poses: np.ndarray, gt_poses: np.ndarray, mode: str = "sim3") -> TrajectoryError:
    """Whole-trajectory ATE: align with :func:`align_trajectory`, then :func:`ate` of the positions."""
    alignment = align_trajectory(pred_poses, gt_poses, mode)
    stats = ate(alignment.poses[:, :3, 3], np.asarray(gt_poses, dtype=np.float64)[:, :3, 3])
    return TrajectoryError(stats, alignment)


def _snippet_positions(steps: np.ndarray, snippet_length: int) -> np.ndarray:
    """(S, L, 3) positions of every L-frame window expressed in the window's first frame."""
    num_snippets = steps.shape[0] - snippet_length + 2
    current = np.broadcast_to(np.eye(4), (num_snippets, 4, 4)).copy()
    positions = np.zeros((num_snippets, snippet_length, 3))
    for k in range(1, snippet_length):
        current = current @ steps[k - 1 : k - 1 + num_snippets]
        positions[:, k] = current[:, :3, 3]
    return positions


def snippet_ate(
    pred_rel_poses: np.ndarray,
    gt_rel_poses: np.ndarray,
    snippet_length: int = DEFAULT_SNIPPET_LENGTH,
    normalization: str = "paper",
) -> SnippetAte:
    """The short-snippet ATE of SfMLearner and Monodepth2 (their KITTI odometry table).

    For each window of ``snippet_length`` consecutive frames, both snippets are expressed relative to
    their first frame (chaining the steps), the predicted positions are scaled by the least-squares
    ``s = sum(gt . pred) / sum(pred . pred)``, and the position error over the window is
    ``sqrt(sum ||s pred_k - gt_k||^2)`` divided by ``L`` (``"paper"``, what the published numbers
    use) or by ``sqrt(L)`` (``"rmse"``). The window's first frame (zero error) counts in ``L``.

    Args:
        pred_rel_poses, gt_rel_poses: (M, 4, 4) relative steps ``T_prev_curr`` of frames 1..M (use
            :func:`relative_steps` on absolute poses; the result does not depend on the world frame).
        snippet_length: frames per window (5 in the papers), >= 2; needs M >= snippet_length - 1.
        normalization: ``"paper"`` or ``"rmse"``.
    Raises:
        ConfigError: unknown normalization or snippet length below 2.
        ValueError: shapes differ or too few steps.
    """
    if normalization not in SNIPPET_NORMALIZATIONS:
        raise ConfigError(
            f"unknown snippet ATE normalization {normalization!r}; expected one of "
            f"{', '.join(SNIPPET_NORMALIZATIONS)}"
        )
    if snippet_length < 2:
        raise ConfigError(f"snippet length must be at least 2 frames, got {snippet_length}")
    pred_steps, gt_steps = _check_pair(pred_rel_poses, gt_rel_poses)
    if pred_steps.shape[0] < snippet_length - 1:
        raise ValueError(
            f"a {snippet_length}-frame snippet needs {snippet_length - 1} steps, "
            f"got {pred_steps.shape[0]}"
        )
    pred_xyz = _snippet_positions(pred_steps, snippet_length)
    gt_xyz = _snippet_positions(gt_steps, snippet_length)
    numerator = np.sum(gt_xyz * pred_xyz, axis=(1, 2))
    denominator = np.sum(pred_xyz * pred_xyz, axis=(1, 2))
    # A predicted snippet standing still has no scale to fit; leave it unscaled (its error is |gt|).
    scale = np.divide(
        numerator, denominator, out=np.ones_like(numerator), where=denominator > _MIN_SPREAD
    )
    residual = scale[:, None, None] * pred_xyz - gt_xyz
    squared = np.sum(residual**2, axis=(1, 2))
    divisor = float(snippet_length) if normalization == "paper" else float(np.sqrt(snippet_length))
    errors = np.sqrt(squared) / divisor
    return SnippetAte(
        float(np.mean(errors)), float(np.std(errors)), snippet_length, normalization, errors
    )


def relative_pose_error(
    pred_poses: np.ndarray, gt_poses: np.ndarray, delta: int = 1, mode: str = "sim3"
) -> RelativePoseError:
    """TUM RPE (Sturm et al. 2012): ``E_i = inv(inv(Q_i) Q_(i+d)) @ (inv(P_i) P_(i+d))``.

    Args:
        pred_poses, gt_poses: (N, 4, 4) ``T_world_camera`` of the same N instants.
        delta: frame distance ``d`` >= 1 (N must exceed it).
        mode: alignment first (``"sim3"``, ``"se3"``, ``"scale"`` or ``"none"``). Only the scale
            of the alignment changes RPE; a monocular trajectory needs ``"sim3"`` or ``"scale"``.
    Returns:
        statistics of ``||trans(E_i)||`` (metres) and ``angle(E_i)`` (degrees) over all i.
    """
    _check_mode(mode, (*ALIGN_MODES, _NO_ALIGNMENT))
    pred_poses, gt_poses = _check_pair(pred_poses, gt_poses)
    if delta < 1 or delta >= pred_poses.shape[0]:
        count = pred_poses.shape[0]
        raise ValueError(f"delta must be in 1..{count - 1} for {count} poses, got {delta}")
    if mode != _NO_ALIGNMENT:
        pred_poses = align_trajectory(pred_poses, gt_poses, mode).poses
    pred_motion = invert_poses(pred_poses[:-delta]) @ pred_poses[delta:]
    gt_motion = invert_poses(gt_poses[:-delta]) @ gt_poses[delta:]
    error = invert_poses(gt_motion) @ pred_motion
    translation = np.linalg.norm(error[:, :3, 3], axis=1)
    rotation = np.degrees(rotation_angle(error[:, :3, :3]))
    return RelativePoseError(error_stats(translation), error_stats(rotation), delta, mode)
