"""What the depth node and the pose node share: start-up and ``main``, the camera input, the worker,
parameter changes at run time and the common part of the diagnostics.

Mostly plain functions and small objects a node owns, so each node file still reads top to bottom:

* :class:`CameraNode`, the nodes' one base class, holds only the constructor's clean-up on a
  start-up error, ``destroy_node`` and the read-only views both nodes offer; :func:`run_node` is the
  body of a node's ``main``;
* :func:`input_qos`, :func:`resolve_topic` and :func:`subscribe_images` set up the camera input
  (``image``, or ``<image>/compressed``; reliability matched to the publishers, see
  :mod:`~monodepth2_ros.ros.qos_matching`);
* :class:`FrameWorker`: callbacks hand the newest frame to a :class:`LatestOnlyWorker`; it counts
  frames (:class:`FrameStats`), reports bad ones throttled and keeps the last worker error;
* :class:`RuntimeParameters`: the parameters and scale source a frame reads, checked on-set,
  applied post-set and swapped as a whole;
* :func:`node_status` and :func:`start_diagnostics`: the status published on ``/diagnostics``;
* :func:`callback_executor`: the executor that spins several nodes (and tools' helper nodes) in one
  process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from monodepth2_ros.errors import ConfigError, DatasetError, MissingInputError, Monodepth2Error
from monodepth2_ros.evaluation.backend_selection import resolve_auto_config
from monodepth2_ros.inference.scale import ScaleSource
from monodepth2_ros.inference.weights import resolve_weights
from monodepth2_ros.model.checkpoint import CheckpointInfo
from monodepth2_ros.ros.conversions import decode_image
from monodepth2_ros.ros.dds_profile import apply_dds_profile, describe_dds_setting
from monodepth2_ros.ros.diagnostics import FrameStats, StatsSnapshot, ThrottledReporter, diagnostic_status
from monodepth2_ros.ros.qos_matching import BEST_EFFORT, RELIABLE, MatchedSubscription, camera_input_qos
from monodepth2_ros.ros.worker import BatchWorker, LatestOnlyWorker

__all__ = [
    "TOPIC_IMAGE",
    "TOPIC_COMPRESSED_SUFFIX",
    "TOPIC_DIAGNOSTICS",
    "DIAGNOSTICS_PERIOD_S",
    "DIAGNOSTICS_QUEUE_DEPTH",
    "STALE_INPUT_S",
    "EXIT_OK",
    "EXIT_FAILURE",
    "EXIT_MISSING_INPUT",
    "keep_last_qos",
    "input_qos",
    "resolve_topic",
    "subscribe_images",
    "run_node",
    "init_node_process",
    "callback_executor",
    "FrameWorker",
    "Runtime",
    "RuntimeParameters",
    "CameraNode",
    "node_status",
    "start_diagnostics",
]

TOPIC_IMAGE = "image"
TOPIC_COMPRESSED_SUFFIX = "/compressed"
TOPIC_DIAGNOSTICS = "/diagnostics"

DIAGNOSTICS_PERIOD_S = 1.0
DIAGNOSTICS_QUEUE_DEPTH = 10
# No image for this long while images had been coming: a diagnostics warning.
STALE_INPUT_S = 5.0

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_MISSING_INPUT = 2

F = TypeVar("F")
# A node's parameter table (DepthNodeParameters, PoseNodeParameters): from_mapping, as_dict, scale_request.
P = TypeVar("P")
# A node's network (DepthEstimator, PoseEstimator, or a test double): info, device, precision, scale.
E = TypeVar("E")


def keep_last_qos(depth: int, reliability: ReliabilityPolicy) -> QoSProfile:
    """Keep the last ``depth`` messages, volatile, with the given reliability."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability, durability=DurabilityPolicy.VOLATILE
    )


def input_qos(reliability: str) -> QoSProfile:
    """Sensor-data style QoS for camera topics: keep last 1, volatile, ``reliable`` or else best effort."""
    return camera_input_qos(RELIABLE if reliability == RELIABLE else BEST_EFFORT)


def build_network(estimator_class: Callable[..., E], network: str, params: Any, say: Callable[[str], None] | None = None) -> E:
    """Load the ``network`` (``depth``/``pose``) named by the node's ``params`` (empty weights: the
    bundled model) on its device, or raise. ``backend: auto`` is measured (or read from the cache)
    first; ``say`` gets the pick."""
    weights = resolve_weights(params.weights)
    config, selection = resolve_auto_config(params.inference_config(), weights, network, say=say)
    if selection is not None and say is not None:
        say(selection.describe())
    return estimator_class(weights, config)


def resolve_topic(node: Node, topic: str) -> str:
    """``topic`` resolved in the node's namespace and remappings (as given on rclpy older than Humble)."""
    resolve = getattr(node, "resolve_topic_name", None)  # rclpy >= Humble
    return resolve(topic) if resolve is not None else topic


def subscribe_images(
    node: Node,
    transport: str,
    reliability: str,
    callback: Callable[[Image | CompressedImage], None],
    frames: FrameWorker | None = None,
    depth: int = 1,
) -> MatchedSubscription:
    """Subscribe the camera images: ``image`` (raw), or ``<image>/compressed`` after remapping.

    Args:
        transport: the ``input_transport`` parameter, ``raw`` or ``compressed``.
        reliability: the ``qos_reliability`` parameter (``auto`` follows the publishers).
        frames: the node's frame worker: it counts the frames lost in transport and reports them.
        depth: the subscription's history depth (see :class:`MatchedSubscription`).
    Returns:
        The subscription (its ``topic_name`` is resolved).
    """
    loss = frames.stats.transport if frames is not None else None
    if transport == "compressed":
        topic = resolve_topic(node, TOPIC_IMAGE) + TOPIC_COMPRESSED_SUFFIX
        subscription = MatchedSubscription(node, CompressedImage, topic, callback, reliability, loss, depth)
    else:
        subscription = MatchedSubscription(node, Image, TOPIC_IMAGE, callback, reliability, loss, depth)
    if frames is not None:
        frames.image_input = subscription
    return subscription


def callback_executor(context: Any = None) -> SingleThreadedExecutor:
    """The executor for nodes sharing a process (``monodepth2 run``, the demo, benchmarks, tests).

    One thread is enough: our callbacks only hand frames to the nodes' workers. rclpy's
    MultiThreadedExecutor (Jazzy, Kilted) instead re-dispatches a callback that has not started
    yet and loops without waiting, holding the GIL (ros2/rclpy#1452); that starved the workers: in
    one process at 1242x375 the depth node's colour map took 280 ms instead of 4.
    """
    return SingleThreadedExecutor(context=context)


def init_node_process(args: list[str] | None, logger_name: str, large_outputs: bool) -> None:
    """``rclpy.init`` for a process of ours; with ``large_outputs`` (images and clouds published) the
    nodes' Fast DDS profile (:mod:`~monodepth2_ros.ros.dds_profile`) first, where the user configured
    none, and the choice logged."""
    dds = apply_dds_profile() if large_outputs else None
    rclpy.init(args=args)
    if dds is not None:
        rclpy.logging.get_logger(logger_name).info(f"Fast DDS: {dds.reason}")


def run_node(
    node_class: Callable[[], Node], node_name: str, args: list[str] | None, large_outputs: bool = False
) -> int:
    """A node's ``main``: spin until Ctrl-C; exit 1 (2: missing input) on a start-up error, logged once.

    Args:
        node_class: builds the node (with its default name and parameters from ``args``).
        node_name: the logger name of the start-up error.
        args: ROS command-line arguments (None: ``sys.argv``).
        large_outputs: the node publishes images and clouds: its process takes the nodes' Fast DDS
            profile (:mod:`~monodepth2_ros.ros.dds_profile`) where the user configured none.
    """
    init_node_process(args, node_name, large_outputs)
    node = None
    try:
        node = node_class()
        rclpy.spin(node)
    except MissingInputError as err:
        rclpy.logging.get_logger(node_name).error(f"cannot start: {err}")
        return EXIT_MISSING_INPUT
    except Monodepth2Error as err:
        rclpy.logging.get_logger(node_name).error(f"cannot start: {err}")
        return EXIT_FAILURE
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return EXIT_OK


class FrameWorker(Generic[F]):
    """The frame path of a camera node: callbacks hand over the newest frame, a worker processes it.

    Owns the :class:`LatestOnlyWorker` (started by :meth:`start`), the frame counters and the
    throttled problem reports, and remembers the last error the worker raised until the
    diagnostics show it.

    Args:
        node: the owning node (its logger gets the warnings; its name names the thread).
        process: runs one frame in the worker thread; an exception it raises rejects the frame,
            is reported and does not end the worker.
        batch_capacity: None keeps only the newest frame (:class:`LatestOnlyWorker`); a number
            keeps up to that many frames while busy and hands ``process`` a
            :class:`~monodepth2_ros.ros.worker.Batch` of them (:class:`BatchWorker`).
    """

    def __init__(self, node: Node, process: Callable[[Any], None], batch_capacity: int | None = None) -> None:
        self.stats = FrameStats()
        self.reporter = ThrottledReporter(node.get_logger().warning)
        # The image subscription (set by subscribe_images): named in the transport-loss report.
        self.image_input: MatchedSubscription | None = None
        self._last_error: str | None = None
        name = f"{node.get_name()}_inference"
        self._worker: LatestOnlyWorker[F] | BatchWorker[F]
        if batch_capacity is None:
            self._worker = LatestOnlyWorker(process, self._on_error, name=name)
        else:
            self._worker = BatchWorker(process, self._on_error, batch_capacity, name=name)

    def set_batch_capacity(self, capacity: int) -> None:
        """The most frames a batching worker keeps while busy (ValueError for a newest-only worker)."""
        if not isinstance(self._worker, BatchWorker):
            raise ValueError("this node keeps only the newest frame")
        self._worker.capacity = capacity

    def start(self) -> None:
        self._worker.start()

    def receive(self, wanted: Callable[[], bool], frame: Callable[[], F]) -> bool:
        """Count an arriving image; hand ``frame()`` to the worker when ``wanted()`` (some output is read).

        Returns:
            Whether the frame was handed over (False: skipped, no output has a subscriber).
        """
        self.stats.image_received()
        if not wanted():
            self.stats.frame_skipped_idle()
            return False
        if self._worker.submit(frame()):
            self.stats.frame_dropped()
        return True

    def reject(self, kind: str, message: str) -> None:
        """Count a frame that cannot be used and report why (throttled per ``kind``)."""
        self.stats.frame_rejected()
        self.reporter.report(kind, message)

    def decode(self, msg: Image | CompressedImage, topic: str) -> np.ndarray | None:
        """The image as (H, W, 3) uint8 RGB, or None once rejected as ``bad_image`` (e.g. an unknown encoding)."""
        try:
            return decode_image(msg)
        except DatasetError as err:
            self.reject("bad_image", f"dropping image from {topic}: {err}")
            return None

    def input_warnings(self, snapshot: StatsSnapshot) -> list[str]:
        """Diagnostics warnings: no image for a while, frames lost in transport (also logged,
        throttled), the last worker error (shown once)."""
        warnings = []
        if snapshot.received and snapshot.last_input_age_s > STALE_INPUT_S:
            warnings.append(f"no image for {snapshot.last_input_age_s:.0f} s")
        if snapshot.transport_loss_rate_hz > 0:
            warnings.append(
                f"{snapshot.transport_loss_percent:.0f} % of frames lost in transport "
                f"({snapshot.transport_loss_rate_hz:.1f} per second)"
            )
            self.reporter.report("transport_loss", self._transport_loss_report(snapshot))
        if self._last_error is not None:
            warnings.append(f"last frame error: {self._last_error}")
            self._last_error = None
        return warnings

    def _transport_loss_report(self, snapshot: StatsSnapshot) -> str:
        """Cause and remedy of frames lost in transport, by the subscription's reliability."""
        image_input = self.image_input
        topic = image_input.topic_name if image_input is not None else "the image topic"
        head = (
            f"{snapshot.lost_in_transport} frames published on {topic} never reached this node "
            f"({snapshot.transport_loss_percent:.0f} % over the last seconds; frames it skipped on purpose not counted)"
        )
        if image_input is not None and image_input.reliability == RELIABLE:
            return (
                f"{head}. The subscription is reliable, so the link does not carry the publisher's rate, or this "
                "process was too busy to take each frame before the next (keep last 1): lower the publisher's rate "
                "or image size, use input_transport compressed, or raise the kernel socket buffers (README: Large "
                "images over DDS)"
            )
        if image_input is not None and image_input.mode == BEST_EFFORT:
            why, qos_remedy = "qos_reliability best_effort", "set qos_reliability to auto (reliable for a reliable publisher)"
        else:
            why, qos_remedy = "a publisher offers best effort", "make the publisher reliable (qos_reliability auto follows)"
        return (
            f"{head}. The subscription is best effort ({why}), and a best-effort reader drops every large image "
            f"that misses one UDP fragment. Remedy: {qos_remedy}, or set FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA in "
            "both the publisher's and this node's process, or lower the publisher's rate or image size (README: "
            "Large images over DDS)"
        )

    @property
    def idle(self) -> bool:
        """No frame running or waiting."""
        return self._worker.idle

    def stop(self) -> None:
        """Drop the waiting frame and let a running one finish (also before :meth:`start`)."""
        self._worker.stop()

    def _on_error(self, err: BaseException) -> None:
        self.stats.frame_rejected()
        self._last_error = f"{type(err).__name__}: {err}"
        self.reporter.report("inference_error", f"frame failed ({self._last_error}); waiting for the next one")


@dataclass(frozen=True)
class Runtime(Generic[P]):
    """Everything a frame reads that parameters can change; swapped as a whole, never mutated."""

    params: P
    scale: ScaleSource


class RuntimeParameters(Generic[P]):
    """The :class:`Runtime` a node's frames read, rebuilt and swapped when its ROS parameters change.

    A change is checked on-set (a ConfigError rejects it with its message) and applied post-set;
    Humble has on-set callbacks only, so there it is applied as soon as it is checked. The scale
    source is rebuilt only when what it is built from changes, so a running estimate survives
    unrelated changes.

    Args:
        node: the node whose parameters these are (its logger lists each applied change).
        params: the parameters declared at start-up.
        info: the checkpoint the scale request is made for.
        make_scale: the scale source for some parameters; raises ConfigError.
    """

    def __init__(self, node: Node, params: P, info: CheckpointInfo, make_scale: Callable[[P], ScaleSource]) -> None:
        self._node = node
        self._info = info
        self._make_scale = make_scale
        self._on_new_scale: Callable[[ScaleSource], None] = lambda scale: None
        self._apply_when_checked = False
        self.current: Runtime[P] = Runtime(params, make_scale(params))

    def watch(self, on_new_scale: Callable[[ScaleSource], None]) -> None:
        """Take parameter changes from now on; ``on_new_scale`` is called with each new scale source in effect."""
        self._on_new_scale = on_new_scale
        self._node.add_on_set_parameters_callback(self._check)
        # Iron and newer separate checking (on-set) from applying (post-set); Humble has on-set only.
        self._apply_when_checked = not hasattr(self._node, "add_post_set_parameters_callback")
        if not self._apply_when_checked:
            self._node.add_post_set_parameters_callback(self._apply)

    def _candidate(self, changes: list) -> Runtime[P]:
        current = self.current
        values = current.params.as_dict()
        for parameter in changes:
            if parameter.name in values:
                values[parameter.name] = parameter.value
        params = type(current.params).from_mapping(values)
        if params.scale_request(self._info) == current.params.scale_request(self._info):
            return Runtime(params, current.scale)
        return Runtime(params, self._make_scale(params))

    def _check(self, changes: list) -> SetParametersResult:
        try:
            candidate = self._candidate(changes)
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=str(err))
        if self._apply_when_checked:
            self._install(candidate)
        return SetParametersResult(successful=True)

    def _apply(self, changes: list) -> None:
        self._install(self._candidate(changes))

    def _install(self, runtime: Runtime[P]) -> None:
        previous = self.current
        before = previous.params.as_dict()
        changed = {name: value for name, value in runtime.params.as_dict().items() if before[name] != value}
        self.current = runtime
        if runtime.scale is not previous.scale:
            self._on_new_scale(runtime.scale)
        if changed:
            summary = ", ".join(f"{name}={value!r}" for name, value in changed.items())
            self._node.get_logger().info(f"parameters updated: {summary}")


def node_status(
    node: Node,
    what: str,
    snapshot: StatsSnapshot,
    scale: ScaleSource,
    estimator: Any,
    image_topic: str,
    values: Mapping[str, str],
    warnings: Sequence[str],
) -> Any:
    """A node's ``DiagnosticStatus`` (name ``<node>: <what>``): the frame statistics, the scale, the
    node's own ``values``, then the network's device, precision and size and the image topic."""
    return diagnostic_status(
        snapshot,
        name=f"{node.get_name()}: {what}",
        hardware_id=str(estimator.device),
        values={
            "scale (m per unit)": f"{scale.scale:.6g}",
            "scale mode": scale.mode,
            "metric": str(scale.is_metric).lower(),
            **scale.details(),
            **values,
            "device": str(estimator.device),
            "precision": estimator.precision,
            "network size": f"{estimator.info.width}x{estimator.info.height}",
            "image topic": image_topic,
            "DDS": describe_dds_setting(),
            **_input_values(node),
        },
        warnings=warnings,
    )


def _input_values(node: Node) -> dict[str, str]:
    """The image subscription's reliability and how often ``auto`` made it again."""
    image_input = node.image_input if isinstance(node, CameraNode) else None
    if image_input is None:
        return {}
    return {"image QoS": image_input.describe(), "image resubscriptions": str(image_input.resubscriptions)}


def start_diagnostics(node: Node, status: Callable[[], Any]) -> Any:
    """Publish ``status()`` on ``/diagnostics`` every second, in a ``DiagnosticArray`` stamped with the
    node's clock (absolute topic, like diagnostic_updater's). Returns the timer."""
    publisher = node.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, DIAGNOSTICS_QUEUE_DEPTH)

    def publish() -> None:
        current = status()
        message = DiagnosticArray()
        message.header.stamp = node.get_clock().now().to_msg()
        message.status = [current]
        publisher.publish(message)

    return node.create_timer(DIAGNOSTICS_PERIOD_S, publish)


class CameraNode(Node, Generic[P, E]):
    """Base of the depth and pose nodes: start-up clean-up, the frame worker and the shared views.

    The constructor makes a :class:`FrameWorker` on the subclass's ``_process(frame)`` (started by
    the subclass) and calls its ``_set_up(estimator)``, which must set ``_estimator`` and
    ``_runtime`` (a :class:`RuntimeParameters`). On any start-up error the node is destroyed,
    stopping the worker, and the error propagates.

    Args:
        estimator: an already built network (tests, the bringup sharing one), or None to load the
            checkpoint named by the ``weights`` parameter.
        node_name: the node's name (default: the class's ``default_name``).
        **node_kwargs: passed to ``rclpy.node.Node`` (``namespace``, ``context``, ``cli_args``,
            ``parameter_overrides``, ...).
    Raises:
        ConfigError, CheckpointError, MissingInputError: bad parameters or checkpoint, at start-up.
    """

    default_name: ClassVar[str]
    # None: the worker keeps only the newest frame; a number: it batches up to that many (FrameWorker).
    frame_batch_capacity: ClassVar[int | None] = None
    _estimator: E
    _runtime: RuntimeParameters[P]

    def __init__(self, *, estimator: E | None = None, node_name: str | None = None, **node_kwargs: Any) -> None:
        super().__init__(self.default_name if node_name is None else node_name, **node_kwargs)
        self._frames: FrameWorker[Any] = FrameWorker(self, self._process, self.frame_batch_capacity)
        self._stats, self._reporter = self._frames.stats, self._frames.reporter
        try:
            self._set_up(estimator)
        except BaseException:
            self.destroy_node()
            raise

    def _set_up(self, estimator: E | None) -> None:
        raise NotImplementedError

    def _process(self, frame: Any) -> None:
        raise NotImplementedError

    @property
    def parameters(self) -> P:
        """The parameters in effect."""
        return self._runtime.current.params

    @property
    def scale(self) -> float:
        """Metres per network unit in effect."""
        return self._runtime.current.scale.scale

    @property
    def estimator(self) -> E:
        return self._estimator

    @property
    def stats(self) -> FrameStats:
        return self._stats

    @property
    def is_idle(self) -> bool:
        """No frame running or waiting in the worker."""
        return self._frames.idle

    @property
    def image_input(self) -> MatchedSubscription | None:
        """The image subscription (its reliability in effect, resubscriptions), once set up."""
        return self._frames.image_input

    @property
    def problem_counts(self) -> dict[str, int]:
        """Problem reports per kind since start (``bad_image``, ``no_camera_info``, ``nan_pose``, ...)."""
        return self._reporter.counts()

    def destroy_node(self) -> None:
        """Stop the worker (letting a running frame finish), then destroy the node."""
        self._frames.stop()
        super().destroy_node()
