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
from monodepth2_ros.training.config import config_from_dict
from monodepth2_ros.training.frame_cache import open_frame_cache
from monodepth2_ros.training.samples import select_samples

HEIGHT, WIDTH = 64, 96
SMALL = [
    "--height", str(HEIGHT), "--width", str(WIDTH), "--batch-size", "4", "--num-workers", "0", "--device", "cpu",
    "--set", "runtime.max_val_batches=2",
]


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
def guarded_runs(slow_drive, module_tmp_path):
    """The same command twice: 1 epoch, then resumed to 2 (early stopping off, so they all run)."""
    run_dir = module_tmp_path / "finetune" / "run"
    common = [
        "--bag", str(slow_drive), "--init", "default", "--out", str(run_dir), *SMALL, "--set", "finetune.patience=0",
        "--depth-topic", TOPIC_DEPTH,
    ]  # fmt: skip
    first = _run(*common, "--epochs", "1")
    best_after_first = _best_abs_rel(run_dir, slow_drive)
    second = _run(*common, "--epochs", "2")
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
    assert [r["step"] for r in validations][:1] == [0] and validations[-1]["epoch"] == 1  # resumed to epoch 2
    assert all(r["frames"] > 0 for r in validations)
    best = json.loads((run_dir / "best" / "best.json").read_text())
    assert best["criterion"] == "guarded_photometric"
    assert best["value"] <= best["start"]["score"]
    start_abs_rel, best_abs_rel = _best_abs_rel(run_dir, slow_drive)
    assert start_abs_rel == pytest.approx(start_first)
    # After 1 epoch and after 2: best/ is never worse than the start model on held-back frames.
    assert best_first <= start_abs_rel + 1e-6
    assert best_abs_rel <= start_abs_rel + 1e-6


def test_the_report_compares_start_and_fine_tuned_on_held_back_frames(guarded_runs):
    run_dir, _, (status, out, _), _ = guarded_runs
    report = json.loads((run_dir / "report" / "report.json").read_text())
    start, tuned = report["start_model"]["photometric"], report["fine_tuned"]["photometric"]
    assert 0 < tuned <= start + 1e-9 and report["held_back_frames"] > 0
    assert report["last_checkpoint"]["frames"] == report["held_back_frames"]
    assert report["last_checkpoint"]["drift"] > 0  # last/ was trained: its depth moved, if only a little
    assert f"photometric error start model {start:.4f}, fine-tuned {tuned:.4f}" in out
    # With the ground-truth depth topic: both models' median-scaled abs_rel on the same held-back frames.
    depth = report["depth"]
    assert depth["frames"] == report["held_back_frames"]
    _, images, truth = _held_back_targets(run_dir, slow_drive, run_dir.parent / "gt_cache")
    scored = slice(0, depth["frames"])  # the frames the guard figures scored
    start_abs_rel = _abs_rel(bundled_weights_dir(), images[scored], truth[scored])
    best_abs_rel = _abs_rel(run_dir / "best", images[scored], truth[scored])
    assert depth["start_model"]["abs_rel"] == pytest.approx(start_abs_rel, rel=1e-3)
    assert depth["fine_tuned"]["abs_rel"] == pytest.approx(best_abs_rel, rel=1e-3)
    assert depth["abs_rel_change"] == pytest.approx(best_abs_rel / start_abs_rel - 1, abs=1e-3)
    last_abs_rel = _abs_rel(run_dir / "last", images[scored], truth[scored])
    assert depth["last_checkpoint"]["abs_rel"] == pytest.approx(last_abs_rel, rel=1e-3)
    assert f"median-scaled abs_rel start model {depth['start_model']['abs_rel']:.4f}" in out
    # every validation logs the held-back abs_rel too (a curve to watch; best/ is not chosen by it)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    validations = [r for r in records if r["kind"] == "val"]
    assert all(r["abs_rel"] > 0 for r in validations)
    assert validations[0]["abs_rel"] == pytest.approx(depth["start_model"]["abs_rel"], rel=1e-3)
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


def test_a_fine_tune_with_odometry_logs_how_far_its_motion_is_from_the_measured_one(slow_drive, tmp_path):
    run_dir = tmp_path / "odometry"
    status, out, err = _run("--bag", str(slow_drive), "--init", "default", "--out", str(run_dir), *SMALL,
                            "--odometry-topic", "/ground_truth/odom", "--max-steps", "2", "--set", "runtime.log_interval=1",
                            "--set", "loss.pose_weight=1")
    assert status == 0, err
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    velocity = [row["velocity_m"] for row in logged if row.get("kind") == "train"]
    assert len(velocity) == 2 and all(np.isfinite(velocity)) and min(velocity) > 0
    pose = [row["pose_error"] for row in logged if row.get("kind") == "train"]
    assert len(pose) == 2 and all(np.isfinite(pose)) and min(pose) > 0
    assert "chose optim.lr=2e-05" in out  # the cautious fine-tune defaults stay (see README)


@pytest.fixture(scope="module")
def guarded_trainer(slow_drive, module_tmp_path):
    """A FinetuneTrainer on the slow drive (nothing trained): for the selection logic."""
    from monodepth2_ros.training.config import apply_overrides, load_config
    from monodepth2_ros.training.data import prepare_data
    from monodepth2_ros.training.finetune import FinetuneTrainer
    from monodepth2_ros.training.finetune_plan import plan_finetune
    from monodepth2_ros.training.run_dir import RunPaths

    run_dir = module_tmp_path / "selection" / "run"
    config = apply_overrides(
        load_config(),
        {
            "data.bags": [str(slow_drive)], "data.height": HEIGHT, "data.width": WIDTH,
            "model.init": str(bundled_weights_dir()), "optim.batch_size": 4, "runtime.num_workers": 0,
            "runtime.device": "cpu", "finetune.patience": 3,
        },
    )
    config, _ = plan_finetune(config, {"data.height", "data.width"}, run_dir / "cache")
    return FinetuneTrainer(config, RunPaths(run_dir), prepare_data(config, run_dir / "cache"))


def test_best_is_replaced_only_by_a_healthy_improvement_and_patience_stops_the_run(guarded_trainer, monkeypatch):
    from monodepth2_ros.training import finetune as finetune_module
    from monodepth2_ros.training.validation import GuardFigures

    trainer = guarded_trainer
    sequence = [
        GuardFigures(photometric=0.10, consistency=0.02, automask_fraction=0.50, drift=0.0, frames=8),  # start
        GuardFigures(photometric=0.05, consistency=0.01, automask_fraction=0.90, drift=0.3, frames=8),  # degenerate
        # score (photometric + 0.5 consistency) (1 + 2 drift): 0.110 for the start model
        GuardFigures(photometric=0.09, consistency=0.02, automask_fraction=0.55, drift=0.05, frames=8),  # 0.110: drift
        GuardFigures(photometric=0.08, consistency=0.02, automask_fraction=0.55, drift=0.05, frames=8),  # 0.099: better
        GuardFigures(photometric=0.07995, consistency=0.02, automask_fraction=0.55, drift=0.05, frames=8),  # < min gain
        GuardFigures(photometric=0.20, consistency=0.02, automask_fraction=0.55, drift=0.05, frames=8),
        GuardFigures(photometric=0.09, consistency=0.02, automask_fraction=0.55, drift=0.0, frames=8),
    ]
    monkeypatch.setattr(finetune_module, "guard_validate", lambda *args, **kwargs: sequence.pop(0))
    best_file = trainer.paths.best / "best.json"

    trainer.validate()  # step 0: the start model becomes best/
    assert json.loads(best_file.read_text())["is_start_model"] is True
    start_value = trainer.best["value"]
    trainer.step = 1
    trainer.validate()  # lower error, but the auto-mask share jumped 0.4: not eligible
    assert trainer.best["value"] == start_value and trainer.best["bad_validations"] == 1
    assert json.loads(best_file.read_text())["step"] == 0
    trainer.step = 2
    trainer.validate()  # 10 % lower error, paid for by a 5 % departure from the start model's depth
    assert trainer.best["bad_validations"] == 2 and json.loads(best_file.read_text())["step"] == 0
    trainer.step = 3
    trainer.validate()
    record = json.loads(best_file.read_text())
    assert (record["step"], record["is_start_model"], trainer.best["bad_validations"]) == (3, False, 0)
    assert record["value"] == pytest.approx(0.099)
    assert trainer.stop_reason() is None
    for step in (4, 5, 6):
        trainer.step = step
        trainer.validate()
    assert json.loads(best_file.read_text())["step"] == 3
    assert trainer.stop_reason() == "early stop: 3 validation(s) without improvement on held-back frames"


def test_the_anchor_adds_nothing_for_the_start_model_and_pulls_a_drifted_one_back(guarded_trainer):
    from monodepth2_ros.training.finetune import anchored_loss
    from monodepth2_ros.training.objective import losses_from_predictions

    trainer = guarded_trainer
    batch = next(iter(trainer.loader)).to("cpu")
    weight = 0.5
    anchored = anchored_loss(losses_from_predictions, trainer.start_depth_net, weight, trainer.config.loss)
    with torch.no_grad():
        start_model = trainer.model.eval()
        predictions = start_model(batch.target_aug, batch.sources_aug)
        plain = losses_from_predictions(predictions, batch, trainer.config.loss).total
        assert float(anchored(predictions, batch, trainer.config.loss).total) == pytest.approx(float(plain), abs=1e-6)
        flipped = replace(predictions, disparities=tuple(1.0 - d for d in predictions.disparities))  # near <-> far
        gap = anchored(flipped, batch, trainer.config.loss).total - losses_from_predictions(flipped, batch, trainer.config.loss).total
        assert float(gap) > 0.05 * weight
    trainer.model.train()


def test_the_learning_rate_warms_up_and_decays_for_the_last_quarter_of_epochs_or_time(guarded_trainer):
    import time

    trainer = guarded_trainer
    saved = (trainer.step, trainer.epoch, trainer.deadline, trainer._fit_started)
    base, warmup = trainer.config.optim.lr, trainer.config.finetune.warmup_steps
    try:
        trainer.epoch, trainer.deadline = 0, None
        trainer.step = 0
        assert trainer.learning_rate() == pytest.approx(base / warmup)
        trainer.step = warmup - 1
        assert trainer.learning_rate() == pytest.approx(base)
        trainer.epoch = trainer.config.optim.lr_decay_epoch
        assert trainer.learning_rate() == pytest.approx(base * trainer.config.optim.lr_decay_factor)
        trainer.epoch = 0
        now = time.monotonic()
        trainer._fit_started, trainer.deadline = now - 80.0, now + 20.0  # 80 % of a 100 s budget used
        assert trainer.learning_rate() == pytest.approx(base * trainer.config.optim.lr_decay_factor)
        trainer._fit_started, trainer.deadline = now - 20.0, now + 80.0
        assert trainer.learning_rate() == pytest.approx(base)
    finally:
        trainer.step, trainer.epoch, trainer.deadline, trainer._fit_started = saved
