"""The scene-family contact sheet and render-speed script: one cell per family, one line per family."""

from __future__ import annotations

import cv2

from monodepth2_ros.synthetic.families import FAMILIES
from monodepth2_ros.tools.synth_families import main


def test_contact_sheet_has_an_image_and_its_depth_per_family(tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    assert main(["--sheet", str(sheet), "--seeds", "1", "--width", "48", "--height", "16", "--frame", "1"]) == 0
    image = cv2.imread(str(sheet))
    assert image.shape == (2 * 16, len(FAMILIES) * 48 + (len(FAMILIES) - 1) * 4, 3)
    printed = capsys.readouterr().out
    assert all(f"{family} seed 1" in printed for family in FAMILIES)
    # Each family's cell differs from the others (different worlds, not one image repeated).
    cells = [image[:16, k * 52:k * 52 + 48].astype(int) for k in range(len(FAMILIES))]
    assert all(abs(cells[0] - other).mean() > 5 for other in cells[1:])


def test_bench_prints_a_rate_per_family(capsys):
    assert main(["--bench", "--frames", "2", "--seeds", "1", "--width", "32", "--height", "16"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for family in ("street plain",) + FAMILIES:
        assert any(line.startswith(family + " ") and "frames/s" in line for line in lines), family
