"""The Trainer in-process: it learns, writes official checkpoints, guards NaNs and falls back on damage."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import numpy as np
import pytest
import torch

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference import DepthEstimator, InferenceConfig
from monodepth2_ros.model.checkpoint import load_checkpoint
from monodepth2_ros.training import trainer as trainer_module
from monodepth2_ros.training.batch import Batch
from monodepth2_ros.training.config import apply_overrides, load_config
from monodepth2_ros.training.data import prepare_data
from monodepth2_ros.training.run_dir import STATE_FILE, RunPaths, find_resume_point
from monodepth2_ros.training.trainer import Trainer

STEPS = 16
EPOCHS = 4


def _records(run_dir, kind):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if line["kind"] == kind]


@pytest.fixture(scope="module")
def overfit_run(synthetic_bag, module_tmp_path):
    """4 epochs of 4 steps on the same 2 triplets (64x96, batch 2, no augmentation)."""
    run_dir = module_tmp_path / "overfit" / "run"
    config = apply_overrides(
        load_config(),
        {
            "data.bags": [str(synthetic_bag)],
            "data.height": 64,
            "data.width": 96,
            "data.val_fraction": 0.0,
            "augment.flip_probability": 0.0,
            "augment.jitter_probability": 0.0,
            "optim.batch_size": 2,
            "optim.epochs": EPOCHS,
            "optim.lr": 2e-4,
            "runtime.device": "cpu",
            "runtime.num_workers": 0,
            "runtime.log_interval": 1,
            "runtime.checkpoint_interval": 100,  # only the epoch ends
        },
    )
    paths = RunPaths(run_dir)
    torch.manual_seed(0)
    data = prepare_data(config, paths.cache)
    # Two triplets, four times each: an epoch of four steps that sees only them.
    data = replace(data, train=replace_snippets(data.train, np.tile(data.train.snippets[:2], (4, 1))))
    trainer = Trainer(config, paths, data)
    result = trainer.fit()
    return trainer, result, run_dir


def replace_snippets(dataset, snippets):
    dataset.snippets = np.asarray(snippets)
    return dataset


def test_a_few_steps_on_two_samples_reduce_the_loss(overfit_run):
    _, result, run_dir = overfit_run
    losses = [record["loss"] for record in _records(run_dir, "train")]
    assert len(losses) == STEPS and result.steps == STEPS and result.skipped_steps == 0
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
    assert all(0 < r["samples_per_s"] for r in _records(run_dir, "train"))


def test_checkpoints_are_official_folders_that_the_loaders_and_estimator_read(overfit_run):
    _, _, run_dir = overfit_run
    for folder in ("last", "previous", "best"):
        names = {p.name for p in (run_dir / folder).iterdir()}
        assert {"encoder.pth", "depth.pth", "pose_encoder.pth", "pose.pth"} <= names, folder
    assert {p.name for p in (run_dir / "last").iterdir()} == {"encoder.pth", "depth.pth", "pose_encoder.pth", "pose.pth", STATE_FILE}
    checkpoint = load_checkpoint(run_dir / "last")
    assert (checkpoint.info.height, checkpoint.info.width, checkpoint.info.use_stereo) == (64, 96, False)
    assert checkpoint.pose_net is not None
    prediction = DepthEstimator(run_dir / "best", InferenceConfig(device="cpu")).estimate(np.zeros((48, 64, 3), np.uint8))
    assert prediction.depth.shape == (48, 64) and np.isfinite(prediction.depth).all()
    state = torch.load(run_dir / "last" / STATE_FILE, weights_only=True)
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (STEPS, EPOCHS, 0)
    previous = torch.load(run_dir / "previous" / STATE_FILE, weights_only=True)
    assert previous["step"] == STEPS - 4
    assert set(state) >= {"optimizer", "scheduler", "scaler", "rng", "config", "skipped_steps"}
    assert state["config"]["optim"]["epochs"] == EPOCHS
    assert json.loads((run_dir / "best" / "best.json").read_text())["criterion"] == "train_loss"


def test_the_learning_rate_decays_after_three_quarters_of_the_epochs(overfit_run):
    _, _, run_dir = overfit_run
    rates = {record["epoch"]: record["lr"] for record in _records(run_dir, "train")}
    # 4 epochs: the rate drops x0.1 from epoch round(0.75 * 4) = 3 on.
    assert rates[2] == pytest.approx(2e-4) and rates[3] == pytest.approx(2e-5)


def test_a_corrupt_last_checkpoint_falls_back_to_the_previous_one(overfit_run, tmp_path, caplog):
    import shutil

    _, _, run_dir = overfit_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("cache"))
    encoder = copy / "last" / "encoder.pth"
    encoder.write_bytes(encoder.read_bytes()[:1000])  # a write cut short
    with caplog.at_level(logging.WARNING):
        point = find_resume_point(RunPaths(copy))
    assert point.folder == copy / "previous" and point.state["step"] == STEPS - 4
    assert "cannot be resumed from" in caplog.text and "last" in caplog.text


def test_a_nan_gradient_skips_the_step_and_counts_it(overfit_run):
    trainer, _, _ = overfit_run
    batch = next(iter(trainer.loader)).to("cpu")  # float images
    poisoned = Batch(**{**batch.__dict__, "target_aug": torch.full_like(batch.target_aug, float("nan"))})
    before = [p.detach().clone() for p in trainer.parameters]
    statistics = [b.clone() for b in trainer.model.buffers()]
    skipped = trainer.skipped_steps
    trainer.train_step(poisoned)
    assert trainer.skipped_steps == skipped + 1
    assert all(torch.equal(p, q) for p, q in zip(trainer.parameters, before, strict=True))
    # The NaN forward pass must not leave NaN in BatchNorm's running statistics either.
    assert all(torch.equal(b, q) for b, q in zip(trainer.model.buffers(), statistics, strict=True))


def test_out_of_memory_suggests_a_smaller_batch_or_resolution(overfit_run, monkeypatch):
    trainer, _, _ = overfit_run

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer_module, "compute_losses", out_of_memory)
    with pytest.raises(ConfigError, match=r"out of memory on cpu at batch size 2 and 96x64: lower --batch-size or --height/--width"):
        trainer.train_step(next(iter(trainer.loader)))


def test_validation_reports_depth_metrics_when_the_bag_has_ground_truth(overfit_run, synthetic_bag, tmp_path):
    from monodepth2_ros.training.config import DataConfig
    from monodepth2_ros.training.dataset import SnippetDataset, make_loader
    from monodepth2_ros.training.frame_cache import open_frame_cache
    from monodepth2_ros.training.validation import validate

    trainer, _, _ = overfit_run
    data = DataConfig(bags=(str(synthetic_bag),), height=64, width=96, depth_topic="/ground_truth/depth")
    cache = open_frame_cache(data, tmp_path)
    dataset = SnippetDataset(cache, np.array([[5, 4, 6], [8, 7, 9]]), None, with_depth=True)
    loader, _ = make_loader(dataset, 2, shuffle=False, num_workers=0, pin_memory=False, seed=0)
    result = validate(trainer.model, loader, trainer.config.loss, torch.device("cpu"))
    assert result.batches == 1 and result.depth_frames == 2
    assert result.criterion[0] == "abs_rel" and 0 < result.depth["abs_rel"] < 1
    assert result.depth["median_scaling"] is True
    assert trainer.model.training  # switched back after the pass
