"""Message time stamps as integer nanoseconds: one conversion for readers, evaluation and nodes."""

from __future__ import annotations

from typing import Any

__all__ = ["NS_PER_S", "stamp_to_ns", "header_stamp_ns"]

NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (``sec``/``nanosec``; ROS 1 ``secs``/``nsecs``) -> nanoseconds."""
    sec = getattr(stamp, "sec", None)
    if sec is None:
        return int(stamp.secs) * NS_PER_S + int(stamp.nsecs)
    return int(sec) * NS_PER_S + int(stamp.nanosec)


def header_stamp_ns(msg: Any, fallback: int = 0) -> int:
    """The stamp of ``msg.header`` in nanoseconds; ``fallback`` when there is none or it is zero."""
    stamp = getattr(getattr(msg, "header", None), "stamp", None)
    if stamp is None:
        return fallback
    return stamp_to_ns(stamp) or fallback
