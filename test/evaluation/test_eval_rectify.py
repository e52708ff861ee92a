"""``evaluate`` on a distorted camera: frames rectified like the nodes', ground truth carried to the
rectified grid before scoring, and the report says so."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monodepth2_ros.data.bag_reader import iter_messages
from monodepth2_ros.data.camera import CameraModel
from monodepth2_ros.data.image_codec import image_to_array
from monodepth2_ros.evaluation.depth_metrics import DepthEvaluation
from monodepth2_ros.evaluation.runner import EvaluationConfig, evaluate_bag
from monodepth2_ros.inference.camera_input import CameraInput
from monodepth2_ros.synthetic import camera as synthetic_camera
from monodepth2_ros.synthetic.bag import TOPIC_CAMERA_INFO, TOPIC_IMAGE, write_drive_bag
from monodepth2_ros.synthetic.config import SynthConfig
from monodepth2_ros.synthetic.drive import SyntheticDrive
from monodepth2_ros.synthetic.render import Renderer

HEIGHT, WIDTH = 72, 240


@pytest.fixture(scope="module")
def distorted(tmp_path_factory):
    """A one-frame distorted drive; the rectified camera's true depth, rendered through its pinhole rays."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = SynthConfig(frames=1, width=WIDTH, height=HEIGHT, distortion=True)
        bag = write_drive_bag(config, tmp_path_factory.mktemp("eval_distorted") / "drive", "mcap")
        drive = SyntheticDrive(config)
        camera = CameraModel.from_camera_info(next(iter(iter_messages(bag, TOPIC_CAMERA_INFO))).msg)
        raw = image_to_array(next(iter(iter_messages(bag, TOPIC_IMAGE))).msg)
        camera_input = CameraInput(camera, (HEIGHT, WIDTH), rectify=True)
        K = camera_input.camera.K
        v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
        rays = synthetic_camera.CameraModel(
            height=HEIGHT, width=WIDTH, K=K, D=np.zeros(5), ray_x=(u - K[0, 2]) / K[0, 0], ray_y=(v - K[1, 2]) / K[1, 1]
        )
        sky = config.sky_height_m if config.sky_surface else None
        rectified_depth = Renderer(drive.world, rays, sky, "cpu").render(drive.T_world_camera(0))[1]
        raw_depth = drive.render(drive.T_world_camera(0))[1]
        yield bag, camera_input.rectify_image(raw), rectified_depth, raw_depth
    finally:
        torch.set_num_threads(threads)


def test_rectified_frames_are_scored_against_ground_truth_on_the_rectified_grid(tmp_path, distorted):
    bag, rectified_rgb, rectified_depth, raw_depth = distorted
    shown = []

    def perfect_depth(rgb: np.ndarray) -> np.ndarray:
        shown.append(rgb)
        return rectified_depth

    config = EvaluationConfig(gt_odom_topic=None, median_scaling=False, max_depth=80.0)
    result = evaluate_bag(bag, tmp_path, config, perfect_depth, None)
    np.testing.assert_array_equal(shown[0], rectified_rgb)  # the network saw the rectified frame
    assert result.figures["rectification"]["rectified"] is True
    assert "mapped to the rectified grid" in result.files["markdown"].read_text()
    scored = result.figures["depth"]["model"]["abs_rel"]
    # Scored against the raw grid's ground truth as is, the same perfect prediction looks much worse.
    unmapped = DepthEvaluation(config.min_depth, config.max_depth, False).add(raw_depth, rectified_depth).metrics.abs_rel
    assert scored < 0.02 and unmapped > 3 * scored


def test_rectify_false_scores_the_raw_frames_on_the_raw_grid(tmp_path, distorted):
    bag, rectified_rgb, _, raw_depth = distorted
    config = EvaluationConfig(gt_odom_topic=None, median_scaling=False, rectify="false")
    result = evaluate_bag(bag, tmp_path, config, lambda rgb: raw_depth, None)
    assert result.figures["rectification"] == {"rectified": False}
    assert result.figures["depth"]["model"]["abs_rel"] < 1e-6
    assert "rectified grid" not in result.files["markdown"].read_text()
