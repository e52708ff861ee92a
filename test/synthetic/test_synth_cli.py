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


def test_synth_renders_a_family_with_its_own_camera_and_ground_truth(tmp_path, capsys):
    import numpy as np
    from rosbags.typesys import Stores, get_typestore

    from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive

    out = tmp_path / "table"
    assert main(["synth", "--out", str(out), "--family", "tabletop", "--seed", "2", *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "family tabletop" in printed and "field of view" in printed
    drive = SyntheticDrive(SynthConfig(frames=2, width=160, height=48, seed=2, family="tabletop"))
    messages = {}
    with AnyReader([out], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        for connection, _, raw in reader.messages():
            messages.setdefault(connection.topic, []).append(reader.deserialize(raw, connection.msgtype))
    info = messages["/camera/camera_info"][0]
    np.testing.assert_allclose(info.k.reshape(3, 3), drive.K)
    np.testing.assert_allclose(info.d, drive.D)
    depth = np.frombuffer(messages["/ground_truth/depth"][1].data, dtype="<f4").reshape(48, 160)
    np.testing.assert_array_equal(depth, drive.frame(1).depth)
    assert 0.3 < np.median(depth) < 1.5  # a table top seen from close range
    twist = messages["/ground_truth/odom"][1].twist.twist
    linear, angular = drive.frame(1).twist
    np.testing.assert_allclose([twist.linear.x, twist.linear.y, twist.linear.z], linear)
    np.testing.assert_allclose([twist.angular.x, twist.angular.y, twist.angular.z], angular)
    mount = messages["/tf_static"][0].transforms[0].transform.translation
    assert mount.z == drive.T_base_camera[2, 3]


def test_synth_random_family_is_reported(tmp_path, capsys):
    from monodepth2_ros.synthetic import resolve_family

    out = tmp_path / "any"
    assert main(["synth", "--out", str(out), "--family", "random", "--seed", "11", "--no-sensor-effects", *SMALL]) == 0
    assert f"family {resolve_family('random', 11)}" in capsys.readouterr().out
