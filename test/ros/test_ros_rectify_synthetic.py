"""Self-check in the synthetic world: a distorted camera's bag through the depth node over DDS.

The network is a ground-truth double: for each image it is shown it answers the true depth of that
image's pixels (rendered for the raw lens, or for the rectified pinhole camera). The node's cloud is
moved into the world with the camera's true pose and compared with the surfaces the renderer
ray-casts there. Rectified, it lies on them; fed the raw image as if it were pinhole, it is bent.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pose_harness import GroundTruthDepthNetwork
from ros_harness import cloud_array, wait_until

from monodepth2_ros.cli.main import main
from monodepth2_ros.data.bag_reader import iter_messages, iter_serialized
from monodepth2_ros.data.camera import CameraModel
from monodepth2_ros.data.image_codec import image_to_array
from monodepth2_ros.inference.camera_input import CameraInput
from monodepth2_ros.ros.depth_node import DepthNode
from monodepth2_ros.synthetic import camera as synthetic_camera
from monodepth2_ros.synthetic.bag import TOPIC_CAMERA_INFO, TOPIC_IMAGE
from monodepth2_ros.synthetic.config import SynthConfig
from monodepth2_ros.synthetic.drive import SyntheticDrive
from monodepth2_ros.synthetic.render import Renderer
from monodepth2_ros.training.config import DataConfig
from monodepth2_ros.training.frame_cache import open_frame_cache

HEIGHT, WIDTH = 64, 224  # multiples of 32, so that training can read the same bag
ON_SURFACE = 0.01  # median point-to-surface distance / depth


def _pinhole_rays(K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    return (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]


def _ray_cast_depth(drive: SyntheticDrive, ray_x: np.ndarray, ray_y: np.ndarray, T_world_camera: np.ndarray) -> np.ndarray:
    """Depth (along z) of the first world surface on each ray ``(ray_x, ray_y, 1)`` from the camera centre."""
    rays = synthetic_camera.CameraModel(
        height=ray_x.shape[0], width=ray_x.shape[1], K=drive.K, D=np.zeros(5), ray_x=ray_x, ray_y=ray_y
    )
    renderer = Renderer(drive.world, rays, drive.config.sky_height_m if drive.config.sky_surface else None, "cpu")
    return renderer.render(T_world_camera)[1]


@pytest.fixture(scope="module")
def distorted_drive(tmp_path_factory):
    """``monodepth2 synth --distortion`` at a small size: the bag, its drive and the double's answers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bag = tmp_path_factory.mktemp("synth_distorted") / "drive"
        status = main(["synth", "--out", str(bag), "--frames", "1", "--width", str(WIDTH), "--height", str(HEIGHT),
                       "--distortion", "--device", "cpu", "--threads", "1"])
        assert status == 0
        # The same drive again, for its geometry: equal configs give identical worlds.
        drive = SyntheticDrive(SynthConfig(frames=1, width=WIDTH, height=HEIGHT, distortion=True, device="cpu"))
        T_world_camera = drive.T_world_camera(0)
        info = next(iter(iter_messages(bag, TOPIC_CAMERA_INFO))).msg
        raw = image_to_array(next(iter(iter_messages(bag, TOPIC_IMAGE))).msg)
        camera = CameraModel.from_camera_info(info)
        assert camera.is_distorted
        np.testing.assert_array_equal(raw, drive.render(T_world_camera)[0])  # the bag is this drive
        rectified = CameraInput(camera, (HEIGHT, WIDTH), rectify=True)
        raw_depth = drive.render(T_world_camera)[1]
        rectified_depth = _ray_cast_depth(drive, *_pinhole_rays(rectified.camera.K), T_world_camera)
        answers = {
            np.ascontiguousarray(raw).tobytes(): raw_depth,
            np.ascontiguousarray(rectified.rectify_image(raw)).tobytes(): rectified_depth,
        }
        yield bag, drive, T_world_camera, answers
    finally:
        torch.set_num_threads(threads)


def _node_cloud(graph, distorted_drive, rectify: str) -> tuple[np.ndarray, GroundTruthDepthNetwork]:
    """The node's cloud (H, W, 3) for the bag's frame, and the network double it ran."""
    bag, _, _, answers = distorted_drive
    network = GroundTruthDepthNetwork(answers, (HEIGHT, WIDTH))
    node = graph.add_node(DepthNode, network, {"device": "cpu", "rectify": rectify})
    points = graph.subscribe("points")
    # The bag's own messages, as recorded (CDR), replayed over DDS.
    for message in iter_serialized(bag, [TOPIC_CAMERA_INFO]):
        graph.info_pub.publish(message.cdr)
    assert wait_until(lambda: node.camera is not None)
    for message in iter_serialized(bag, [TOPIC_IMAGE]):
        graph.image_pub.publish(message.cdr)
    assert wait_until(lambda: len(points.messages) > 0)
    return cloud_array(points.messages[-1])[..., :3].astype(np.float64), network


def _median_surface_distance(graph, distorted_drive, rectify: str) -> float:
    _, drive, T_world_camera, _ = distorted_drive
    cloud, _ = _node_cloud(graph, distorted_drive, rectify)
    valid = np.isfinite(cloud).all(axis=-1) & (cloud[..., 2] > 0)
    xyz = cloud[valid]
    # In the world: the camera centre and each point; the surface met on the way from one to the other.
    R, t = T_world_camera[:3, :3], T_world_camera[:3, 3]
    world = xyz @ R.T + t
    in_camera = (world - t) @ R  # the ray of each world point, in the camera's axes
    ray_x = (in_camera[:, 0] / in_camera[:, 2])[None]
    ray_y = (in_camera[:, 1] / in_camera[:, 2])[None]
    surface_z = _ray_cast_depth(drive, ray_x, ray_y, T_world_camera)[0]
    ray_length = np.sqrt(ray_x[0] ** 2 + ray_y[0] ** 2 + 1.0)
    distance = np.abs(in_camera[:, 2] - surface_z) * ray_length  # metres along the ray
    relative = distance / (in_camera[:, 2] * ray_length)
    assert np.isfinite(relative).sum() > 0.5 * valid.size
    return float(np.nanmedian(relative))


def test_rectified_cloud_lies_on_the_ground_truth_surfaces(graph, distorted_drive):
    assert _median_surface_distance(graph, distorted_drive, "auto") <= ON_SURFACE


def test_without_rectification_the_cloud_is_off_the_surfaces(graph, distorted_drive):
    assert _median_surface_distance(graph, distorted_drive, "false") > ON_SURFACE


def test_the_node_feeds_the_network_what_training_stores_for_the_same_bag(graph, distorted_drive, tmp_path):
    bag = distorted_drive[0]
    _, network = _node_cloud(graph, distorted_drive, "auto")
    config = DataConfig(bags=(str(bag),), height=HEIGHT, width=WIDTH)  # data.undistort: true by default
    cache = open_frame_cache(config, tmp_path / "cache")
    trained = torch.from_numpy(np.array(cache.images[0])).permute(2, 0, 1).float().div_(255.0)
    assert torch.equal(network.inputs[-1][0], trained)
