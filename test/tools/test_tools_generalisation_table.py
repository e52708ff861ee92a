"""The generalisation table at a tiny size: 2 families, 1 drive each, a few frames, a stand-in real bag."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.evaluation.trajectory import invert_poses
from monodepth2_ros.synthetic import SynthConfig, write_drive_bag
from monodepth2_ros.tools.generalisation_table import (
    CONSTANT_DEPTH,
    CONSTANT_FORWARD,
    STATIC,
    CheckpointModel,
    ensure_drive,
    heldout_drive_path,
    load_drive,
    main,
    prepare_drives,
    run_table,
)

WIDTH, HEIGHT, FRAMES = 96, 48, 6


class GroundTruthModel:
    """A test double that answers with the rendered ground truth of the frames it is shown."""

    name = "ground truth"

    def __init__(self, drives):
        self._depth, self._pose = {}, {}
        for drive in drives:
            for rgb, depth, pose in zip(drive.rgb, drive.depth, drive.poses):
                self._depth[rgb.tobytes()] = np.where(np.isfinite(depth), depth, 1e3)
                self._pose[rgb.tobytes()] = pose

    def depth(self, rgb):
        return self._depth[rgb.tobytes()]

    def motion(self, rgb_a, rgb_b):
        return invert_poses(self._pose[rgb_a.tobytes()]) @ self._pose[rgb_b.tobytes()]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Drives rendered once by a first table run (bundled-model-free: only the ground-truth double)."""
    root = tmp_path_factory.mktemp("gen")
    kitti = root / "standin_kitti"
    write_drive_bag(SynthConfig(frames=12, width=WIDTH, height=HEIGHT, seed=3, family="street"), kitti)
    return root, kitti


def test_ground_truth_beats_both_priors_and_the_prior_matches_a_hand_computation(rendered, tiny_checkpoint):
    root, kitti = rendered
    data, out = root / "data", root / "out"
    logged = []
    drives = prepare_drives(data, 1, FRAMES, WIDTH, HEIGHT, ["street", "yard"], log=logged.append)
    assert [(d.family, d.seed) for d in drives] == [("street", 9), ("yard", 9), ("yard", 0)]
    assert len(logged) == 3 and all(line.startswith("rendered") for line in logged)
    assert drives[0].rgb.shape == (FRAMES, HEIGHT, WIDTH, 3) and drives[0].poses.shape == (FRAMES, 4, 4)
    # A second run reuses the rendered drives instead of rendering them again.
    path = heldout_drive_path(data, "street", 9, FRAMES, WIDTH, HEIGHT)
    stamp = path.stat().st_mtime_ns
    assert not ensure_drive(path, "street", 9, FRAMES, WIDTH, HEIGHT) and path.stat().st_mtime_ns == stamp

    truth = GroundTruthModel(drives + [load_drive(kitti, "street", 3)])
    tiny = CheckpointModel(tiny_checkpoint, name="tiny")
    result = run_table([truth, tiny], drives, out, kitti_bag=kitti, kitti_every=5, log=lambda _: None)

    assert list(result["families"]) == ["street", "yard"]
    assert result["families"]["yard"]["role"] == "held-out family"
    for family, fig in result["families"].items():
        model = fig["models"]["ground truth"]
        assert model["abs_rel"]["value"] < 1e-6 and model["abs_rel"]["pass"]
        assert fig["depth"]["ground truth"]["a1"] == 1.0
        assert model["snippet_ate"]["value"] < 1e-6 and model["snippet_ate"]["pass"]
        assert fig["depth"][CONSTANT_DEPTH]["abs_rel"] > 0.05 and fig["snippet_ate"][CONSTANT_FORWARD] > 0
        assert np.isfinite(fig["models"]["tiny"]["abs_rel"]["value"])
        assert fig["models"]["tiny"]["abs_rel"]["ratio"] == pytest.approx(
            fig["depth"]["tiny"]["abs_rel"] / fig["depth"][CONSTANT_DEPTH]["abs_rel"])

    # The constant prior by hand: median-scaled, a flat map is median(gt) on every valid pixel.
    street = drives[0]
    abs_rel, a1 = [], []
    for gt in street.depth:
        valid = gt[np.isfinite(gt) & (gt > 1e-3) & (gt < 80.0)].astype(np.float64)
        median = np.median(valid)
        abs_rel.append(np.mean(np.abs(valid - median) / valid))
        a1.append(np.mean(np.maximum(valid / median, median / valid) < 1.25))
    street_prior = result["families"]["street"]["depth"][CONSTANT_DEPTH]
    assert street_prior["abs_rel"] == pytest.approx(np.mean(abs_rel), rel=1e-9)
    assert street_prior["a1"] == pytest.approx(np.mean(a1), rel=1e-9)

    photometric = result["kitti"]["mean"]
    assert result["kitti"]["frames"] == [5, 10]
    assert photometric["ground truth"] < 0.7 * photometric[STATIC]
    strip = cv2.imread(str(out / "kitti_depth_strip.png"))
    assert strip.shape == (3 * HEIGHT + 2 * 2, 2 * WIDTH, 3)

    saved = json.loads((out / "generalisation.json").read_text())
    assert saved["families"]["street"]["depth"][CONSTANT_DEPTH]["abs_rel"] == street_prior["abs_rel"]
    table = (out / "generalisation.md").read_text()
    assert "| street (held-back seeds, 1 drives) |" in table and "0.000 (0.00, pass)" in table
    assert "yard (held-out family, 2 drives)" in table and "ground truth" in table


def test_command_line_with_a_checkpoint_and_no_real_bag(rendered, tiny_checkpoint, capsys):
    root, _ = rendered
    out = root / "cli"
    assert main(["--models", str(tiny_checkpoint), "--data", str(root / "cli_data"), "--out", str(out),
                 "--drives", "1", "--frames", "5", "--width", "64", "--height", "32", "--families", "indoor",
                 "--first-seed", "20", "--kitti", str(root / "missing_bag")]) == 0
    printed = capsys.readouterr().out
    assert "rendered" in printed and "missing_bag not found" in printed
    saved = json.loads((out / "generalisation.json").read_text())
    assert list(saved["families"]) == ["indoor"] and "kitti" not in saved
    assert list(saved["settings"]["seeds"].values()) == [29]  # the second set: a held-back seed past the first's
    assert "never trained on (seeds 29)" in (out / "generalisation.md").read_text()
    assert saved["models"] == ["weights (96x64)"]
    assert not (out / "kitti_depth_strip.png").exists()


def test_a_first_seed_that_would_draw_training_seeds_is_refused_before_anything_renders(tmp_path):
    with pytest.raises(ConfigError, match="--first-seed 5 draws street seed 14"):
        prepare_drives(tmp_path / "data", 1, FRAMES, WIDTH, HEIGHT, ["street"], first_seed=5)
    assert not (tmp_path / "data").exists()
