"""The soak, scaled down: half a minute of a camera stream into both nodes in their own processes.

On Fast DDS's defaults, as on a robot whose driver nobody configured (the depth node then takes its
own profile). The targets of the 30-minute soak, scaled: no node exits, no thread or descriptor more at the end
than after warm-up, resident memory within 5 %, every output served throughout. Latency is a speed
figure: the script reports it (first against last window), the test does not assert it.
"""

from __future__ import annotations

import json
import os
import random

import pytest

if not os.environ.get("CI"):
    pytest.importorskip("rclpy")

from monodepth2_ros.ros.dds_profile import choose_dds_profile
from monodepth2_ros.tools.soak import DEPTH_OUTPUTS, NODES, POSE_OUTPUTS, SoakSettings, _child_env, run_soak


def test_a_short_soak_keeps_memory_threads_and_descriptors_flat(tmp_path, tiny_checkpoint):
    domain = int(os.environ.get("MONODEPTH2_TEST_ROS_DOMAIN_ID", random.randint(100, 200)))
    settings = SoakSettings(
        minutes=0.5, width=320, height=240, rate_hz=15.0, sample_period_s=5.0, warmup_s=10.0,
        weights=str(tiny_checkpoint), domain_id=domain, dds="defaults",
    )  # fmt: skip
    result = run_soak(settings, tmp_path)
    summary = result["summary"]
    assert summary["exit_codes"] == {"camera": 0, "depth_node": 0, "pose_node": 0}
    assert [s["t_s"] for s in result["samples"]] == [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
    for name in NODES:
        node = summary["nodes"][name]
        assert not node["crashed"], name
        assert node["threads_end"] <= node["threads_after_warmup"], name
        assert node["fds_end"] <= node["fds_after_warmup"], name
        assert node["rss_growth"] <= settings.max_rss_growth, name
        assert node["latency_p95_first_ms"] is not None and node["latency_p95_last_ms"] is not None
    steady = [s for s in result["samples"] if s["t_s"] >= settings.warmup_s]
    for topic in (*DEPTH_OUTPUTS, *POSE_OUTPUTS):
        assert all(s["outputs"][topic]["rate_hz"] > 0 for s in steady), topic
    assert json.loads((tmp_path / "soak.json").read_text())["summary"]["nodes"].keys() == set(NODES)
    assert (tmp_path / "soak.png").stat().st_size > 0
    # nothing configured Fast DDS, so the depth node ran on its own profile (where /dev/shm has room)
    log = (tmp_path / "depth_node.log").read_text()
    assert "Fast DDS: " in log  # the node says what it chose, either way
    assert ("Fast DDS: fastdds_nodes.xml" in log) == (choose_dds_profile(os.environ).path is not None)


def test_the_soak_sets_large_data_or_nothing():
    assert _child_env(SoakSettings(), 7)["FASTDDS_BUILTIN_TRANSPORTS"] == "LARGE_DATA"
    assert _child_env(SoakSettings(dds="defaults"), 7).get("FASTDDS_BUILTIN_TRANSPORTS") == os.environ.get(
        "FASTDDS_BUILTIN_TRANSPORTS"
    )
    with pytest.raises(ValueError, match="dds must be one of large_data, defaults"):
        _child_env(SoakSettings(dds="cyclone"), 7)
