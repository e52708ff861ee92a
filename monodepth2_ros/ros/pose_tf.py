"""TF for the pose node when tf2_ros is installed, and a quiet absence when it is not.

On a robot (tf2_ros present) the node looks the camera mount up as ``base_frame <- image frame_id``
and broadcasts ``odom -> base_link`` with :class:`tf2_ros.TransformBroadcaster`. Without tf2_ros
(a pip install, tests) :attr:`TfBridge.available` is False: the mount comes from parameters and
nothing is broadcast.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from monodepth2_ros.ros.pose_messages import transform_to_matrix

__all__ = ["TfBridge"]


def _import_tf2() -> Any | None:
    try:
        return importlib.import_module("tf2_ros")
    except ImportError:
        return None


class TfBridge:
    """The node's TF listener (for the mount) and broadcaster, or nothing without tf2_ros.

    Args:
        node: the rclpy node.
        listen: create a buffer and listener (for the mount lookup).
        broadcast: create a TransformBroadcaster.
    """

    def __init__(self, node: Any, listen: bool = True, broadcast: bool = True) -> None:
        self._tf2 = _import_tf2()
        self._buffer = None
        self._listener = None
        self._broadcaster = None
        self.error: str | None = None
        if self._tf2 is None:
            return
        if listen:
            self._buffer = self._tf2.Buffer()
            self._listener = self._tf2.TransformListener(self._buffer, node)
        if broadcast:
            self._broadcaster = self._tf2.TransformBroadcaster(node)

    @property
    def available(self) -> bool:
        """tf2_ros could be imported."""
        return self._tf2 is not None

    @property
    def can_broadcast(self) -> bool:
        return self._broadcaster is not None

    def lookup(self, target_frame: str, source_frame: str) -> np.ndarray | None:
        """The latest ``T_target_source`` (maps source-frame points into the target), or None.

        Never blocks: a transform not (yet) in the buffer gives None and :attr:`error` says why.
        """
        if self._buffer is None or not source_frame:
            self.error = "no TF buffer" if self._buffer is None else "the image has no frame_id"
            return None
        from rclpy.time import Time

        try:
            stamped = self._buffer.lookup_transform(target_frame, source_frame, Time())
        except self._tf2.TransformException as err:  # LookupException, ConnectivityException, ...
            self.error = f"{type(err).__name__}: {err}"
            return None
        self.error = None
        return transform_to_matrix(stamped.transform)

    def send(self, transform: Any) -> None:
        """Broadcast one TransformStamped (no-op without a broadcaster)."""
        if self._broadcaster is not None:
            self._broadcaster.sendTransform(transform)
