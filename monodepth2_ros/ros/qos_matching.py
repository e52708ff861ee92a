"""Camera subscriptions whose reliability follows the publishers' (``qos_reliability: auto``) and that
count the frames lost on the way.

Why: between processes, an image larger than the middleware's shared-memory segment travels as UDP
fragments, and a best-effort reader drops every image that misses one (Fast DDS defaults: about 1
in 20 frames of 1242x375 rgb8 arrive). A reliable reader has lost fragments sent again, but does not
match a best-effort publisher at all. So ``auto`` subscribes reliable while every publisher on the
topic offers reliable and best effort as soon as one offers best effort (as rosbag2 adapts its
subscriptions to the offered QoS), and subscribes again when the publishers change: the graph is
looked at every :data:`GRAPH_POLL_S` seconds, and at once when DDS reports an incompatible publisher.
History is keep-last 1 whatever the reliability, so a slow link never queues old frames.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from monodepth2_ros.data.stamps import stamp_to_ns
from monodepth2_ros.ros.diagnostics import TransportLoss

try:  # Iron and newer
    from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks, UnsupportedEventTypeError

__all__ = [
    "RELIABILITY_AUTO",
    "RELIABLE",
    "BEST_EFFORT",
    "GRAPH_POLL_S",
    "offered_reliability",
    "camera_input_qos",
    "MatchedSubscription",
]

RELIABILITY_AUTO = "auto"
RELIABLE = "reliable"
BEST_EFFORT = "best_effort"
# How often ``auto`` looks at the topic's publishers.
GRAPH_POLL_S = 0.5
_POLICIES = {RELIABLE: ReliabilityPolicy.RELIABLE, BEST_EFFORT: ReliabilityPolicy.BEST_EFFORT}


def offered_reliability(endpoints: Iterable[Any]) -> str | None:
    """``reliable`` when every publisher offers reliable, ``best_effort`` when any offers anything
    else (best effort matches every publisher), None without publishers.

    Args:
        endpoints: ``TopicEndpointInfo`` of the publishers (``node.get_publishers_info_by_topic``).
    """
    policies = [endpoint.qos_profile.reliability for endpoint in endpoints]
    if not policies:
        return None
    return RELIABLE if all(policy == ReliabilityPolicy.RELIABLE for policy in policies) else BEST_EFFORT


class MatchedSubscription:
    """A keep-last subscription of ``topic`` with the reliability ``mode`` asks for, kept matched to
    the publishers in ``auto`` mode.

    Args:
        node: the subscribing node (its logger reports each change of reliability).
        msg_type, topic, callback: as ``node.create_subscription``.
        mode: ``auto``, ``reliable`` or ``best_effort`` (the ``qos_reliability`` parameter).
        loss: counts frames lost in transport: each message's header stamp and the middleware's
            message-lost reports go to it (None: not counted, e.g. CameraInfo).
        depth: the history depth: 1 (the depth node: only the newest frame matters), or the pose
            node's frame buffer, so frames that arrive while its callbacks wait are not replaced.
    """

    def __init__(
        self,
        node: Node,
        msg_type: Any,
        topic: str,
        callback: Callable[[Any], None],
        mode: str,
        loss: TransportLoss | None = None,
        depth: int = 1,
    ) -> None:
        self._node = node
        self._depth = depth
        self._msg_type = msg_type
        self._callback = callback
        self._loss = loss
        self.mode = mode
        # Reliable first: a default (reliable) camera driver matches at once and loses nothing; a
        # best-effort one is found incompatible and met within a poll.
        self.reliability = RELIABLE if mode == RELIABILITY_AUTO else mode
        self.resubscriptions = 0
        self.publisher_count = 0
        self._lock = threading.Lock()
        self._subscription = self._subscribe(topic)
        self.topic_name: str = self._subscription.topic_name
        self._timer = node.create_timer(GRAPH_POLL_S, self.refresh) if mode == RELIABILITY_AUTO else None

    def _subscribe(self, topic: str) -> Any:
        qos = camera_input_qos(self.reliability, self._depth)
        events: dict[str, Any] = {}
        if self.mode == RELIABILITY_AUTO:
            # Also silences rclpy's "incompatible QoS" warning: auto resolves it itself.
            events["incompatible_qos"] = lambda event: self.refresh()
        if self._loss is not None:
            events["message_lost"] = self._on_message_lost
        try:
            return self._node.create_subscription(
                self._msg_type, topic, self._deliver, qos, event_callbacks=SubscriptionEventCallbacks(**events)
            )
        except UnsupportedEventTypeError:  # a middleware without message-lost reports: stamps only
            events.pop("message_lost", None)
            return self._node.create_subscription(
                self._msg_type, topic, self._deliver, qos, event_callbacks=SubscriptionEventCallbacks(**events)
            )

    def _deliver(self, msg: Any) -> None:
        if self._loss is not None:
            self._loss.stamp_received(stamp_to_ns(msg.header.stamp))
        self._callback(msg)

    def _on_message_lost(self, info: Any) -> None:
        if self._loss is not None:
            self._loss.middleware_lost(info.total_count)

    def refresh(self) -> bool:
        """In ``auto``: subscribe again when the publishers' reliability calls for the other one.

        Returns:
            Whether the subscription was made again.
        """
        if self.mode != RELIABILITY_AUTO:
            return False
        with self._lock:
            publishers = self._node.get_publishers_info_by_topic(self.topic_name)
            self.publisher_count = len(publishers)
            wanted = offered_reliability(publishers)
            if wanted is None or wanted == self.reliability:
                return False
            self._node.destroy_subscription(self._subscription)
            self.reliability = wanted
            if self._loss is not None:
                self._loss.restart_middleware_count()
            self._subscription = self._subscribe(self.topic_name)
            self.resubscriptions += 1
        self._node.get_logger().info(
            f"{len(publishers)} publisher(s) on {self.topic_name} offer "
            f"{'reliable' if wanted == RELIABLE else 'best effort'}: subscribed {wanted} (qos_reliability auto)"
        )
        return True

    def destroy(self) -> None:
        """Destroy the subscription in effect and the graph poll (a re-subscription replaced the first)."""
        with self._lock:
            if self._timer is not None:
                self._node.destroy_timer(self._timer)
                self._timer = None
            self._node.destroy_subscription(self._subscription)

    def describe(self) -> str:
        """``reliable (auto, 2 publishers)``, ``best_effort (fixed)``: what the diagnostics show."""
        if self.mode != RELIABILITY_AUTO:
            return f"{self.reliability} (fixed)"
        return f"{self.reliability} (auto, {self.publisher_count} publisher{'' if self.publisher_count == 1 else 's'})"


def camera_input_qos(reliability: str, depth: int = 1) -> QoSProfile:
    """Keep last ``depth`` (1: a camera input never queues old frames), volatile, ``reliable`` or
    ``best_effort``."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=_POLICIES[reliability],
        durability=DurabilityPolicy.VOLATILE,
    )
