import pytest
import torch
from torchvision.models import resnet18

from monodepth2_ros.errors import CheckpointError
from monodepth2_ros.model.encoder import ResnetEncoder, find_imagenet_weights, load_imagenet_weights
from monodepth2_ros.model.networks import DepthNet, PoseNet


@pytest.mark.parametrize("num_layers, deepest", [(18, 512), (34, 512), (50, 2048)])
def test_depth_net_returns_four_sigmoid_disparities_halving_in_size(num_layers, deepest):
    net = DepthNet(num_layers).eval()
    assert net.encoder.feature_channels[-1] == deepest
    with torch.no_grad():
        disparities = net(torch.rand(2, 3, 64, 96))
    assert [tuple(d.shape) for d in disparities] == [(2, 1, 64, 96), (2, 1, 32, 48), (2, 1, 16, 24), (2, 1, 8, 12)]
    assert all(((d > 0) & (d < 1)).all() for d in disparities)


def test_pose_net_predicts_two_axis_angle_translation_pairs_per_sample():
    with torch.no_grad():
        axis_angle, translation = PoseNet(18).eval()(torch.rand(3, 3, 64, 96), torch.rand(3, 3, 64, 96))
    assert axis_angle.shape == translation.shape == (3, 2, 1, 3)


def test_encoder_rejects_unknown_depth_with_the_value():
    with pytest.raises(ValueError, match="num_layers=20 is not a ResNet depth"):
        ResnetEncoder(20)


def test_imagenet_weights_initialise_the_pose_encoder_with_averaged_first_conv(tmp_path):
    torch.manual_seed(0)
    reference = resnet18()
    path = tmp_path / "resnet18-0123abcd.pth"
    torch.save(reference.state_dict(), path)
    assert find_imagenet_weights(18, tmp_path) == path
    assert find_imagenet_weights(50, tmp_path) is None
    encoder = ResnetEncoder(18, num_input_images=2)
    load_imagenet_weights(encoder, path)
    conv1 = encoder.encoder.conv1.weight
    assert conv1.shape == (64, 6, 7, 7)
    torch.testing.assert_close(conv1[:, :3], reference.conv1.weight / 2)
    torch.testing.assert_close(conv1[:, 3:], reference.conv1.weight / 2)
    torch.testing.assert_close(encoder.encoder.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)
    # The same frame twice responds exactly like the single-image ImageNet network.
    single = ResnetEncoder(18)
    load_imagenet_weights(single, path)
    image = torch.rand(1, 3, 64, 64)
    encoder.eval(), single.eval()
    with torch.no_grad():
        torch.testing.assert_close(encoder(torch.cat([image, image], 1))[-1], single(image)[-1], atol=1e-4, rtol=1e-4)


def test_imagenet_weights_of_another_depth_are_refused(tmp_path):
    torch.save(resnet18().state_dict(), tmp_path / "resnet18-x.pth")
    with pytest.raises(CheckpointError, match=r"does not fit a ResNet-50 encoder"):
        load_imagenet_weights(ResnetEncoder(50), tmp_path / "resnet18-x.pth")
    with pytest.raises(CheckpointError, match="ImageNet weights not found"):
        load_imagenet_weights(ResnetEncoder(18), tmp_path / "missing.pth")
