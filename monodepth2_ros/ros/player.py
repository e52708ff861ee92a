"""A small bag player for machines without ``ros2 bag``: every topic at its recorded pace, plus /clock.

Messages are published as the CDR bytes stored in the bag (ROS 1 payloads converted), so nothing is
deserialised on the way. Topics whose message type is not installed in this Python are skipped with a
warning (e.g. ``/tf_static`` without tf2_msgs).

Every topic is published reliable (keep last 10, like ``ros2 bag play``'s default), so the nodes in
another process (``qos_reliability`` auto or reliable) receive every camera frame with any DDS
transport settings; a best-effort subscriber still matches, but loses large images between processes
unless both ends use settings for large data (README: Large images over DDS).
"""

from __future__ import annotations

import importlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from monodepth2_ros.data.bag_reader import iter_serialized, list_topics, resolve_bag_paths
from monodepth2_ros.errors import ConfigError

__all__ = ["PlaybackStats", "BagPlayer", "QOS_NOTE", "message_class"]

CLOCK_TOPIC = "/clock"
# Latched topics: late subscribers (RViz, a node started after the player) still get them.
_LATCHED_TOPICS = ("/tf_static",)
# How often /clock is published at least, in bag time.
_CLOCK_PERIOD_NS = 10_000_000


def message_class(msgtype: str):
    """``sensor_msgs/msg/Image`` -> the rclpy message class, or None when not installed."""
    try:
        package, kind, name = msgtype.split("/")
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ValueError, ImportError, AttributeError):
        return None


@dataclass
class PlaybackStats:
    """What a playback did."""

    published: Counter = field(default_factory=Counter)
    skipped_topics: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0
    max_lateness_s: float = 0.0


# What the player offers, said by `monodepth2 play`.
QOS_NOTE = "reliable, keep last 10"


def _qos(topic: str) -> QoSProfile:
    """Reliable for every topic (what delivers large images across processes), latched ones transient local."""
    if topic in _LATCHED_TOPICS:
        return QoSProfile(
            depth=1,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
    return QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)


class BagPlayer(Node):
    """Publishes a bag's topics in real time (times ``rate``), with /clock.

    Args:
        bags: bag path(s) as the data readers accept them.
        topics: topics to play (default: all whose type is installed).
        rate: playback speed factor (2.0 plays twice as fast).
        publish_clock: publish rosgraph_msgs/Clock with the bag time, for ``use_sim_time``.
    """

    def __init__(
        self,
        bags,
        topics: Sequence[str] | None = None,
        rate: float = 1.0,
        publish_clock: bool = True,
        node_name: str = "bag_player",
        **node_kwargs,
    ) -> None:
        super().__init__(node_name, **node_kwargs)
        if not rate > 0:
            raise ConfigError(f"playback rate must be positive, got {rate}")
        self.paths: list[Path] = resolve_bag_paths(bags)
        self.rate = float(rate)
        self.stats = PlaybackStats()
        available = {info.name: info.msgtype for info in list_topics(self.paths)}
        if topics is not None:
            unknown = sorted(set(topics) - available.keys())
            if unknown:
                raise ConfigError(f"topic(s) {', '.join(unknown)} not in the bag; it has {', '.join(sorted(available))}")
            available = {name: available[name] for name in topics}
        self._topic_publishers = {}
        for topic, msgtype in sorted(available.items()):
            cls = message_class(msgtype)
            if cls is None:
                self.stats.skipped_topics[topic] = f"message type {msgtype} is not installed"
                self.get_logger().warning(f"not playing {topic}: message type {msgtype} is not installed here")
                continue
            self._topic_publishers[topic] = self.create_publisher(cls, topic, _qos(topic))
        self._clock_publisher = None
        if publish_clock:
            from rosgraph_msgs.msg import Clock

            self._clock_publisher = self.create_publisher(Clock, CLOCK_TOPIC, 10)
            self._clock_message = Clock()

    @property
    def topics(self) -> list[str]:
        return sorted(self._topic_publishers)

    def _publish_clock(self, stamp_ns: int) -> None:
        self._clock_message.clock.sec = stamp_ns // 1_000_000_000
        self._clock_message.clock.nanosec = stamp_ns % 1_000_000_000
        self._clock_publisher.publish(self._clock_message)

    def play(self, should_stop: Callable[[], bool] = lambda: False, on_message: Callable[[str], None] | None = None) -> PlaybackStats:
        """Publish every message at its time; blocks until the bag ends or ``should_stop()``."""
        start_wall = time.monotonic()
        start_bag = None
        last_clock = None
        for message in iter_serialized(self.paths, self._topic_publishers.keys()):
            if should_stop():
                break
            if start_bag is None:
                start_bag = message.stamp_ns
            due = start_wall + (message.stamp_ns - start_bag) / 1e9 / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                self.stats.max_lateness_s = max(self.stats.max_lateness_s, -delay)
            if self._clock_publisher is not None and (last_clock is None or message.stamp_ns - last_clock >= _CLOCK_PERIOD_NS):
                self._publish_clock(message.stamp_ns)
                last_clock = message.stamp_ns
            self._topic_publishers[message.topic].publish(message.cdr)
            self.stats.published[message.topic] += 1
            if on_message is not None:
                on_message(message.topic)
        self.stats.duration_s = time.monotonic() - start_wall
        return self.stats
