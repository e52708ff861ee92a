"""The managed (lifecycle) nodes driven over real DDS by lifecycle_msgs service calls."""

from __future__ import annotations

import gc
import time
import weakref

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from ros_harness import WAIT_S, camera_info_msg, image_msg, pinhole_K, wait_until

from monodepth2_ros.ros.lifecycle import ManagedDepthNode, ManagedPoseNode, transition_name

HEIGHT, WIDTH = 48, 160


class LifecycleClient:
    """``change_state`` / ``get_state`` of one managed node, called from the graph's tester node."""

    def __init__(self, graph, node_name: str) -> None:
        self._change = graph.tester.create_client(ChangeState, f"{graph.namespace}/{node_name}/change_state")
        self._get = graph.tester.create_client(GetState, f"{graph.namespace}/{node_name}/get_state")
        assert self._change.wait_for_service(timeout_sec=WAIT_S) and self._get.wait_for_service(timeout_sec=WAIT_S)

    def _call(self, client, request):
        future = client.call_async(request)
        assert wait_until(future.done, timeout=30.0), "no answer from the lifecycle service"
        return future.result()

    def change(self, transition_id: int = 0, label: str = "") -> bool:
        return self._call(self._change, ChangeState.Request(transition=Transition(id=transition_id, label=label))).success

    @property
    def state(self) -> str:
        return self._call(self._get, GetState.Request()).current_state.label


def _publishers(graph, topic: str) -> int:
    return graph.tester.count_publishers(f"{graph.namespace}/{topic}")


def _subscribers(graph, topic: str) -> int:
    return graph.tester.count_subscribers(f"{graph.namespace}/{topic}")


def _managed(graph, node_class, weights, **params):
    values = {"weights": str(weights), "device": "cpu", **params}
    node = graph.add_node(node_class, None, values)
    return node, LifecycleClient(graph, node.get_name())


def _send_frame(graph, make_image, sec: int) -> None:
    graph.info_pub.publish(camera_info_msg(pinhole_K(HEIGHT, WIDTH), HEIGHT, WIDTH))
    graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH, sec), sec=sec))


def _wait_for_depth(graph, inbox, make_image, sec: int) -> None:
    """Send the frame until its depth arrives (the first CameraInfo may come after the image)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        _send_frame(graph, make_image, sec)
        if wait_until(lambda: inbox.stamped(sec), timeout=1.0):
            return
    raise TimeoutError(f"no depth stamped {sec}")


def test_depth_node_walks_the_lifecycle_and_frees_the_network_on_cleanup(graph, tiny_checkpoint, make_image, capfd):
    node, lifecycle = _managed(graph, ManagedDepthNode, tiny_checkpoint)
    depth_inbox = graph.subscribe("depth")

    # unconfigured: parameters only; no network, no topics
    assert lifecycle.state == "unconfigured" and node.estimator is None and node.parameters is None
    assert _publishers(graph, "depth") == 0 and _subscribers(graph, "image") == 0
    assert node.set_parameters([Parameter("cloud_stride", value=2)])[0].successful

    # out of order: refused with a reason, the state does not move
    assert not lifecycle.change(Transition.TRANSITION_ACTIVATE)
    assert not lifecycle.change(label="deactivate")
    assert lifecycle.state == "unconfigured"
    logged = capfd.readouterr().err
    assert "refusing lifecycle transition 'activate' in state 'unconfigured': it allows configure, shutdown" in logged
    assert "refusing lifecycle transition 'deactivate'" in logged

    # configure: network and publishers, no input yet
    assert lifecycle.change(Transition.TRANSITION_CONFIGURE)
    assert lifecycle.state == "inactive"
    estimator = weakref.ref(node.estimator)
    assert node.parameters.cloud_stride == 2
    assert wait_until(lambda: _publishers(graph, "depth") == 1)
    assert _subscribers(graph, "image") == 0

    # activate: frames flow
    assert lifecycle.change(Transition.TRANSITION_ACTIVATE)
    assert lifecycle.state == "active"
    _wait_for_depth(graph, depth_inbox, make_image, sec=1)

    # deactivate: the inputs are closed and nothing is published
    assert lifecycle.change(Transition.TRANSITION_DEACTIVATE)
    assert lifecycle.state == "inactive"
    assert wait_until(lambda: _subscribers(graph, "image") == 0 and _subscribers(graph, "camera_info") == 0)
    received = node.stats.snapshot().received
    _send_frame(graph, make_image, sec=2)
    time.sleep(0.5)
    assert depth_inbox.stamped(2) == [] and node.stats.snapshot().received == received
    assert not lifecycle.change(Transition.TRANSITION_DEACTIVATE)  # already inactive
    assert lifecycle.state == "inactive"

    # cleanup: the network is gone, so are the outputs and the parameter checks
    assert lifecycle.change(Transition.TRANSITION_CLEANUP)
    assert lifecycle.state == "unconfigured" and node.estimator is None and node.parameters is None
    gc.collect()
    assert estimator() is None
    assert wait_until(lambda: _publishers(graph, "depth") == 0)
    assert node.set_parameters([Parameter("min_depth", value=500.0)])[0].successful  # unchecked until configure
    assert node.set_parameters([Parameter("min_depth", value=0.1)])[0].successful

    # and again: configure reads the parameters as they are now, the checks are installed once
    assert lifecycle.change(label="configure") and lifecycle.change(label="activate")
    assert lifecycle.state == "active"
    _wait_for_depth(graph, depth_inbox, make_image, sec=3)
    result = node.set_parameters([Parameter("min_depth", value=500.0)])[0]
    assert not result.successful and "min_depth (500.0) must be smaller than max_depth" in result.reason

    assert lifecycle.change(Transition.TRANSITION_ACTIVE_SHUTDOWN)
    assert lifecycle.state == "finalized" and node.estimator is None
    assert wait_until(lambda: _subscribers(graph, "image") == 0 and _publishers(graph, "depth") == 0)


def test_a_failed_configure_leaves_the_node_unconfigured_with_the_reason(graph, tmp_path, capfd):
    node, lifecycle = _managed(graph, ManagedDepthNode, tmp_path / "no_checkpoint")
    assert not lifecycle.change(Transition.TRANSITION_CONFIGURE)
    assert lifecycle.state == "unconfigured" and node.estimator is None
    assert "configure failed" in capfd.readouterr().err
    assert _publishers(graph, "depth") == 0
    assert not lifecycle.change(Transition.TRANSITION_CONFIGURE)  # consistent: it can be tried again
    assert lifecycle.change(label="shutdown") and lifecycle.state == "finalized"


def test_pose_node_publishes_odometry_only_while_active(graph, tiny_checkpoint, make_image):
    node, lifecycle = _managed(graph, ManagedPoseNode, tiny_checkpoint, static_threshold=0.0)
    odom_inbox = graph.subscribe("odom", Odometry)
    assert lifecycle.change(label="configure") and lifecycle.state == "inactive"
    assert node.estimator is not None and _subscribers(graph, "image") == 0
    assert lifecycle.change(label="activate")
    assert wait_until(lambda: _subscribers(graph, "image") == 1)
    for sec in (1, 2, 3):
        graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH, sec), sec=sec))
        odom_inbox.wait_stamp(sec)

    assert lifecycle.change(label="deactivate")
    assert wait_until(lambda: _subscribers(graph, "image") == 0)
    graph.image_pub.publish(image_msg(make_image(HEIGHT, WIDTH, 4), sec=4))
    time.sleep(0.5)
    assert odom_inbox.stamped(4) == []
    assert lifecycle.change(label="cleanup") and node.estimator is None
    assert wait_until(lambda: _publishers(graph, "odom") == 0)


def test_transition_names_follow_lifecycle_msgs():
    assert transition_name(Transition.TRANSITION_CONFIGURE) == "configure"
    assert transition_name(Transition.TRANSITION_ACTIVE_SHUTDOWN) == "active_shutdown"
    assert transition_name(250) == "250"


def test_setup_installs_the_managed_executables_beside_the_plain_ones():
    import importlib
    import re

    from ros_harness import REPO

    scripts = dict(re.findall(r'"(\w+) = ([\w.]+:\w+)"', (REPO / "setup.py").read_text()))
    assert {"depth_node", "pose_node", "depth_lifecycle_node", "pose_lifecycle_node"} <= set(scripts)
    for name in ("depth_lifecycle_node", "pose_lifecycle_node"):
        module, function = scripts[name].split(":")
        assert callable(getattr(importlib.import_module(module), function)), name
    assert scripts["depth_lifecycle_node"] == "monodepth2_ros.ros.lifecycle:depth_main"
