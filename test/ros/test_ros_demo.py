"""The demo's pieces at a tiny size: played topics reach the nodes, outputs are recorded and scored."""

import json

import numpy as np

from monodepth2_ros.data import iter_messages
from monodepth2_ros.data.image_codec import depth_image_to_metres
from monodepth2_ros.evaluation.ground_truth import stamp_ns
from monodepth2_ros.synthetic import SynthConfig, write_drive_bag
from monodepth2_ros.tools.demo import FILES, DemoConfig, drive_camera_input, run_demo


def test_demo_end_to_end_at_a_tiny_size(tmp_path):
    # the bundled model: its depth gives the camera-height scale the pose node waits for (a random one finds no road)
    config = DemoConfig(out_dir=tmp_path / "demo", frames=12, width=96, height=64, play_rate=0.5)
    result = run_demo(config, say=lambda message: None)

    input_stamps = {stamp_ns(m.msg.header) for m in iter_messages(result.files["drive"], "/camera/image_raw")}
    assert len(input_stamps) == 12
    for topic in ("/depth", "/points", "/odom"):
        stamps = [stamp_ns(m.msg.header) for m in iter_messages(result.files["output"], topic)]
        assert stamps, f"nothing recorded on {topic}"
        assert set(stamps) <= input_stamps, f"{topic} carries stamps that no input frame had"
    depth = next(iter(iter_messages(result.files["output"], "/depth"))).msg
    assert (depth.encoding, depth.height, depth.width) == ("32FC1", 64, 96)

    figures = json.loads((config.out_dir / FILES["json"]).read_text())
    assert figures["drive"]["randomize"] and figures["drive"]["lens_distortion"]  # seed 9's drawn lens
    assert 1.2 <= figures["drive"]["camera_height_m"] <= 1.8  # a car's mount, drawn from the seed
    assert figures["node_depth_metric"]["frames"] >= 1
    assert {"abs_rel", "a1", "rmse"} <= set(figures["node_depth_metric"])
    assert {"ate_se3_m", "ate_sim3_m", "distance_m"} <= set(figures["node_odometry"])
    offline = figures["offline"]
    assert set(offline["depth"]) == {"model", "untrained network", "flat ground + constant depth prior"}
    assert {"snippet_ate", "trajectory_ate", "rpe"} <= set(offline["odometry"])
    assert figures["topics"]["played"]["/camera/image_raw"] == 12
    odometry, pose_node = figures["node_odometry"], figures["topics"]["pose_node"]
    assert odometry["adjacent_pairs"] == 11 and 0 < pose_node["received"] <= 12
    published = figures["topics"]["recorded"]["/odom"]
    assert odometry["adjacent_pairs_integrated"] == published - 1 - odometry["pairs_over_dropped_images"]
    assert odometry["pairs_integrated_pct"] == 100.0 * odometry["adjacent_pairs_integrated"] / 11
    assert "adjacent frame pairs integrated" in result.files["markdown"].read_text()
    for name in ("strip", "trajectory", "cloud", "markdown"):
        assert result.files[name].stat().st_size > 0
    assert result.files["cloud"].read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")

    # safe to run twice: the same folder is refreshed, nothing piles up
    again = run_demo(config, say=lambda message: None)
    assert sorted(p.name for p in config.out_dir.iterdir()) == sorted(
        {"drive", "output", "offline", "node_logs"} | {path.name for path in again.files.values()}
    )


def test_the_demo_scores_a_distorting_lens_on_the_grid_the_nodes_publish(tmp_path):
    """Seed 9's drawn lens distorts: the nodes publish rectified depth, so ground truth is carried there;
    the plain street's pinhole camera is scored as recorded."""
    distorted = write_drive_bag(SynthConfig(frames=2, width=96, height=64, seed=9, randomize=True), tmp_path / "rand", "mcap")
    plain = write_drive_bag(SynthConfig(frames=2, width=96, height=64, seed=9), tmp_path / "plain", "mcap")
    assert drive_camera_input(plain) is None
    camera_input = drive_camera_input(distorted)
    assert camera_input is not None and camera_input.rectified and not camera_input.camera.is_distorted
    raw = next(iter(iter_messages(distorted, "/ground_truth/depth"))).msg
    truth = depth_image_to_metres(raw)
    on_grid = camera_input.rectify_depth(truth)
    assert on_grid.shape == truth.shape and not np.allclose(np.nan_to_num(on_grid), np.nan_to_num(truth))
