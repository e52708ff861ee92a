"""Raw (distorted) cameras over real DDS: the depth node rectifies, publishes on the rectified grid,
follows a camera that changes mid-stream and skips frames of an unusable CameraInfo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Log
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import Inbox, cloud_array, depth_array, image_msg, send_camera_info, wait_until
from sensor_msgs.msg import CameraInfo

from monodepth2_ros.data.camera import CameraModel
from monodepth2_ros.inference.camera_input import CameraInput, prepare_frame
from monodepth2_ros.inference.pointcloud import pack_rgb
from monodepth2_ros.model.checkpoint import CheckpointInfo
from monodepth2_ros.ros.depth_node import DepthNode

HEIGHT, WIDTH = 48, 80
NETWORK_SIZE = (32, 64)
K = np.array([[60.0, 0.0, 39.6], [0.0, 59.0, 24.2], [0.0, 0.0, 1.0]])
D = np.array([-0.30, 0.09, 0.001, -0.0015, 0.0])
P = np.array([[52.0, 0.0, 39.0, 0.0], [0.0, 51.5, 23.5, 0.0], [0.0, 0.0, 1.0, 0.0]])


class RecordingNetwork:
    """A depth network double that keeps every input it is given and answers a smooth depth ramp."""

    def __init__(self, size: tuple[int, int] = NETWORK_SIZE) -> None:
        self.info = CheckpointInfo(height=size[0], width=size[1])
        self.scale = 1.0
        self.device = torch.device("cpu")
        self.precision = "fp32"
        self.inputs: list[torch.Tensor] = []

    @property
    def network_size(self) -> tuple[int, int]:
        return self.info.height, self.info.width

    def predict_disparity(self, images: torch.Tensor) -> torch.Tensor:
        self.inputs.append(images.clone())
        rows = torch.linspace(0.1, 0.5, self.info.height)[:, None].expand(self.info.height, self.info.width)
        return rows[None, None].clone()

    def disparity_to_depth(self, disparity: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        if disparity.shape[-2:] != tuple(output_size):
            disparity = F.interpolate(disparity, size=output_size, mode="bilinear", align_corners=False)
        return 1.0 / disparity


def info_msg(model: str = "plumb_bob", d=D, k=K, p=P, height: int = HEIGHT, width: int = WIDTH) -> CameraInfo:
    msg = CameraInfo(height=height, width=width, distortion_model=model)
    msg.header.frame_id = "camera_optical"
    msg.d = [float(value) for value in d]
    msg.k = np.asarray(k, dtype=np.float64).reshape(-1)
    msg.r = np.eye(3).reshape(-1)
    msg.p = np.asarray(p, dtype=np.float64).reshape(-1)
    return msg


def raw_frame(height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [127 + 110 * np.sin((u + seed) / (1.5 + c)) * np.cos(v / (2.1 + c)) for c in range(3)]
    return np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)


def add_node(graph, network, **params):
    return graph.add_node(DepthNode, network, {"device": "cpu", **params})


def subscribe_rosout(graph) -> Inbox:
    inbox = Inbox()
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    graph.tester.create_subscription(Log, "/rosout", inbox, qos)
    return inbox


def node_logs(inbox: Inbox, graph, text: str) -> list[str]:
    name = f"{graph.namespace.strip('/')}.depth_node"
    return [m.msg for m in list(inbox.messages) if m.name == name and text in m.msg]


def serve(graph, inboxes, rgb: np.ndarray, sec: int) -> dict:
    graph.image_pub.publish(image_msg(rgb, sec=sec, encoding="rgb8"))
    return {topic: inbox.wait_stamp(sec) for topic, inbox in inboxes.items()}


def test_raw_distorted_input_gives_rectified_outputs(graph):
    network = RecordingNetwork()
    node = add_node(graph, network)
    inboxes = graph.subscribe_outputs()
    diagnostics = graph.subscribe("diagnostics", DiagnosticArray)
    msg = info_msg()
    send_camera_info(graph, node, msg)
    raw = raw_frame()
    out = serve(graph, inboxes, raw, sec=5)

    camera_input = CameraInput(CameraModel.from_camera_info(msg), (HEIGHT, WIDTH), rectify=True)
    expected = prepare_frame(raw, camera_input, NETWORK_SIZE, torch.device("cpu"))
    assert torch.equal(network.inputs[-1], expected.images)  # the training pipeline's input (parity tests)

    info = out["depth/camera_info"]
    assert (info.height, info.width) == (HEIGHT, WIDTH)
    assert info.distortion_model == "plumb_bob" and list(info.d) == [0.0] * 5
    np.testing.assert_allclose(np.array(info.k).reshape(3, 3), P[:, :3])
    np.testing.assert_allclose(np.array(info.p).reshape(3, 4), P)

    depth = depth_array(out["depth"])
    cloud = cloud_array(out["points"])
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    np.testing.assert_allclose(cloud[..., 2], depth, rtol=1e-6)
    # Back-projected through the rectified camera: what depth_image_proc rebuilds from depth + camera_info.
    np.testing.assert_allclose(cloud[..., 0], (u - P[0, 2]) / P[0, 0] * depth, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cloud[..., 1], (v - P[1, 2]) / P[1, 1] * depth, rtol=1e-5, atol=1e-5)
    # Colours from the rectified frame, not the raw one.
    np.testing.assert_array_equal(cloud[..., 3].view(np.uint32), pack_rgb(expected.rgb))
    assert not np.array_equal(expected.rgb, raw)

    # The remap tables are built once per CameraInfo: the same CameraInfo again reuses them.
    built = node.camera_input
    graph.info_pub.publish(info_msg())
    serve(graph, inboxes, raw_frame(seed=1), sec=6)
    assert node.camera_input is built and node.geometry_changes == 0

    assert wait_until(lambda: any(
        "on (plumb_bob" in {kv.key: kv.value for s in m.status for kv in s.values}.get("rectification", "")
        for m in diagnostics.messages
    ))


@pytest.mark.parametrize(
    "params, rectified, K_out",
    [({"rectify": "false"}, False, K), ({"use_rectified_p": True}, False, P[:, :3]), ({"rectify": "true"}, True, P[:, :3])],
    ids=["rectify_false_keeps_the_raw_camera", "image_rect_input_is_not_rectified_again", "rectify_true"],
)
def test_rectify_modes(graph, params, rectified, K_out):
    network = RecordingNetwork()
    node = add_node(graph, network, **params)
    inboxes = {topic: graph.subscribe(topic) for topic in ("depth", "depth/camera_info")}
    msg = info_msg()
    send_camera_info(graph, node, msg)
    raw = raw_frame(seed=3)
    info = serve(graph, inboxes, raw, sec=6)["depth/camera_info"]
    camera_input = CameraInput(CameraModel.from_camera_info(msg), (HEIGHT, WIDTH), rectified)
    expected = prepare_frame(raw, camera_input, NETWORK_SIZE, torch.device("cpu")).images
    assert torch.equal(network.inputs[-1], expected)
    np.testing.assert_allclose(np.array(info.k).reshape(3, 3), K_out)
    keeps_distortion = params.get("rectify") == "false"
    np.testing.assert_allclose(list(info.d), D if keeps_distortion else ([0.0] * 5 if rectified else []))


def test_a_camera_that_changes_size_and_calibration_is_followed_without_restart(graph):
    network = RecordingNetwork()
    rosout = subscribe_rosout(graph)
    node = add_node(graph, network)
    inboxes = graph.subscribe_outputs()
    send_camera_info(graph, node, info_msg())
    first = serve(graph, inboxes, raw_frame(), sec=10)
    assert (first["points"].height, first["points"].width) == (HEIGHT, WIDTH)

    # The camera switches to 96x64 with a fisheye lens.
    K2 = np.array([[70.0, 0.0, 47.5], [0.0, 70.0, 31.5], [0.0, 0.0, 1.0]])
    P2 = np.array([[55.0, 0.0, 47.0, 0.0], [0.0, 55.0, 31.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    D2 = [0.05, -0.01, 0.002, -0.0005]
    second_info = info_msg("equidistant", D2, K2, P2, height=64, width=96)
    send_camera_info(graph, node, second_info)
    # An image of the old size after the new calibration: another aspect ratio, so it is dropped,
    # never published with a geometry it was not taken with.
    rejected = node.stats.snapshot().rejected
    graph.image_pub.publish(image_msg(raw_frame(), sec=11, encoding="rgb8"))
    assert wait_until(lambda: node.stats.snapshot().rejected > rejected)

    raw = raw_frame(64, 96, seed=5)
    out = serve(graph, inboxes, raw, sec=12)
    assert all(inbox.stamped(11) == [] for inbox in inboxes.values())
    depth, info, points, colored = out["depth"], out["depth/camera_info"], out["points"], out["depth/colored"]
    assert (depth.height, depth.width) == (info.height, info.width) == (points.height, points.width) == (64, 96)
    assert (colored.height, colored.width) == (64, 96) and len(points.data) == 64 * 96 * 16
    np.testing.assert_allclose(np.array(info.k).reshape(3, 3), P2[:, :3])
    camera_input = CameraInput(CameraModel.from_camera_info(second_info), (64, 96), rectify=True)
    expected = prepare_frame(raw, camera_input, NETWORK_SIZE, torch.device("cpu"))
    assert torch.equal(network.inputs[-1], expected.images)
    np.testing.assert_array_equal(cloud_array(points)[..., 3].view(np.uint32), pack_rgb(expected.rgb))

    serve(graph, inboxes, raw_frame(64, 96, seed=6), sec=13)
    assert node.geometry_changes == 1
    assert wait_until(lambda: len(node_logs(rosout, graph, "camera changed")) == 1)
    message = node_logs(rosout, graph, "camera changed")[0]
    assert "80x48 plumb_bob -> 96x64 equidistant" in message


def _wrong_length(msg):
    msg.distortion_model, msg.d = "equidistant", [0.05, -0.01, 0.002, -0.0005, 0.001]


def _unknown_model(msg):
    msg.distortion_model = "kannala_brandt_9"


def _nan_coefficient(msg):
    msg.d = [-0.3, float("nan"), 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "spoil, model",
    [(_wrong_length, "equidistant"), (_unknown_model, "kannala_brandt_9"), (_nan_coefficient, "plumb_bob")],
    ids=["wrong_D_length_for_the_model", "unknown_model", "nan_coefficient"],
)
def test_an_unusable_camera_info_skips_frames_and_the_next_good_one_is_served(graph, spoil, model):
    network = RecordingNetwork()
    rosout = subscribe_rosout(graph)
    node = add_node(graph, network)
    inboxes = {topic: graph.subscribe(topic) for topic in ("depth", "depth/camera_info", "points")}
    send_camera_info(graph, node, info_msg())
    serve(graph, inboxes, raw_frame(), sec=20)

    bad = info_msg()
    spoil(bad)
    graph.info_pub.publish(bad)
    assert wait_until(lambda: node.camera is None)
    rejected = node.stats.snapshot().rejected
    for sec in (21, 22):
        graph.image_pub.publish(image_msg(raw_frame(seed=sec), sec=sec, encoding="rgb8"))
        assert wait_until(lambda: node.stats.snapshot().rejected > rejected)
        rejected = node.stats.snapshot().rejected
    assert wait_until(lambda: node_logs(rosout, graph, "ignoring CameraInfo"))
    warning = node_logs(rosout, graph, "ignoring CameraInfo")[0]
    assert f"{graph.namespace}/camera_info" in warning and repr(model) in warning
    # Throttled: two skipped frames, one warning about the CameraInfo.
    assert len(node_logs(rosout, graph, "ignoring CameraInfo")) == 1

    send_camera_info(graph, node, info_msg())
    out = serve(graph, inboxes, raw_frame(seed=9), sec=23)
    np.testing.assert_allclose(np.array(out["depth/camera_info"].k).reshape(3, 3), P[:, :3])
    assert all(inbox.stamped(21) == [] and inbox.stamped(22) == [] for inbox in inboxes.values())


def test_rectify_can_be_switched_off_at_run_time(graph):
    from rclpy.parameter import Parameter

    network = RecordingNetwork()
    rosout = subscribe_rosout(graph)
    node = add_node(graph, network)
    inboxes = {topic: graph.subscribe(topic) for topic in ("depth", "depth/camera_info")}
    send_camera_info(graph, node, info_msg())
    assert list(serve(graph, inboxes, raw_frame(), sec=30)["depth/camera_info"].d) == [0.0] * 5
    assert node.set_parameters([Parameter("rectify", value="false")])[0].successful
    info = serve(graph, inboxes, raw_frame(seed=2), sec=31)["depth/camera_info"]
    np.testing.assert_allclose(list(info.d), D)
    np.testing.assert_allclose(np.array(info.k).reshape(3, 3), K)
    raw_input = prepare_frame(raw_frame(seed=2), None, NETWORK_SIZE, torch.device("cpu")).images
    assert torch.equal(network.inputs[-1], raw_input)
    assert wait_until(lambda: len(node_logs(rosout, graph, "rectification changed")) == 1)
    assert node_logs(rosout, graph, "camera changed") == []
