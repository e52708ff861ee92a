"""Where the metric scale comes from: small strategy objects, one per mode.

A Monodepth2 network predicts depth up to an unknown factor (mono training) or in units of its
stereo baseline (stereo training). Depth and pose were trained together through the reprojection,
so one factor, *metres per network unit*, makes both the depth map and the pose network's
translation metric. A :class:`ScaleSource` holds that factor:

* ``auto``, ``none``, ``fixed``, ``stereo``: a number (the checkpoint's, 1, ``scale_factor``, 5.4);
* ``camera_height``: the road plane in each predicted depth map and the camera's known mounting
  height (:mod:`monodepth2_ros.inference.ground_plane`), median over a window of frames; sees depth
  through :meth:`ScaleSource.observe`;
* ``odometry``: travelled distance of an external odometry (wheels, GNSS) over the pose network's
  unscaled translations in a sliding window; sees motion through :meth:`ScaleSource.observe_motion`
  and the reference through :meth:`OdometryScale.add_reference`;
* ``shared``: the value another node estimates (the nodes exchange it on a ``scale`` topic), so
  depth and odometry use one scale.

A source says which input it needs in :attr:`ScaleSource.observes`. Adding a mode means writing one
subclass and one :func:`register_scale_mode` call; the nodes and the CLI look modes up by name.
Estimating sources are thread-safe: a worker thread observes while others read the scale.
"""

from __future__ import annotations

import bisect
import math
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.ground_plane import GroundPlaneConfig, PlaneSearch, find_ground_plane
from monodepth2_ros.inference.odometry import NS_PER_S, interpolate_pose
from monodepth2_ros.model.checkpoint import CheckpointInfo
from monodepth2_ros.model.constants import STEREO_SCALE

__all__ = [
    "ScaleRequest",
    "ScaleSource",
    "CheckpointScale",
    "UnitScale",
    "FixedScale",
    "StereoScale",
    "SharedScale",
    "CameraHeightScale",
    "OdometryScale",
    "MotionObservation",
    "OBSERVES_DEPTH",
    "OBSERVES_MOTION",
    "DEFAULT_CAMERA_HEIGHT_M",
    "DEFAULT_SCALE_WINDOW",
    "DEFAULT_MIN_DISTANCE_M",
    "scale_modes",
    "register_scale_mode",
    "make_scale_source",
    "node_scale_modes",
]


# What an estimating source watches (ScaleSource.observes).
OBSERVES_DEPTH = "depth"
OBSERVES_MOTION = "motion"

# KITTI's camera: 1.65 m above the road (the Monodepth2 data and our synthetic street).
DEFAULT_CAMERA_HEIGHT_M = 1.65
# Frames (camera_height: per-frame estimates; odometry: motions) the estimate is taken over.
DEFAULT_SCALE_WINDOW = 30
# The odometry mode updates only once the window holds this much external travel (metres).
DEFAULT_MIN_DISTANCE_M = 1.0
# Reference odometry kept (seconds) and the oldest unmatched motion still waiting for it.
_REFERENCE_HISTORY_S = 10.0
_PENDING_MAX_AGE_S = 5.0
_MIN_UNITS = 1e-9


@dataclass(frozen=True)
class ScaleRequest:
    """What a scale source may be built from.

    Attributes:
        mode: a registered mode name (see :func:`scale_modes`).
        factor: metres per network unit for the ``fixed`` mode.
        info: the checkpoint the depth comes from (stereo-trained or not).
        camera_height_m: the camera's height above the road (``camera_height``).
        window: frames the estimate is taken over (``camera_height``, ``odometry``).
        max_tilt_deg: largest road-normal tilt from the camera's up direction (``camera_height``).
        min_distance_m: external travel needed in the window to update (``odometry``).
        origin: where ``shared`` and ``odometry`` values come from (a topic name), for messages.
    """

    mode: str
    factor: float = 1.0
    info: CheckpointInfo = CheckpointInfo()
    camera_height_m: float = DEFAULT_CAMERA_HEIGHT_M
    window: int = DEFAULT_SCALE_WINDOW
    max_tilt_deg: float = GroundPlaneConfig.max_tilt_deg
    min_distance_m: float = DEFAULT_MIN_DISTANCE_M
    origin: str = ""


@dataclass(frozen=True)
class MotionObservation:
    """One unscaled camera motion of the pose network, for the ``odometry`` mode.

    Attributes:
        start_ns, end_ns: stamps of the two frames.
        translation_units: (3,) translation of ``T_camstart_camend`` in network units.
        T_base_camera: (4, 4) the camera mount (the reference odometry is of base_link).
    """

    start_ns: int
    end_ns: int
    translation_units: np.ndarray
    T_base_camera: np.ndarray


class ScaleSource(ABC):
    """Metres per network depth unit, possibly refined frame by frame."""

    mode: str = ""
    # The input the source estimates from: OBSERVES_DEPTH, OBSERVES_MOTION or None (a number).
    observes: str | None = None

    @property
    @abstractmethod
    def scale(self) -> float:
        """The current factor (> 0) that multiplies network depth and translation."""

    @property
    def is_metric(self) -> bool:
        """Whether ``scale`` makes depth metric (False for raw, relative network units)."""
        return True

    @property
    def warning(self) -> str | None:
        """What is wrong with the estimate now (diagnostics WARN), or None."""
        return None

    def details(self) -> dict[str, str]:
        """Diagnostics key/values of the source: where the scale comes from, estimation state."""
        return {"scale source": self.describe()}

    def observe(self, depth_units: torch.Tensor, K: np.ndarray) -> None:
        """See one frame's depth before its scale is read. Only depth-based sources use it.

        Args:
            depth_units: (1, 1, H, W) depth in network units (scale 1), on the inference device.
            K: (3, 3) intrinsics of that depth map, pixels.
        """
        del depth_units, K

    def observe_motion(self, observation: MotionObservation) -> None:
        """See one unscaled camera motion before its scale is read. Only motion-based sources use it."""
        del observation

    def describe(self) -> str:
        """A short human-readable summary for logs and diagnostics."""
        return f"{self.mode} ({self.scale:.4g} m/unit)"


class UnitScale(ScaleSource):
    """Raw network units (relative depth): the scale is 1."""

    mode = "none"

    @property
    def scale(self) -> float:
        return 1.0

    @property
    def is_metric(self) -> bool:
        return False


class FixedScale(ScaleSource):
    """A user-given factor, e.g. measured once against a known distance."""

    mode = "fixed"

    def __init__(self, factor: float) -> None:
        if not (np.isfinite(factor) and factor > 0):
            raise ConfigError(f"scale_factor must be a positive finite number for scale_mode 'fixed', got {factor}")
        self._factor = float(factor)

    @property
    def scale(self) -> float:
        return self._factor


class StereoScale(ScaleSource):
    """Stereo-trained checkpoints: 5.4 m per unit.

    The official stereo models see KITTI's 0.54 m baseline as 0.1 units; our trainer likewise
    divides every rig's calibrated baseline by ``STEREO_SCALE``
    (:func:`monodepth2_ros.training.dataset.stereo_transform`), so 5.4 holds for both.
    """

    mode = "stereo"

    @property
    def scale(self) -> float:
        return STEREO_SCALE


class CheckpointScale(ScaleSource):
    """What the checkpoint implies: stereo scale when it was trained with stereo, else relative."""

    mode = "auto"

    def __init__(self, info: CheckpointInfo) -> None:
        self._stereo = bool(info.use_stereo)

    @property
    def scale(self) -> float:
        return STEREO_SCALE if self._stereo else 1.0

    @property
    def is_metric(self) -> bool:
        return self._stereo


class _EstimatedScale(ScaleSource):
    """A scale found at run time: 1 (relative units) until the first estimate, then that estimate.

    Thread-safe: subclasses set ``self._scale`` under ``self._lock`` (a worker thread observes while
    others read the scale).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scale: float | None = None

    @property
    def scale(self) -> float:
        with self._lock:
            return 1.0 if self._scale is None else self._scale

    @property
    def is_metric(self) -> bool:
        with self._lock:
            return self._scale is not None


class SharedScale(_EstimatedScale):
    """The scale another node estimates, received through :meth:`update` (the ``scale`` topic).

    Until a value arrives the scale is 1 (relative units) and :attr:`warning` says so.

    Args:
        origin: where the value comes from (a topic name), for messages.
    """

    mode = "shared"

    def __init__(self, origin: str = "the scale topic") -> None:
        super().__init__()
        self.origin = origin
        self._updates = 0

    def update(self, value: float) -> bool:
        """Take a new value; returns False (and keeps the old one) unless it is finite and positive."""
        if not (math.isfinite(value) and value > 0.0):
            return False
        with self._lock:
            self._scale = float(value)
            self._updates += 1
        return True

    @property
    def warning(self) -> str | None:
        with self._lock:
            if self._scale is None:
                return f"waiting for a scale on {self.origin}: relative units until then"
        return None

    def details(self) -> dict[str, str]:
        with self._lock:
            return {"scale source": f"shared from {self.origin}", "scale updates": str(self._updates)}


class CameraHeightScale(_EstimatedScale):
    """Metres per unit from the road plane and the camera's known height above it.

    Each observed depth map gives ``camera_height_m / plane height (units)`` when a plausible road
    plane is found (:func:`~monodepth2_ros.inference.ground_plane.find_ground_plane`); the scale is
    the median of the last ``window`` such values, robust to frames where a car or a kerb fooled
    the fit. A frame without a plausible plane changes nothing: the last scale stays (and
    :attr:`warning` says so); before the first plane the scale is 1 (relative units).

    Args:
        camera_height_m: height of the optical centre above the road, metres.
        window: per-frame estimates the median is taken over.
        plane: the plane search's thresholds.
        up: (3,) "up" in the camera frame (default: the optical frame's -y).
    """

    mode = "camera_height"
    observes = OBSERVES_DEPTH

    def __init__(
        self,
        camera_height_m: float = DEFAULT_CAMERA_HEIGHT_M,
        window: int = DEFAULT_SCALE_WINDOW,
        plane: GroundPlaneConfig | None = None,
        up: np.ndarray | None = None,
    ) -> None:
        if not (math.isfinite(camera_height_m) and camera_height_m > 0.0):
            raise ConfigError(f"camera_height must be a positive number of metres, got {camera_height_m}")
        if window < 1:
            raise ConfigError(f"scale_window must be at least 1 frame, got {window}")
        super().__init__()
        self.camera_height_m = float(camera_height_m)
        self.plane_config = plane or GroundPlaneConfig()
        self._up = None if up is None else np.asarray(up, dtype=np.float64)
        self._estimates: deque[float] = deque(maxlen=window)
        self._last: PlaneSearch | None = None
        self._misses_since_found = 0
        self._frames = 0

    def observe(self, depth_units: torch.Tensor, K: np.ndarray) -> None:
        if self._up is None:
            search = find_ground_plane(depth_units, K, self.plane_config)
        else:
            search = find_ground_plane(depth_units, K, self.plane_config, self._up)
        with self._lock:
            self._frames += 1
            self._last = search
            if search.found:
                self._estimates.append(self.camera_height_m / search.plane.height)
                self._scale = float(np.median(self._estimates))
                self._misses_since_found = 0
            else:
                self._misses_since_found += 1

    @property
    def warning(self) -> str | None:
        with self._lock:
            last = self._last
            if last is None or last.found:
                return None
            if self._scale is None:
                return f"no ground plane found yet ({last.reason}): relative units until one is"
            return (
                f"ground plane not found ({last.reason}) in the last {self._misses_since_found} frame(s): "
                f"keeping scale {self._scale:.4g}"
            )

    def details(self) -> dict[str, str]:
        with self._lock:
            last = self._last
            values = {
                "scale source": f"camera_height {self.camera_height_m:g} m over the road plane",
                "scale estimates in window": str(len(self._estimates)),
                "ground plane": "not searched yet" if last is None else ("found" if last.found else last.reason),
            }
            if last is not None and last.found:
                values["camera height (units)"] = f"{last.plane.height:.4g}"
                values["ground tilt (deg)"] = f"{last.plane.tilt_deg:.1f}"
                values["ground inliers"] = f"{last.plane.inliers}/{last.plane.points}"
            return values


class OdometryScale(_EstimatedScale):
    """Metres per unit from an external odometry's travelled distance (wheels, GNSS, ...).

    For each pose-network motion between stamps ``t0`` and ``t1`` the reference odometry is
    interpolated at both stamps, turned into the *camera's* displacement through the mount (so a
    camera off the rear axle is handled in turns), and its length is paired with the length of the
    unscaled translation. The scale is ``sum(external distances) / sum(unscaled translations)``
    over the last ``window`` motions, updated once the window holds ``min_distance_m`` of travel;
    when the vehicle stands still the last scale stays. Motions are matched when the reference
    covers them, so odometry arriving late (or early) is fine.

    Args:
        window: motions the ratio is taken over.
        min_distance_m: external travel in the window needed to update.
        origin: the reference topic, for messages.
    """

    mode = "odometry"
    observes = OBSERVES_MOTION

    def __init__(
        self,
        window: int = DEFAULT_SCALE_WINDOW,
        min_distance_m: float = DEFAULT_MIN_DISTANCE_M,
        origin: str = "the reference odometry",
    ) -> None:
        if window < 1:
            raise ConfigError(f"scale_window must be at least 1 motion, got {window}")
        if not (math.isfinite(min_distance_m) and min_distance_m >= 0.0):
            raise ConfigError(f"scale_min_distance must be a distance >= 0 m, got {min_distance_m}")
        super().__init__()
        self.origin = origin
        self.min_distance_m = float(min_distance_m)
        self._stamps: list[int] = []
        self._poses: list[np.ndarray] = []
        self._pending: deque[MotionObservation] = deque()
        self._pairs: deque[tuple[float, float]] = deque(maxlen=window)
        self._unmatched = 0
        self._note = f"no reference odometry received on {origin} yet"

    def add_reference(self, stamp_ns: int, T_odom_base: np.ndarray) -> None:
        """One reference pose of base_link (e.g. from a nav_msgs/Odometry). Older stamps restart it."""
        T = np.asarray(T_odom_base, dtype=np.float64)
        if not np.isfinite(T).all():
            return
        with self._lock:
            if self._stamps and stamp_ns <= self._stamps[-1]:
                if stamp_ns == self._stamps[-1]:
                    return
                self._stamps.clear()  # the reference went back in time (looped bag): start over
                self._poses.clear()
            self._stamps.append(int(stamp_ns))
            self._poses.append(T)
            horizon = stamp_ns - int(_REFERENCE_HISTORY_S * NS_PER_S)
            drop = bisect.bisect_left(self._stamps, horizon)
            if drop:
                del self._stamps[:drop]
                del self._poses[:drop]
            self._match()

    def observe_motion(self, observation: MotionObservation) -> None:
        with self._lock:
            self._pending.append(observation)
            self._match()

    def _pose_at(self, stamp_ns: int) -> np.ndarray | None:
        index = bisect.bisect_left(self._stamps, stamp_ns)
        if index < len(self._stamps) and self._stamps[index] == stamp_ns:
            return self._poses[index]
        if index == 0 or index == len(self._stamps):
            return None
        t0, t1 = self._stamps[index - 1], self._stamps[index]
        return interpolate_pose(self._poses[index - 1], self._poses[index], (stamp_ns - t0) / (t1 - t0))

    def _match(self) -> None:
        """Pair every pending motion the reference now covers (call with the lock held)."""
        newest = self._stamps[-1] if self._stamps else None
        while self._pending:
            motion = self._pending[0]
            if newest is None or motion.end_ns > newest:
                # Not covered yet. Give up on it once newer motions have waited long past it.
                if self._pending[-1].end_ns - motion.end_ns <= _PENDING_MAX_AGE_S * NS_PER_S:
                    return
                self._pending.popleft()
                self._unmatched += 1
                self._note = f"no reference odometry on {self.origin} around {motion.end_ns * 1e-9:.3f} s"
                continue
            self._pending.popleft()
            start, end = self._pose_at(motion.start_ns), self._pose_at(motion.end_ns)
            if start is None or end is None:
                self._unmatched += 1
                self._note = f"motion at {motion.end_ns * 1e-9:.3f} s not covered by {self.origin}"
                continue
            T_base = np.linalg.inv(start) @ end
            mount = motion.T_base_camera
            T_camera = np.linalg.inv(mount) @ T_base @ mount
            external = float(np.linalg.norm(T_camera[:3, 3]))
            units = float(np.linalg.norm(motion.translation_units))
            if not (math.isfinite(external) and math.isfinite(units)):
                self._unmatched += 1
                continue
            self._pairs.append((external, units))
            total_external = sum(pair[0] for pair in self._pairs)
            total_units = sum(pair[1] for pair in self._pairs)
            if total_external >= self.min_distance_m and total_units > _MIN_UNITS and total_external > 0.0:
                self._scale = total_external / total_units
                self._note = ""
            else:
                self._note = (
                    f"{total_external:.2f} m travelled in the window (need {self.min_distance_m:g} m)"
                    + (f": keeping scale {self._scale:.4g}" if self._scale is not None else "")
                )

    @property
    def warning(self) -> str | None:
        with self._lock:
            if self._scale is None:
                return f"no odometry scale yet ({self._note}): relative units until then"
        return None

    def details(self) -> dict[str, str]:
        with self._lock:
            return {
                "scale source": f"odometry distance from {self.origin}",
                "scale motions in window": str(len(self._pairs)),
                "scale window distance (m)": f"{sum(pair[0] for pair in self._pairs):.3f}",
                "scale motions unmatched": str(self._unmatched),
                "scale note": self._note or "ok",
            }


def _camera_height_source(request: ScaleRequest) -> CameraHeightScale:
    plane = GroundPlaneConfig(max_tilt_deg=request.max_tilt_deg)
    return CameraHeightScale(request.camera_height_m, request.window, plane)


_FACTORIES: dict[str, Callable[[ScaleRequest], ScaleSource]] = {
    CheckpointScale.mode: lambda request: CheckpointScale(request.info),
    UnitScale.mode: lambda request: UnitScale(),
    FixedScale.mode: lambda request: FixedScale(request.factor),
    StereoScale.mode: lambda request: StereoScale(),
    SharedScale.mode: lambda request: SharedScale(request.origin or "the scale topic"),
    CameraHeightScale.mode: _camera_height_source,
    OdometryScale.mode: lambda request: OdometryScale(
        request.window, request.min_distance_m, request.origin or "the reference odometry"
    ),
}


def scale_modes() -> tuple[str, ...]:
    """The registered mode names, in registration order."""
    return tuple(_FACTORIES)


def register_scale_mode(mode: str, factory: Callable[[ScaleRequest], ScaleSource]) -> None:
    """Make a new scale mode available to :func:`make_scale_source` (and so to the nodes)."""
    if mode in _FACTORIES:
        raise ConfigError(f"scale mode {mode!r} is already registered")
    _FACTORIES[mode] = factory


def make_scale_source(request: ScaleRequest) -> ScaleSource:
    """Build the source of ``request.mode``.

    Raises:
        ConfigError: unknown mode, or a value the mode cannot use (e.g. a non-positive factor).
    """
    factory = _FACTORIES.get(request.mode)
    if factory is None:
        raise ConfigError(f"unknown scale_mode {request.mode!r}; expected one of {', '.join(_FACTORIES)}")
    return factory(request)


def node_scale_modes(mode: str, with_pose: bool) -> tuple[str, str]:
    """The ``scale_mode`` of the depth node and of the pose node for one scale wanted for both.

    The node that has the input estimates (``camera_height``: depth node; ``odometry``: pose node)
    and the other one follows with ``shared``; any other mode is used by both as it is.

    Raises:
        ConfigError: an unknown mode, or ``odometry`` without the pose node.
    """
    observes = make_scale_source(ScaleRequest(mode)).observes
    if observes == OBSERVES_DEPTH:
        return mode, SharedScale.mode
    if observes == OBSERVES_MOTION:
        if not with_pose:
            raise ConfigError(
                f"scale_mode {mode!r} is estimated by the pose node from its motion: start it too (--pose / use_pose:=true)"
            )
        return SharedScale.mode, mode
    return mode, mode
