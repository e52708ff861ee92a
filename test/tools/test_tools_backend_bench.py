"""``monodepth2 bench --quick``: one run, every column, the eager fp32 baseline measured alongside."""

import dataclasses
import json

import pytest
import torch

from monodepth2_ros.cli.main import main
from monodepth2_ros.ros.stage_profile import DEPTH_STAGES
from monodepth2_ros.tools.backend_bench import BenchRow, default_candidates, parse_candidates
from monodepth2_ros.tools.network_bench import device_peak, network_flops

pytest.importorskip("onnxruntime")

_NODE_COLUMNS = {"node_p50_ms", "node_p95_ms", "node_model_p50_ms", "node_sustained_hz", "node_stages_ms"}
_OPTIONAL = {"note", "node_note"}


def test_bench_quick_prints_a_table_and_writes_every_column_for_each_backend(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--device", "cpu", "--backends", "eager_optimized,onnxruntime:int8", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    table = report["table"]
    assert [(r["backend"], r["precision"]) for r in table] == [("eager", "fp32"), ("eager_optimized", "fp32"), ("onnxruntime", "int8")]
    assert [r["status"] for r in table] == ["baseline", "ok", "ok"]
    assert set(table[0]) == {f.name for f in dataclasses.fields(BenchRow)}
    for row in table:
        for key, value in row.items():
            if key in _OPTIONAL:
                continue
            if key in _NODE_COLUMNS and value is None:
                assert row["node_note"].startswith("n/a: ")  # missing node figures say why
                continue
            assert value is not None, f"{row['backend']} {row['precision']}: {key} missing"
        assert 0 < row["depth_p50_ms"] <= row["depth_p95_ms"] * 1.0001
        assert row["depth_throughput"] > 0 and row["pose_throughput"] > 0
        assert 0 < row["limit_ms"] < row["depth_p50_ms"]  # nothing beats the hardware's peak
        assert row["max_disp_diff"] >= 0 and row["abs_rel"] > 0
    baseline, optimized, int8 = table
    assert baseline["abs_rel_change"] == 0 and baseline["max_disp_diff"] == 0 and baseline["depth_speedup"] == 1
    assert optimized["max_disp_diff"] < 1e-4 and abs(optimized["abs_rel_change"]) < 1e-4
    assert 0 < int8["max_disp_diff"] < 0.02 and abs(int8["abs_rel_change"]) < 0.005
    assert report["depth_gflops"] > report["pose_gflops"] > 0
    assert [r["name"] for r in report["rows"]] == ["depth resnet18 eager fp32", "pose resnet18 eager fp32"]
    for header in ("depth p50", "pose p50", "depth/s", "d_abs_rel", "max_d_disp", "limit ms", "%peak", "node p50"):
        assert header in printed
    assert "onnxruntime int8" in printed and "peak = " in printed
    # the depth node's time per stage (baseline row), beside the bare network, as a table
    stages = baseline["node_stages_ms"]
    ran = [name for name in DEPTH_STAGES if name != "robot outputs"]  # the bench subscribes no scan/compressed
    assert list(stages) == list(DEPTH_STAGES) and all(stages[name] > 0 for name in ran)
    assert stages["robot outputs"] is None
    assert sum(stages[name] for name in ran) < baseline["node_p50_ms"] * 1.5  # the stages are parts of the node's time
    assert baseline["node_model_p50_ms"] > 0 and baseline["node_sustained_hz"] >= 0
    header = next(line for line in printed.splitlines() if line.startswith("backend precision") and "decode" in line)
    assert all(name in header for name in (*DEPTH_STAGES, "bare", "x bare", "in Hz"))
    stage_row = printed.splitlines()[printed.splitlines().index(header) + 1]
    assert stage_row.startswith("eager fp32") and len(stage_row.split()) == 2 + len(DEPTH_STAGES) + 4


def test_flop_count_of_the_depth_network_scales_with_the_pixels():
    small = network_flops("depth", 64, 96)
    large = network_flops("depth", 128, 192)
    assert large == pytest.approx(4 * small, rel=0.02)
    # ResNet-18's encoder alone is 1.8 GMAC at 224x224 (He et al.); 3.6 GFLOP scaled to 64x96 is ~0.44.
    assert 0.44e9 < small < 2e9


def test_cpu_peak_formula_is_cores_times_clock_times_flops_per_cycle():
    peak = device_peak(torch.device("cpu"), "fp32", measure=False)
    if peak.theoretical_gflops is None:
        pytest.skip(f"no AVX-512 formula on this CPU: {peak.formula}")
    cores, ghz, per_cycle = (float(part.split()[0]) for part in peak.formula.split(" x ")[:3])
    assert peak.theoretical_gflops == pytest.approx(cores * ghz * per_cycle, rel=1e-3)
    int8 = device_peak(torch.device("cpu"), "int8", measure=False)
    assert int8.theoretical_gflops == pytest.approx(4 * peak.theoretical_gflops)


def test_candidates_parse_and_default_to_the_eager_baseline_first():
    assert parse_candidates("eager_optimized:bf16, onnxruntime") == [("eager_optimized", "bf16"), ("onnxruntime", "fp32")]
    assert default_candidates(torch.device("cpu"))[0] == ("eager", "fp32")


def test_peak_fraction_never_exceeds_one_and_is_the_achieved_share_below_the_peak():
    from monodepth2_ros.tools.network_bench import PeakEstimate, peak_fraction

    peak = PeakEstimate("fp32", None, measured_gflops=100.0, formula="measured")
    # 1 GFLOP in 20 ms = 50 GFLOP/s: half the peak
    assert peak_fraction(1e9, 20.0, peak) == pytest.approx(0.5)
    # 1 GFLOP in 5 ms = 200 GFLOP/s, above a matmul measured too short: the peak was underestimated
    assert peak_fraction(1e9, 5.0, peak) == 1.0
    assert peak_fraction(1e9, 5.0, PeakEstimate("fp32", None, None, "unknown")) is None


def test_matmul_timing_gives_one_time_per_run():
    from monodepth2_ros.tools.network_bench import time_matmul

    times = time_matmul(torch.device("cpu"), torch.float32, 64, runs=20)
    assert len(times) == 20 and all(t > 0 for t in times)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_peak_is_timed_on_a_large_matmul_and_states_tf32():
    peak = device_peak(torch.device("cuda", 0), "fp32")
    assert peak.tf32 is torch.backends.cudnn.allow_tf32 and "TF32" in peak.formula and "20" in peak.formula
    assert peak.measured_gflops > 1000  # any CUDA GPU of the last decade does 1 TFLOP/s on an 8192^2 product
