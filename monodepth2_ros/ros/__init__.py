"""Thin rclpy adapters: the depth node, message conversions, parameters, launch plan and bringup.

The only layer importing rclpy. Importing this package itself does not (the CLI reads the launch
plan and the parameter table without ROS); the node classes load on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DepthNode",
    "DepthNodeParameters",
    "NodeSpec",
    "depth_launch_plan",
]

_LAZY = {
    "DepthNode": "monodepth2_ros.ros.depth_node",
    "DepthNodeParameters": "monodepth2_ros.ros.parameters",
    "NodeSpec": "monodepth2_ros.ros.launch_plan",
    "depth_launch_plan": "monodepth2_ros.ros.launch_plan",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
