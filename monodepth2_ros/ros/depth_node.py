"""The depth node: camera images in; metric depth, its camera info, a colour view and a point cloud out.

Topics (relative, so namespaces and remapping work):

* subscribes ``image`` (sensor_msgs/Image), or ``<image>/compressed`` (CompressedImage) when
  ``input_transport`` is ``compressed``, and ``camera_info``; sensor-data QoS (keep last 1).
* publishes ``depth`` (32FC1 metres, NaN invalid), ``depth/camera_info``, ``depth/colored`` (bgr8),
  ``points`` (PointCloud2 x y z rgb in the camera optical frame), each with the image's header, and
  ``/diagnostics`` (rates, latency, drops, scale; absolute like diagnostic_updater's);
* for robots (:mod:`monodepth2_ros.ros.robot_outputs`): ``scan`` (LaserScan, off by default),
  ``depth/compressedDepth`` and ``depth/colored/compressed``, each computed only while subscribed;
* ``scale`` (std_msgs/Float64): published when the scale is metric, or subscribed with
  ``scale_mode: shared`` (see :mod:`monodepth2_ros.ros.pose_scale`).

Threading: callbacks only hand the newest image to a :class:`LatestOnlyWorker`; the worker decodes,
runs the network and publishes. Images arriving while it is busy replace the waiting one (counted as
dropped), and no image is processed while no output has a subscriber.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from monodepth2_ros.data.camera import CameraModel, UncalibratedCameraError
from monodepth2_ros.errors import ConfigError, DatasetError
from monodepth2_ros.evaluation.colorize import colorize_depth
from monodepth2_ros.inference.camera_input import CameraInput, prepare_frame, rectification_wanted
from monodepth2_ros.inference.estimators import DepthEstimator
from monodepth2_ros.inference.pointcloud import (
    POINT_STEP,
    CloudBuilder,
    PointCloudArray,
    cloud_shape,
    default_intrinsics,
    mask_depth_range,
)
from monodepth2_ros.inference.scale import OBSERVES_DEPTH, OBSERVES_MOTION, ScaleSource, make_scale_source
from monodepth2_ros.model.geometry import scale_intrinsics
from monodepth2_ros.ros.conversions import (
    MessageBuffer,
    camera_info_message,
    image_message_from_buffer,
    point_cloud_message,
)
from monodepth2_ros.ros.node_common import (
    build_network,
    TOPIC_DIAGNOSTICS,
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
from monodepth2_ros.ros.parameters import DepthNodeParameters, declare_parameters
from monodepth2_ros.ros.pose_scale import TOPIC_SCALE, ScaleLink
from monodepth2_ros.ros.robot_outputs import RobotOutputs, RobotWanted
from monodepth2_ros.ros.qos_matching import MatchedSubscription
from monodepth2_ros.ros.stage_profile import DEPTH_STAGES, StageProfile

__all__ = [
    "NODE_NAME",
    "TOPIC_IMAGE",
    "TOPIC_CAMERA_INFO",
    "TOPIC_DEPTH",
    "TOPIC_DEPTH_CAMERA_INFO",
    "TOPIC_COLORED",
    "TOPIC_POINTS",
    "TOPIC_DIAGNOSTICS",
    "DepthNode",
    "build_estimator",
    "output_qos",
    "main",
]

NODE_NAME = "depth_node"
TOPIC_CAMERA_INFO = "camera_info"
TOPIC_DEPTH = "depth"
TOPIC_DEPTH_CAMERA_INFO = "depth/camera_info"
TOPIC_COLORED = "depth/colored"
TOPIC_POINTS = "points"

# A CameraInfo for another size is scaled to the image when the aspect ratios agree this closely.
ASPECT_RATIO_TOLERANCE = 0.01
# depth/camera_info of rectified outputs: plumb_bob with D = 0, as image_proc publishes for image_rect.
RECTIFIED_DISTORTION_MODEL = "plumb_bob"
# Outputs keep only the newest message: a late subscriber wants the current depth, not a backlog.
OUTPUT_QUEUE_DEPTH = 1


def output_qos() -> QoSProfile:
    """Reliable keep-last-1: matched by reliable and best-effort subscribers alike (RViz, recorders)."""
    return keep_last_qos(OUTPUT_QUEUE_DEPTH, ReliabilityPolicy.RELIABLE)


def build_estimator(params: DepthNodeParameters, say: Callable[[str], None] | None = None) -> DepthEstimator:
    """Load the checkpoint named by ``params`` (empty: the bundled model) on its device, or raise.

    ``backend: auto`` is measured (or read from the cache) first; ``say`` gets the pick. The network
    is warmed up, so the first camera frame costs what every other one does.
    """
    estimator = build_network(DepthEstimator, "depth", params, say)
    estimator.warm_up()
    return estimator


@dataclass(frozen=True)
class _CameraState:
    """The latest usable CameraInfo, or the fact that the camera publishes none / no calibration."""

    model: CameraModel | None = None
    uncalibrated: bool = False
    error: str | None = None  # the last CameraInfo was unusable: frames wait for a good one


@dataclass(frozen=True)
class _Frame:
    """What a callback hands to the worker: the raw message, when it arrived, the camera at that time."""

    msg: Image | CompressedImage
    received: float
    camera: _CameraState


class DepthNode(CameraNode[DepthNodeParameters, DepthEstimator]):
    """Monodepth2 depth for one camera. See the module docstring for topics and the README.

    Args:
        estimator: an already built estimator (tests, the bringup sharing one); None loads the
            checkpoint named by the ``weights`` parameter. Its scale should be 1 (see
            :func:`build_estimator`); any other is divided out.
        node_name, **node_kwargs: see :class:`CameraNode`, which also lists the start-up errors.
    """

    default_name = NODE_NAME

    # ------------------------------------------------------------------------------------------
    # start-up (called by CameraNode, which has made self._frames, _stats and _reporter)

    def _set_up(self, estimator: DepthEstimator | None) -> None:
        self._configure(estimator)
        self._start_inputs()

    def _configure(self, estimator: DepthEstimator | None) -> None:
        """The network, parameters and publishers: everything but the inputs (a lifecycle node's configure)."""
        params = declare_parameters(self, DepthNodeParameters)
        self._estimator = estimator if estimator is not None else build_estimator(params, self.get_logger().info)
        self._runtime = RuntimeParameters(self, params, self._estimator.info, self._make_scale)
        self._camera = _CameraState()
        self._warned_uncalibrated = False
        # Built in the worker for one (calibration, image size, rectify); reused until one changes.
        self._camera_input: CameraInput | None = None
        self._camera_input_key: tuple[Any, ...] | None = None
        self._geometry_changes = 0
        self._depth_buffer = MessageBuffer()
        self._colored_buffer = MessageBuffer()
        self._cloud_buffer = MessageBuffer()
        self._profile = StageProfile(DEPTH_STAGES)
        self._cloud_builder = CloudBuilder()  # the camera's rays, kept across frames

        qos = output_qos()
        self._depth_pub = self.create_publisher(Image, TOPIC_DEPTH, qos)
        self._depth_info_pub = self.create_publisher(CameraInfo, TOPIC_DEPTH_CAMERA_INFO, qos)
        self._colored_pub = self.create_publisher(Image, TOPIC_COLORED, qos)
        self._points_pub = self.create_publisher(PointCloud2, TOPIC_POINTS, qos)
        self._scale_link = ScaleLink(
            self, lambda: self._runtime.current.scale, lambda text: self._reporter.report("bad_scale", text)
        )
        self._scale_link.install(self._runtime.current.scale)
        self._robot_outputs = RobotOutputs(self, qos, self._reporter.report)
        self._runtime.watch(self._scale_link.install)

    def _start_inputs(self) -> None:
        """The worker, the camera subscriptions and the diagnostics (a lifecycle node's activate)."""
        params = self._runtime.current.params
        self._frames.start()

        self._image_sub = subscribe_images(self, params.input_transport, params.qos_reliability, self._on_image, self._frames)
        self._image_topic = self._image_sub.topic_name
        self._info_sub = MatchedSubscription(self, CameraInfo, TOPIC_CAMERA_INFO, self._on_camera_info, params.qos_reliability)
        self._info_topic = self._info_sub.topic_name

        self._diagnostics_timer = start_diagnostics(self, self._diagnostic_status)

        info = self._estimator.info
        self.get_logger().info(
            f"ready: ResNet-{info.num_layers} {info.width}x{info.height} on {self._estimator.device} "
            f"{self._estimator.precision}; {self._image_topic} ({params.input_transport}, {params.qos_reliability}) "
            f"+ {self._info_topic}; scale {self._runtime.current.scale.describe()}"
        )

    def _make_scale(self, params: DepthNodeParameters) -> ScaleSource:
        source = make_scale_source(params.scale_request(self._estimator.info, resolve_topic(self, TOPIC_SCALE)))
        if source.observes == OBSERVES_MOTION:
            raise ConfigError(
                f"scale_mode {params.scale_mode!r} estimates the scale from the pose network's motion, which the "
                "depth node does not run: set it on pose_node and scale_mode 'shared' here"
            )
        return source

    # ------------------------------------------------------------------------------------------
    # read-only views (with CameraNode's parameters, scale, estimator, stats, is_idle, problem_counts)

    @property
    def stage_profile(self) -> StageProfile:
        """Per-stage times of the recent frames (decode ... publish), for ``bench`` and the diagnostics."""
        return self._profile

    @property
    def has_camera_info(self) -> bool:
        """A CameraInfo arrived (calibrated, or uncalibrated and so replaced by the default intrinsics)."""
        return self._camera.model is not None or self._camera.uncalibrated

    @property
    def camera(self) -> CameraModel | None:
        """The calibration in use (None before any, or while the camera publishes an uncalibrated one)."""
        return self._camera.model

    @property
    def camera_input(self) -> CameraInput | None:
        """The rectification and output camera of the last processed frame (None before one)."""
        return self._camera_input

    @property
    def geometry_changes(self) -> int:
        """Times the camera's size or calibration changed mid-stream and the geometry was rebuilt."""
        return self._geometry_changes

    # ------------------------------------------------------------------------------------------
    # callbacks: cheap, never block on inference

    def _outputs_wanted(self, params: DepthNodeParameters) -> tuple[bool, bool, bool, bool]:
        """(depth, colored, points, camera_info): enabled and subscribed."""
        return (
            params.publish_depth and self._depth_pub.get_subscription_count() > 0,
            params.publish_colored and self._colored_pub.get_subscription_count() > 0,
            params.publish_points and self._points_pub.get_subscription_count() > 0,
            params.publish_camera_info and self._depth_info_pub.get_subscription_count() > 0,
        )

    def _scale_wanted(self, runtime: Runtime[DepthNodeParameters]) -> bool:
        """The scale is estimated from depth and another node listens to it (e.g. a shared pose node)."""
        return runtime.scale.observes == OBSERVES_DEPTH and self._scale_link.has_subscribers()

    def _robot_wanted(self, runtime: Runtime[DepthNodeParameters]) -> RobotWanted:
        """scan, compressedDepth, colored JPEG: enabled and subscribed."""
        return self._robot_outputs.wanted(runtime.params, runtime.scale.is_metric)

    def _frame_wanted(self, runtime: Runtime[DepthNodeParameters]) -> bool:
        """An image output or another node's scale needs the next frame."""
        depth, colored, points, _ = self._outputs_wanted(runtime.params)
        return depth or colored or points or self._scale_wanted(runtime) or self._robot_wanted(runtime).any

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self._frames.receive(
            lambda: self._frame_wanted(self._runtime.current),
            lambda: _Frame(msg=msg, received=time.monotonic(), camera=self._camera),
        )

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            model = CameraModel.from_camera_info(msg)
        except UncalibratedCameraError as err:
            if not self._warned_uncalibrated:
                self._warned_uncalibrated = True
                self.get_logger().warning(
                    f"{self._info_topic}: {err}. Using the default intrinsics (fx = 0.58 W, fy = 1.92 H, "
                    "principal point at the centre); depth/camera_info and points use them too"
                )
            self._camera = _CameraState(uncalibrated=True)
            return
        except DatasetError as err:
            model_name = str(getattr(msg, "distortion_model", ""))
            self._reporter.report(
                "bad_camera_info",
                f"ignoring CameraInfo on {self._info_topic} (distortion_model {model_name!r}, "
                f"{len(getattr(msg, 'd', ()))} coefficients): {err}; expected finite K, D and P with the "
                "coefficient count of the model; images are skipped until a valid CameraInfo arrives",
            )
            self._camera = _CameraState(error=str(err))
            return
        self._camera = _CameraState(model=model)

    # ------------------------------------------------------------------------------------------
    # the worker: decode, infer, publish

    def _geometry(
        self, camera: _CameraState, height: int, width: int, params: DepthNodeParameters
    ) -> tuple[CameraInput | None, np.ndarray] | None:
        """(camera input, K of the output grid) for an ``height x width`` image, or None (reported)
        when the frame cannot be used. The camera input is None with the default intrinsics."""
        if camera.error is not None:
            self._frames.reject(
                "bad_camera_info",
                f"dropping image: the last CameraInfo on {self._info_topic} is invalid ({camera.error})",
            )
            return None
        if camera.model is None:
            if camera.uncalibrated or not params.wait_for_camera_info:
                return None, default_intrinsics(height, width)
            self._frames.reject(
                "no_camera_info",
                f"dropping image: no CameraInfo received on {self._info_topic} yet; expected one before "
                "the images (or set wait_for_camera_info:=false to use default intrinsics)",
            )
            return None
        model = camera.model
        if (model.height, model.width) != (height, width):
            info_aspect = model.width / model.height
            if abs(width / height - info_aspect) > ASPECT_RATIO_TOLERANCE * info_aspect:
                self._frames.reject(
                    "camera_info_size",
                    f"dropping image: {self._image_topic} is {width}x{height} but CameraInfo on {self._info_topic} "
                    f"is for {model.width}x{model.height} (another aspect ratio); expected the calibration of these images",
                )
                return None
            self._reporter.report(
                "camera_info_scaled",
                f"CameraInfo on {self._info_topic} is for {model.width}x{model.height} but the images are "
                f"{width}x{height}; same aspect ratio, so its intrinsics are scaled to the image",
            )
        camera_input = self._camera_input_for(model, height, width, params)
        return (camera_input, np.array(camera_input.camera.K)) if camera_input is not None else None

    def _camera_input_for(
        self, model: CameraModel, height: int, width: int, params: DepthNodeParameters
    ) -> CameraInput | None:
        """The camera input of this calibration and size; its remap tables are built once and reused."""
        rectify = rectification_wanted(params.rectify, model, params.use_rectified_p)
        key = (model, height, width, rectify, params.use_rectified_p)
        if key == self._camera_input_key and self._camera_input is not None:
            return self._camera_input
        try:
            camera_input = CameraInput(model, (height, width), rectify, params.use_rectified_p)
        except DatasetError as err:
            self._frames.reject(
                "bad_camera_info",
                f"dropping image: cannot rectify with the CameraInfo on {self._info_topic} "
                f"(distortion_model {model.distortion_model or 'none'!r}): {err}",
            )
            return None
        previous, old_key = self._camera_input, self._camera_input_key
        self._camera_input, self._camera_input_key = camera_input, key
        if previous is None:
            self.get_logger().info(f"camera {width}x{height}: rectification {camera_input.describe()}")
        else:
            self._geometry_changes += 1
            old = previous.raw_camera
            what = "camera changed" if old_key is None or old_key[:3] != key[:3] else "rectification changed"
            self.get_logger().info(
                f"{what}: {old.width}x{old.height} {old.distortion_model or 'pinhole'} -> {width}x{height} "
                f"{model.distortion_model or 'pinhole'}; rectification {camera_input.describe()}; "
                "outputs, buffers and the cloud follow the new geometry"
            )
        return camera_input

    def _process(self, frame: _Frame) -> None:
        try:
            self._process_frame(frame)
        finally:
            self._profile.discard_frame()  # a frame that ended early leaves no partial stage times

    def _process_frame(self, frame: _Frame) -> None:
        """Decode, infer, publish what is subscribed; every stage timed in ``stage_profile``."""
        runtime = self._runtime.current
        params = runtime.params
        stage = self._profile.stage
        with stage("decode"):
            rgb = self._frames.decode(frame.msg, self._image_topic)
        if rgb is None:
            return
        height, width = rgb.shape[:2]
        geometry = self._geometry(frame.camera, height, width, params)
        if geometry is None:
            return
        camera_input, K = geometry
        want_depth, want_colored, want_points, want_info = self._outputs_wanted(params)
        robot = self._robot_wanted(runtime)
        if not (want_depth or want_colored or want_points or self._scale_wanted(runtime) or robot.any):
            self._stats.frame_skipped_idle()
            return

        estimator = self._estimator
        header = frame.msg.header
        out_size = (height, width) if params.output_size == "input" else estimator.network_size
        K_out = K if out_size == (height, width) else np.asarray(scale_intrinsics(K, (height, width), out_size))
        with torch.inference_mode():
            with stage("preprocess"):
                prepared = prepare_frame(rgb, camera_input, estimator.network_size, estimator.device)
            with stage("network"):
                disparity = estimator.predict_disparity(prepared.images)
            with stage("upsample"):  # to the output size, metres, the scale's observation, range mask
                depth_units = estimator.disparity_to_depth(disparity, out_size)
                if estimator.scale != 1.0:
                    depth_units = depth_units / estimator.scale
                runtime.scale.observe(depth_units, K_out)
                scale = runtime.scale.scale
                depth = mask_depth_range(
                    depth_units * scale if scale != 1.0 else depth_units, params.min_depth, params.max_depth
                )
                depth_host: np.ndarray | None = None
                if want_depth or want_colored or robot.needs_host_depth:  # straight into the depth message's buffer
                    depth_host = self._depth_buffer.view(out_size, np.float32)
                    torch.from_numpy(depth_host).copy_(depth[0, 0])
            with stage("publish"):
                self._scale_link.publish_if_changed(runtime.scale)
            if want_depth:
                with stage("serialisation"):
                    message = image_message_from_buffer(self._depth_buffer, *out_size, "32FC1", header)
                with stage("publish"):
                    self._depth_pub.publish(message)
            if want_info:
                with stage("serialisation"):
                    message = self._camera_info(K_out, out_size, camera_input, header)
                with stage("publish"):
                    self._depth_info_pub.publish(message)
            if want_points:  # before the colour map: robots act on the cloud, only viewers on the colours
                with stage("cloud"):
                    cloud = self._cloud(depth, K_out, prepared.rgb, out_size, params)
                with stage("serialisation"):
                    message = point_cloud_message(cloud, header, self._cloud_buffer)
                with stage("publish"):
                    self._points_pub.publish(message)
            colored_bgr: np.ndarray | None = None
            if want_colored or robot.colored_compressed:
                with stage("colour map"):
                    colored_bgr = self._colour(depth_host, params)
            if want_colored:
                with stage("serialisation"):
                    message = image_message_from_buffer(self._colored_buffer, *out_size, "bgr8", header)
                with stage("publish"):
                    self._colored_pub.publish(message)
            if robot.any:
                with stage("robot outputs"):
                    self._robot_outputs.publish(robot, depth, depth_host, colored_bgr, K_out, header, params)
        self._profile.end_frame()
        self._stats.frame_published(time.monotonic() - frame.received)

    def _camera_info(self, K: np.ndarray, size: tuple[int, int], camera_input: CameraInput | None, header: Any) -> CameraInfo:
        """The output grid's camera: rectified, D = 0 and K = P (as image_proc's image_rect); not
        rectified, the raw K with its distortion (or P's with use_rectified_p)."""
        if camera_input is not None and camera_input.rectified:
            return camera_info_message(K, *size, header, distortion_model=RECTIFIED_DISTORTION_MODEL, D=np.zeros(5))
        output = None if camera_input is None else camera_input.camera
        distorted = output is not None and output.is_distorted
        return camera_info_message(
            K,
            *size,
            header,
            distortion_model=output.distortion_model if distorted else "",
            D=output.D if distorted else None,
        )

    def _colour(self, depth: np.ndarray, params: DepthNodeParameters) -> np.ndarray:
        """The colour map, written as bgr8 straight into the colored message's buffer (returned as a view)."""
        fixed = params.color_range_mode == "fixed"
        colorize_depth(
            depth,
            vmin=params.color_min if fixed else None,
            vmax=params.color_max if fixed else None,
            cmap=params.colormap,
            out=(bgr := self._colored_buffer.view((*depth.shape, 3), np.uint8)),
            bgr=True,
        )
        return bgr

    def _cloud(
        self,
        depth: torch.Tensor,
        K: np.ndarray,
        rgb: np.ndarray,
        size: tuple[int, int],
        params: DepthNodeParameters,
    ) -> PointCloudArray:
        """Points with colour, packed into the points message's buffer."""
        stride = params.cloud_stride
        if rgb.shape[:2] != size:
            rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        rows, columns = cloud_shape(*size, stride)
        buffer = self._cloud_buffer.view((rows * columns * POINT_STEP // 4,), np.float32)
        return self._cloud_builder.fill(
            depth, K, rgb[::stride, ::stride], buffer, stride, params.cloud_max_range, params.cloud_organized
        )

    # ------------------------------------------------------------------------------------------
    # diagnostics

    def _diagnostic_status(self) -> Any:
        snapshot = self._stats.snapshot()
        runtime = self._runtime.current
        camera = self._camera
        warnings = []
        if camera.uncalibrated:
            warnings.append("camera uncalibrated: default intrinsics")
        elif camera.model is None and snapshot.received and runtime.params.wait_for_camera_info:
            warnings.append(f"waiting for CameraInfo on {self._info_topic}")
        elif camera.error is not None:
            warnings.append(f"invalid CameraInfo on {self._info_topic}: {camera.error}")
        warnings += self._frames.input_warnings(snapshot)
        if runtime.scale.warning is not None:
            warnings.append(runtime.scale.warning)
        camera_input = self._camera_input
        values = {
            "rectify": runtime.params.rectify,
            "rectification": "off (no calibration yet)" if camera_input is None else camera_input.describe(),
            "stage p50 (ms)": self._profile.summary() or "none yet",
        }
        return node_status(self, "depth", snapshot, runtime.scale, self._estimator, self._image_topic, values, warnings)


def main(args: list[str] | None = None) -> int:
    """``ros2 run monodepth2_ros depth_node``: spin until Ctrl-C; exit 1 (2: missing input) on a start-up error."""
    return run_node(DepthNode, NODE_NAME, args, large_outputs=True)


if __name__ == "__main__":
    sys.exit(main())
