"""Reading and writing trajectories: TUM (``timestamp tx ty tz qx qy qz qw``) and KITTI odometry.

* TUM RGB-D format: one pose per line, seconds, metres, a Hamilton unit quaternion with ``qw`` last;
  ``#`` starts a comment line; commas are accepted as separators too.
* KITTI odometry format: one pose per line, the 12 numbers of the top 3x4 of ``T_world_camera``
  in row-major order; frames are implicitly numbered (timestamps live in a separate ``times.txt``).

Both describe ``T_world_camera`` poses, the convention of :mod:`.trajectory`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monodepth2_ros.errors import DatasetError, MissingInputError
from monodepth2_ros.evaluation.report import write_text_atomic

__all__ = [
    "DEFAULT_MAX_TIME_DIFFERENCE",
    "Trajectory",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "read_tum_trajectory",
    "write_tum_trajectory",
    "read_kitti_poses",
    "write_kitti_poses",
    "associate_timestamps",
    "associate_trajectories",
]

# TUM's associate.py default: 20 ms between matched stamps.
DEFAULT_MAX_TIME_DIFFERENCE = 0.02

_TUM_FIELDS = 8
_KITTI_FIELDS = 12
_MIN_QUATERNION_NORM = 1e-9
# Digits written: nanosecond stamps, and enough for the float64 values to survive a round trip.
_TIMESTAMP_FORMAT = "{:.9f}"
_VALUE_FORMAT = "{:.17g}"


@dataclass(frozen=True)
class Trajectory:
    """Stamped poses.

    Attributes:
        timestamps: (N,) seconds, float64.
        poses: (N, 4, 4) ``T_world_camera``.
    """

    timestamps: np.ndarray = field(repr=False)
    poses: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timestamps", np.asarray(self.timestamps, dtype=np.float64))
        object.__setattr__(self, "poses", np.asarray(self.poses, dtype=np.float64))
        poses_ok = self.poses.ndim == 3 and self.poses.shape[1:] == (4, 4)
        if not poses_ok or self.timestamps.shape != (self.poses.shape[0],):
            raise ValueError(
                f"timestamps {self.timestamps.shape} and poses {self.poses.shape} do not describe one "
                "trajectory of (N,) stamps and (N, 4, 4) poses"
            )

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    @property
    def positions(self) -> np.ndarray:
        """(N, 3) camera positions in the world frame."""
        return self.poses[:, :3, 3]


def quaternion_to_matrix(quaternions: np.ndarray) -> np.ndarray:
    """(..., 4) Hamilton quaternions ``(qx, qy, qz, qw)`` -> (..., 3, 3) rotations (normalised first).

    Raises:
        ValueError: a quaternion has (near) zero norm.
    """
    q = np.asarray(quaternions, dtype=np.float64)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(norm < _MIN_QUATERNION_NORM):
        raise ValueError("cannot convert a zero quaternion to a rotation")
    x, y, z, w = np.moveaxis(q / norm, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def matrix_to_quaternion(rotations: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 4) unit quaternions ``(qx, qy, qz, qw)`` with ``qw >= 0``.

    Shepperd's method: for each matrix the largest of ``4 qw^2, 4 qx^2, 4 qy^2, 4 qz^2`` (computed
    from the diagonal) gives the well-conditioned square root; the rest follow from off-diagonals.
    """
    r = np.asarray(rotations, dtype=np.float64)
    batch_shape = r.shape[:-2]
    r = r.reshape(-1, 3, 3)
    trace = r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]
    # Candidates, each 4 times the square of one component: w, x, y, z.
    squares = np.stack(
        [
            1.0 + trace,
            1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2],
            1.0 - r[:, 0, 0] + r[:, 1, 1] - r[:, 2, 2],
            1.0 - r[:, 0, 0] - r[:, 1, 1] + r[:, 2, 2],
        ],
        axis=-1,
    )
    best = np.argmax(squares, axis=-1)
    root = np.sqrt(np.maximum(squares[np.arange(r.shape[0]), best], 0.0))  # = 2 |q_best|
    # Products 4 * q_a * q_b available from the off-diagonal terms.
    wx = r[:, 2, 1] - r[:, 1, 2]
    wy = r[:, 0, 2] - r[:, 2, 0]
    wz = r[:, 1, 0] - r[:, 0, 1]
    xy = r[:, 0, 1] + r[:, 1, 0]
    xz = r[:, 0, 2] + r[:, 2, 0]
    yz = r[:, 1, 2] + r[:, 2, 1]
    # (w, x, y, z) * 4 * q_best for each choice of best component.
    numerators = np.stack(
        [
            np.stack([squares[:, 0], wx, wy, wz], axis=-1),
            np.stack([wx, squares[:, 1], xy, xz], axis=-1),
            np.stack([wy, xy, squares[:, 2], yz], axis=-1),
            np.stack([wz, xz, yz, squares[:, 3]], axis=-1),
        ],
        axis=1,
    )[np.arange(r.shape[0]), best]
    wxyz = numerators / (2.0 * root[:, None])
    wxyz *= np.where(wxyz[:, :1] < 0.0, -1.0, 1.0)
    wxyz /= np.linalg.norm(wxyz, axis=-1, keepdims=True)
    xyzw = np.concatenate([wxyz[:, 1:], wxyz[:, :1]], axis=-1)
    return xyzw.reshape(*batch_shape, 4)


def _numeric_lines(path: Path, expected: int, layout: str) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(line number, values)`` of each non-empty, non-comment line of ``expected`` numbers."""
    if not path.is_file():
        raise MissingInputError(f"trajectory file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"cannot read trajectory file {path}: {err}") from err
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        tokens = stripped.replace(",", " ").split()
        if len(tokens) != expected:
            raise DatasetError(
                f"{path}:{number}: expected {expected} numbers ({layout}), "
                f"found {len(tokens)}: {stripped!r}"
            )
        try:
            values = np.array([float(token) for token in tokens], dtype=np.float64)
        except ValueError as err:
            raise DatasetError(f"{path}:{number}: not a number in {stripped!r} ({layout})") from err
        if not np.all(np.isfinite(values)):
            raise DatasetError(f"{path}:{number}: non-finite value in {stripped!r}")
        yield number, values


def read_tum_trajectory(path: str | os.PathLike[str]) -> Trajectory:
    """Read a TUM trajectory file.

    Raises:
        MissingInputError: no such file.
        DatasetError: a malformed line (the message names file and line), a zero quaternion, or
            no pose at all.
    """
    path = Path(path)
    layout = "timestamp tx ty tz qx qy qz qw"
    stamps: list[float] = []
    poses: list[np.ndarray] = []
    for number, values in _numeric_lines(path, _TUM_FIELDS, layout):
        if np.linalg.norm(values[4:]) < _MIN_QUATERNION_NORM:
            raise DatasetError(f"{path}:{number}: quaternion (qx qy qz qw) has zero norm")
        pose = np.eye(4)
        pose[:3, :3] = quaternion_to_matrix(values[4:])
        pose[:3, 3] = values[1:4]
        stamps.append(float(values[0]))
        poses.append(pose)
    if not poses:
        raise DatasetError(f"trajectory file {path} holds no pose (expected lines of '{layout}')")
    return Trajectory(np.array(stamps), np.stack(poses))


def write_tum_trajectory(path: str | os.PathLike[str], trajectory: Trajectory) -> None:
    """Write a TUM trajectory file (atomically), stamps to the nanosecond, ``qw >= 0``."""
    quaternions = matrix_to_quaternion(trajectory.poses[:, :3, :3])
    lines = ["# timestamp tx ty tz qx qy qz qw"]
    for stamp, position, quaternion in zip(
        trajectory.timestamps, trajectory.positions, quaternions, strict=True
    ):
        numbers = " ".join(_VALUE_FORMAT.format(v) for v in (*position, *quaternion))
        lines.append(f"{_TIMESTAMP_FORMAT.format(stamp)} {numbers}")
    write_text_atomic(path, "\n".join(lines) + "\n")


def read_kitti_poses(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a KITTI odometry pose file into (N, 4, 4) ``T_world_camera``.

    Raises:
        MissingInputError: no such file.
        DatasetError: a malformed line (the message names file and line) or no pose at all.
    """
    path = Path(path)
    layout = "row-major 3x4 matrix"
    poses: list[np.ndarray] = []
    for _, values in _numeric_lines(path, _KITTI_FIELDS, layout):
        pose = np.eye(4)
        pose[:3, :] = values.reshape(3, 4)
        poses.append(pose)
    if not poses:
        raise DatasetError(f"pose file {path} holds no pose (expected lines of 12 numbers, a {layout})")
    return np.stack(poses)


def write_kitti_poses(path: str | os.PathLike[str], poses: np.ndarray) -> None:
    """Write (N, 4, 4) poses as a KITTI odometry pose file (atomically)."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f"poses must be an (N, 4, 4) array, got shape {poses.shape}")
    lines = [" ".join(_VALUE_FORMAT.format(v) for v in pose[:3, :].reshape(-1)) for pose in poses]
    write_text_atomic(path, "\n".join(lines) + "\n")


def associate_timestamps(
    stamps_a: np.ndarray,
    stamps_b: np.ndarray,
    max_difference: float = DEFAULT_MAX_TIME_DIFFERENCE,
    offset: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Match stamps one-to-one, nearest first, as TUM's ``associate.py`` does.

    Candidate pairs are each ``a``'s nearest earlier and later ``b + offset``; pairs closer than
    ``max_difference`` seconds are accepted greedily from the closest, each stamp used at most once.

    Returns:
        ``(index_a, index_b)``: int arrays of equal length, sorted by ``index_a``.
    """
    a = np.asarray(stamps_a, dtype=np.float64).reshape(-1)
    b = np.asarray(stamps_b, dtype=np.float64).reshape(-1) + offset
    if a.size == 0 or b.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order_b = np.argsort(b, kind="stable")
    sorted_b = b[order_b]
    right = np.searchsorted(sorted_b, a)
    candidates_a = np.concatenate([np.arange(a.size), np.arange(a.size)])
    candidates_sorted_b = np.concatenate([right - 1, right])
    inside = (candidates_sorted_b >= 0) & (candidates_sorted_b < b.size)
    candidates_a = candidates_a[inside]
    candidates_b = order_b[candidates_sorted_b[inside]]
    difference = np.abs(a[candidates_a] - b[candidates_b])
    close = difference <= max_difference
    candidates_a, candidates_b, difference = candidates_a[close], candidates_b[close], difference[close]
    used_a = np.zeros(a.size, dtype=bool)
    used_b = np.zeros(b.size, dtype=bool)
    pairs: list[tuple[int, int]] = []
    for k in np.argsort(difference, kind="stable"):
        i, j = int(candidates_a[k]), int(candidates_b[k])
        if not used_a[i] and not used_b[j]:
            used_a[i] = used_b[j] = True
            pairs.append((i, j))
    pairs.sort()
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    index = np.array(pairs, dtype=np.int64)
    return index[:, 0], index[:, 1]


def associate_trajectories(
    first: Trajectory,
    second: Trajectory,
    max_difference: float = DEFAULT_MAX_TIME_DIFFERENCE,
    offset: float = 0.0,
) -> tuple[Trajectory, Trajectory]:
    """The matched sub-trajectories of ``first`` and ``second`` (see :func:`associate_timestamps`).

    Raises:
        DatasetError: no stamp matches within ``max_difference``.
    """
    index_a, index_b = associate_timestamps(first.timestamps, second.timestamps, max_difference, offset)
    if index_a.size == 0:
        raise DatasetError(
            f"no timestamps of the two trajectories ({len(first)} and {len(second)} poses) lie within "
            f"{max_difference} s of each other (offset {offset} s)"
        )
    return (
        Trajectory(first.timestamps[index_a], first.poses[index_a]),
        Trajectory(second.timestamps[index_b], second.poses[index_b]),
    )
