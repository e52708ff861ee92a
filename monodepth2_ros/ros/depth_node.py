"""The depth node: camera images in; metric depth, its camera info, a colour view and a point cloud out.

Topics (relative, so namespaces and remapping work):

* subscribes ``image`` (sensor_msgs/Image), or ``<image>/compressed`` (CompressedImage) when
  ``input_transport`` is ``compressed``, and ``camera_info``; sensor-data QoS (keep last 1).
* publishes ``depth`` (32FC1 metres, NaN invalid), ``depth/camera_info``, ``depth/colored`` (bgr8),
  ``points`` (PointCloud2 x y z rgb in the camera optical frame), each with the image's header, and
  ``/diagnostics`` (rates, latency, drops, scale; absolute like diagnostic_updater's);
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
from monodepth2_ros.evaluation.backend_selection import resolve_auto_config
from monodepth2_ros.evaluation.colorize import colorize_depth
from monodepth2_ros.inference.estimators import DepthEstimator
from monodepth2_ros.inference.pointcloud import (
    POINT_STEP,
    CloudBuilder,
    PointCloudArray,
    cloud_shape,
    default_intrinsics,
    mask_depth_range,
)
from monodepth2_ros.inference.preprocess import resize_to_network, rgb_to_tensor
from monodepth2_ros.inference.scale import OBSERVES_DEPTH, OBSERVES_MOTION, ScaleSource, make_scale_source
from monodepth2_ros.inference.weights import resolve_weights
from monodepth2_ros.model.geometry import scale_intrinsics
from monodepth2_ros.ros.conversions import (
    MessageBuffer,
    camera_info_message,
    image_message_from_buffer,
    point_cloud_message,
)
from monodepth2_ros.ros.node_common import (
    TOPIC_DIAGNOSTICS,
    TOPIC_IMAGE,
    CameraNode,
    Runtime,
    RuntimeParameters,
    input_qos,
    keep_last_qos,
    node_status,
    resolve_topic,
    run_node,
    start_diagnostics,
    subscribe_images,
)
from monodepth2_ros.ros.parameters import DepthNodeParameters, declare_parameters
from monodepth2_ros.ros.pose_scale import TOPIC_SCALE, ScaleLink
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
    "input_qos",
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
# Outputs keep only the newest message: a late subscriber wants the current depth, not a backlog.
OUTPUT_QUEUE_DEPTH = 1


def output_qos() -> QoSProfile:
    """Reliable keep-last-1: matched by reliable and best-effort subscribers alike (RViz, recorders)."""
    return keep_last_qos(OUTPUT_QUEUE_DEPTH, ReliabilityPolicy.RELIABLE)


def build_estimator(params: DepthNodeParameters, say: Callable[[str], None] | None = None) -> DepthEstimator:
    """Load the checkpoint named by ``params`` (empty: the bundled model) on its device, or raise.

    ``backend: auto`` is measured (or read from the cache) first; ``say`` gets the pick.
    """
    weights = resolve_weights(params.weights)
    config, selection = resolve_auto_config(params.inference_config(), weights, "depth", say=say)
    if selection is not None and say is not None:
        say(selection.describe())
    return DepthEstimator(weights, config)


@dataclass(frozen=True)
class _CameraState:
    """The latest usable CameraInfo, or the fact that the camera publishes none / no calibration."""

    model: CameraModel | None = None
    uncalibrated: bool = False


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
        params = declare_parameters(self, DepthNodeParameters)
        self._estimator = estimator if estimator is not None else build_estimator(params, self.get_logger().info)
        self._runtime = RuntimeParameters(self, params, self._estimator.info, self._make_scale)
        self._camera = _CameraState()
        self._warned_uncalibrated = False
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

        self._frames.start()

        camera_qos = input_qos(params.qos_reliability)
        self._image_sub, self._image_topic = subscribe_images(self, params.input_transport, camera_qos, self._on_image)
        self._info_sub = self.create_subscription(CameraInfo, TOPIC_CAMERA_INFO, self._on_camera_info, camera_qos)
        self._info_topic = self._info_sub.topic_name

        self._runtime.watch(self._scale_link.install)
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

    def _frame_wanted(self, runtime: Runtime[DepthNodeParameters]) -> bool:
        """An image output or another node's scale needs the next frame."""
        depth, colored, points, _ = self._outputs_wanted(runtime.params)
        return depth or colored or points or self._scale_wanted(runtime)

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
            kept = "keeping the previous calibration" if self._camera.model is not None else "no calibration yet"
            self._reporter.report(
                "bad_camera_info",
                f"ignoring CameraInfo on {self._info_topic}: {err}; expected finite K (and P) for the image size; {kept}",
            )
            return
        self._camera = _CameraState(model=model)

    # ------------------------------------------------------------------------------------------
    # the worker: decode, infer, publish

    def _intrinsics(self, camera: _CameraState, height: int, width: int, params: DepthNodeParameters) -> np.ndarray | None:
        """K for an ``height x width`` image, or None (reported) when the frame cannot be used."""
        if camera.model is None:
            if camera.uncalibrated or not params.wait_for_camera_info:
                return default_intrinsics(height, width)
            self._frames.reject(
                "no_camera_info",
                f"dropping image: no CameraInfo received on {self._info_topic} yet; expected one before "
                "the images (or set wait_for_camera_info:=false to use default intrinsics)",
            )
            return None
        model = camera.model
        K = model.rectified_K() if params.use_rectified_p else np.array(model.K)
        if (model.height, model.width) == (height, width):
            return K
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
        return np.asarray(scale_intrinsics(K, (model.height, model.width), (height, width)), dtype=np.float64)

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
        K = self._intrinsics(frame.camera, height, width, params)
        if K is None:
            return
        want_depth, want_colored, want_points, want_info = self._outputs_wanted(params)
        if not (want_depth or want_colored or want_points or self._scale_wanted(runtime)):
            self._stats.frame_skipped_idle()
            return

        estimator = self._estimator
        header = frame.msg.header
        out_size = (height, width) if params.output_size == "input" else estimator.network_size
        K_out = K if out_size == (height, width) else np.asarray(scale_intrinsics(K, (height, width), out_size))
        with torch.inference_mode():
            with stage("preprocess"):
                images = resize_to_network(rgb_to_tensor(rgb, estimator.device), *estimator.network_size)
            with stage("network"):
                disparity = estimator.predict_disparity(images)
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
                if want_depth or want_colored:  # straight into the depth message's buffer
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
                    message = self._camera_info(K_out, out_size, frame.camera, params, header)
                with stage("publish"):
                    self._depth_info_pub.publish(message)
            if want_colored:
                with stage("colour map"):
                    self._colour(depth_host, params)
                with stage("serialisation"):
                    message = image_message_from_buffer(self._colored_buffer, *out_size, "bgr8", header)
                with stage("publish"):
                    self._colored_pub.publish(message)
            if want_points:
                with stage("cloud"):
                    cloud = self._cloud(depth, K_out, rgb, out_size, params)
                with stage("serialisation"):
                    message = point_cloud_message(cloud, header, self._cloud_buffer)
                with stage("publish"):
                    self._points_pub.publish(message)
        self._profile.end_frame()
        self._stats.frame_published(time.monotonic() - frame.received)

    def _camera_info(
        self, K: np.ndarray, size: tuple[int, int], camera: _CameraState, params: DepthNodeParameters, header: Any
    ) -> CameraInfo:
        model = camera.model
        keeps_distortion = model is not None and not params.use_rectified_p
        return camera_info_message(
            K,
            *size,
            header,
            distortion_model=model.distortion_model if keeps_distortion else "",
            D=model.D if keeps_distortion else None,
        )

    def _colour(self, depth: np.ndarray, params: DepthNodeParameters) -> None:
        """The colour map, written as bgr8 straight into the colored message's buffer."""
        fixed = params.color_range_mode == "fixed"
        colorize_depth(
            depth,
            vmin=params.color_min if fixed else None,
            vmax=params.color_max if fixed else None,
            cmap=params.colormap,
            out=self._colored_buffer.view((*depth.shape, 3), np.uint8),
            bgr=True,
        )

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
        warnings += self._frames.input_warnings(snapshot)
        if runtime.scale.warning is not None:
            warnings.append(runtime.scale.warning)
        stages = {"stage p50 (ms)": self._profile.summary() or "none yet"}
        return node_status(self, "depth", snapshot, runtime.scale, self._estimator, self._image_topic, stages, warnings)


def main(args: list[str] | None = None) -> int:
    """``ros2 run monodepth2_ros depth_node``: spin until Ctrl-C; exit 1 (2: missing input) on a start-up error."""
    return run_node(DepthNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
