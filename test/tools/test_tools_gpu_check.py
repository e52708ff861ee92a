"""The GPU check's parts that run anywhere: the no-CUDA exit, the check runner, the report writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monodepth2_ros.inference.weights import bundled_weights_dir
from monodepth2_ros.tools import gpu_check
from monodepth2_ros.tools.gpu_check import CheckResult, CheckRun, markdown_report, parse_pytest_counts, write_report

REPO = Path(__file__).resolve().parents[2]
NO_GPU = not gpu_check.cuda_device_present()


@pytest.mark.skipif(not NO_GPU, reason="this machine has a CUDA device")
def test_script_says_no_cuda_device_and_exits_2(tmp_path):
    finished = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_check.sh"), str(tmp_path / "out")], capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == gpu_check.NO_CUDA_EXIT
    assert "no CUDA device" in finished.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not NO_GPU, reason="this machine has a CUDA device")
def test_driver_without_cuda_stops_before_importing_torch(tmp_path):
    code = (
        "import sys; from monodepth2_ros.tools import gpu_check; "
        f"rc = gpu_check.main(['--out', {str(tmp_path / 'out')!r}]); print(rc, 'torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert finished.stdout.split() == [str(gpu_check.NO_CUDA_EXIT), "False"], finished.stderr
    assert "gpu_check: no CUDA device" in finished.stderr


def test_check_run_reports_ok_failed_skipped_and_keeps_going():
    now = [0.0]

    def clock() -> float:
        return now[0]

    def slow_ok():
        now[0] += 30.0
        return True, "3 figures", {"value": 3}

    def broken():
        raise RuntimeError("CUDA error: an illegal memory access")

    def no_module():
        raise ModuleNotFoundError("No module named 'rclpy'", name="rclpy")

    run = CheckRun(budget_s=100.0, clock=clock)
    run.run("first", slow_ok)
    run.run("second", broken)
    run.run("third", lambda: (False, "max diff 0.2", {}))
    run.run("fourth", no_module)
    run.run("fifth", slow_ok, needs_s=80.0)  # 70 s left
    assert [(r.name, r.status) for r in run.results] == [
        ("first", "ok"), ("second", "failed"), ("third", "failed"), ("fourth", "skipped"), ("fifth", "skipped"),
    ]  # fmt: skip
    first, second, _, fourth, fifth = run.results
    assert first.seconds == 30.0 and first.details == {"value": 3}
    assert second.error == "RuntimeError: CUDA error: an illegal memory access" and "Traceback" in second.details["traceback"]
    assert fourth.error == "missing module 'rclpy'"
    assert fifth.error.startswith("time budget: 70 s left")


def test_pytest_counts_come_from_the_closing_line():
    output = "....s.F\n=== short test summary info ===\nFAILED test_x.py::test_y\n1 failed, 5 passed, 1 skipped, 2 deselected in 3.2s\n"
    assert parse_pytest_counts(output) == {"failed": 1, "passed": 5, "skipped": 1, "deselected": 2}
    assert parse_pytest_counts("12 passed in 1.0s") == {"passed": 12}
    assert parse_pytest_counts("1 passed, 1 error in 0.5s") == {"passed": 1, "errors": 1}
    assert parse_pytest_counts("no tests ran") == {}


def test_report_is_one_json_and_one_markdown_table(tmp_path):
    header = {"gpus": ["NVIDIA H100 80GB HBM3"], "torch": "2.11.0+cu130"}
    results = [
        CheckResult("peak matmul", "ok", 2.5, "bf16 790 TFLOP/s", {"bf16": 7.9e5}),
        CheckResult("compile | threads", "failed", 61.0, "built 40 s", error="RuntimeError: boom"),
        CheckResult("node benchmark", "skipped", 0.0, error="missing module 'rclpy'"),
    ]
    json_path, markdown_path = write_report(tmp_path / "out", header, results)
    payload = json.loads(json_path.read_text())
    assert payload["header"] == header and payload["ok"] is False
    assert [c["status"] for c in payload["checks"]] == ["ok", "failed", "skipped"]
    assert payload["checks"][0]["details"] == {"bf16": 7.9e5}
    table = [line for line in markdown_path.read_text().splitlines() if line.startswith("| ")]
    assert table[0] == "| # | check | status | seconds | figures / error |"
    assert table[1] == "| 1 | peak matmul | ok | 2.5 | bf16 790 TFLOP/s |"
    assert table[2] == "| 2 | compile \\| threads | failed | 61.0 | built 40 s; RuntimeError: boom |"
    assert table[3] == "| 3 | node benchmark | skipped | 0.0 | missing module 'rclpy' |"
    assert "1 of 3 checks ok." in markdown_report(header, results)
    assert write_report(tmp_path / "ok", header, results[:1])[0].read_text().count('"ok": true') == 1


def test_textured_training_triplets_make_batches_the_trainer_loads():
    from monodepth2_ros.training.batch import collate_samples

    dataset = gpu_check._TexturedTriplets(3, 32, 64)
    batch = collate_samples([dataset[i] for i in range(len(dataset))])
    assert batch.target.shape == (3, 3, 32, 64) and batch.sources.shape == (3, 2, 3, 32, 64)
    assert batch.target.dtype.is_floating_point is False and (batch.target[0] != batch.target[1]).any()


def test_training_steps_check_runs_the_trainers_step_on_the_cpu(tmp_path):
    """The same code the GPU run uses, at a tiny size on the CPU (no sync debugger there)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        passed, summary, details = gpu_check.check_training_steps(
            bundled_weights_dir(), tmp_path, "fp32", device="cpu", size=(64, 96), steps=5
        )
    finally:
        torch.set_num_threads(previous)
    assert details["device"] == "cpu" and len(details["losses"]) == 5
    assert details["skipped_steps"] == 0 and details["grad_scaler"] is False
    assert passed, summary
    assert summary.startswith("cpu: loss (same batch)") and "5/5 finite" in summary


def test_onnxruntime_check_reports_providers_and_node_placement_on_the_cpu(tmp_path):
    pytest.importorskip("onnxruntime")
    passed, summary, details = gpu_check.check_onnxruntime(bundled_weights_dir(), tmp_path, device="cpu")
    assert details["fp32"]["providers_used"] == ["CPUExecutionProvider"]
    assert set(details["int8"]["node_placement"]) == {"CPUExecutionProvider"}
    assert details["fp32"]["max_diff_vs_eager_fp32"] < 1e-4
    assert passed, summary
