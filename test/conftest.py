"""Fixtures shared by the whole suite: reference data from ../shared and small checkpoints."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared reference folder (manifest, official outputs). Required in CI."""
    if not (SHARED_DIR / "monodepth2_checkpoint_manifest.json").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the shared reference data at {SHARED_DIR}")
        pytest.skip(f"reference data not present at {SHARED_DIR} (only shipped beside the project's CI)")
    return SHARED_DIR


@pytest.fixture(scope="module")
def module_tmp_path(tmp_path_factory, request) -> Path:
    """A folder for the runs one test module shares, removed when the module ends unless one of its
    tests failed (training runs write hundreds of MB of checkpoints; a small CI disk fills up)."""
    path = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    failed_before = request.session.testsfailed
    yield path
    if request.session.testsfailed == failed_before:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def reference_checkpoint_writer(shared_dir):
    """The shared ``make_checkpoint.write_checkpoint`` (seeded official-format checkpoints)."""
    spec = importlib.util.spec_from_file_location("make_checkpoint", shared_dir / "reference" / "make_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_checkpoint


@pytest.fixture(scope="session")
def reference_resnet18(tmp_path_factory, reference_checkpoint_writer) -> Path:
    folder = tmp_path_factory.mktemp("reference_resnet18")
    reference_checkpoint_writer(folder, "resnet18", 1)
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A seeded random ResNet-18 checkpoint of ours, at a small network size (64x96), with pose."""
    from monodepth2_ros.model.checkpoint import CheckpointInfo, save_checkpoint
    from monodepth2_ros.model.networks import DepthNet, PoseNet

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny") / "weights"
    save_checkpoint(folder, DepthNet(18), PoseNet(18), CheckpointInfo(height=64, width=96))
    return folder


def _textured_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [
        127 + 100 * np.sin(u / (5 + 7 * c) + rng.uniform(0, 6)) * np.cos(v / (4 + 3 * c) + rng.uniform(0, 6))
        for c in range(3)
    ]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def make_image():
    """Factory ``make_image(height, width, seed=0)`` of smooth, textured (H, W, 3) uint8 RGB images."""
    return _textured_image


# In CI every dependency is installed by the project's own files: a test skipped because a module
# could not be imported hides a broken install, so there it fails instead.
_MISSING_MODULE = "could not import"


def _hidden_missing_module(report) -> bool:
    return bool(os.environ.get("CI")) and report.skipped and _MISSING_MODULE in str(report.longrepr)


def pytest_collectreport(report):
    if _hidden_missing_module(report):
        report.outcome = "failed"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _hidden_missing_module(report):
        report.outcome = "failed"
