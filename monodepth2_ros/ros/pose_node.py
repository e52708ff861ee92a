"""The pose node: visual odometry from the Monodepth2 pose network (Odometry, Path, TF).

Topics and services (relative names, so namespaces and remapping work):

* subscribes ``image`` (sensor_msgs/Image), or ``<image>/compressed`` when ``input_transport`` is
  ``compressed``; sensor-data QoS, keep last 1. The pose network takes no intrinsics, so no
  ``camera_info`` is needed; when one with distortion arrives, frames are rectified as the depth
  node and training do (``rectify``).
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
the maths are :class:`monodepth2_ros.inference.odometry.OdometryIntegrator`'s. Callbacks hand
images to a :class:`~monodepth2_ros.ros.worker.BatchWorker`: the images that arrive while the
network is busy (up to ``frame_buffer``) are kept and then run as one batch of adjacent pairs, which
costs far less per pair than single calls on a CPU, so every adjacent motion is integrated (the
network was trained on adjacent frames; longer pairs come out short). Only when the buffer
overflows is a pair formed across the dropped images, counted in the diagnostics. Nothing runs
while no output has a subscriber.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from nav_msgs.msg import Odometry, Path
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_srvs.srv import Trigger

from monodepth2_ros.errors import ConfigError
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
    SharedScale,
    make_scale_source,
)
from monodepth2_ros.ros.node_common import (
    build_network,
    TOPIC_IMAGE,
    CameraNode,
    Runtime,
    RuntimeParameters,
    keep_last_qos,
    node_status,
    resolve_topic,
    run_node,
    start_diagnostics,
    subscribe_images,
)
from monodepth2_ros.ros.frame_rectifier import FrameRectifier
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
from monodepth2_ros.ros.qos_matching import MatchedSubscription
from monodepth2_ros.ros.worker import Batch

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
TOPIC_CAMERA_INFO = "camera_info"
TOPIC_ODOM = "odom"
TOPIC_PATH = "path"
TOPIC_TF = "/tf"
SERVICE_RESET = "~/reset"

# Where the camera mount came from.
MOUNT_TF = "tf"
MOUNT_PARAMETERS = "parameters"
MOUNT_DEFAULT = "default"

# Odometry is small and filters (robot_localization) read every message: keep a few, reliably.
ODOM_QUEUE_DEPTH = 10
# Reference odometry (wheels at up to a few hundred Hz): keep a burst, take any publisher.
REFERENCE_QUEUE_DEPTH = 50
# Images kept while the network is busy until the frame_buffer parameter is read.
DEFAULT_FRAME_BUFFER = 8


def build_pose_estimator(params: PoseNodeParameters, say: Callable[[str], None] | None = None) -> PoseEstimator:
    """Load the pose network named by ``params`` (empty: the bundled model) on its device, or raise.

    ``backend: auto`` is measured (or read from the cache) first; ``say`` gets the pick. The network
    is warmed up for every batch the frame buffer can make, so the first batches do not stall the node.
    """
    estimator = build_network(PoseEstimator, "pose", params, say)
    estimator.warm_up(params.frame_buffer)
    return estimator


@dataclass(frozen=True)
class _Frame:
    msg: Image | CompressedImage
    received: float


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


class PoseNode(CameraNode[PoseNodeParameters, PoseEstimator]):
    """Monodepth2 visual odometry for one camera. See the module docstring and the README.

    Args:
        estimator: an already built pose estimator (tests, the bringup sharing one), or anything
            with its interface (``estimate(rgb_a, rgb_b) -> RelativeMotion``, ``scale``, ``info``,
            ``device``, ``precision``; optionally ``estimate_pairs(pairs) -> list[RelativeMotion]``,
            used for the batches); None loads the checkpoint named by ``weights``. Its scale
            should be 1; any other is divided out.
        node_name, **node_kwargs: see :class:`CameraNode`, which also lists the start-up errors.
    """

    default_name = NODE_NAME
    frame_batch_capacity = DEFAULT_FRAME_BUFFER

    # ------------------------------------------------------------------------------------------
    # start-up (called by CameraNode, which has made self._frames, _stats and _reporter)

    def _set_up(self, estimator: PoseEstimator | None) -> None:
        self._configure(estimator)
        self._start_inputs()

    def _configure(self, estimator: PoseEstimator | None) -> None:
        """The network, parameters, publishers and services: everything but the camera input (a
        lifecycle node's configure)."""
        params = declare_parameters(self, PoseNodeParameters)
        self._events = _Events()
        self._reference_topic = resolve_topic(self, params.scale_odometry_topic)
        if self._reference_topic == resolve_topic(self, TOPIC_ODOM):
            raise ConfigError(
                f"scale_odometry_topic {params.scale_odometry_topic!r} is this node's own output {self._reference_topic}; "
                "expected an external odometry (wheels, GNSS)"
            )
        self._estimator = estimator if estimator is not None else build_pose_estimator(params, self.get_logger().info)
        self._runtime = RuntimeParameters(self, params, self._estimator.info, self._make_scale)
        self._integrator = OdometryIntegrator(params.odometry_config())
        self._unscaled_source: ScaleSource | None = None  # a shared source whose wait ran out
        self._reference_rgb: np.ndarray | None = None
        self._path: deque[Any] = deque(maxlen=params.path_max_length)
        self._last_estimate: OdometryEstimate | None = None
        self._mount: _Mount | None = None
        self._warned_default_mount = False
        self._reset_requested = threading.Event()
        self._continuity_lost = False
        self._tf = TfBridge(self)

        reliable = ReliabilityPolicy.RELIABLE
        self._odom_pub = self.create_publisher(Odometry, TOPIC_ODOM, keep_last_qos(ODOM_QUEUE_DEPTH, reliable))
        self._path_pub = self.create_publisher(Path, TOPIC_PATH, keep_last_qos(1, reliable))
        self._scale_link = ScaleLink(
            self, lambda: self._runtime.current.scale, lambda text: self._reporter.report("bad_scale", text)
        )
        self._reference_sub = None
        self._install_scale_inputs(self._runtime.current.scale)
        self._reset_service = self.create_service(Trigger, SERVICE_RESET, self._on_reset)
        self._runtime.watch(self._install_scale_inputs)

    def _start_inputs(self) -> None:
        """The worker, the image subscription and the diagnostics (a lifecycle node's activate)."""
        params = self._runtime.current.params
        self._frames.set_batch_capacity(params.frame_buffer)
        self._frames.start()
        # A history as deep as the frame buffer: every frame matters to odometry, also one that
        # arrives while the executor is busy (the depth node keeps only the newest).
        self._image_sub = subscribe_images(
            self, params.input_transport, params.qos_reliability, self._on_image, self._frames, depth=params.frame_buffer
        )
        self._image_topic = self._image_sub.topic_name
        self._rectifier = FrameRectifier(
            resolve_topic(self, TOPIC_CAMERA_INFO), self._reporter.report, self._frames.reject, self.get_logger().info
        )
        self._info_sub = MatchedSubscription(
            self, CameraInfo, TOPIC_CAMERA_INFO, self._rectifier.on_camera_info, params.qos_reliability
        )
        self._diagnostics_timer = start_diagnostics(self, self._diagnostic_status)

        if params.publish_tf and not self._tf.available:
            self.get_logger().warning(
                f"tf2_ros is not installed: {params.odom_frame} -> {params.base_frame} is not broadcast on /tf "
                "(odom and path are published); the camera mount comes from camera_to_base_xyz/rpy"
            )
        info = self._estimator.info
        backend = getattr(getattr(self._estimator, "backend", None), "backend", "")  # test doubles have none
        self.get_logger().info(
            f"ready: pose ResNet-{info.num_layers} {info.width}x{info.height} on {self._estimator.device} "
            f"{backend} {self._estimator.precision}; {self._image_topic} ({params.input_transport}, {params.qos_reliability}); "
            f"{params.odom_frame} -> {params.base_frame}; scale {self._runtime.current.scale.describe()}"
        )

    def _make_scale(self, params: PoseNodeParameters) -> ScaleSource:
        origin = self._reference_topic if params.scale_mode == OdometryScale.mode else resolve_topic(self, TOPIC_SCALE)
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
            qos = keep_last_qos(REFERENCE_QUEUE_DEPTH, ReliabilityPolicy.BEST_EFFORT)
            self._reference_sub = self.create_subscription(
                Odometry, self._reference_topic, self._on_reference_odometry, qos
            )
        elif not wants_reference and self._reference_sub is not None:
            self.destroy_subscription(self._reference_sub)
            self._reference_sub = None

    # ------------------------------------------------------------------------------------------
    # read-only views (diagnostics, tests; with CameraNode's parameters, scale, estimator, stats,
    # is_idle, problem_counts)

    @property
    def scale_source(self) -> ScaleSource:
        return self._runtime.current.scale

    @property
    def event_counts(self) -> dict[str, int]:
        """Frames by what happened to them: ``static``, ``nan_pose``, ``time_jump``, ``gap``, ``reset``,
        ``integrated``, ``overflow`` (a pair spanning images dropped from a full buffer),
        ``batched_pairs`` (pairs run in batches of two or more) and ``deferred`` (poses held until
        a shared scale arrived)."""
        return self._events.snapshot()

    @property
    def mount(self) -> tuple[np.ndarray, str] | None:
        """(T_base_camera, source) of the mount in use (source: ``tf``, ``parameters``, ``default``)."""
        mount = self._mount
        return None if mount is None else (mount.T_base_camera.copy(), mount.source)

    # ------------------------------------------------------------------------------------------
    # callbacks: cheap, never block on inference

    def _outputs_wanted(self, runtime: Runtime[PoseNodeParameters]) -> bool:
        """Some output has a reader: odom, path, this node's scale (when estimated here) or /tf."""
        params = runtime.params
        return (
            self._odom_pub.get_subscription_count() > 0
            or self._path_pub.get_subscription_count() > 0
            or (runtime.scale.observes == OBSERVES_MOTION and self._scale_link.has_subscribers())
            or (params.publish_tf and self._tf.can_broadcast and self.count_subscribers(TOPIC_TF) > 0)
        )

    def _on_image(self, msg: Image | CompressedImage) -> None:
        handed_over = self._frames.receive(
            lambda: self._outputs_wanted(self._runtime.current),
            lambda: _Frame(msg=msg, received=time.monotonic()),
        )
        if not handed_over:
            self._continuity_lost = True  # the next processed frame starts from the last pose

    @property
    def rectifier(self) -> FrameRectifier:
        """The camera_info side: the rectification in use and the geometry changes seen."""
        return self._rectifier

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        del request
        self._reset_requested.set()
        self._events.add("reset")
        frame = self._runtime.current.params.odom_frame
        response.success = True
        response.message = f"odometry reset: the next frame starts again at the identity in {frame!r}"
        self.get_logger().info(response.message)
        return response

    def _on_reference_odometry(self, msg: Odometry) -> None:
        source = self._runtime.current.scale
        if isinstance(source, OdometryScale):
            source.add_reference(stamp_to_ns(msg.header.stamp), pose_to_matrix(msg.pose.pose))

    # ------------------------------------------------------------------------------------------
    # the worker: decode, pair, infer, integrate, publish

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
        self._frames.set_batch_capacity(params.frame_buffer)

    def _process(self, batch: Batch[_Frame]) -> None:
        """Every image that arrived since the last batch, in order; their pairs run as one batch."""
        runtime = self._runtime.current
        params = runtime.params
        self._apply_pending_state(params)
        if batch.dropped_before and self._integrator.reference_stamp is not None:
            self._events.add("overflow")
            self._reporter.report(
                "overflow",
                f"{batch.dropped_before} image(s) dropped: more than frame_buffer ({params.frame_buffer}) arrived while "
                "the network was busy; the next motion spans them (raise frame_buffer or use a faster backend)",
            )
        decoded = []
        for frame in batch.items:
            rgb = self._frames.decode(frame.msg, self._image_topic)
            if rgb is None:
                continue
            rgb, geometry_changed = self._rectifier.frame(rgb, params.rectify)
            if rgb is not None:
                decoded.append((frame, rgb, geometry_changed))
        motions = self._batch_motions([rgb for _, rgb, _ in decoded], params)
        for frame, rgb, geometry_changed in decoded:
            if geometry_changed:  # no motion between frames of two geometries: start again from the last pose
                self._integrator.pause()
                self._reference_rgb = None
            self._process_frame(frame, rgb, runtime, motions)

    def _is_static(self, reference: np.ndarray, rgb: np.ndarray, params: PoseNodeParameters) -> bool:
        return params.static_threshold > 0.0 and mean_image_difference(reference, rgb) < params.static_threshold

    def _batch_motions(self, images: list[np.ndarray], params: PoseNodeParameters) -> dict[tuple[int, int], Any]:
        """The motions of the pairs these images will most likely form, from one batched network call.

        Pairs follow the integration's rule (a static image keeps the reference); one the rules
        pair differently later (a gap, a non-finite pose) is simply run on its own then. Keyed by
        the ids of the two arrays.
        """
        estimate_pairs = getattr(self._estimator, "estimate_pairs", None)
        pairs = []
        reference = self._reference_rgb
        for rgb in images:
            if reference is not None and not self._is_static(reference, rgb, params):
                pairs.append((reference, rgb))
                reference = rgb
            elif reference is None:
                reference = rgb
        if estimate_pairs is None or len(pairs) < 2:
            return {}
        motions = estimate_pairs(pairs)
        for _ in pairs:
            self._events.add("batched_pairs")
        return {(id(a), id(b)): motion for (a, b), motion in zip(pairs, motions)}

    def _process_frame(
        self, frame: _Frame, rgb: np.ndarray, runtime: Runtime[PoseNodeParameters], motions: dict[tuple[int, int], Any]
    ) -> None:
        params = runtime.params
        header = frame.msg.header
        stamp_ns = stamp_to_ns(header.stamp)
        check = self._integrator.check(stamp_ns)
        if check is FrameCheck.DUPLICATE:
            self._frames.reject(
                "duplicate_stamp",
                f"dropping image from {self._image_topic}: same stamp as the previous one ({stamp_ns / NS_PER_S:.3f} s)",
            )
            return
        self._settle_scale(runtime, stamp_ns)
        mount = self._mount_for(header.frame_id, params)
        pair = (id(self._reference_rgb), id(rgb))
        if check is not FrameCheck.STEP or self._reference_rgb is None:
            estimate = self._restart(check, stamp_ns, rgb, params)
        elif pair not in motions and self._is_static(self._reference_rgb, rgb, params):
            # (a batched pair was already found moving: the static check is not run twice)
            self._events.add("static")
            estimate = self._integrator.hold(stamp_ns)
        else:
            motion = motions.pop(pair, None)
            estimate = self._integrate(rgb, stamp_ns, mount, runtime, motion)
            if estimate is None:
                return
        if self._integrator.deferring:  # in network units: published once the scale is known
            self._events.add("deferred")
            return
        self._publish(estimate, params)
        self._stats.frame_published(time.monotonic() - frame.received)

    def _settle_scale(self, runtime: Runtime[PoseNodeParameters], stamp_ns: int) -> None:
        """Defer the odometry while a shared scale is awaited; publish the deferred poses once it is known.

        The depth node's first scale comes after its first frame, so without this the first
        motions would be integrated in network units and the whole trajectory would keep that error.
        """
        source = runtime.scale
        integrator = self._integrator
        if isinstance(source, SharedScale) and not source.is_metric and source is not self._unscaled_source:
            integrator.defer_scale()
            wait = runtime.params.shared_scale_wait
            if integrator.deferred_seconds(stamp_ns) < wait:
                return
            self._unscaled_source = source
            self._reporter.report(
                "scale_wait",
                f"no scale on {source.origin} within shared_scale_wait ({wait:g} s of frames): publishing odometry in "
                "relative units until one arrives",
            )
        if integrator.deferring:
            estimates = integrator.apply_scale(source.scale)
            for estimate in estimates:
                self._publish(estimate, runtime.params)
            if estimates:
                self.get_logger().info(f"scale {source.describe()}: published {len(estimates)} deferred pose(s)")

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

    def _integrate(
        self, rgb: np.ndarray, stamp_ns: int, mount: _Mount, runtime: Runtime[PoseNodeParameters], motion: Any = None
    ) -> OdometryEstimate | None:
        """Scale and integrate the motion (reference, current), run now unless the batch gave it;
        None when the pose is unusable."""
        if motion is None:
            motion = self._estimator.estimate(self._reference_rgb, rgb)
        if not np.isfinite(motion.T_b_a).all():
            self._integrator.skip(stamp_ns)
            self._events.add("nan_pose")
            self._frames.reject(
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
        # Deferred motions stay in units even if the scale arrives meanwhile (on another thread):
        # apply_scale multiplies them all once.
        metres_per_unit = 1.0 if self._integrator.deferring else scale.scale
        estimate = self._integrator.step(stamp_ns, scale_motion(T_units, metres_per_unit), mount.T_base_camera)
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
        self._scale_link.publish_if_changed(self._runtime.current.scale)
        self._last_estimate = estimate

    # ------------------------------------------------------------------------------------------
    # diagnostics

    def _diagnostic_status(self) -> Any:
        snapshot = self._stats.snapshot()
        runtime = self._runtime.current
        params = runtime.params
        events = self._events.snapshot()
        warnings = []
        if self._integrator.deferring:
            warnings.append(
                f"waiting for a scale on {getattr(runtime.scale, 'origin', 'the scale topic')}: odometry deferred "
                f"(up to shared_scale_wait, {params.shared_scale_wait:g} s)"
            )
        elif runtime.scale.warning is not None:
            warnings.append(runtime.scale.warning)
        mount = self._mount
        if mount is not None and mount.source == MOUNT_DEFAULT:
            warnings.append(f"camera mount of {mount.camera_frame or '(empty frame_id)'!r} not configured: default optical mount")
        if params.publish_tf and not self._tf.available:
            warnings.append("tf2_ros not installed: no TF broadcast")
        warnings += self._frames.input_warnings(snapshot)
        if params.publish_tf:
            tf_state = "on" if self._tf.can_broadcast else "unavailable (tf2_ros not installed)"
        else:
            tf_state = "off (publish_tf false)"
        last = self._last_estimate
        pose_values = {
            "poses integrated": str(events.get("integrated", 0)),
            "static frames": str(events.get("static", 0)),
            "non-finite poses dropped": str(events.get("nan_pose", 0)),
            "time jumps (odometry reset)": str(events.get("time_jump", 0)),
            "gaps (restarted)": str(events.get("gap", 0)),
            "pairs over dropped images (buffer overflow)": str(events.get("overflow", 0)),
            "pairs run in batches": str(events.get("batched_pairs", 0)),
            "poses deferred for the scale": str(events.get("deferred", 0)),
            "frame buffer": str(params.frame_buffer),
            "reset requests": str(events.get("reset", 0)),
            "distance (m)": "0" if last is None else f"{last.distance_m:.3f}",
            "camera mount": "none yet" if mount is None else f"{mount.source}: {mount.base_frame} <- {mount.camera_frame}",
            "tf broadcast": tf_state,
            "rectify": params.rectify,
            "rectification": self._rectifier.describe(),
            "frames": f"{params.odom_frame} -> {params.base_frame}",
        }
        return node_status(self, "pose", snapshot, runtime.scale, self._estimator, self._image_topic, pose_values, warnings)


def main(args: list[str] | None = None) -> int:
    """``ros2 run monodepth2_ros pose_node``: spin until Ctrl-C; exit 1 (2: missing input) on a start-up error."""
    return run_node(PoseNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
