"""The rectification benchmark runs end to end on a tiny model and reports both modes."""

from __future__ import annotations

import json

from monodepth2_ros.tools.rectify_bench import main


def test_rectify_benchmark_compares_the_node_with_and_without_rectification(tiny_checkpoint, capsys):
    code = main(["--weights", str(tiny_checkpoint), "--frames", "2", "--width", "160", "--height", "48", "--threads", "1"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["setup"]["rectification"].startswith("on (plumb_bob, 160x48")
    for mode in ("rectify_false", "rectify_auto"):
        latency = result["node_latency_ms"][mode]
        assert latency["n"] == 2 and 0 < latency["p50"] <= latency["p95"]
    assert result["remap_ms_p50"] > 0 and result["map_build_ms_p50"] > 0
    assert result["added_ms_p50"] == result["node_latency_ms"]["rectify_auto"]["p50"] - result["node_latency_ms"]["rectify_false"]["p50"]
