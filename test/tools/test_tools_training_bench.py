"""The training-throughput benchmark: rows per setting, a table, and its module entry point."""

from __future__ import annotations

import json

from monodepth2_ros.tools.training_bench import BenchSetting, format_table, main, training_throughput


def test_throughput_row_counts_triplets_per_second():
    row = training_throughput(64, 64, 2, BenchSetting("eager bf16", precision="bf16"), steps=1, warmup=1)
    assert (row.height, row.width, row.batch, row.device) == (64, 64, 2, "cpu")
    assert row.seconds_per_step > 0 and row.triplets_per_s == 2 / row.seconds_per_step
    table = format_table([row, row])
    assert "eager bf16" in table and "1.00x" in table


def test_entry_point_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--sizes", "64x64", "--batch-size", "1", "--steps", "1", "--warmup", "1", "--settings", "eager fp32", "--json", str(out)]) == 0
    assert "triplets/s" in capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert [(r["setting"], r["width"], r["height"]) for r in rows] == [("eager fp32", 64, 64)]
