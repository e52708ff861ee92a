"""Rendering the default model's training drives: the split's drives only, resumed where it stopped."""

from __future__ import annotations

from monodepth2_ros.data.bag_reader import BagImageStream
from monodepth2_ros.synthetic.families import TRAINING_FAMILIES, is_held_out
from monodepth2_ros.tools.default_model_data import main, render_training_drives, training_drive_path


def test_renders_the_training_split_once_and_resumes_without_rendering_again(tmp_path, capsys):
    logged = []
    paths = render_training_drives(tmp_path, 1, 3, 32, 16, log=logged.append)
    assert [p.name for p in paths] == [f"{family}_0000" for family in TRAINING_FAMILIES]
    assert not any(is_held_out(p.name.split("_")[0], int(p.name.split("_")[1])) for p in paths)
    assert logged[0] == "4 training drives, 0 already rendered, 4 to render" and len(logged) == 5
    stream = BagImageStream(paths[1])
    assert len(stream) == 3 and stream.camera.width == 32 and stream.camera.height == 16

    # An interrupted run: one drive is missing; the next run renders only that one.
    stamps = {p: p.stat().st_mtime_ns for p in paths}
    for child in paths[2].iterdir():
        child.unlink()
    paths[2].rmdir()
    assert main(["--data", str(tmp_path), "--drives", "1", "--frames", "3", "--width", "32", "--height", "16"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == [str(p) for p in paths]
    assert "3 already rendered, 1 to render" in captured.err and f"rendered {paths[2]}" in captured.err
    assert all(p.stat().st_mtime_ns == stamps[p] for p in paths if p != paths[2])
    assert paths[2] == training_drive_path(tmp_path, "warehouse", 0, 3, 32, 16) and len(BagImageStream(paths[2])) == 3
