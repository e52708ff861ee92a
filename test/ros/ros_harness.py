"""Helpers for the node tests: a real rclpy graph spinning in a thread, message builders, waits.

Shared by the depth-node and the pose-node tests (:mod:`pose_harness` adds the pose node's).

Every wait has a timeout; every graph is torn down (executor, nodes, context) even when a test fails.
"""

from __future__ import annotations

import array
import itertools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterType
from rclpy.context import Context
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from monodepth2_ros.data.image_codec import rgb_to_compressed, rgb_to_image_fields
from monodepth2_ros.ros.node_common import callback_executor
from monodepth2_ros.ros.pose_messages import stamp_to_ns

WAIT_S = 10.0
REPO = Path(__file__).resolve().parents[2]
# What each ParameterSpec.type_name must be declared as.
ROS_PARAMETER_TYPES = {
    "bool": ParameterType.PARAMETER_BOOL,
    "integer": ParameterType.PARAMETER_INTEGER,
    "double": ParameterType.PARAMETER_DOUBLE,
    "string": ParameterType.PARAMETER_STRING,
    "double_array": ParameterType.PARAMETER_DOUBLE_ARRAY,
}


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_S, period: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period)
    return bool(predicate())


def stamp_ns(msg: Any) -> int:
    """The message's header stamp in nanoseconds."""
    return stamp_to_ns(msg.header.stamp)


class Inbox:
    """Messages received on one topic, with waits, by stamp seconds or by full stamp (nanoseconds)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.messages: list[Any] = []

    def __call__(self, msg: Any) -> None:
        with self._lock:
            self.messages.append(msg)
            self._lock.notify_all()

    def _matching(self, match: Callable[[Any], bool]) -> list[Any]:
        with self._lock:
            return [m for m in self.messages if match(m)]

    def _wait(self, match: Callable[[Any], bool], stamp: int, timeout: float, seen: int = 0) -> Any:
        """The last message ``match`` accepts, waiting up to ``timeout`` seconds for more than ``seen``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [m for m in self.messages if match(m)]
                if len(found) > seen:
                    return found[-1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no message stamped {stamp} within {timeout} s (got {len(self.messages)})")
                self._lock.wait(remaining)

    def stamped(self, sec: int) -> list[Any]:
        return self._matching(lambda m: m.header.stamp.sec == sec)

    def wait_stamp(self, sec: int, timeout: float = WAIT_S) -> Any:
        return self._wait(lambda m: m.header.stamp.sec == sec, sec, timeout)

    def at(self, stamp: int) -> list[Any]:
        return self._matching(lambda m: stamp_ns(m) == stamp)

    def wait(self, stamp: int, timeout: float = WAIT_S, after: int = 0) -> Any:
        """The newest message stamped ``stamp``, once more than ``after`` of them have arrived.

        ``after``: how many were received before the stamp was sent again (``len(inbox.at(stamp))``).
        """
        return self._wait(lambda m: stamp_ns(m) == stamp, stamp, timeout, seen=after)


OUTPUT_TYPES = {
    "depth": Image,
    "depth/colored": Image,
    "depth/camera_info": CameraInfo,
    "points": PointCloud2,
}


_graph_numbers = itertools.count()


class Graph:
    """A context, the nodes' executor spinning in a thread, and a 'tester' node to talk to nodes.

    Each graph lives in a namespace of its own (and remaps ``/diagnostics`` into it), so graphs alive
    at the same time in one DDS domain, in this process or another test run, never hear each other.
    """

    def __init__(self, domain_id: int) -> None:
        self.namespace = f"/test_{os.getpid()}_{next(_graph_numbers)}"
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.executor = callback_executor(self.context)
        self.tester = rclpy.create_node("tester", namespace=self.namespace, context=self.context)
        self.executor.add_node(self.tester)
        self.nodes: list[Any] = [self.tester]
        self.executor_thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.executor_thread.start()
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.tester.create_publisher(Image, "image", reliable)
        self.compressed_pub = self.tester.create_publisher(CompressedImage, "image/compressed", reliable)
        self.info_pub = self.tester.create_publisher(CameraInfo, "camera_info", reliable)

    def ros_arguments(self) -> list[str]:
        """Node arguments keeping absolute topics inside this graph's namespace."""
        return ["--ros-args", "-r", f"/diagnostics:={self.namespace}/diagnostics"]

    def add(self, node: Any) -> Any:
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def add_node(self, node_class: Any, estimator: Any, values: dict[str, Any]) -> Any:
        """A ``node_class`` node in this graph's namespace with parameter overrides ``values``."""
        node = node_class(
            context=self.context,
            namespace=self.namespace,
            cli_args=self.ros_arguments(),
            parameter_overrides=[Parameter(name, value=value) for name, value in values.items()],
            estimator=estimator,
        )
        return self.add(node)

    def subscribe(self, topic: str, msg_type: Any = None, depth: int = 10) -> Inbox:
        inbox = Inbox()
        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        self.tester.create_subscription(msg_type or OUTPUT_TYPES[topic], topic, inbox, qos)
        return inbox

    def subscribe_outputs(self) -> dict[str, Inbox]:
        return {topic: self.subscribe(topic) for topic in OUTPUT_TYPES}

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        for node in reversed(self.nodes):
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.executor_thread.join(timeout=5.0)


def depth_node(graph: Graph, weights: Any, estimator: Any = None, **params: Any) -> Any:
    """A DepthNode on CPU in ``graph``, with parameter overrides."""
    from monodepth2_ros.ros.depth_node import DepthNode

    return graph.add_node(DepthNode, estimator, {"weights": str(weights), "device": "cpu", **params})


def image_msg(
    rgb: np.ndarray, sec: int, encoding: str = "bgr8", frame_id: str = "camera_optical", nanosec: int = 123
) -> Image:
    data, step = rgb_to_image_fields(rgb, encoding)
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, step=step, is_bigendian=False)
    msg.data = array.array("B", data)
    msg.header.stamp.sec = sec
    msg.header.stamp.nanosec = nanosec
    msg.header.frame_id = frame_id
    return msg


def compressed_msg(rgb: np.ndarray, sec: int, frame_id: str = "camera_optical") -> CompressedImage:
    data, fmt = rgb_to_compressed(rgb, "png")
    msg = CompressedImage(format=fmt)
    msg.data = array.array("B", data)
    msg.header.stamp.sec = sec
    msg.header.frame_id = frame_id
    return msg


def camera_info_msg(K: np.ndarray, height: int, width: int, frame_id: str = "camera_optical") -> CameraInfo:
    msg = CameraInfo(height=height, width=width, distortion_model="plumb_bob")
    msg.header.frame_id = frame_id
    msg.d = [0.0] * 5
    msg.k = np.asarray(K, dtype=np.float64).reshape(-1)
    msg.r = np.eye(3).reshape(-1)
    msg.p = np.hstack([np.asarray(K, dtype=np.float64), np.zeros((3, 1))]).reshape(-1)
    return msg


def send_camera_info(graph: Graph, node: Any, msg: CameraInfo, expect_change: bool = True) -> None:
    """Publish ``msg`` until the node uses it (its CameraModel equals what the message describes)."""
    from monodepth2_ros.data.camera import CameraModel

    expected = CameraModel.from_camera_info(msg)
    graph.info_pub.publish(msg)
    if expect_change and not wait_until(lambda: node.camera == expected):
        raise TimeoutError("the depth node did not take the CameraInfo")


def cloud_array(msg: PointCloud2) -> np.ndarray:
    """(height, width, 4) float32 x, y, z, rgb of a 16-byte XYZRGB cloud."""
    data = np.frombuffer(msg.data, dtype=np.float32)
    return data.reshape(msg.height, msg.width, 4)


def depth_array(msg: Image) -> np.ndarray:
    from monodepth2_ros.data.image_codec import image_to_array

    return np.asarray(image_to_array(msg), dtype=np.float32)


def pinhole_K(height: int, width: int) -> np.ndarray:
    """A plausible pinhole K for an ``height x width`` test image."""
    f = 0.9 * width
    return np.array([[f, 0.0, (width - 1) / 2 + 0.7], [0.0, f, (height - 1) / 2 - 0.4], [0.0, 0.0, 1.0]])
