"""``backend: auto`` at a tiny size: measured once, the fastest accurate pick, cached, said."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from monodepth2_ros.evaluation import backend_selection
from monodepth2_ros.evaluation.backend_selection import AutoSettings, resolve_auto_config, select_backend
from monodepth2_ros.inference import InferenceConfig
from monodepth2_ros.model.checkpoint import load_checkpoint

CPU = torch.device("cpu")
SIZE = (64, 96)
QUICK = AutoSettings(warmup=1, runs=2, accuracy_frames=2, calibration_frames=2, threads=1)
CANDIDATES = [("eager", "fp32"), ("eager_optimized", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32")]


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "monodepth2_ros" / "backend_auto"


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint, load_pose=True)


def test_auto_picks_the_fastest_accurate_backend_caches_it_and_says_so(checkpoint, cache_home, monkeypatch):
    net = checkpoint.depth_net.eval()
    selection = select_backend("depth", net, CPU, SIZE, settings=QUICK, candidates=CANDIDATES)
    assert selection.source == "measured"
    measured = [c for c in selection.candidates if c.status == "ok"]
    assert {(c.backend, c.precision) for c in selection.candidates} == set(CANDIDATES)
    fastest = min(measured, key=lambda c: c.latency_ms)
    assert (selection.backend, selection.precision) == (fastest.backend, fastest.precision)
    assert all(abs(c.accuracy_change) <= QUICK.abs_rel_bound for c in measured)  # fp32 everywhere
    files = list(cache_home.glob("depth_*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["backend"] == selection.backend
    assert f"depth runs {selection.backend} {selection.precision}" in selection.describe()

    def no_measurement(*args, **kwargs):
        raise AssertionError("a cached pick must not be measured again")

    monkeypatch.setattr(backend_selection, "_measure", no_measurement)
    again = select_backend("depth", net, CPU, SIZE, settings=QUICK, candidates=CANDIDATES)
    assert again.source == "cache" and (again.backend, again.precision) == (selection.backend, selection.precision)
    assert "cache" in again.describe()
    other_threads = dataclasses.replace(QUICK, threads=2)  # another machine set-up: another key
    with pytest.raises(AssertionError, match="cached pick"):
        select_backend("depth", net, CPU, SIZE, settings=other_threads, candidates=CANDIDATES)


def test_a_backend_beyond_the_accuracy_bound_is_never_picked(checkpoint, cache_home):
    strict = dataclasses.replace(QUICK, translation_bound=-1.0)  # nothing but eager fp32 itself qualifies
    selection = select_backend("pose", checkpoint.pose_net.eval(), CPU, SIZE, settings=strict, candidates=CANDIDATES)
    assert (selection.backend, selection.precision) == ("eager", "fp32")
    others = [c for c in selection.candidates if c.backend != "eager"]
    assert others and all(c.status in ("inaccurate", "unavailable") for c in others)
    assert any("beyond the bounds" in c.note for c in others)


def test_resolve_auto_config_replaces_only_auto(tiny_checkpoint, cache_home, monkeypatch):
    plain = InferenceConfig(device="cpu", backend="onnxruntime")
    assert resolve_auto_config(plain, tiny_checkpoint, "depth") == (plain, None)
    monkeypatch.setattr(backend_selection, "auto_candidates", lambda device: CANDIDATES[:2])
    config, selection = resolve_auto_config(
        InferenceConfig(device="cpu", backend="auto", precision="int8"), tiny_checkpoint, "pose", settings=QUICK
    )
    assert selection is not None and selection.network == "pose"
    assert (config.backend, config.precision) == (selection.backend, selection.precision)
    assert config.backend in ("eager", "eager_optimized")
