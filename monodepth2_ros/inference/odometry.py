"""Visual odometry from pairwise camera motion: the body-frame conversion, integration and time rules.

No ROS here: the pose node feeds stamps and motions in and publishes what comes out.

Frames and conventions (REP 103 / 105, and ``T_a_b`` of :mod:`monodepth2_ros.model.geometry`: it
maps frame-b points into frame a, so ``T_a_b @ T_b_c = T_a_c``):

* the camera motion between the previous frame and the current one is ``T_camprev_camcurr``: the
  pose of the current camera in the previous camera's optical frame, i.e.
  :attr:`RelativeMotion.T_a_b <monodepth2_ros.inference.estimators.RelativeMotion.T_a_b>`
  (the inverse of the network's ``T_b_a``);
* the camera is mounted on the robot at ``T_base_camera`` (the camera's pose in ``base_link``:
  x forward, y left, z up), so the body moves by
  ``T_baseprev_basecurr = T_base_camera @ T_camprev_camcurr @ inv(T_base_camera)``;
* the odometry pose is ``T_odom_base``, the identity at the first frame (and after a reset), and
  ``T_odom_basecurr = T_odom_baseprev @ T_baseprev_basecurr``.

Time rules (:class:`OdometryIntegrator`): a frame stamped before the previous one (a looped bag, a
reset clock) resets the odometry to the identity; one stamped more than ``max_frame_gap_s`` after
the previous one restarts from the last pose without integrating the unknown motion across the gap;
a repeated stamp is ignored. A *static* frame (see :func:`mean_image_difference`) keeps the pose and
the reference frame, so slow motion below the threshold is integrated once it adds up.

A scale that comes later than the first motions (another node estimates it) is handled by
*deferring*: the integrator keeps what it is given in network units and, once the scale is known,
replays it in metres (:meth:`OdometryIntegrator.defer_scale`, :meth:`~OdometryIntegrator.apply_scale`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from monodepth2_ros.data.motion import MOTION_SUBSAMPLE, mean_image_difference
from monodepth2_ros.errors import ConfigError
from monodepth2_ros.model.geometry import axis_angle_to_matrix, matrix_to_axis_angle

__all__ = [
    "OPTICAL_RPY",
    "NS_PER_S",
    "MOTION_SUBSAMPLE",
    "rpy_to_matrix",
    "mount_transform",
    "camera_motion_to_base",
    "scale_motion",
    "interpolate_pose",
    "twist_from_motion",
    "mean_image_difference",
    "FrameCheck",
    "OdometryConfig",
    "OdometryEstimate",
    "OdometryIntegrator",
]

NS_PER_S = 1_000_000_000

# roll, pitch, yaw (rad) of the REP 103 optical frame (x right, y down, z forward) in base_link
# (x forward, y left, z up): what ``static_transform_publisher --roll -1.5708 --yaw -1.5708`` gives.
OPTICAL_RPY = (-math.pi / 2.0, 0.0, -math.pi / 2.0)

# The static-frame test compares every 4th pixel in each direction, as the training's filter does.


def rpy_to_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """(3, 3) rotation of fixed-axis roll (x), pitch (y), yaw (z), applied in that order (REP 103).

    ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``: the convention of tf2 and ``static_transform_publisher``.
    """
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    Rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    Ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    Rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    return Rz @ Ry @ Rx


def mount_transform(xyz: tuple[float, float, float] | np.ndarray, rpy: tuple[float, float, float] = OPTICAL_RPY) -> np.ndarray:
    """(4, 4) ``T_base_camera``: the camera frame at ``xyz`` (metres) with ``rpy`` (rad) in base_link.

    The default orientation is the optical one (x right, y down, z forward for a camera looking
    along base_link's +x), so only the position needs configuring for a forward-facing camera.

    Raises:
        ConfigError: not three finite values each.
    """
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1)
    rpy = np.asarray(rpy, dtype=np.float64).reshape(-1)
    if xyz.shape != (3,) or rpy.shape != (3,) or not (np.isfinite(xyz).all() and np.isfinite(rpy).all()):
        raise ConfigError(f"a camera mount needs 3 finite xyz (m) and 3 finite rpy (rad) values, got {xyz} and {rpy}")
    T = np.eye(4)
    T[:3, :3] = rpy_to_matrix(*rpy)
    T[:3, 3] = xyz
    return T


def _inverse(T: np.ndarray) -> np.ndarray:
    inverse = np.eye(4)
    inverse[:3, :3] = T[:3, :3].T
    inverse[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return inverse


def camera_motion_to_base(T_camprev_camcurr: np.ndarray, T_base_camera: np.ndarray) -> np.ndarray:
    """The body's motion ``T_baseprev_basecurr`` from the camera's, through the rigid mount.

    Args:
        T_camprev_camcurr: (4, 4) current camera pose in the previous camera frame, metres.
        T_base_camera: (4, 4) camera pose in base_link, metres.
    """
    return T_base_camera @ T_camprev_camcurr @ _inverse(T_base_camera)


def scale_motion(T: np.ndarray, scale: float) -> np.ndarray:
    """A copy of rigid motion ``T`` with its translation multiplied by ``scale`` (units -> metres)."""
    scaled = np.array(T, dtype=np.float64, copy=True)
    scaled[:3, 3] *= scale
    return scaled


def _log_rotation(R: np.ndarray) -> np.ndarray:
    return matrix_to_axis_angle(torch.from_numpy(np.ascontiguousarray(R, dtype=np.float64))[None])[0].numpy()


def _exp_rotation(axis_angle: np.ndarray) -> np.ndarray:
    return axis_angle_to_matrix(torch.from_numpy(np.asarray(axis_angle, dtype=np.float64))[None])[0].numpy()


def interpolate_pose(T_0: np.ndarray, T_1: np.ndarray, fraction: float) -> np.ndarray:
    """Pose a ``fraction`` of the way from ``T_0`` to ``T_1``: positions linear, rotation geodesic."""
    T = np.eye(4)
    T[:3, 3] = (1.0 - fraction) * T_0[:3, 3] + fraction * T_1[:3, 3]
    T[:3, :3] = T_0[:3, :3] @ _exp_rotation(fraction * _log_rotation(T_0[:3, :3].T @ T_1[:3, :3]))
    return T


def twist_from_motion(T_prev_curr: np.ndarray, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean linear and angular velocity over a motion, in the *current* body frame (nav_msgs/Odometry).

    Args:
        T_prev_curr: (4, 4) current body pose in the previous body frame, metres.
        dt_s: duration of the motion, > 0.
    Returns:
        ``(linear (3,) m/s, angular (3,) rad/s)``; the rotation vector is the same in both frames.
    """
    R = T_prev_curr[:3, :3]
    linear = R.T @ T_prev_curr[:3, 3] / dt_s
    angular = _log_rotation(R) / dt_s
    return linear, angular


class FrameCheck(enum.Enum):
    """How a new frame's stamp relates to the previous frame's."""

    FIRST = "first"  # no previous frame (start, after a reset or a pause): start here
    STEP = "step"  # in order and close enough: integrate the motion since the reference
    GAP = "gap"  # more than max_frame_gap_s later: restart from the last pose
    BACKWARDS = "backwards"  # older than the previous frame: reset to the identity
    DUPLICATE = "duplicate"  # the previous frame's stamp again: ignore


@dataclass(frozen=True)
class OdometryConfig:
    """Time rules and the uncertainty model of the integrated odometry.

    Attributes:
        max_frame_gap_s: a longer gap between consecutive frames skips the motion across it.
        translation_drift: position standard deviation per metre travelled (0.05 = 5 %).
        rotation_drift: orientation standard deviation in radians per metre travelled.
        min_pose_std: floor of both standard deviations (metres / radians) so that the
            covariance stays positive definite at the start.
    """

    max_frame_gap_s: float = 1.0
    translation_drift: float = 0.05
    rotation_drift: float = 0.005
    min_pose_std: float = 1e-3

    def __post_init__(self) -> None:
        if not self.max_frame_gap_s > 0.0:
            raise ConfigError(f"max_frame_gap is {self.max_frame_gap_s}; expected a positive duration (s)")
        for name in ("translation_drift", "rotation_drift", "min_pose_std"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ConfigError(f"{name} is {value}; expected a finite value >= 0")

    def pose_std(self, distance_m: float) -> tuple[float, float]:
        """(position std m, orientation std rad) after ``distance_m`` metres: linear growth."""
        return (
            max(self.translation_drift * distance_m, self.min_pose_std),
            max(self.rotation_drift * distance_m, self.min_pose_std),
        )


@dataclass(frozen=True)
class OdometryEstimate:
    """The odometry at one frame.

    Attributes:
        stamp_ns: the frame's stamp.
        T_odom_base: (4, 4) body pose in the odometry frame (metres when the scale is metric).
        linear, angular: (3,) mean velocities over the last motion in the body frame (m/s, rad/s);
            zero when unknown.
        twist_known: False at the first frame and after a gap or reset (no motion measured).
        distance_m: path length since the last reset.
        check: how the frame was admitted.
        moved: the pose changed at this frame, or a new trajectory starts (a path point is worth adding).
    """

    stamp_ns: int
    T_odom_base: np.ndarray
    linear: np.ndarray
    angular: np.ndarray
    twist_known: bool
    distance_m: float
    check: FrameCheck
    moved: bool


_ZERO3 = np.zeros(3)


@dataclass
class _Deferred:
    """The integrator's state when deferring began, and every call made since (to replay)."""

    pose: np.ndarray
    distance: float
    last_stamp: int | None
    reference_stamp: int | None
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    first_stamp: int | None = None


class OdometryIntegrator:
    """Integrates body motions into ``T_odom_base`` and applies the time rules. Not thread-safe.

    Typical use per frame::

        check = integrator.check(stamp)
        if check is FrameCheck.DUPLICATE: drop
        elif check is not FrameCheck.STEP: estimate = integrator.start(stamp, check)   # new reference
        elif static: estimate = integrator.hold(stamp)                                   # keep reference
        elif motion is bad (NaN): integrator.skip(stamp)                                 # keep reference
        else: estimate = integrator.step(stamp, T_camref_camcurr, T_base_camera)        # new reference

    While :attr:`deferring`, motions are taken in network units and the estimates returned are
    in those units (not for publishing); :meth:`apply_scale` replays them in metres.

    Args:
        config: time rules and uncertainty model.
    """

    def __init__(self, config: OdometryConfig | None = None) -> None:
        self.config = config or OdometryConfig()
        self._pose = np.eye(4)
        self._distance = 0.0
        self._last_stamp: int | None = None  # last admitted frame
        self._reference_stamp: int | None = None  # the frame motions are measured from
        self._deferred: _Deferred | None = None

    @property
    def pose(self) -> np.ndarray:
        """(4, 4) the current ``T_odom_base`` (a copy)."""
        return self._pose.copy()

    @property
    def distance_m(self) -> float:
        return self._distance

    @property
    def reference_stamp(self) -> int | None:
        """Stamp of the frame the next motion is measured from (None: none yet)."""
        return self._reference_stamp

    @property
    def last_stamp(self) -> int | None:
        return self._last_stamp

    def check(self, stamp_ns: int) -> FrameCheck:
        """Classify a new frame against the previous one (no state changes)."""
        if self._last_stamp is None or self._reference_stamp is None:
            if self._last_stamp is not None and stamp_ns < self._last_stamp:
                return FrameCheck.BACKWARDS
            return FrameCheck.FIRST
        if stamp_ns == self._last_stamp:
            return FrameCheck.DUPLICATE
        if stamp_ns < self._last_stamp:
            return FrameCheck.BACKWARDS
        if stamp_ns - self._last_stamp > self.config.max_frame_gap_s * NS_PER_S:
            return FrameCheck.GAP
        return FrameCheck.STEP

    @property
    def deferring(self) -> bool:
        """Motions are kept in network units until :meth:`apply_scale`."""
        return self._deferred is not None

    def deferred_seconds(self, stamp_ns: int) -> float:
        """Seconds of frame time from the first deferred frame to ``stamp_ns`` (0 when none)."""
        if self._deferred is None or self._deferred.first_stamp is None:
            return 0.0
        return max(stamp_ns - self._deferred.first_stamp, 0) / NS_PER_S

    def defer_scale(self) -> None:
        """Keep the following motions in network units until :meth:`apply_scale` gives metres per unit.

        For a scale that arrives after the first frames (another node estimates it): no motion is
        integrated with a scale it never had. A no-op while already deferring.
        """
        if self._deferred is None:
            self._deferred = _Deferred(self._pose.copy(), self._distance, self._last_stamp, self._reference_stamp)

    def apply_scale(self, scale: float) -> list[OdometryEstimate]:
        """Stop deferring: replay the deferred frames with translations times ``scale``.

        Returns:
            the estimate of each deferred frame that had one (start, hold, step), in order, in metres.
        Raises:
            ValueError: ``scale`` is not finite and positive.
        """
        if not (math.isfinite(scale) and scale > 0.0):
            raise ValueError(f"a scale must be finite and positive, got {scale}")
        deferred, self._deferred = self._deferred, None
        if deferred is None:
            return []
        self._pose, self._distance = deferred.pose, deferred.distance
        self._last_stamp, self._reference_stamp = deferred.last_stamp, deferred.reference_stamp
        estimates = []
        for name, args in deferred.calls:
            if name == "step":
                stamp_ns, T_units, T_base_camera = args
                args = (stamp_ns, scale_motion(T_units, scale), T_base_camera)
            estimate = getattr(self, name)(*args)
            if estimate is not None:
                estimates.append(estimate)
        return estimates

    def _record(self, name: str, *args: Any) -> None:
        deferred = self._deferred
        if deferred is not None:
            deferred.calls.append((name, args))
            if deferred.first_stamp is None and args:
                deferred.first_stamp = args[0]

    def reset(self) -> None:
        """Forget everything: identity pose, no previous frame, zero distance."""
        self._record("reset")
        self._reset_state()

    def _reset_state(self) -> None:
        self._pose = np.eye(4)
        self._distance = 0.0
        self._last_stamp = None
        self._reference_stamp = None

    def pause(self) -> None:
        """Keep the pose but forget the reference frame (frames were not seen, e.g. while idle)."""
        self._record("pause")
        self._reference_stamp = None

    def start(self, stamp_ns: int, check: FrameCheck) -> OdometryEstimate:
        """Make this frame the reference without integrating motion (FIRST, GAP or BACKWARDS).

        BACKWARDS resets the odometry to the identity first; FIRST and GAP keep the pose.
        """
        self._record("start", stamp_ns, check)
        if check is FrameCheck.BACKWARDS:
            self._reset_state()
        fresh = self._last_stamp is None  # a new trajectory starts (a path point); otherwise the pose repeats
        self._last_stamp = stamp_ns
        self._reference_stamp = stamp_ns
        return self._estimate(stamp_ns, _ZERO3, _ZERO3, False, check, fresh)

    def hold(self, stamp_ns: int) -> OdometryEstimate:
        """A static frame: the pose stays, the twist is zero, the reference frame is kept."""
        self._record("hold", stamp_ns)
        self._last_stamp = stamp_ns
        return self._estimate(stamp_ns, _ZERO3, _ZERO3, True, FrameCheck.STEP, False)

    def skip(self, stamp_ns: int) -> None:
        """A frame whose motion is unusable (e.g. NaN): time advances, the pose and reference stay."""
        self._record("skip", stamp_ns)
        self._last_stamp = stamp_ns

    def step(self, stamp_ns: int, T_camref_camcurr: np.ndarray, T_base_camera: np.ndarray) -> OdometryEstimate:
        """Integrate the camera motion from the reference frame to this one.

        Args:
            stamp_ns: this frame's stamp (after the reference's).
            T_camref_camcurr: (4, 4) this camera's pose in the reference camera frame, metres
                (network units while deferring).
            T_base_camera: (4, 4) the camera mount.
        Raises:
            ValueError: no reference frame, a stamp not after it, or a non-finite motion.
        """
        if self._reference_stamp is None or stamp_ns <= self._reference_stamp:
            raise ValueError(f"step at {stamp_ns} needs a reference frame before it (have {self._reference_stamp})")
        if not np.isfinite(T_camref_camcurr).all():
            raise ValueError("cannot integrate a non-finite motion")
        self._record("step", stamp_ns, np.array(T_camref_camcurr, dtype=np.float64), np.array(T_base_camera, dtype=np.float64))
        T_body = camera_motion_to_base(np.asarray(T_camref_camcurr, dtype=np.float64), T_base_camera)
        dt = (stamp_ns - self._reference_stamp) / NS_PER_S
        linear, angular = twist_from_motion(T_body, dt)
        self._pose = self._pose @ T_body
        self._distance += float(np.linalg.norm(T_body[:3, 3]))
        self._last_stamp = stamp_ns
        self._reference_stamp = stamp_ns
        return self._estimate(stamp_ns, linear, angular, True, FrameCheck.STEP, True)

    def _estimate(
        self, stamp_ns: int, linear: np.ndarray, angular: np.ndarray, known: bool, check: FrameCheck, moved: bool
    ) -> OdometryEstimate:
        return OdometryEstimate(
            stamp_ns=stamp_ns,
            T_odom_base=self._pose.copy(),
            linear=np.array(linear, dtype=np.float64),
            angular=np.array(angular, dtype=np.float64),
            twist_known=known,
            distance_m=self._distance,
            check=check,
            moved=moved,
        )
