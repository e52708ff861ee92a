"""Managed (lifecycle) depth and pose nodes, for nav2_lifecycle_manager or any lifecycle client.

The plain nodes stay the default; ``depth_lifecycle_node`` / ``pose_lifecycle_node`` run these
instead. They are the same nodes, started in steps by ``lifecycle_msgs`` transitions:

* **unconfigured** (after start-up, and after cleanup): the parameters are declared (set them
  now); no network, no topics but the lifecycle services.
* **configure**: the node's ``_configure``: loads the checkpoint and builds the backend, creates
  the publishers, the scale link and the parameter checks. A bad parameter or checkpoint fails the
  transition with the reason in the log; the node stays unconfigured.
* **activate**: the node's ``_start_inputs``: the worker, the camera subscriptions, the diagnostics.
* **deactivate**: those subscriptions and the diagnostics timer are destroyed and the worker
  stops after its running frame, so the node receives and publishes nothing.
* **cleanup**: everything configure made is destroyed; the network is released (and CUDA's cache
  emptied), so the device memory is free.
* **shutdown** (from any state) does what deactivate and cleanup would.

A transition asked for in the wrong state (activate before configure, ...) is refused with a
message naming the state and the transitions it allows; the state does not change.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import lifecycle_msgs.msg
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from monodepth2_ros.errors import Monodepth2Error
from monodepth2_ros.ros.depth_node import DepthNode
from monodepth2_ros.ros.depth_node import NODE_NAME as DEPTH_NODE_NAME
from monodepth2_ros.ros.node_common import run_node
from monodepth2_ros.ros.parameters import DepthNodeParameters, declare_parameters
from monodepth2_ros.ros.pose_node import NODE_NAME as POSE_NODE_NAME
from monodepth2_ros.ros.pose_node import PoseNode
from monodepth2_ros.ros.pose_parameters import PoseNodeParameters
from monodepth2_ros.ros.qos_matching import MatchedSubscription

__all__ = ["ManagedDepthNode", "ManagedPoseNode", "transition_name", "depth_main", "pose_main"]

# The node's ROS entities by kind, and how each kind is destroyed.
_ENTITY_KINDS = {
    "publishers": "destroy_publisher",
    "subscriptions": "destroy_subscription",
    "timers": "destroy_timer",
    "services": "destroy_service",
    "clients": "destroy_client",
    "guards": "destroy_guard_condition",
}
# Attributes of rclpy's own classes (name-mangled) are never removed by a cleanup.
_RCLPY_PREFIXES = ("_Node__", "_LifecycleNodeMixin__", "_LifecycleNode__")


def transition_name(transition_id: int) -> str:
    """``configure``, ``activate``, ... for a ``lifecycle_msgs/Transition`` id (else the number)."""
    for attribute in dir(lifecycle_msgs.msg.Transition):
        if attribute.startswith("TRANSITION_") and not attribute.startswith("TRANSITION_ON_"):
            if getattr(lifecycle_msgs.msg.Transition, attribute) == transition_id:
                return attribute[len("TRANSITION_"):].lower()
    return str(transition_id)


def _entities(node: Any) -> dict[str, set[Any]]:
    return {kind: set(getattr(node, kind)) for kind in _ENTITY_KINDS}


class _ManagedCameraNode:
    """Turns a camera node (``_configure(estimator)`` + ``_start_inputs()``) into a lifecycle node.

    Mixed in before the node class, with ``LifecycleNode`` after it, so the node's constructor
    makes a lifecycle node and calls :meth:`_set_up` here, which only declares the parameters.
    """

    parameter_table: ClassVar[type]
    # Set while configure runs: the parameter checks it adds are removed again by cleanup.
    _recording_callbacks = False

    # ------------------------------------------------------------------------------------------
    # construction: parameters only

    def _set_up(self, estimator: Any) -> None:
        self._given_estimator = estimator
        declare_parameters(self, self.parameter_table)
        self._inputs: dict[str, set[Any]] | None = None
        self._configured: dict[str, set[Any]] | None = None
        self._configured_attributes: set[str] = set()
        self._input_attributes: set[str] = set()
        self._parameter_callbacks: list[tuple[Callable[..., Any], Any]] = []
        self._recording_callbacks = False
        self._check_transitions()

    def declare_parameter(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Declared once at construction; configure (again after cleanup) reads the current value."""
        if self.has_parameter(name):
            return self.get_parameter(name)
        return super().declare_parameter(name, *args, **kwargs)

    def add_on_set_parameters_callback(self, callback: Any) -> Any:
        if self._recording_callbacks:
            self._parameter_callbacks.append((self.remove_on_set_parameters_callback, callback))
        return super().add_on_set_parameters_callback(callback)

    def add_post_set_parameters_callback(self, callback: Any) -> Any:
        if self._recording_callbacks:
            self._parameter_callbacks.append((self.remove_post_set_parameters_callback, callback))
        return super().add_post_set_parameters_callback(callback)

    # ------------------------------------------------------------------------------------------
    # transitions

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        before, attributes = _entities(self), set(vars(self))
        self._configured = before
        self._recording_callbacks = True
        try:
            self._configure(self._given_estimator)
        except Exception as err:  # a bad parameter or checkpoint: stay unconfigured, say why
            self._recording_callbacks = False
            self._configured_attributes = set(vars(self)) - attributes
            reason = str(err) if isinstance(err, Monodepth2Error) else f"{type(err).__name__}: {err}"
            self.get_logger().error(f"configure failed: {reason}; the node stays unconfigured")
            self._release()
            return TransitionCallbackReturn.FAILURE
        self._recording_callbacks = False
        self._configured_attributes = set(vars(self)) - attributes
        self.get_logger().info("configured: network loaded, outputs advertised; activate to start")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        before, attributes = _entities(self), set(vars(self))
        try:
            self._start_inputs()
        except Exception as err:
            self._remember_inputs(before, attributes)
            self.get_logger().error(f"activate failed: {type(err).__name__}: {err}; the node stays inactive")
            self._stop_inputs()
            return TransitionCallbackReturn.FAILURE
        self._remember_inputs(before, attributes)
        return TransitionCallbackReturn.SUCCESS

    def _remember_inputs(self, before: dict[str, set[Any]], attributes: set[str]) -> None:
        """What activate made, exactly (entities made later, e.g. by a parameter change, belong to configure)."""
        now = _entities(self)
        self._inputs = {kind: now[kind] - before[kind] for kind in _ENTITY_KINDS}
        self._input_attributes = set(vars(self)) - attributes

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_inputs()
        self.get_logger().info("deactivated: inputs closed, nothing is published until activated again")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("cleaned up: network and outputs released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_inputs()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error while leaving {state.label!r}: releasing everything; the node is unconfigured")
        self._stop_inputs()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------------------------------
    # undoing a phase

    def _destroy(self, entities: dict[str, set[Any]]) -> None:
        for kind, destroy in _ENTITY_KINDS.items():
            for entity in entities[kind]:
                getattr(self, destroy)(entity)

    def _destroy_since(self, before: dict[str, set[Any]]) -> None:
        """Destroy every entity made since ``before`` (by the node or by what it owns)."""
        now = _entities(self)
        self._destroy({kind: now[kind] - before[kind] for kind in _ENTITY_KINDS})

    def _forget(self, names: set[str]) -> None:
        for name in names:
            if not name.startswith(_RCLPY_PREFIXES) and name in vars(self):
                delattr(self, name)

    def _stop_inputs(self) -> None:
        """Close the inputs first (no new frames), then stop the worker after its running frame."""
        if self._inputs is None:
            return
        # A matched subscription may have subscribed again since activate: it knows its current one.
        for name in self._input_attributes:
            value = vars(self).get(name)
            if isinstance(value, MatchedSubscription):
                value.destroy()
        self._destroy(self._inputs)
        self._frames.stop()
        self._forget(self._input_attributes)
        self._inputs, self._input_attributes = None, set()

    def _release(self) -> None:
        """Undo configure: entities, parameter checks, the network; free the device memory."""
        if self._configured is None:
            return
        self._destroy_since(self._configured)
        for remove, callback in self._parameter_callbacks:
            remove(callback)
        self._parameter_callbacks = []
        self._forget(self._configured_attributes)
        self._configured, self._configured_attributes = None, set()
        gc.collect()
        _empty_device_cache()

    @property
    def estimator(self) -> Any:
        """The network while configured, else None."""
        return getattr(self, "_estimator", None)

    @property
    def parameters(self) -> Any:
        """The parameters in effect while configured, else None (configure reads the declared values)."""
        runtime = getattr(self, "_runtime", None)
        return None if runtime is None else runtime.current.params

    # ------------------------------------------------------------------------------------------
    # out-of-order transitions

    def _check_transitions(self) -> None:
        """Put a check with a clear message in front of the ``change_state`` service."""
        service = getattr(self, "_service_change_state", None)
        if service is None:
            return
        apply = service.callback

        def checked(request: Any, response: Any) -> Any:
            reason = self._refusal(request.transition.id, request.transition.label)
            if reason is not None:
                self.get_logger().warning(reason)
                response.success = False
                return response
            return apply(request, response)

        service.callback = checked

    def _refusal(self, transition_id: int, label: str) -> str | None:
        """Why the transition cannot start in the current state, or None when it can."""
        _, state = self._state_machine.current_state
        available = {(item[0], item[1]) for item in self._state_machine.available_transitions}
        if any(transition_id == known_id if not label else label == known_label for known_id, known_label in available):
            return None
        asked = label or transition_name(transition_id)
        allowed = ", ".join(sorted(known_label for _, known_label in available)) or "none"
        return f"refusing lifecycle transition {asked!r} in state {state!r}: it allows {allowed}; the state stays {state!r}"


def _empty_device_cache() -> None:
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class ManagedDepthNode(_ManagedCameraNode, DepthNode, LifecycleNode):
    """:class:`DepthNode` as a lifecycle node (``depth_lifecycle_node``)."""

    parameter_table = DepthNodeParameters


class ManagedPoseNode(_ManagedCameraNode, PoseNode, LifecycleNode):
    """:class:`PoseNode` as a lifecycle node (``pose_lifecycle_node``)."""

    parameter_table = PoseNodeParameters


def depth_main(args: list[str] | None = None) -> int:
    """``ros2 run monodepth2_ros depth_lifecycle_node``: a managed depth node, unconfigured until told."""
    return run_node(ManagedDepthNode, DEPTH_NODE_NAME, args, large_outputs=True)


def pose_main(args: list[str] | None = None) -> int:
    """``ros2 run monodepth2_ros pose_lifecycle_node``: a managed pose node, unconfigured until told."""
    return run_node(ManagedPoseNode, POSE_NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(depth_main())
