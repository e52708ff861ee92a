"""``monodepth2 train`` on bad input: one error line, the right exit status, the config recorded."""

from __future__ import annotations

import numpy as np
import pytest

from monodepth2_ros.cli.main import main


def _train(capsys, *args: str) -> tuple[int, str]:
    status = main(["train", *args])
    return status, capsys.readouterr().err


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "monodepth2 train --bag drive.mcap --out runs/drive" in out and "torchrun" in out
    assert "monodepth2 train --bag robot.mcap --init default --minutes 30" in out


def test_a_missing_image_topic_lists_the_bags_topics(synthetic_bag, tmp_path, capsys):
    status, err = _train(capsys, "--bag", str(synthetic_bag), "--out", str(tmp_path / "run"), "--image-topic", "/front/image")
    assert status == 1
    assert "error: image topic '/front/image' is not in" in err and "/camera/image_raw [sensor_msgs/msg/Image]" in err


def test_an_unknown_config_key_is_an_error_naming_the_valid_keys(synthetic_bag, tmp_path, capsys):
    status, err = _train(capsys, "--bag", str(synthetic_bag), "--out", str(tmp_path / "run"), "--set", "optim.lrr=1")
    assert status == 1
    assert "error: unknown config key 'optim.lrr'; valid keys of 'optim': lr, epochs" in err


def test_missing_inputs_exit_with_status_two(synthetic_bag, tmp_path, capsys):
    status, err = _train(capsys, "--bag", str(tmp_path / "nope.mcap"), "--out", str(tmp_path / "run"))
    assert status == 2 and "nope.mcap does not exist" in err
    status, err = _train(capsys, "--bag", str(synthetic_bag), "--out", str(tmp_path / "run"), "--init", str(tmp_path / "none"))
    assert status == 2 and "--init" in err


def test_no_input_at_all_is_reported(tmp_path, capsys):
    status, err = _train(capsys, "--out", str(tmp_path / "run"))
    assert status == 1 and "no training data" in err


def test_too_few_frames_exits_2_and_leaves_nothing_behind(tmp_path, capsys, image_bag_writer, textured):
    bag = image_bag_writer(tmp_path / "short", [textured(0), textured(1)], [0, 100_000_000])
    run_dir = tmp_path / "run"
    status, err = _train(capsys, "--bag", str(bag), "--out", str(run_dir), "--height", "64", "--width", "64", "--set", "loss.automask=false")
    assert status == 2
    assert "too few frames for one training sample: 2 frame(s)" in err and "needs 3 consecutive frames" in err
    assert not run_dir.exists()  # nothing half-written


def test_a_camera_that_never_moves_exits_2_and_leaves_nothing_behind(tmp_path, capsys, image_bag_writer, textured):
    still = [textured(0)] * 8
    bag = image_bag_writer(tmp_path / "still", still, [i * 100_000_000 for i in range(8)])
    run_dir = tmp_path / "run"
    status, err = _train(capsys, "--bag", str(bag), "--out", str(run_dir), "--height", "64", "--width", "64", "--num-workers", "0")
    assert status == 2
    assert "the camera never moves: all 6 frame pairs 1 frame(s) apart" in err and "largest found 0.0000" in err
    assert "needs a camera that moves" in err
    assert not run_dir.exists()
    # Fine-tuning: the stride search finds no motion at any stride, and the same message follows.
    status, err = _train(capsys, "--bag", str(bag), "--out", str(run_dir), "--init", "default", "--num-workers", "0")
    assert status == 2 and "the camera never moves" in err and "frame(s) apart" in err
    assert not run_dir.exists()


def test_frames_without_camera_info_exit_2_naming_the_topic(tmp_path, capsys, image_bag_writer, textured):
    stamps = [i * 100_000_000 for i in range(5)]
    bag = image_bag_writer(tmp_path / "no_info", [textured(i) for i in range(5)], stamps, camera_info=False)
    for init in ([], ["--init", "default"]):
        run_dir = tmp_path / "run"
        status, err = _train(capsys, "--bag", str(bag), "--out", str(run_dir), *init)
        assert status == 2, err
        assert "5 image(s) on /cam/image_raw but no CameraInfo on /cam/camera_info" in err
        assert "record the camera's camera_info" in err
        assert not run_dir.exists()
