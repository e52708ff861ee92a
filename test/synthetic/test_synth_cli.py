"""``monodepth2 synth``: writes a bag, refuses to overwrite without --force, reports frames/s."""

from __future__ import annotations

from rosbags.highlevel import AnyReader

from monodepth2_ros.cli.main import main

SMALL = ["--frames", "2", "--width", "160", "--height", "48", "--device", "cpu", "--threads", "1"]


def test_synth_writes_a_bag_and_reports_its_speed(tmp_path, capsys):
    out = tmp_path / "drive"
    assert main(["synth", "--out", str(out), "--seed", "3", "--format", "sqlite3", *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "frames/s" in printed and str(out) in printed
    with AnyReader([out]) as reader:
        assert {c.topic: c.msgcount for c in reader.connections}["/camera/image_raw"] == 2


def test_synth_refuses_an_existing_output_without_force(tmp_path, capsys):
    out = tmp_path / "drive.bag"
    out.write_bytes(b"not a bag")
    assert main(["synth", "--out", str(out), "--format", "rosbag1", *SMALL]) == 1
    error = capsys.readouterr().err
    assert str(out) in error and "--force" in error
    assert out.read_bytes() == b"not a bag"
    assert main(["synth", "--out", str(out), "--format", "rosbag1", "--force", *SMALL]) == 0
    assert out.read_bytes()[:13] == b"#ROSBAG V2.0\n"


def test_synth_help_shows_an_example(capsys):
    try:
        main(["synth", "--help"])
    except SystemExit as done:
        assert done.code == 0
    assert "monodepth2 synth --out" in capsys.readouterr().out
