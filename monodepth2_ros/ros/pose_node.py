"""The pose node: visual odometry from the Monodepth2 pose network (Odometry, Path, TF).

Topics and services (relative names, so namespaces and remapping work):

* subscribes ``image`` (sensor_msgs/Image), or ``<image>/compressed`` when ``input_transport`` is
  ``compressed``; sensor-data QoS, keep last 1. The pose network takes no intrinsics, so no
  ``camera_info`` is needed.
* publishes ``odom`` (nav_msgs/Odometry: ``odom_frame`` -> ``base_frame``, the image's stamp, pose
  and twist covariances), ``path`` (nav_msgs/Path, the last ``path_max_length`` poses), the
  ``odom_frame -> base_frame`` transform on ``/tf`` when tf2_ros is installed (``publish_tf``), and
  ``/diagnostics``;
* ``scale`` (std_msgs/Float64): published when the scale is metric (e.g. ``scale_mode: odometry``),
  subscribed with ``scale_mode: shared`` (see :mod:`monodepth2_ros.ros.pose_scale`);
* the reference odometry ``scale_odometry_topic`` with ``scale_mode: odometry``;
* service ``~/reset`` (std_srvs/Trigger): the odometry restarts at the identity with the next frame.

Each new image is paired with the reference frame (the previous one that moved): the network gives
the camera's motion, the mount turns it into the body's, and it is integrated; the time rules and
the maths are :class:`monodepth2_ros.inference.odometry.OdometryIntegrator`'s. Threading is the
depth node's: callbacks hand the newest image to a :class:`LatestOnlyWorker`, images arriving while
it is busy replace the waiting one (the next motion then spans the skipped time), and nothing runs
while no output has a subscriber.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry, Path
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger

from monodepth2_ros.errors import ConfigError, DatasetError, MissingInputError, Monodepth2Error
from monodepth2_ros.inference.estimators import PoseEstimator
from monodepth2_ros.inference.odometry import (
    NS_PER_S,
    FrameCheck,
    OdometryEstimate,
    OdometryIntegrator,
    mean_image_difference,
    mount_transform,
    scale_motion,
)
from monodepth2_ros.inference.scale import (
    OBSERVES_DEPTH,
    OBSERVES_MOTION,
    MotionObservation,
    OdometryScale,
    ScaleSource,
    make_scale_source,
)
from monodepth2_ros.inference.weights import resolve_weights
from monodepth2_ros.ros.conversions import decode_image
from monodepth2_ros.ros.depth_node import input_qos
from monodepth2_ros.ros.diagnostics import FrameStats, ThrottledReporter, diagnostic_status
from monodepth2_ros.ros.parameters import declare_parameters
from monodepth2_ros.ros.pose_messages import (
    UNKNOWN_VARIANCE,
    diagonal_covariance,
    odometry_message,
    pose_stamped_message,
    pose_to_matrix,
    stamp_to_ns,
    transform_message,
)
from monodepth2_ros.ros.pose_parameters import PoseNodeParameters
from monodepth2_ros.ros.pose_scale import TOPIC_SCALE, ScaleLink
from monodepth2_ros.ros.pose_tf import TfBridge
from monodepth2_ros.ros.worker import LatestOnlyWorker

__all__ = [
    "NODE_NAME",
    "TOPIC_IMAGE",
    "TOPIC_ODOM",
    "TOPIC_PATH",
    "SERVICE_RESET",
    "MOUNT_TF",
    "MOUNT_PARAMETERS",
    "MOUNT_DEFAULT",
    "PoseNode",
    "build_pose_estimator",
    "main",
]

NODE_NAME = "pose_node"
TOPIC_IMAGE = "image"
TOPIC_COMPRESSED_SUFFIX = "/compressed"
TOPIC_ODOM = "odom"
TOPIC_PATH = "path"
TOPIC_TF = "/tf"
TOPIC_DIAGNOSTICS = "/diagnostics"
SERVICE_RESET = "~/reset"

# Where the camera mount came from.
MOUNT_TF = "tf"
MOUNT_PARAMETERS = "parameters"
MOUNT_DEFAULT = "default"

DIAGNOSTICS_PERIOD_S = 1.0
STALE_INPUT_S = 5.0
# Odometry is small and filters (robot_localization) read every message: keep a few, reliably.
ODOM_QUEUE_DEPTH = 10
# Reference odometry (wheels at up to a few hundred Hz): keep a burst, take any publisher.
REFERENCE_QUEUE_DEPTH = 50

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_MISSING_INPUT = 2


def build_pose_estimator(params: PoseNodeParameters) -> PoseEstimator:
    """Load the pose network named by ``params`` (empty: the bundled model) on its device, or raise."""
    return PoseEstimator(resolve_weights(params.weights), params.inference_config())


def _qos(depth: int, reliability: ReliabilityPolicy) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability, durability=DurabilityPolicy.VOLATILE
    )


@dataclass(frozen=True)
class _Frame:
    msg: Image | CompressedImage
    received: float


@dataclass(frozen=True)
class _Runtime:
    """Everything a frame reads that parameters can change; swapped as a whole, never mutated."""

    params: PoseNodeParameters
    scale: ScaleSource


@dataclass(frozen=True)
class _Mount:
    """The camera mount in use: ``T_base_camera``, where it came from, and for which frames."""

    T_base_camera: np.ndarray
    source: str
    camera_frame: str
    base_frame: str


class _Events:
    """Thread-safe counts of what happened to frames (static, nan_pose, time_jump, gap, reset, ...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class PoseNode(Node):
    """Monodepth2 visual odometry for one camera. See the module docstring and the README.

    Args:
        estimator: an already built pose estimator (tests, the bringup sharing one), or anything
            with its interface (``estimate(rgb_a, rgb_b) -> RelativeMotion``, ``scale``, ``info``,
            ``device``, ``precision``); None loads the checkpoint named by ``weights``. Its scale
            should be 1; any other is divided out.
        node_name: the node's name.
        **node_kwargs: passed to ``rclpy.node.Node`` (``namespace``, ``context``, ``cli_args``,
            ``parameter_overrides``, ...).
    Raises:
        ConfigError, CheckpointError, MissingInputError: bad parameters or checkpoint, at start-up.
    """

    def __init__(self, *, estimator: PoseEstimator | None = None, node_name: str = NODE_NAME, **node_kwargs: Any) -> None:
        super().__init__(node_name, **node_kwargs)
        self._worker: LatestOnlyWorker[_Frame] | None = None
        try:
            self._set_up(estimator)
        except BaseException:
            if self._worker is not None:
                self._worker.stop()
            super().destroy_node()
            raise

    # ------------------------------------------------------------------------------------------
    # start-up

    def _set_up(self, estimator: PoseEstimator | None) -> None:
        params = declare_parameters(self, PoseNodeParameters)
        self._reporter = ThrottledReporter(self.get_logger().warning)
        self._stats = FrameStats()
        self._events = _Events()
        self._reference_topic = self._resolve(params.scale_odometry_topic)
        if self._reference_topic == self._resolve(TOPIC_ODOM):
            raise ConfigError(
                f"scale_odometry_topic {params.scale_odometry_topic!r} is this node's own output {self._reference_topic}; "
                "expected an external odometry (wheels, GNSS)"
            )
        self._estimator = estimator if estimator is not None else build_pose_estimator(params)
        self._runtime = _Runtime(params, self._make_scale(params))
        self._integrator = OdometryIntegrator(params.odometry_config())
        self._reference_rgb: np.ndarray | None = None
        self._path: deque[Any] = deque(maxlen=params.path_max_length)
        self._last_estimate: OdometryEstimate | None = None
        self._mount: _Mount | None = None
        self._warned_default_mount = False
        self._reset_requested = threading.Event()
        self._continuity_lost = False
        self._last_error: str | None = None
        self._tf = TfBridge(self)

        self._odom_pub = self.create_publisher(Odometry, TOPIC_ODOM, _qos(ODOM_QUEUE_DEPTH, ReliabilityPolicy.RELIABLE))
        self._path_pub = self.create_publisher(Path, TOPIC_PATH, _qos(1, ReliabilityPolicy.RELIABLE))
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, 10)
        self._scale_link = ScaleLink(self, lambda: self._runtime.scale, lambda text: self._reporter.report("bad_scale", text))
        self._reference_sub = None
        self._install_scale_inputs(self._runtime.scale)

        self._worker = LatestOnlyWorker(self._process, self._on_worker_error, name=f"{self.get_name()}_inference")
        self._worker.start()
        camera_qos = input_qos(params.qos_reliability)
        if params.input_transport == "compressed":
            self._image_topic = self._resolve(TOPIC_IMAGE) + TOPIC_COMPRESSED_SUFFIX
            self._image_sub = self.create_subscription(CompressedImage, self._image_topic, self._on_image, camera_qos)
        else:
            self._image_sub = self.create_subscription(Image, TOPIC_IMAGE, self._on_image, camera_qos)
            self._image_topic = self._image_sub.topic_name
        self._reset_service = self.create_service(Trigger, SERVICE_RESET, self._on_reset)

        self.add_on_set_parameters_callback(self._validate_parameters)
        # Iron and newer separate checking (on-set) from applying (post-set); Humble has on-set only.
        self._apply_in_validate = not hasattr(self, "add_post_set_parameters_callback")
        if not self._apply_in_validate:
            self.add_post_set_parameters_callback(self._apply_parameters)
        self._diagnostics_timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)

        if params.publish_tf and not self._tf.available:
            self.get_logger().warning(
                f"tf2_ros is not installed: {params.odom_frame} -> {params.base_frame} is not broadcast on /tf "
                "(odom and path are published); the camera mount comes from camera_to_base_xyz/rpy"
            )
        info = self._estimator.info
        self.get_logger().info(
            f"ready: pose ResNet-{info.num_layers} {info.width}x{info.height} on {self._estimator.device} "
            f"{self._estimator.precision}; {self._image_topic} ({params.input_transport}, {params.qos_reliability}); "
            f"{params.odom_frame} -> {params.base_frame}; scale {self._runtime.scale.describe()}"
        )

    def _resolve(self, topic: str) -> str:
        resolve = getattr(self, "resolve_topic_name", None)  # rclpy >= Humble
        return resolve(topic) if resolve is not None else topic

    def _make_scale(self, params: PoseNodeParameters) -> ScaleSource:
        origin = self._reference_topic if params.scale_mode == OdometryScale.mode else self._resolve(TOPIC_SCALE)
        source = make_scale_source(params.scale_request(self._estimator.info, origin))
        if source.observes == OBSERVES_DEPTH:
            raise ConfigError(
                f"scale_mode {params.scale_mode!r} needs the depth map, which the pose node does not compute: set "
                "it on depth_node (which publishes the scale on 'scale') and scale_mode 'shared' here"
            )
        return source

    def _install_scale_inputs(self, source: ScaleSource) -> None:
        """Subscribe what the scale source needs (the shared scale, the reference odometry)."""
        self._scale_link.install(source)
        wants_reference = isinstance(source, OdometryScale)
        if wants_reference and self._reference_sub is None:
            qos = _qos(REFERENCE_QUEUE_DEPTH, ReliabilityPolicy.BEST_EFFORT)
            self._reference_sub = self.create_subscription(
                Odometry, self._reference_topic, self._on_reference_odometry, qos
            )
        elif not wants_reference and self._reference_sub is not None:
            self.destroy_subscription(self._reference_sub)
            self._reference_sub = None

    # ------------------------------------------------------------------------------------------
    # parameters at run time

    def _candidate(self, changes: list) -> PoseNodeParameters:
        values = self._runtime.params.as_dict()
        for parameter in changes:
            if parameter.name in values:
                values[parameter.name] = parameter.value
        return PoseNodeParameters.from_mapping(values)

    def _scale_for(self, params: PoseNodeParameters) -> ScaleSource:
        info = self._estimator.info
        if params.scale_request(info) == self._runtime.params.scale_request(info):
            return self._runtime.scale
        return self._make_scale(params)

    def _validate_parameters(self, changes: list) -> SetParametersResult:
        try:
            params = self._candidate(changes)
            scale = self._scale_for(params)
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=str(err))
        if self._apply_in_validate:
            self._install(params, scale)
        return SetParametersResult(successful=True)

    def _apply_parameters(self, changes: list) -> None:
        params = self._candidate(changes)
        self._install(params, self._scale_for(params))

    def _install(self, params: PoseNodeParameters, scale: ScaleSource) -> None:
        before = self._runtime.params.as_dict()
        changed = {name: value for name, value in params.as_dict().items() if before[name] != value}
        scale_changed = scale is not self._runtime.scale
        self._runtime = _Runtime(params, scale)
        if scale_changed:
            self._install_scale_inputs(scale)
        if changed:
            summary = ", ".join(f"{name}={value!r}" for name, value in changed.items())
            self.get_logger().info(f"parameters updated: {summary}")

    # ------------------------------------------------------------------------------------------
    # read-only views (diagnostics, tests)

    @property
    def parameters(self) -> PoseNodeParameters:
        return self._runtime.params

    @property
    def scale(self) -> float:
        """Metres per network unit in effect."""
        return self._runtime.scale.scale

    @property
    def scale_source(self) -> ScaleSource:
        return self._runtime.scale

    @property
    def estimator(self) -> PoseEstimator:
        return self._estimator

    @property
    def stats(self) -> FrameStats:
        return self._stats

    @property
    def event_counts(self) -> dict[str, int]:
        """Frames by what happened to them: ``static``, ``nan_pose``, ``time_jump``, ``gap``, ``reset``, ``integrated``."""
        return self._events.snapshot()

    @property
    def problem_counts(self) -> dict[str, int]:
        """Warnings per kind since start (``bad_image``, ``nan_pose``, ``default_mount``, ...)."""
        return self._reporter.counts()

    @property
    def mount(self) -> tuple[np.ndarray, str] | None:
        """(T_base_camera, source) of the mount in use (source: ``tf``, ``parameters``, ``default``)."""
        mount = self._mount
        return None if mount is None else (mount.T_base_camera.copy(), mount.source)

    @property
    def is_idle(self) -> bool:
        return self._worker is None or self._worker.idle

    # ------------------------------------------------------------------------------------------
    # callbacks: cheap, never block on inference

    def _outputs_wanted(self, runtime: _Runtime) -> bool:
        """Some output has a reader: odom, path, this node's scale (when estimated here) or /tf."""
        params = runtime.params
        return (
            self._odom_pub.get_subscription_count() > 0
            or self._path_pub.get_subscription_count() > 0
            or (runtime.scale.observes == OBSERVES_MOTION and self._scale_link.has_subscribers())
            or (params.publish_tf and self._tf.can_broadcast and self.count_subscribers(TOPIC_TF) > 0)
        )

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self._stats.image_received()
        if not self._outputs_wanted(self._runtime):
            self._stats.frame_skipped_idle()
            self._continuity_lost = True  # the next processed frame starts from the last pose
            return
        if self._worker.submit(_Frame(msg=msg, received=time.monotonic())):
            self._stats.frame_dropped()

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        del request
        self._reset_requested.set()
        self._events.add("reset")
        frame = self._runtime.params.odom_frame
        response.success = True
        response.message = f"odometry reset: the next frame starts again at the identity in {frame!r}"
        self.get_logger().info(response.message)
        return response

    def _on_reference_odometry(self, msg: Odometry) -> None:
        source = self._runtime.scale
        if isinstance(source, OdometryScale):
            source.add_reference(stamp_to_ns(msg.header.stamp), pose_to_matrix(msg.pose.pose))

    # ------------------------------------------------------------------------------------------
    # the worker: decode, pair, infer, integrate, publish

    def _reject(self, kind: str, message: str) -> None:
        self._stats.frame_rejected()
        self._reporter.report(kind, message)

    def _on_worker_error(self, err: BaseException) -> None:
        self._stats.frame_rejected()
        self._last_error = f"{type(err).__name__}: {err}"
        self._reporter.report("inference_error", f"frame failed ({self._last_error}); waiting for the next one")

    def _mount_for(self, camera_frame: str, params: PoseNodeParameters) -> _Mount:
        """The camera mount: from TF when available (looked up once per frame pair), else parameters."""
        current = self._mount
        if (
            current is not None
            and current.source == MOUNT_TF
            and (current.camera_frame, current.base_frame) == (camera_frame, params.base_frame)
        ):
            return current
        if self._tf.available:
            T = self._tf.lookup(params.base_frame, camera_frame)
            if T is not None:
                self._mount = _Mount(T, MOUNT_TF, camera_frame, params.base_frame)
                self.get_logger().info(f"camera mount from TF: {params.base_frame} <- {camera_frame}")
                return self._mount
            why = f"TF has no {params.base_frame} <- {camera_frame or '(empty frame_id)'} ({self._tf.error})"
        else:
            why = "tf2_ros is not installed"
        T = mount_transform(params.camera_to_base_xyz, params.camera_to_base_rpy)
        if params.mount_is_default:
            if not self._warned_default_mount:
                self._warned_default_mount = True
                self._reporter.report(
                    "default_mount",
                    f"no camera mount for {camera_frame or '(empty frame_id)'!r}: {why} and camera_to_base_xyz/rpy are "
                    f"at their defaults; assuming the REP 103 optical frame at the origin of {params.base_frame!r} "
                    "looking along +x. Publish the TF or set camera_to_base_xyz (and _rpy)",
                )
            source = MOUNT_DEFAULT
        else:
            if self._tf.available:
                self._reporter.report("mount_parameters", f"{why}; using camera_to_base_xyz/rpy meanwhile")
            source = MOUNT_PARAMETERS
        self._mount = _Mount(T, source, camera_frame, params.base_frame)
        return self._mount

    def _apply_pending_state(self, params: PoseNodeParameters) -> None:
        """Reset requests, lost continuity and parameter changes, applied between frames."""
        if self._reset_requested.is_set():
            self._reset_requested.clear()
            self._integrator.reset()
            self._path.clear()
            self._reference_rgb = None
        if self._continuity_lost:
            self._continuity_lost = False
            self._integrator.pause()
        config = params.odometry_config()
        if config != self._integrator.config:
            self._integrator.config = config
        if self._path.maxlen != params.path_max_length:
            self._path = deque(self._path, maxlen=params.path_max_length)

    def _process(self, frame: _Frame) -> None:
        runtime = self._runtime
        params = runtime.params
        self._apply_pending_state(params)
        try:
            rgb = decode_image(frame.msg)
        except DatasetError as err:
            self._reject("bad_image", f"dropping image from {self._image_topic}: {err}")
            return
        header = frame.msg.header
        stamp_ns = stamp_to_ns(header.stamp)
        check = self._integrator.check(stamp_ns)
        if check is FrameCheck.DUPLICATE:
            self._reject(
                "duplicate_stamp",
                f"dropping image from {self._image_topic}: same stamp as the previous one ({stamp_ns / NS_PER_S:.3f} s)",
            )
            return
        mount = self._mount_for(header.frame_id, params)
        if check is not FrameCheck.STEP or self._reference_rgb is None:
            estimate = self._restart(check, stamp_ns, rgb, params)
        elif params.static_threshold > 0.0 and mean_image_difference(self._reference_rgb, rgb) < params.static_threshold:
            self._events.add("static")
            estimate = self._integrator.hold(stamp_ns)
        else:
            estimate = self._integrate(rgb, stamp_ns, mount, runtime)
            if estimate is None:
                return
        self._publish(estimate, params)
        self._stats.frame_published(time.monotonic() - frame.received)

    def _restart(self, check: FrameCheck, stamp_ns: int, rgb: np.ndarray, params: PoseNodeParameters) -> OdometryEstimate:
        last = self._integrator.last_stamp
        if check is FrameCheck.BACKWARDS:
            self._events.add("time_jump")
            self._path.clear()
            self._reporter.report(
                "time_jump",
                f"image stamped {stamp_ns / NS_PER_S:.3f} s is older than the previous one ({last / NS_PER_S:.3f} s): "
                f"the clock went back (looped bag?); odometry reset to the identity in {params.odom_frame!r}",
            )
        elif check is FrameCheck.GAP:
            self._events.add("gap")
            self._reporter.report(
                "gap",
                f"{(stamp_ns - last) / NS_PER_S:.2f} s since the previous image (max_frame_gap {params.max_frame_gap:g} s): "
                "restarting from the last pose without the motion across the gap",
            )
        if check is FrameCheck.STEP:  # a reference stamp without its image (cannot happen after start)
            check = FrameCheck.FIRST
        self._reference_rgb = rgb
        return self._integrator.start(stamp_ns, check)

    def _integrate(self, rgb: np.ndarray, stamp_ns: int, mount: _Mount, runtime: _Runtime) -> OdometryEstimate | None:
        """Run the network on (reference, current), scale, integrate; None when the pose is unusable."""
        motion = self._estimator.estimate(self._reference_rgb, rgb)
        if not np.isfinite(motion.T_b_a).all():
            self._integrator.skip(stamp_ns)
            self._events.add("nan_pose")
            self._stats.frame_rejected()
            self._reporter.report(
                "nan_pose",
                f"dropping a non-finite pose from the network at {stamp_ns / NS_PER_S:.3f} s (e.g. fp16 overflow); "
                "it is not integrated and the next frame is paired with the last good one",
            )
            return None
        T_units = motion.T_a_b  # pose of the current camera in the reference camera's frame
        if self._estimator.scale != 1.0:
            T_units = scale_motion(T_units, 1.0 / self._estimator.scale)
        scale = runtime.scale
        scale.observe_motion(
            MotionObservation(self._integrator.reference_stamp, stamp_ns, T_units[:3, 3].copy(), mount.T_base_camera)
        )
        estimate = self._integrator.step(stamp_ns, scale_motion(T_units, scale.scale), mount.T_base_camera)
        self._reference_rgb = rgb
        self._events.add("integrated")
        return estimate

    def _publish(self, estimate: OdometryEstimate, params: PoseNodeParameters) -> None:
        position_std, orientation_std = self._integrator.config.pose_std(estimate.distance_m)
        if estimate.twist_known:
            twist_covariance = diagonal_covariance(params.twist_linear_std, params.twist_angular_std)
        else:
            twist_covariance = np.diag([UNKNOWN_VARIANCE] * 6).reshape(-1)
        pose_covariance = diagonal_covariance(position_std, orientation_std)
        self._odom_pub.publish(
            odometry_message(estimate, params.odom_frame, params.base_frame, pose_covariance, twist_covariance)
        )
        if estimate.moved:
            self._path.append(pose_stamped_message(estimate, params.odom_frame))
        if self._path_pub.get_subscription_count() > 0:
            path = Path()
            path.header = pose_stamped_message(estimate, params.odom_frame).header
            path.poses = list(self._path)
            self._path_pub.publish(path)
        if params.publish_tf and self._tf.can_broadcast:
            self._tf.send(transform_message(estimate.T_odom_base, estimate.stamp_ns, params.odom_frame, params.base_frame))
        self._scale_link.publish_if_changed(self._runtime.scale)
        self._last_estimate = estimate

    # ------------------------------------------------------------------------------------------
    # diagnostics and shutdown

    def _publish_diagnostics(self) -> None:
        snapshot = self._stats.snapshot()
        runtime = self._runtime
        params = runtime.params
        events = self._events.snapshot()
        warnings = []
        if runtime.scale.warning is not None:
            warnings.append(runtime.scale.warning)
        mount = self._mount
        if mount is not None and mount.source == MOUNT_DEFAULT:
            warnings.append(f"camera mount of {mount.camera_frame or '(empty frame_id)'!r} not configured: default optical mount")
        if params.publish_tf and not self._tf.available:
            warnings.append("tf2_ros not installed: no TF broadcast")
        if snapshot.received and snapshot.last_input_age_s > STALE_INPUT_S:
            warnings.append(f"no image for {snapshot.last_input_age_s:.0f} s")
        if self._last_error is not None:
            warnings.append(f"last frame error: {self._last_error}")
            self._last_error = None
        if params.publish_tf:
            tf_state = "on" if self._tf.can_broadcast else "unavailable (tf2_ros not installed)"
        else:
            tf_state = "off (publish_tf false)"
        last = self._last_estimate
        estimator = self._estimator
        status = diagnostic_status(
            snapshot,
            name=f"{self.get_name()}: pose",
            hardware_id=str(estimator.device),
            values={
                "scale (m per unit)": f"{runtime.scale.scale:.6g}",
                "scale mode": runtime.scale.mode,
                "metric": str(runtime.scale.is_metric).lower(),
                **runtime.scale.details(),
                "poses integrated": str(events.get("integrated", 0)),
                "static frames": str(events.get("static", 0)),
                "non-finite poses dropped": str(events.get("nan_pose", 0)),
                "time jumps (odometry reset)": str(events.get("time_jump", 0)),
                "gaps (restarted)": str(events.get("gap", 0)),
                "reset requests": str(events.get("reset", 0)),
                "distance (m)": "0" if last is None else f"{last.distance_m:.3f}",
                "camera mount": "none yet" if mount is None else f"{mount.source}: {mount.base_frame} <- {mount.camera_frame}",
                "tf broadcast": tf_state,
                "frames": f"{params.odom_frame} -> {params.base_frame}",
                "device": str(estimator.device),
                "precision": estimator.precision,
                "network size": f"{estimator.info.width}x{estimator.info.height}",
                "image topic": self._image_topic,
            },
            warnings=warnings,
        )
        message = DiagnosticArray()
        message.header.stamp = self.get_clock().now().to_msg()
        message.status = [status]
        self._diagnostics_pub.publish(message)

    def destroy_node(self) -> None:
        """Stop the worker (letting a running frame finish), then destroy the node."""
        if self._worker is not None:
            self._worker.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``ros2 run monodepth2_ros pose_node``: spin until Ctrl-C; exit 1 (2: missing input) on a start-up error."""
    rclpy.init(args=args)
    node = None
    try:
        node = PoseNode()
        rclpy.spin(node)
    except MissingInputError as err:
        rclpy.logging.get_logger(NODE_NAME).error(f"cannot start: {err}")
        return EXIT_MISSING_INPUT
    except Monodepth2Error as err:
        rclpy.logging.get_logger(NODE_NAME).error(f"cannot start: {err}")
        return EXIT_FAILURE
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
