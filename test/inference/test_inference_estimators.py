import numpy as np
import pytest
import torch

from monodepth2_ros.errors import ConfigError, MissingInputError
from monodepth2_ros.inference import DepthEstimator, InferenceConfig, PoseEstimator
from monodepth2_ros.model.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from monodepth2_ros.model.constants import STEREO_SCALE
from monodepth2_ros.model.geometry import pose_vec_to_mat
from monodepth2_ros.model.networks import DepthNet, PoseNet


def _reference_frames(shared_dir):
    import cv2

    return [cv2.imread(str(shared_dir / "reference" / n))[..., ::-1].copy() for n in ("frame0.png", "frame1.png")]


def test_depth_estimator_reproduces_the_official_disparity_and_post_processing(shared_dir, reference_resnet18):
    expected = np.load(shared_dir / "reference" / "outputs_resnet18.npz")
    frame0, _ = _reference_frames(shared_dir)
    plain = DepthEstimator(reference_resnet18, InferenceConfig(device="cpu")).estimate(frame0)
    np.testing.assert_allclose(plain.disparity, expected["disp0"][0, 0], atol=1e-4, rtol=0)
    post = DepthEstimator(reference_resnet18, InferenceConfig(device="cpu", post_process=True)).estimate(frame0)
    np.testing.assert_allclose(post.disparity, expected["disp0_post_processed"][0, 0], atol=1e-4, rtol=0)
    assert np.abs(post.disparity - plain.disparity).max() > 1e-3  # post-processing did something


def test_pose_estimator_reproduces_the_official_pose_outputs(shared_dir, reference_resnet18):
    expected = np.load(shared_dir / "reference" / "outputs_resnet18.npz")
    frame0, frame1 = _reference_frames(shared_dir)
    motion = PoseEstimator(reference_resnet18, InferenceConfig(device="cpu")).estimate(frame0, frame1)
    np.testing.assert_allclose(motion.axis_angle, expected["axisangle"][0, 0, 0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(motion.translation, expected["translation"][0, 0, 0], atol=1e-5, rtol=0)


def test_depth_is_metric_at_input_size_from_the_disparity(tiny_checkpoint, make_image):
    estimator = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", min_depth=0.1, max_depth=100.0))
    image = make_image(75, 250)
    K = np.array([[150.0, 0, 124.5], [0, 150.0, 37.0], [0, 0, 1]])
    prediction = estimator.estimate(image, K=K)
    assert prediction.disparity.shape == (64, 96)
    assert prediction.depth.shape == (75, 250) and prediction.depth.dtype == np.float32
    assert prediction.scale == 1.0
    # a depth map at network size is exactly 1 / scaled disparity
    at_network = estimator.estimate(image, output_size=(64, 96)).depth
    np.testing.assert_allclose(at_network, 1.0 / (0.01 + (10.0 - 0.01) * prediction.disparity), rtol=1e-5)
    # K follows the output size
    half = estimator.estimate(image, K=K, output_size=(150, 500))
    np.testing.assert_allclose(half.K[0, 0], 300.0)
    np.testing.assert_allclose(half.K[0, 2], (124.5 + 0.5) * 2 - 0.5)


def test_stereo_checkpoint_and_explicit_scale_multiply_depth(tmp_path, make_image):
    torch.manual_seed(1)
    depth_net = DepthNet(18)
    save_checkpoint(tmp_path / "mono", depth_net, None, CheckpointInfo(height=64, width=96))
    save_checkpoint(tmp_path / "stereo", depth_net, None, CheckpointInfo(height=64, width=96, use_stereo=True))
    image = make_image(64, 96)
    mono = DepthEstimator(tmp_path / "mono", InferenceConfig(device="cpu")).estimate(image).depth
    stereo = DepthEstimator(tmp_path / "stereo", InferenceConfig(device="cpu")).estimate(image)
    assert stereo.scale == STEREO_SCALE
    np.testing.assert_allclose(stereo.depth, mono * STEREO_SCALE, rtol=1e-5)
    fixed = DepthEstimator(tmp_path / "stereo", InferenceConfig(device="cpu", scale=2.0)).estimate(image).depth
    np.testing.assert_allclose(fixed, mono * 2.0, rtol=1e-5)


def test_pose_direction_convention_follows_the_decoder_output(tmp_path, make_image):
    """Force the decoder to output a known motion and check both documented transforms."""
    torch.manual_seed(2)
    pose_net = PoseNet(18)
    axis_angle = torch.tensor([0.01, -0.02, 0.03])
    translation = torch.tensor([0.1, 0.0, 1.5])
    with torch.no_grad():
        pose_net.decoder.head.weight.zero_()
        raw = torch.cat([axis_angle, translation]).repeat(2) / 0.01  # undo POSE_SCALE
        pose_net.decoder.head.bias.copy_(raw)
    save_checkpoint(tmp_path / "ckpt", DepthNet(18), pose_net, CheckpointInfo(height=64, width=96))
    motion = PoseEstimator(tmp_path / "ckpt", InferenceConfig(device="cpu")).estimate(make_image(64, 96, 0), make_image(64, 96, 1))
    expected_T_b_a = pose_vec_to_mat(axis_angle[None].double(), translation[None].double())[0].numpy()
    np.testing.assert_allclose(motion.T_b_a, expected_T_b_a, atol=1e-6)
    np.testing.assert_allclose(motion.T_a_b @ motion.T_b_a, np.eye(4), atol=1e-9)
    # a point 10 m ahead of camera a sits 10 - 1.5 m ahead of camera b, rotated slightly
    point_b = motion.T_b_a @ np.array([0.0, 0.0, 10.0, 1.0])
    assert point_b[2] == pytest.approx(11.5, abs=0.5)


def test_bad_inputs_and_configuration_are_refused_clearly(tiny_checkpoint):
    estimator = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu"))
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) uint8 RGB image, got shape \(4, 4\) dtype uint8"):
        estimator.estimate(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="non-empty"):
        estimator.estimate(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ConfigError, match="fp16' needs a CUDA device"):
        DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", precision="fp16"))
    with pytest.raises(ConfigError, match="device 'gpu7' is not one of"):
        DepthEstimator(tiny_checkpoint, InferenceConfig(device="gpu7"))
    with pytest.raises(ConfigError, match="min_depth < max_depth"):
        InferenceConfig(min_depth=5.0, max_depth=1.0)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            DepthEstimator(tiny_checkpoint, InferenceConfig(device="cuda:0"))


def test_bf16_on_cpu_stays_close_to_fp32(tiny_checkpoint, make_image):
    image = make_image(64, 96)
    fp32 = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(image).disparity
    bf16 = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", precision="bf16")).estimate(image).disparity
    assert np.abs(bf16 - fp32).max() < 0.02


def test_a_depth_only_checkpoint_cannot_make_a_pose_estimator(tmp_path):
    save_checkpoint(tmp_path / "depth_only", DepthNet(18), None, CheckpointInfo())
    with pytest.raises(MissingInputError, match="checkpoint file not found: .*pose_encoder.pth"):
        PoseEstimator(tmp_path / "depth_only")
    assert load_checkpoint(tmp_path / "depth_only").pose_net is None


def test_batched_pose_pairs_equal_single_calls_at_any_frame_size(tiny_checkpoint, make_image):
    estimator = PoseEstimator(tiny_checkpoint, InferenceConfig(device="cpu"))
    frames = [make_image(64, 96, seed) for seed in range(3)] + [make_image(80, 120, 3)]  # sizes may differ
    pairs = list(zip(frames[:-1], frames[1:]))
    batched = estimator.estimate_pairs(pairs)
    assert len(batched) == 3 and estimator.estimate_pairs([]) == []
    for motion, (a, b) in zip(batched, pairs):
        single = estimator.estimate(a, b)
        np.testing.assert_allclose(motion.T_b_a, single.T_b_a, atol=1e-5)
        np.testing.assert_allclose(motion.translation, single.translation, atol=1e-6)


def test_warm_up_runs_every_batch_a_pose_node_can_make_and_changes_no_output(tiny_checkpoint, make_image):
    pose = PoseEstimator(tiny_checkpoint, InferenceConfig(device="cpu"))
    depth = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu"))
    a, b = make_image(64, 96, 0), make_image(64, 96, 1)
    motion, disparity = pose.estimate(a, b).T_b_a, depth.estimate(a).disparity
    batches = []
    runner = pose.runner
    pose.runner = lambda frame_a, frame_b: (batches.append(frame_a.shape[0]), runner(frame_a, frame_b))[1]
    pose.warm_up(4)
    depth.warm_up()
    assert batches == [1, 2, 3, 4]
    np.testing.assert_array_equal(pose.estimate(a, b).T_b_a, motion)
    np.testing.assert_array_equal(depth.estimate(a).disparity, disparity)
