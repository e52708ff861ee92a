"""The node benchmark runs end to end on a tiny model and reports what it promises."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from monodepth2_ros.ros.dds_profile import choose_dds_profile, describe_dds_setting
from monodepth2_ros.tools.depth_node_bench import main


def test_node_benchmark_reports_latencies_and_rates_as_json(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["--weights", str(tiny_checkpoint), "--frames", "4", "--width", "120", "--height", "40",
                 "--probe-seconds", "1.0", "--warmup", "1", "--threads", "1", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["image"] == "120x40 bgr8" and result["network"] == "96x64 ResNet-18"
    for key in ("node_latency_ms", "model_latency_ms"):
        assert result[key]["n"] == 4 and 0 < result[key]["p50"] <= result[key]["p95"]
    assert result["flood_output_rate_hz"] > 0 and result["probes"]
    assert result["sustained_rate_hz"] == 0 or any(probe["no_backlog"] for probe in result["probes"])


def test_node_benchmark_runs_the_requested_backend(tiny_checkpoint):
    from monodepth2_ros.tools.depth_node_bench import run_node_benchmark

    result = run_node_benchmark(tiny_checkpoint, frames=2, width=120, height=40, probe_s=0.2, warmup=1, threads=1, backend="eager_optimized")
    assert result["backend"] == "eager_optimized fp32"
    assert result["node_latency_ms"]["n"] == 2
    assert (result["output_size"], result["depth_output"]) == ("input", "120x40")


def test_node_benchmark_with_outputs_at_the_network_size(tiny_checkpoint):
    from monodepth2_ros.tools.depth_node_bench import run_node_benchmark

    result = run_node_benchmark(tiny_checkpoint, frames=2, width=120, height=40, probe_s=0.2, warmup=1, threads=1, output_size="network")
    assert (result["output_size"], result["depth_output"]) == ("network", "96x64")  # the node's parameter took effect
    assert result["node_latency_ms"]["n"] == 2


def test_cross_process_mode_counts_the_frames_a_child_process_delivers(tiny_checkpoint):
    from monodepth2_ros.tools.depth_node_bench import run_cross_process_benchmark

    result = run_cross_process_benchmark(tiny_checkpoint, frames=6, width=160, height=120, rate_hz=10.0, threads=1)
    assert result["transport"].startswith("publisher in another process")
    assert result["sent"] == 6 and result["image"].startswith("160x120 rgb8")
    assert result["subscription"].startswith("reliable (auto")  # a reliable publisher, followed
    # The count, not a rate: the depth node keeps the newest frame only (keep-last 1), so how many
    # of the 6 it takes depends on the machine's load (3 of 6 in one full-suite CI run, 6 of 6 alone).
    assert 0 < result["delivered"] <= result["sent"]
    assert result["delivered_percent"] == 100.0 * result["delivered"] / result["sent"]
    assert 0 < result["outputs"] <= result["delivered"] and result["latency_from_stamp_ms"]["p50"] > 0


def test_stamps_are_read_off_serialised_messages_without_deserialising():
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import PointCloud2

    from monodepth2_ros.tools.node_bench_common import cdr_header_stamp_ns

    msg = PointCloud2(height=1, width=3)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_764_000_000, 987_654_321
    msg.header.frame_id = "camera_optical"
    assert cdr_header_stamp_ns(serialize_message(msg)) == 1_764_000_000_987_654_321


def test_node_benchmark_with_the_node_in_its_own_process(tiny_checkpoint):
    from monodepth2_ros.ros.stage_profile import DEPTH_STAGES
    from monodepth2_ros.tools.depth_node_bench import run_node_benchmark

    result = run_node_benchmark(tiny_checkpoint, frames=2, width=120, height=40, probe_s=0.3, warmup=1, threads=1, node_process=True)
    assert result["node_process"] == "separate" and result["network"] == "96x64 ResNet-18"
    assert result["transport"] == f"node in its own process; the publisher's: {describe_dds_setting()}"
    # the node's process took the nodes' Fast DDS profile (unless this environment configures Fast DDS),
    # and its outputs still reached this process, on Fast DDS's defaults
    expected = choose_dds_profile(os.environ).path
    if expected is not None:
        assert result["node_dds"].endswith(f"FASTDDS_DEFAULT_PROFILES_FILE={expected}")
    else:  # configured here, or no room in /dev/shm: the node must not have taken it either
        assert "fastdds_nodes.xml" not in result["node_dds"], result["node_dds"]
    assert result["depth_output"] == "120x40"
    assert result["node_latency_ms"]["n"] == 2 and result["node_processing_ms"]["p50"] > 0  # from its diagnostics
    stages = result["node_stage_p50_ms"]
    assert list(stages) == list(DEPTH_STAGES) and stages["network"] > 0 and stages["cloud"] > 0


def test_the_output_echo_answers_each_image_with_ready_made_outputs_of_its_size(graph):
    from monodepth2_ros.tools.output_echo import OutputEcho
    from ros_harness import cloud_array, depth_array, image_msg, wait_until

    echo = graph.add(OutputEcho(6, 10, context=graph.context, namespace=graph.namespace))
    inboxes = graph.subscribe_outputs()
    assert wait_until(lambda: graph.image_pub.get_subscription_count() > 0)
    rgb = np.zeros((40, 120, 3), np.uint8)  # any image: the echo does not look at it
    for sec in (7, 8):
        graph.image_pub.publish(image_msg(rgb, sec))
        depth = inboxes["depth"].wait_stamp(sec)
        points = inboxes["points"].wait_stamp(sec)
        colored = inboxes["depth/colored"].wait_stamp(sec)
        assert (depth.encoding, depth.height, depth.width) == ("32FC1", 6, 10)
        assert np.all(depth_array(depth) == 1.0)
        assert (points.height, points.width, points.point_step) == (6, 10, 16)
        assert np.all(cloud_array(points)[..., 2] == 1.0)
        assert (colored.encoding, colored.height, colored.width) == ("bgr8", 6, 10)
    assert echo.answered == 2


def test_the_output_echo_refuses_an_empty_size():
    from monodepth2_ros.tools.output_echo import main as echo_main

    with pytest.raises(SystemExit) as raised:
        echo_main(["--width", "0", "--height", "375"])
    assert raised.value.code == 2


def test_the_transport_floor_is_timed_through_an_echo_process_at_the_nodes_output_size(tiny_checkpoint):
    from monodepth2_ros.tools.depth_node_bench import run_node_benchmark

    result = run_node_benchmark(tiny_checkpoint, frames=3, width=120, height=40, probe_s=0.3, warmup=1, threads=1,
                                node_process=True, output_size="network", transport_floor=True)
    assert result["depth_output"] == result["transport_floor_outputs"] == "96x64"  # the echo took the node's size
    floor = result["transport_floor_ms"]
    assert floor["n"] == 3 and 0 < floor["p50"] <= floor["p95"]  # every frame answered, timed as the node's
    share = result["transport_floor_share_of_node_p50"]
    assert share == floor["p50"] / result["node_latency_ms"]["p50"]


def test_the_transport_floor_needs_the_node_in_its_own_process(tiny_checkpoint, capsys):
    from monodepth2_ros.tools.depth_node_bench import run_node_benchmark

    with pytest.raises(ValueError, match="node_process"):
        run_node_benchmark(tiny_checkpoint, frames=1, transport_floor=True)
    with pytest.raises(SystemExit) as raised:
        main(["--weights", str(tiny_checkpoint), "--transport-floor"])
    assert raised.value.code == 2 and "--node-process" in capsys.readouterr().err
