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


def test_split_commands_never_train_on_held_back_drives(capsys):
    from monodepth2_ros.synthetic.families import HELD_OUT_FAMILY, is_held_out

    assert main(["--split", "3", "--frames", "50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    train = [line for line in lines if "/train/" in line]
    held = [line for line in lines if "/heldout/" in line]
    assert len(train) + len(held) == len(lines) and train and held

    def drive(line: str) -> tuple[str, int]:
        words = line.split()
        return words[words.index("--family") + 1], int(words[words.index("--seed") + 1])

    assert not any(is_held_out(*drive(line)) for line in train)
    assert all(is_held_out(*drive(line)) for line in held)
    assert f"--family {HELD_OUT_FAMILY}" in " ".join(held) and f"--family {HELD_OUT_FAMILY}" not in " ".join(train)
