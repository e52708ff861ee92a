"""One metric scale for depth and odometry: the ``scale`` topic that links the two nodes.

The node that *estimates* the scale (the depth node with ``camera_height``: it has the depth map;
the pose node with ``odometry``: it has the motion) publishes its metres per network unit on
``scale`` (``std_msgs/Float64``, reliable, transient local, keep last 1: a node started later gets
the current value at once). The other node runs ``scale_mode: shared`` and takes that value for
everything it publishes. Only metric values are published (not the relative fallback of an
estimator that has no estimate yet), and a ``shared`` node never publishes, so the value cannot
echo between the nodes.

:class:`ScaleLink` is that topic for one node; both nodes own one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64

from monodepth2_ros.inference.scale import ScaleSource, SharedScale

__all__ = ["TOPIC_SCALE", "scale_qos", "ScaleLink"]

TOPIC_SCALE = "scale"
# A new value is published when it differs from the last one published by more than this share.
_CHANGE_TOLERANCE = 1e-6


def scale_qos() -> QoSProfile:
    """Reliable, transient local, keep last 1: late subscribers receive the current scale."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


class ScaleLink:
    """Publishes a node's metric scale on ``scale``, or feeds its ``shared`` source from that topic.

    Args:
        node: the rclpy node owning the publisher and subscription.
        current_source: returns the node's scale source in effect (it changes with parameters).
        on_bad_value: called with a message when a received value is not finite and positive.
    """

    def __init__(self, node: Any, current_source: Callable[[], ScaleSource], on_bad_value: Callable[[str], None]) -> None:
        self._node = node
        self._current = current_source
        self._on_bad_value = on_bad_value
        self._lock = threading.Lock()
        self._publisher = node.create_publisher(Float64, TOPIC_SCALE, scale_qos())
        self._subscription = None
        self._last_published: float | None = None

    @property
    def topic(self) -> str:
        """The resolved topic name."""
        return self._publisher.topic_name

    def install(self, source: ScaleSource) -> None:
        """Follow a new scale source: subscribe for ``shared``, else publish its value when metric."""
        with self._lock:
            self._last_published = None
            wants_subscription = isinstance(source, SharedScale)
            if wants_subscription and self._subscription is None:
                self._subscription = self._node.create_subscription(Float64, TOPIC_SCALE, self._on_scale, scale_qos())
            elif not wants_subscription and self._subscription is not None:
                self._node.destroy_subscription(self._subscription)
                self._subscription = None
        self.publish_if_changed(source)

    def publish_if_changed(self, source: ScaleSource) -> None:
        """Publish ``source``'s scale when it is metric, not shared and new (call after each frame)."""
        if isinstance(source, SharedScale) or not source.is_metric:
            return
        value = source.scale
        with self._lock:
            last = self._last_published
            if last is not None and abs(value - last) <= _CHANGE_TOLERANCE * last:
                return
            self._last_published = value
        self._publisher.publish(Float64(data=float(value)))

    def has_subscribers(self) -> bool:
        """Someone listens to this node's scale (so an estimating source has work to do)."""
        return self._publisher.get_subscription_count() > 0

    def _on_scale(self, msg: Float64) -> None:
        source = self._current()
        if isinstance(source, SharedScale) and not source.update(float(msg.data)):
            self._on_bad_value(
                f"ignoring scale {msg.data!r} on {self.topic}: expected a finite, positive number of metres per unit"
            )
