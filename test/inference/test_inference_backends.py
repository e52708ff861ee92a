"""Backend selection, fallbacks, BatchNorm folding and the PyTorch backends against eager fp32."""

import builtins
import copy
import logging
import os

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from monodepth2_ros.errors import ConfigError, MissingInputError
from monodepth2_ros.inference import DepthEstimator, InferenceConfig, PoseEstimator
from monodepth2_ros.inference import backends as backends_module
from monodepth2_ros.inference.backends import (
    AUTO_BACKEND,
    BACKENDS,
    HostStaging,
    OptimizedRunner,
    build_runner,
    cpu_supports_bf16,
    resolve_backend,
)
from monodepth2_ros.inference.optimize import count_batchnorms, fold_batchnorm, fold_conv_bn, optimized_copy
from monodepth2_ros.model.networks import DepthNet, PoseNet

CPU = torch.device("cpu")


def _randomise_batchnorm_statistics(module: nn.Module, seed: int) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so folding has something to fold."""
    generator = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm2d):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
            bn.running_var.copy_(torch.rand(n, generator=generator) * 2 + 0.2)
            bn.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            bn.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)
    return module.eval()


def _hide_onnxruntime(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ImportError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_fold_conv_bn_matches_conv_then_batchnorm_and_torch_fusion():
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 7, 3, padding=1, bias=True).eval()
    bn = _randomise_batchnorm_statistics(nn.BatchNorm2d(7), seed=1)
    x = torch.randn(2, 5, 9, 11)
    with torch.no_grad():
        expected = bn(conv(x))
        folded = fold_conv_bn(conv, bn)(x)
        reference = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)(x)
    assert (folded - expected).abs().max() < 1e-5
    assert (folded - reference).abs().max() < 1e-5


def test_fold_conv_bn_rejects_a_batchnorm_of_another_width():
    with pytest.raises(ValueError, match="BatchNorm has 4 channels but the convolution outputs 7"):
        fold_conv_bn(nn.Conv2d(3, 7, 3), nn.BatchNorm2d(4))


@pytest.mark.parametrize("num_layers", [18, 50])
def test_batchnorm_folding_preserves_depth_outputs_in_fp32(num_layers):
    torch.manual_seed(num_layers)
    net = _randomise_batchnorm_statistics(DepthNet(num_layers), seed=num_layers)
    folded = fold_batchnorm(copy.deepcopy(net))
    assert count_batchnorms(net) > 0 and count_batchnorms(folded) == 0
    x = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        for a, b in zip(net(x), folded(x)):
            assert (a - b).abs().max() < 1e-4


def test_batchnorm_folding_covers_the_bottleneck_downsample_and_the_pose_encoder():
    torch.manual_seed(3)
    pose = _randomise_batchnorm_statistics(PoseNet(18), seed=3)
    folded = optimized_copy(pose, CPU, channels_last=True)
    assert count_batchnorms(folded) == 0 and count_batchnorms(pose) > 0  # the original is untouched
    block = tv_resnet.Bottleneck(64, 16, downsample=nn.Sequential(nn.Conv2d(64, 64, 1, bias=False), nn.BatchNorm2d(64)))
    _randomise_batchnorm_statistics(block, seed=4)
    x = torch.rand(1, 64, 8, 8)
    with torch.inference_mode():
        expected = block(x)
        fold_batchnorm(block)
        assert count_batchnorms(block) == 0
        assert (block(x) - expected).abs().max() < 1e-4
        a, b = torch.rand(1, 3, 64, 96), torch.rand(1, 3, 64, 96)
        for ours, theirs in zip(pose(a, b), folded(a.contiguous(memory_format=torch.channels_last), b)):
            assert (ours - theirs).abs().max() < 1e-6


def test_unknown_backend_and_unsupported_precision_are_config_errors():
    with pytest.raises(ConfigError, match="backend 'tensorflow' is not one of"):
        InferenceConfig(backend="tensorflow")
    with pytest.raises(ConfigError, match="backend 'eager' runs fp32, fp16, bf16; got precision 'int8'"):
        resolve_backend("eager", "int8", CPU)
    with pytest.raises(ConfigError, match="backend 'onnxruntime' runs fp32, int8; got precision 'bf16'"):
        resolve_backend("onnxruntime", "bf16", CPU)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        resolve_backend("eager_optimized", "fp16", CPU)


def test_every_backend_resolves_on_the_cpu_without_fallback_when_its_library_exists():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    for backend in BACKENDS:
        if backend == AUTO_BACKEND:  # picked by measurement (evaluation.backend_selection), never resolved
            with pytest.raises(ConfigError, match="resolve_auto_config"):
                resolve_backend(backend, "fp32", CPU)
            continue
        choice = resolve_backend(backend, "fp32", CPU)
        assert (choice.backend, choice.precision, choice.note) == (backend, "fp32", "")


def test_missing_onnxruntime_falls_back_to_eager_with_a_warning(monkeypatch, caplog, tiny_checkpoint, make_image):
    _hide_onnxruntime(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=backends_module.__name__):
        choice = resolve_backend("onnxruntime", "int8", CPU)
        estimator = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", backend="onnxruntime"))
    assert (choice.backend, choice.precision) == ("eager", "fp32")
    assert "onnxruntime is not installed" in choice.note
    assert "backend 'onnxruntime int8' unavailable: onnxruntime is not installed" in caplog.text
    assert estimator.backend.backend == "eager" and estimator.runner.choice.backend == "eager"
    plain = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(make_image(64, 96)).disparity
    np.testing.assert_array_equal(estimator.estimate(make_image(64, 96)).disparity, plain)


def test_cuda_device_without_cuda_providers_falls_back_to_eager(monkeypatch, caplog):
    monkeypatch.setattr(backends_module, "onnxruntime_providers", lambda: ["CPUExecutionProvider"])
    with caplog.at_level(logging.WARNING, logger=backends_module.__name__):
        choice = resolve_backend("onnxruntime", "fp32", torch.device("cuda", 0))
    assert choice.backend == "eager" and "no CUDA or TensorRT provider" in choice.note
    monkeypatch.setattr(backends_module, "onnxruntime_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    int8 = resolve_backend("onnxruntime", "int8", torch.device("cuda", 0))
    assert (int8.backend, int8.precision) == ("onnxruntime", "fp32") and "TensorRT" in int8.note


def test_bf16_falls_back_to_fp32_on_a_cpu_without_bf16_instructions(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert not cpu_supports_bf16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n")
    assert cpu_supports_bf16(cpuinfo) == torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    monkeypatch.setattr(backends_module, "cpu_supports_bf16", lambda: False)
    choice = resolve_backend("eager_optimized", "bf16", CPU)
    assert (choice.backend, choice.precision) == ("eager_optimized", "fp32") and "bf16" in choice.note


def test_optimized_backend_matches_eager_in_fp32_and_bf16_within_its_rounding(tiny_checkpoint, make_image):
    image = make_image(75, 250)
    eager = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(image)
    fp32 = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", backend="eager_optimized"))
    assert isinstance(fp32.runner, OptimizedRunner)
    np.testing.assert_allclose(fp32.estimate(image).disparity, eager.disparity, atol=1e-5, rtol=0)
    post_eager = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", post_process=True)).estimate(image)
    post_fast = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", post_process=True, backend="eager_optimized"))
    np.testing.assert_allclose(post_fast.estimate(image).disparity, post_eager.disparity, atol=1e-5, rtol=0)
    if cpu_supports_bf16():
        bf16 = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", backend="eager_optimized", precision="bf16"))
        # bf16 keeps 8 significant bits: a sigmoid output near 0.5 is off by up to ~2**-8.
        np.testing.assert_allclose(bf16.estimate(image).disparity, eager.disparity, atol=8e-3, rtol=0)


def test_optimized_pose_backend_matches_eager(tiny_checkpoint, make_image):
    a, b = make_image(64, 96, 0), make_image(64, 96, 1)
    eager = PoseEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(a, b)
    fast = PoseEstimator(tiny_checkpoint, InferenceConfig(device="cpu", backend="eager_optimized")).estimate(a, b)
    np.testing.assert_allclose(fast.T_b_a, eager.T_b_a, atol=1e-6)


def test_onnx_dir_without_the_file_names_it_and_the_export_command(tiny_checkpoint, tmp_path):
    pytest.importorskip("onnxruntime")
    with pytest.raises(MissingInputError, match=r"depth\.int8\.onnx.*monodepth2 export --format onnx --int8"):
        DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", backend="onnxruntime", precision="int8", onnx_dir=str(tmp_path)))


def test_host_staging_returns_arrays_the_caller_owns_on_the_cpu():
    staging = HostStaging()
    tensor = torch.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(staging.to_numpy(tensor), tensor.numpy())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs and pinned buffers need a CUDA device")
def test_fp16_cuda_graph_backend_matches_eager_and_reuses_its_graph(tiny_checkpoint, make_image):
    image = make_image(75, 250)
    eager = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cuda")).estimate(image).disparity
    fast = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cuda", backend="eager_optimized", precision="fp16"))
    first = fast.estimate(image).disparity
    second = fast.estimate(make_image(75, 250, seed=1)).disparity
    assert len(fast.runner._graphs) == 1  # one shape, one capture, replayed
    np.testing.assert_allclose(first, eager, atol=5e-3, rtol=0)
    assert np.abs(first - second).max() > 0  # the second frame did not return the first frame's buffer
    staging = HostStaging()
    values = torch.arange(12.0, device="cuda").reshape(3, 4)
    out = staging.to_numpy(values)
    values += 1
    np.testing.assert_array_equal(out, np.arange(12.0).reshape(3, 4))


@pytest.fixture
def no_tf32():
    """True fp32 on CUDA for comparisons: cuDNN's convolutions default to TF32 (10-bit mantissa),
    which alone moves a disparity by more than 1e-4; the onnxruntime backend follows the same flag."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_onnxruntime_on_cuda_binds_device_memory_or_falls_back(tiny_checkpoint, make_image, no_tf32):
    pytest.importorskip("onnxruntime")
    image = make_image(64, 96)
    eager = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cuda")).estimate(image).disparity
    ort = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cuda", backend="onnxruntime"))
    np.testing.assert_allclose(ort.estimate(image).disparity, eager, atol=1e-4, rtol=0)


@pytest.mark.skipif(
    not os.environ.get("MONODEPTH2_SLOW_TESTS"), reason="torch.compile takes ~30 s per graph on a small CPU; set MONODEPTH2_SLOW_TESTS=1"
)
def test_compiled_backend_matches_eager_and_reports_its_compile_time(tiny_checkpoint, make_image):
    image = make_image(64, 96)
    eager = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu")).estimate(image).disparity
    compiled = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cpu", backend="compile"))
    assert compiled.runner.setup_seconds > 0 and compiled.runner.cache_dir
    np.testing.assert_allclose(compiled.estimate(image).disparity, eager, atol=1e-4, rtol=0)


def test_build_runner_rejects_an_unknown_network(tiny_checkpoint):
    with pytest.raises(ValueError, match="network must be one of"):
        build_runner("flow", DepthNet(18), resolve_backend("eager", "fp32", CPU), (64, 96))
