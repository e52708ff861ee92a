"""Record topics into an MCAP rosbag2 with the ``rosbags`` library (no ``ros2 bag`` needed).

Subscriptions take the serialized CDR bytes (``raw=True``), which are written as they are.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.ros.player import message_class

__all__ = ["BagRecorder"]

# The message definitions stored in the bag (readers such as Foxglove need them).
_TYPESTORE = get_typestore(Stores.ROS2_JAZZY)


class BagRecorder(Node):
    """Writes the given topics into ``out_path`` (an MCAP rosbag2 folder) until :meth:`close`.

    Args:
        out_path: the bag folder to create; must not exist.
        topics: topic -> message type (``sensor_msgs/msg/Image``).
        best_effort: subscribe best effort (matches every publisher; may drop under load).
    """

    def __init__(self, out_path: str | Path, topics: dict[str, str], best_effort: bool = False, node_name: str = "bag_recorder", **node_kwargs) -> None:
        super().__init__(node_name, **node_kwargs)
        self.out_path = Path(out_path)
        if self.out_path.exists():
            raise ConfigError(f"{self.out_path} exists already; choose a new output bag path")
        self.counts: Counter = Counter()
        self._lock = threading.Lock()
        self._writer = Writer(self.out_path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections = {}
        reliability = ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
        qos = QoSProfile(depth=50, reliability=reliability)
        for topic, msgtype in topics.items():
            cls = message_class(msgtype)
            if cls is None:
                raise ConfigError(f"cannot record {topic}: message type {msgtype} is not installed")
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=_TYPESTORE)
            self.create_subscription(cls, topic, self._callback_for(topic), qos, raw=True)

    def _callback_for(self, topic: str):
        def record(data: bytes) -> None:
            stamp = self.get_clock().now().nanoseconds
            with self._lock:
                if self._writer is None:
                    return
                self._writer.write(self._connections[topic], stamp, data)
                self.counts[topic] += 1

        return record

    def close(self) -> Path:
        """Finish the bag file (idempotent)."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        return self.out_path
