"""Fixtures of the ROS tests: one DDS domain per test session, graphs that always shut down."""

from __future__ import annotations

import os
import random

import pytest

if os.environ.get("CI"):
    import rclpy  # noqa: F401  (CI installs the ROS 2 wheels: a missing rclpy must fail, not skip)
else:
    rclpy = pytest.importorskip("rclpy")

from ros_harness import Graph  # noqa: E402  (after the skip: needs rclpy)

# A domain of its own per session, so parallel runs (and robots on the network) never cross-talk.
DOMAIN_ID = int(os.environ.get("MONODEPTH2_TEST_ROS_DOMAIN_ID", random.randint(100, 200)))
# Contexts made by the code under test (node main(), bringup) read the domain from the environment.
os.environ["ROS_DOMAIN_ID"] = str(DOMAIN_ID)
# Keep discovery on this machine.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


@pytest.fixture
def graph():
    """A fresh context + executor thread + tester node, torn down after the test."""
    created = Graph(DOMAIN_ID)
    try:
        yield created
    finally:
        created.close()


@pytest.fixture(scope="module")
def module_graph():
    """A graph shared by the tests of one module (for sequences that reuse one node)."""
    created = Graph(DOMAIN_ID)
    try:
        yield created
    finally:
        created.close()


@pytest.fixture(autouse=True)
def fast_dds_defaults_kept():
    """Nodes started in this process (their ``main()``, the bringup) name the nodes' Fast DDS profile
    in ``os.environ``; undo that after each test, so later graphs and the child processes they start
    (camera publishers standing in for a driver on Fast DDS's defaults) keep the defaults."""
    from monodepth2_ros.ros.dds_profile import PROFILES_VARIABLE

    before = os.environ.get(PROFILES_VARIABLE)
    yield
    if before is None:
        os.environ.pop(PROFILES_VARIABLE, None)
    else:
        os.environ[PROFILES_VARIABLE] = before
