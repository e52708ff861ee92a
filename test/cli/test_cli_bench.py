import json

from monodepth2_ros.cli.main import main


def test_bench_prints_and_writes_latency_rows_for_both_networks(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--device", "cpu", "--backends", "eager:fp32", "--node-frames", "0", "--accuracy-frames", "1", "--height", "64", "--width", "96", "--runs", "3", "--warmup", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "depth resnet18 eager fp32" in printed and "pose resnet18 eager fp32" in printed
    rows = json.loads(out.read_text())["rows"]
    assert [row["name"].split()[0] for row in rows] == ["depth", "pose"]
    for row in rows:
        assert row["runs"] == 3 and (row["width"], row["height"]) == (96, 64)
        assert 0 < row["p50_ms"] <= row["p95_ms"] * 1.0001
