"""``monodepth2 train --init default`` on a slow synthetic drive: chosen defaults, a guarded run, the report.

The drive moves 5-8 cm per frame at 60 Hz through streets whose depth is 5-60 m: adjacent frames
carry little parallax, the case where plain fine-tuning drifts. Ground-truth depth is only used
here, to check that ``best/`` never ends worse than the start model on held-back frames.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from monodepth2_ros.cli.main import main
from monodepth2_ros.evaluation import DepthEvaluation
from monodepth2_ros.inference.weights import bundled_weights_dir
from monodepth2_ros.model.checkpoint import load_checkpoint
from monodepth2_ros.model.geometry import disp_to_depth
from monodepth2_ros.synthetic.bag import TOPIC_DEPTH, write_drive_bag
from monodepth2_ros.synthetic.config import SynthConfig
from monodepth2_ros.training.config import DataConfig, config_from_dict
from monodepth2_ros.training.frame_cache import open_frame_cache
from monodepth2_ros.training.samples import select_samples

HEIGHT, WIDTH = 64, 96
SMALL = ["--height", str(HEIGHT), "--width", str(WIDTH), "--batch-size", "4", "--num-workers", "0", "--device", "cpu"]


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["train", *args])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def slow_drive(tmp_path_factory) -> Path:
    """48 frames (0.8 s) of a slow street drive at 60 Hz, rendered at the network size."""
    config = SynthConfig(frames=48, width=WIDTH, height=HEIGHT, rate_hz=60.0, max_speed_mps=5.0, seed=3)
    return write_drive_bag(config, tmp_path_factory.mktemp("slow") / "slow_drive", "mcap")


@pytest.fixture(scope="module")
def guarded_runs(slow_drive, tmp_path_factory):
    """The same command twice: 2 epochs, then resumed to 5 (early stopping off, so they all run)."""
    run_dir = tmp_path_factory.mktemp("finetune") / "run"
    common = ["--bag", str(slow_drive), "--init", "default", "--out", str(run_dir), *SMALL, "--set", "finetune.patience=0"]
    first = _run(*common, "--epochs", "2")
    best_after_first = _best_abs_rel(run_dir, slow_drive)
    second = _run(*common, "--epochs", "5")
    return run_dir, first, second, best_after_first


def _held_back_targets(run_dir: Path, bag: Path, tmp: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images and ground-truth depth of the run's held-back targets (the split it recorded)."""
    config = config_from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    data = replace(config.data, depth_topic=TOPIC_DEPTH, cache_dir=None)
    cache = open_frame_cache(data, tmp)
    targets = select_samples(cache, data, config.model).val[:, 0]
    return targets, np.asarray(cache.images)[targets], np.asarray(cache.depth)[targets]


@torch.no_grad()
def _abs_rel(folder: Path, images: np.ndarray, truth: np.ndarray) -> float:
    depth_net = load_checkpoint(folder, load_pose=False).depth_net.eval()
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    _, depth = disp_to_depth(depth_net(batch)[0])
    evaluation = DepthEvaluation(median_scaling=True)
    for gt, predicted in zip(truth, depth[:, 0].numpy(), strict=True):
        evaluation.add(gt.astype(np.float64), predicted.astype(np.float64))
    return float(evaluation.summary().as_dict()["abs_rel"])


def _best_abs_rel(run_dir: Path, bag: Path) -> tuple[float, float]:
    _, images, truth = _held_back_targets(run_dir, bag, run_dir.parent / "gt_cache")
    return _abs_rel(bundled_weights_dir(), images, truth), _abs_rel(run_dir / "best", images, truth)


def test_the_defaults_are_chosen_from_the_data_and_printed(guarded_runs):
    run_dir, (status, out, err), _, _ = guarded_runs
    assert status == 0, err
    assert "chose data.stride=" in out and "parallax" in out
    stride = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["stride"]
    assert stride > 1  # the slow camera's neighbours are taken further apart
    assert "chose optim.lr=2e-05" in out and "chose data.val_fraction=" in out
    assert "chose data.height" not in out  # given on the command line: left alone
    recorded = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert recorded["model"]["init"] == str(bundled_weights_dir())
    assert recorded["data"]["height"] == HEIGHT and recorded["optim"]["lr"] == pytest.approx(2e-5)


def test_the_start_model_is_validated_first_and_best_never_ends_worse(guarded_runs, slow_drive):
    run_dir, _, (status, out, err), (start_first, best_first) = guarded_runs
    assert status == 0, err
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    validations = [r for r in records if r["kind"] == "val"]
    assert validations[0]["step"] == 0 and validations[0]["drift"] == 0.0  # the start model
    assert len(validations) >= 6  # the start, 5 epoch ends (the resumed run continued)
    assert all(r["frames"] > 0 for r in validations)
    best = json.loads((run_dir / "best" / "best.json").read_text())
    assert best["criterion"] == "guarded_photometric"
    assert best["value"] <= best["start"]["score"]
    start_abs_rel, best_abs_rel = _best_abs_rel(run_dir, slow_drive)
    assert start_abs_rel == pytest.approx(start_first)
    # After 2 epochs and after 5: best/ is never worse than the start model on held-back frames.
    assert best_first <= start_abs_rel + 1e-6
    assert best_abs_rel <= start_abs_rel + 1e-6


def test_the_report_compares_start_and_fine_tuned_on_held_back_frames(guarded_runs):
    run_dir, _, (status, out, _), _ = guarded_runs
    report = json.loads((run_dir / "report" / "report.json").read_text())
    start, tuned = report["start_model"]["photometric"], report["fine_tuned"]["photometric"]
    assert 0 < tuned <= start + 1e-9 and report["held_back_frames"] > 0
    assert f"photometric error start model {start:.4f}, fine-tuned {tuned:.4f}" in out
    strip = cv2.imread(str(run_dir / "report" / "depth_strip.png"))
    rows = min(4, report["held_back_frames"])
    assert strip.shape[0] == rows * HEIGHT + (rows - 1) * 2 and strip.shape[1] == 3 * WIDTH + 2 * 2
    # The image column is the held-back frame, the depth columns are coloured maps (not blank).
    assert strip[:HEIGHT, WIDTH + 2 :].std() > 5


def test_a_time_budget_ends_the_run_cleanly_with_best_written(slow_drive, tmp_path):
    run_dir = tmp_path / "budget"
    status, out, err = _run("--bag", str(slow_drive), "--init", "default", "--out", str(run_dir), *SMALL, "--minutes", "0.01")
    assert status == 0, err
    assert "stopped: time budget of 0.01 min used" in out
    assert (run_dir / "best" / "encoder.pth").is_file() and (run_dir / "last" / "training_state.pt").is_file()
    assert json.loads((run_dir / "best" / "best.json").read_text())["is_start_model"] is True
    assert "best/ holds the start model" in out and (run_dir / "report" / "report.json").is_file()
