"""Fuzzing the live nodes over real DDS: after each hostile message or parameter change the node is
alive, its memory bounded, and the next good frame gets exactly the outputs it got before.

A sample of cases (hypothesis, ``MONODEPTH2_FUZZ_EXAMPLES`` // 6 each): the pure decoders are
fuzzed with many more in ``test/data/test_data_fuzz_codec.py``.
"""

from __future__ import annotations

import array
import os
import resource

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pose_harness import feed, handled, subscribe
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from ros_harness import (
    camera_info_msg,
    compressed_msg,
    depth_array,
    depth_node,
    image_msg,
    pinhole_K,
    send_camera_info,
    wait_until,
)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from monodepth2_ros.data.camera import CameraModel, UncalibratedCameraError
from monodepth2_ros.errors import DatasetError

EXAMPLES = max(4, int(os.environ.get("MONODEPTH2_FUZZ_EXAMPLES", "60")) // 6)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
HEIGHT, WIDTH = 48, 96
K = pinhole_K(HEIGHT, WIDTH)
UINT32 = 2**32 - 1
# Resident memory the whole module may add (networks, DDS buffers); a claimed size allocated would not fit.
MAX_RSS_GROWTH_KB = 400 * 1024
ENCODINGS = ["rgb8", "bgr8", "mono8", "mono16", "bgra8", "yuv422", "bayer_rggb8", "bayer_gbrg16", "32FC1", "16UC1", "8UC3", "hsv8", "", "rgb16"]


class _Setup:
    """A depth node under test, its inboxes, and the outputs of the good frame before any hostile case."""

    def __init__(self, graph, node, inboxes, publish_good) -> None:
        self.graph, self.node, self.inboxes, self._publish_good = graph, node, inboxes, publish_good
        self._sec = 1000
        self.reference = self.serve()
        self.rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def serve(self, attempts: int = 3, timeout_s: float = 5.0):
        """Publish the good image (again, with the same stamp, if it was not served: a frame can be
        replaced in the keep-last-1 input while the node finishes the previous case); its depth and
        camera info once served."""
        self._sec += 1
        for attempt in range(attempts):
            self._publish_good(self._sec)
            try:
                depth = depth_array(self.inboxes["depth"].wait_stamp(self._sec, timeout=timeout_s))
                break
            except TimeoutError:
                if attempt == attempts - 1:
                    raise
        return depth, np.array(self.inboxes["depth/camera_info"].wait_stamp(self._sec).k).reshape(3, 3)

    def assert_healthy(self) -> None:
        depth, K_out = self.serve()
        np.testing.assert_array_equal(depth, self.reference[0])
        np.testing.assert_array_equal(K_out, self.reference[1])
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.rss_before < MAX_RSS_GROWTH_KB


@pytest.fixture(scope="module")
def depth_setup(module_graph, tiny_checkpoint, make_image):
    node = depth_node(module_graph, tiny_checkpoint)
    inboxes = {topic: module_graph.subscribe(topic) for topic in ("depth", "depth/camera_info")}
    send_camera_info(module_graph, node, camera_info_msg(K, HEIGHT, WIDTH))
    good = make_image(HEIGHT, WIDTH)
    return _Setup(module_graph, node, inboxes, lambda sec: module_graph.image_pub.publish(image_msg(good, sec=sec)))


@pytest.fixture(scope="module")
def compressed_setup(module_graph, tiny_checkpoint, make_image):
    """A second depth node, in a namespace of its own, reading ``image/compressed``."""
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from monodepth2_ros.ros.depth_node import DepthNode

    namespace = f"{module_graph.namespace}/compressed"
    overrides = {"weights": str(tiny_checkpoint), "device": "cpu", "input_transport": "compressed"}
    node = module_graph.add(
        DepthNode(
            context=module_graph.context,
            namespace=namespace,
            cli_args=module_graph.ros_arguments(),
            parameter_overrides=[Parameter(name, value=value) for name, value in overrides.items()],
        )
    )
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    publisher = module_graph.tester.create_publisher(CompressedImage, f"{namespace}/image/compressed", reliable)
    info_pub = module_graph.tester.create_publisher(CameraInfo, f"{namespace}/camera_info", reliable)
    inboxes = {topic: module_graph.subscribe(f"{namespace}/{topic}", Image if topic == "depth" else CameraInfo) for topic in ("depth", "depth/camera_info")}
    info_pub.publish(camera_info_msg(K, HEIGHT, WIDTH))
    assert wait_until(lambda: node.camera is not None)
    good = make_image(HEIGHT, WIDTH)
    setup = _Setup(module_graph, node, inboxes, lambda sec: publisher.publish(compressed_msg(good, sec=sec)))
    setup.publisher = publisher
    return setup


def _publish_and_wait_handled(node, publisher, msg):
    before = handled(node)
    publisher.publish(msg)
    assert wait_until(lambda: handled(node) > before), "the node never finished with the hostile image"


@st.composite
def hostile_images(draw):
    msg = Image(
        height=draw(st.one_of(st.integers(0, 64), st.sampled_from([UINT32, 2**31, 65536]))),
        width=draw(st.one_of(st.integers(0, 128), st.sampled_from([UINT32, 2**31, 65536]))),
        encoding=draw(st.sampled_from(ENCODINGS)),
        is_bigendian=draw(st.sampled_from([0, 1, 255])),
        step=draw(st.one_of(st.integers(0, 400), st.sampled_from([UINT32, 2**31]))),
    )
    size = draw(st.one_of(st.integers(0, 2048), st.just(msg.height * msg.step) if msg.height * msg.step < 40_000 else st.just(0)))
    msg.data = array.array("B", draw(st.binary(min_size=size, max_size=size)))
    return msg


@FUZZ
@given(msg=hostile_images())
def test_hostile_images_over_dds_leave_the_depth_node_serving(depth_setup, msg):
    _publish_and_wait_handled(depth_setup.node, depth_setup.graph.image_pub, msg)
    depth_setup.assert_healthy()


@FUZZ
@given(
    fmt=st.sampled_from(["jpeg", "png", "", "rgb8; png compressed bgr8", "16UC1; compressedDepth png"]),
    data=st.binary(max_size=512),
    claim=st.sampled_from([None, 60000, 20000]),
)
def test_hostile_compressed_images_over_dds_leave_the_depth_node_serving(compressed_setup, fmt, data, claim):
    if claim is not None:  # a PNG header claiming claim x claim pixels, with little data behind it
        data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + claim.to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00" + data
    msg = CompressedImage(format=fmt)
    msg.data = array.array("B", data)
    before = compressed_setup.node.problem_counts.get("bad_image", 0)
    _publish_and_wait_handled(compressed_setup.node, compressed_setup.publisher, msg)
    assert compressed_setup.node.problem_counts.get("bad_image", 0) == before + 1  # refused as a bad image
    compressed_setup.assert_healthy()


floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 1e300]), st.floats(-500, 500))


@st.composite
def hostile_camera_infos(draw):
    msg = camera_info_msg(K, HEIGHT, WIDTH)
    msg.width = draw(st.sampled_from([WIDTH, 0, 2 * WIDTH, UINT32, 77]))
    msg.height = draw(st.sampled_from([HEIGHT, 0, 2 * HEIGHT, UINT32]))
    msg.k = [draw(floats) if draw(st.booleans()) else float(v) for v in K.reshape(-1)]
    msg.p = [draw(floats) if draw(st.booleans()) else float(v) for v in msg.p]
    msg.d = draw(st.lists(floats, max_size=16))
    msg.distortion_model = draw(st.sampled_from(["plumb_bob", "equidistant", "rational_polynomial", "", "fisheye"]))
    return msg


def _camera_info_taken(graph, node, msg):
    """Publish ``msg`` and wait until the node has dealt with it (used, uncalibrated or refused)."""
    before = node.problem_counts.get("bad_camera_info", 0)
    try:
        expected = CameraModel.from_camera_info(msg)
        taken = lambda: node.camera == expected  # noqa: E731
    except UncalibratedCameraError:
        taken = lambda: node.camera is None and node.has_camera_info  # noqa: E731
    except DatasetError:
        taken = lambda: node.problem_counts.get("bad_camera_info", 0) > before  # noqa: E731
    graph.info_pub.publish(msg)
    assert wait_until(taken), "the node did not deal with the CameraInfo"


@FUZZ
@given(msg=hostile_camera_infos())
def test_hostile_camera_info_over_dds_is_refused_or_used_and_the_good_one_restores_outputs(depth_setup, msg):
    graph, node = depth_setup.graph, depth_setup.node
    _camera_info_taken(graph, node, msg)
    send_camera_info(graph, node, camera_info_msg(K, HEIGHT, WIDTH))
    depth_setup.assert_healthy()


WRONG_PARAMETERS = [
    ("cloud_stride", ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="three")),
    ("cloud_stride", ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=-4)),
    ("cloud_stride", ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=2**62)),
    ("min_depth", ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=float("nan"))),
    ("max_depth", ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=-1.0)),
    ("colormap", ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="no_such_map")),
    ("scale_mode", ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="")),
    ("publish_depth", ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=1.0)),
    ("output_size", ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True)),
    ("weights", ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="/nonexistent")),
    ("color_min", ParameterValue(type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=[1.0, 2.0])),
    ("no_such_parameter", ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=1)),
]


def test_wrong_parameter_types_and_ranges_over_the_service_are_refused(depth_setup):
    graph, node = depth_setup.graph, depth_setup.node
    client = graph.tester.create_client(SetParameters, f"{node.get_fully_qualified_name()}/set_parameters")
    assert client.wait_for_service(timeout_sec=10.0)
    before = node.parameters
    for name, value in WRONG_PARAMETERS:
        future = client.call_async(SetParameters.Request(parameters=[ParameterMsg(name=name, value=value)]))
        assert wait_until(future.done), name
        result = future.result().results[0]
        assert not result.successful, name
        assert result.reason, name
    assert node.parameters == before
    graph.tester.destroy_client(client)
    depth_setup.assert_healthy()


# ------------------------------------------------------------------------------------- pose node


@pytest.fixture(scope="module")
def pose_setup(module_graph, tiny_checkpoint):
    from nav_msgs.msg import Odometry

    node = module_graph.add_node(
        __import__("monodepth2_ros.ros.pose_node", fromlist=["PoseNode"]).PoseNode,
        None,
        {"weights": str(tiny_checkpoint), "device": "cpu", "static_threshold": 0.0},
    )
    return module_graph, node, subscribe(module_graph, "odom", Odometry)


stamp_steps = st.lists(
    st.one_of(
        st.just(0),  # a duplicate
        st.integers(1, 10**8),  # a normal step
        st.integers(-(10**10), -1),  # back in time
        st.integers(10**10, 10**13),  # a gap
    ),
    min_size=1,
    max_size=8,
)


@FUZZ
@given(steps=stamp_steps)
def test_time_jumps_and_duplicate_stamps_leave_the_pose_node_integrating(pose_setup, make_image, steps):
    graph, node, odom = pose_setup
    stamp = 10**18
    messages = []
    for index, step in enumerate(steps):
        stamp = max(1, stamp + step)
        sec, nanosec = divmod(stamp, 10**9)
        messages.append(image_msg(make_image(HEIGHT, WIDTH, seed=index % 3), sec=sec, nanosec=nanosec))
    feed(graph, node, messages)
    # Two good frames after the hostile sequence: a fresh start, then one integrated step.
    later = stamp + 10**9 * 1000
    good = [image_msg(make_image(HEIGHT, WIDTH, seed=s), sec=(later + i * 10**8) // 10**9, nanosec=(later + i * 10**8) % 10**9) for i, s in enumerate((5, 6))]
    integrated = node.event_counts.get("integrated", 0)
    feed(graph, node, good)
    last = odom.wait(later + 10**8)
    assert node.event_counts.get("integrated", 0) == integrated + 1
    position = last.pose.pose.position
    assert np.isfinite([position.x, position.y, position.z]).all()
