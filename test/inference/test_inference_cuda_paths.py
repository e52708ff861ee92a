"""The CUDA paths of the backends: what the CPU can check (shape caches, capture at construction,
provider lists and read-back, TensorRT caches, symmetric int8) and, on a CUDA machine, the real thing."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from monodepth2_ros.inference import DepthEstimator, InferenceConfig
from monodepth2_ros.inference import backends as backends_module
from monodepth2_ros.inference.backends import (
    BackendChoice,
    HostStaging,
    OnnxRuntimeRunner,
    OptimizedRunner,
    ShapeCache,
    build_runner,
    onnxruntime_provider_list,
    tensorrt_cache_dir,
)
from monodepth2_ros.inference.export import DEPTH_INPUTS, DEPTH_OUTPUTS, POSE_INPUTS, export_depth_onnx
from monodepth2_ros.inference.device import resolve_device
from monodepth2_ros.inference.quantize import depth_feeds, int8_is_symmetric, quantize_int8, synthetic_frames
from monodepth2_ros.model.checkpoint import load_checkpoint

CPU = torch.device("cpu")
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# ------------------------------------------------------------------------------ shape caches


def test_shape_cache_keeps_the_most_recently_used_shapes():
    cache: ShapeCache[int, str] = ShapeCache(capacity=2)
    assert cache.put(1, "a") == [] and cache.put(2, "b") == []
    assert cache.get(1) == "a"  # 1 is now the most recent
    assert cache.put(3, "c") == ["b"]
    assert cache.keys() == [1, 3] and len(cache) == 2 and 2 not in cache
    assert cache.get(2) is None
    with pytest.raises(ValueError):
        ShapeCache(0)


class _RecordingGraph:
    """Stands in for a CUDA graph on the CPU: records what was captured, runs the module eagerly."""

    captured: list[tuple[tuple[int, ...], ...]] = []

    def __init__(self, module, inputs):
        self.module = module
        _RecordingGraph.captured.append(tuple(tuple(x.shape) for x in inputs))

    def __call__(self, inputs):
        out = self.module(*inputs)
        return (out,) if isinstance(out, torch.Tensor) else tuple(out)


def test_optimized_runner_replays_captured_shapes_and_keeps_only_the_last_few(monkeypatch):
    """The graph bookkeeping (the capture itself needs a GPU: see the CUDA tests below): a captured
    shape is replayed, unseen shapes are captured on first use, and only the last few are kept."""
    monkeypatch.setattr(backends_module, "_CudaGraph", _RecordingGraph)
    _RecordingGraph.captured = []
    module = torch.nn.Conv2d(3, 1, 3, padding=1).eval()
    runner = OptimizedRunner(
        module,
        BackendChoice("eager_optimized", "fp32", CPU, "eager_optimized fp32"),
        capture_shapes=[[(1, 3, 8, 12)], [(2, 3, 8, 12)]],
        graph_cache_size=3,
    )
    assert runner.cuda_graphs is False and _RecordingGraph.captured == []  # nothing to capture on the CPU
    runner.cuda_graphs = True  # the CUDA branch's bookkeeping, with the recording graph
    for shapes in ([(1, 3, 8, 12)], [(2, 3, 8, 12)]):
        runner._graph_for(runner._prepare([torch.zeros(s) for s in shapes]))
    assert _RecordingGraph.captured == [((1, 3, 8, 12),), ((2, 3, 8, 12),)]
    x = torch.rand(1, 3, 8, 12)
    (out,) = runner(x)
    torch.testing.assert_close(out, module(x).detach(), atol=1e-5, rtol=0)
    assert len(_RecordingGraph.captured) == 2  # batch 1 was replayed, not captured again
    for batch in (3, 4, 5):
        runner(torch.rand(batch, 3, 8, 12))
    assert runner.captured_shapes == [((3, 3, 8, 12),), ((4, 3, 8, 12),), ((5, 3, 8, 12),)]


def test_build_runner_names_every_batch_size_for_capture(monkeypatch):
    seen = {}

    class Spy(OptimizedRunner):
        def __init__(self, module, choice, cuda_graphs=True, capture_shapes=(), graph_cache_size=8):
            seen["shapes"] = [list(s) for s in capture_shapes]
            super().__init__(module, choice, cuda_graphs, capture_shapes, graph_cache_size)

    monkeypatch.setattr(backends_module, "OptimizedRunner", Spy)
    from monodepth2_ros.model.networks import PoseNet

    choice = BackendChoice("eager_optimized", "fp32", CPU, "eager_optimized fp32")
    build_runner("pose", PoseNet(18).eval(), choice, (64, 96), batch_sizes=(1, 2))
    assert seen["shapes"] == [[(1, 3, 64, 96)] * 2, [(2, 3, 64, 96)] * 2]


def test_host_staging_on_the_cpu_needs_no_buffer():
    staging = HostStaging(cache_size=2)
    for rows in range(1, 5):
        staging.to_numpy(torch.zeros(rows, 3))
    assert len(staging._buffers) == 0


# ------------------------------------------------------------------------------ ONNX Runtime providers


def test_provider_list_on_the_cpu_is_the_cpu_alone():
    assert onnxruntime_provider_list(["CUDAExecutionProvider", "CPUExecutionProvider"], CPU, "fp32", DEPTH_INPUTS, (192, 640)) == [
        "CPUExecutionProvider"
    ]


def test_provider_list_on_a_second_gpu_names_its_index_caches_and_profile(tmp_path):
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    device = torch.device("cuda", 1)
    fp32 = onnxruntime_provider_list(available, device, "fp32", POSE_INPUTS, (192, 640), (1, 2, 8), tmp_path, tf32=False)
    (trt, trt_options), (cuda, cuda_options), cpu = fp32
    assert (trt, cuda, cpu) == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    assert trt_options["device_id"] == cuda_options["device_id"] == "1"
    assert trt_options["trt_int8_enable"] == "0" and cuda_options["use_tf32"] == "0"
    assert trt_options["trt_engine_cache_enable"] == trt_options["trt_timing_cache_enable"] == "1"
    assert trt_options["trt_engine_cache_path"] == trt_options["trt_timing_cache_path"] == str(tmp_path)
    assert trt_options["trt_profile_min_shapes"] == "frame_a:1x3x192x640,frame_b:1x3x192x640"
    assert trt_options["trt_profile_opt_shapes"] == "frame_a:1x3x192x640,frame_b:1x3x192x640"
    assert trt_options["trt_profile_max_shapes"] == "frame_a:8x3x192x640,frame_b:8x3x192x640"
    int8 = onnxruntime_provider_list(available, device, "int8", DEPTH_INPUTS, (192, 640), (2,), tmp_path)
    assert [p if isinstance(p, str) else p[0] for p in int8] == ["TensorrtExecutionProvider", "CPUExecutionProvider"]
    assert int8[0][1]["trt_int8_enable"] == "1" and int8[0][1]["trt_profile_opt_shapes"] == "image:2x3x192x640"


def test_tensorrt_cache_is_per_model_content_and_gpu(tmp_path):
    a, b = tmp_path / "a" / "depth.onnx", tmp_path / "b" / "depth.onnx"
    for path, content in ((a, b"model one"), (b, b"model one")):
        path.parent.mkdir()
        path.write_bytes(content)
    root = tmp_path / "cache"
    assert tensorrt_cache_dir(a, "NVIDIA H100 80GB HBM3 sm90", root) == tensorrt_cache_dir(b, "NVIDIA H100 80GB HBM3 sm90", root)
    assert tensorrt_cache_dir(a, "NVIDIA H100 80GB HBM3 sm90", root).parent.parent == root
    assert tensorrt_cache_dir(a, "NVIDIA H100 80GB HBM3 sm90", root) != tensorrt_cache_dir(a, "Orin sm87", root)
    b.write_bytes(b"model two")
    assert tensorrt_cache_dir(a, "Orin sm87", root) != tensorrt_cache_dir(b, "Orin sm87", root)


@pytest.fixture(scope="module")
def depth_onnx(tiny_checkpoint, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    folder = tmp_path_factory.mktemp("onnx")
    return export_depth_onnx(load_checkpoint(tiny_checkpoint).depth_net, folder / "depth.onnx", 64, 96)


def test_onnxruntime_runner_reports_the_providers_and_node_placement_that_really_run(depth_onnx):
    runner = OnnxRuntimeRunner(depth_onnx, BackendChoice("onnxruntime", "fp32", CPU, "onnxruntime fp32"), DEPTH_INPUTS, DEPTH_OUTPUTS)
    assert runner.providers_used == ["CPUExecutionProvider"] and not runner.choice.fell_back
    placement = runner.node_placement()
    import onnx

    graph_nodes = len(onnx.load(str(depth_onnx)).graph.node)
    assert set(placement) == {"CPUExecutionProvider"} and 0 < placement["CPUExecutionProvider"] <= graph_nodes


def test_a_gpu_provider_that_does_not_start_is_reported_not_hidden(depth_onnx, monkeypatch, caplog):
    """This onnxruntime has no CUDA provider; listed as available anyway, the session silently comes
    up on the CPU, exactly as when cuDNN or TensorRT libraries are missing: the runner must say so."""
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    choice = BackendChoice("onnxruntime", "fp32", torch.device("cuda", 0), "onnxruntime fp32")
    runner = OnnxRuntimeRunner(depth_onnx, choice, DEPTH_INPUTS, DEPTH_OUTPUTS)
    assert runner.providers_used == ["CPUExecutionProvider"]
    assert runner.choice.fell_back and "CUDAExecutionProvider could not start" in runner.choice.note
    assert "running on the CPU alone" in caplog.text
    assert runner._on_gpu is False  # it feeds host copies instead of binding device memory


# ------------------------------------------------------------------------------ int8 for TensorRT


def test_int8_for_tensorrt_is_symmetric_signed_and_close_to_fp32(depth_onnx, tmp_path):
    import onnx
    from onnx import numpy_helper

    from monodepth2_ros.inference.export import run_onnx

    feeds = depth_feeds(synthetic_frames(3, 64, 96), 64, 96)
    cpu_int8 = quantize_int8(depth_onnx, tmp_path / "cpu.int8.onnx", feeds)
    trt_int8 = quantize_int8(depth_onnx, tmp_path / "trt.int8.onnx", feeds, symmetric=True)
    assert not int8_is_symmetric(cpu_int8) and int8_is_symmetric(trt_int8) and not int8_is_symmetric(depth_onnx)
    graph = onnx.load(str(trt_int8)).graph
    initializers = {i.name: i for i in graph.initializer}
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) > 20
    zero_points = {n.name: initializers[n.input[2]] for n in qdq}
    activations = [zero_points[n.name] for n in qdq if n.op_type == "QuantizeLinear"]
    assert {z.data_type for z in activations} == {onnx.TensorProto.INT8}  # signed, not uint8
    assert {z.data_type for z in zero_points.values()} == {onnx.TensorProto.INT8, onnx.TensorProto.INT32}  # int32: biases
    assert all(not numpy_helper.to_array(z).any() for z in zero_points.values())
    reference = run_onnx(depth_onnx, feeds[0])[0]
    symmetric = run_onnx(trt_int8, feeds[0])[0]
    assert np.abs(symmetric - reference).max() < 0.03  # one int8 step more than the uint8 bound (0.02)


def test_int8_on_a_gpu_requantises_a_cpu_file_symmetric(depth_onnx, tmp_path, tiny_checkpoint):
    import shutil

    from monodepth2_ros.inference.backends import _onnx_file

    folder = tmp_path / "export"
    folder.mkdir()
    shutil.copy(depth_onnx, folder / "depth.onnx")
    feeds = depth_feeds(synthetic_frames(2, 64, 96), 64, 96)
    quantize_int8(folder / "depth.onnx", folder / "depth.int8.onnx", feeds)
    net = load_checkpoint(tiny_checkpoint).depth_net
    work = tmp_path / "work"
    work.mkdir()
    assert _onnx_file("depth", net, "int8", (64, 96), folder, work, None) == folder / "depth.int8.onnx"
    for_trt = _onnx_file("depth", net, "int8", (64, 96), folder, work, None, for_tensorrt=True)
    assert for_trt.parent == work and int8_is_symmetric(for_trt)


# ------------------------------------------------------------------------------ on a CUDA machine


@CUDA
@pytest.mark.parametrize("index", range(min(torch.cuda.device_count(), 2)) if torch.cuda.is_available() else [0])
def test_cuda_graphs_replay_each_frame_on_every_gpu(tiny_checkpoint, make_image, index, recwarn):
    config = InferenceConfig(device=f"cuda:{index}", backend="eager_optimized", precision="fp16")
    fast = DepthEstimator(tiny_checkpoint, config)
    assert fast.runner.captured_shapes == [((1, 3, 64, 96),)]  # captured while building, not on the first frame
    eager = DepthEstimator(tiny_checkpoint, InferenceConfig(device=f"cuda:{index}"))
    for seed in (0, 1):
        image = make_image(75, 250, seed=seed)
        np.testing.assert_allclose(fast.estimate(image).disparity, eager.estimate(image).disparity, atol=5e-3, rtol=0)
    assert np.abs(fast.estimate(make_image(75, 250, seed=0)).disparity - fast.estimate(make_image(75, 250, seed=1)).disparity).max() > 0
    assert not [w for w in recwarn if "empty" in str(w.message).lower()]


@CUDA
def test_two_runners_first_called_at_once_while_a_third_thread_copies_to_the_host(tiny_checkpoint, make_image):
    config = InferenceConfig(device="cuda", backend="eager_optimized", precision="fp16")
    runners = [DepthEstimator(tiny_checkpoint, config) for _ in range(2)]
    reference = DepthEstimator(tiny_checkpoint, InferenceConfig(device="cuda"))
    images = [make_image(64, 96, seed=s) for s in range(2)]
    results, errors, stop = {}, [], threading.Event()

    def infer(i):
        try:
            results[i] = runners[i].estimate(images[i]).disparity
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    def copy_to_host():
        staging = HostStaging()
        while not stop.is_set():
            staging.to_numpy(torch.rand(256, 256, device="cuda"))

    copier = threading.Thread(target=copy_to_host)
    copier.start()
    threads = [threading.Thread(target=infer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    copier.join(timeout=30)
    assert not errors
    for i in range(2):
        np.testing.assert_allclose(results[i], reference.estimate(images[i]).disparity, atol=5e-3, rtol=0)


@CUDA
def test_resolve_device_auto_carries_the_gpu_index():
    assert resolve_device("auto") == torch.device("cuda", 0)


class _FakeSession:
    """What an onnxruntime session reports about itself (the providers and options it really runs)."""

    def __init__(self, providers, device_id):
        self._providers = providers
        self._device_id = device_id

    def get_providers(self):
        return list(self._providers)

    def get_provider_options(self):
        return {p: {"device_id": self._device_id} for p in self._providers if p != "CPUExecutionProvider"}


def _runner_after_creation(session, providers, device_index=1):
    runner = object.__new__(OnnxRuntimeRunner)
    runner.choice = BackendChoice("onnxruntime", "fp32", torch.device("cuda", device_index), "onnxruntime fp32")
    runner.model = "depth.onnx"
    runner.providers = providers
    runner.session = session
    runner.providers_used = session.get_providers()
    return runner


def test_a_session_that_fell_back_to_gpu_0_is_rebuilt_on_the_asked_gpu(caplog):
    """onnxruntime's own fallback (TensorRT failed to start) re-creates the session with default
    options: CUDA on device 0, while the inputs live on cuda:1."""
    asked = [("TensorrtExecutionProvider", {"device_id": "1"}), ("CUDAExecutionProvider", {"device_id": "1"}), "CPUExecutionProvider"]
    runner = _runner_after_creation(_FakeSession(["CUDAExecutionProvider", "CPUExecutionProvider"], "0"), asked)
    rebuilt = []

    def session(providers):
        rebuilt.append(providers)
        return _FakeSession(["CUDAExecutionProvider", "CPUExecutionProvider"], "1")

    runner._session = session
    runner._check_gpu_session()
    assert rebuilt == [[("CUDAExecutionProvider", {"device_id": "1"}), "CPUExecutionProvider"]]
    assert runner._on_gpu and runner.providers_used == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert "TensorrtExecutionProvider could not start" in runner.choice.note and "running on CUDAExecutionProvider" in runner.choice.note


def test_a_session_on_the_asked_gpu_is_kept_and_quiet(caplog):
    asked = [("CUDAExecutionProvider", {"device_id": "1"}), "CPUExecutionProvider"]
    runner = _runner_after_creation(_FakeSession(["CUDAExecutionProvider", "CPUExecutionProvider"], "1"), asked)
    runner._session = lambda providers: pytest.fail("no rebuild expected")
    runner._check_gpu_session()
    assert runner._on_gpu and not runner.choice.fell_back and "could not start" not in caplog.text


def test_a_session_stuck_on_another_gpu_is_an_error():
    from monodepth2_ros.errors import ConfigError

    asked = [("CUDAExecutionProvider", {"device_id": "1"}), "CPUExecutionProvider"]
    runner = _runner_after_creation(_FakeSession(["CUDAExecutionProvider", "CPUExecutionProvider"], "0"), asked)
    runner._session = lambda providers: _FakeSession(["CUDAExecutionProvider", "CPUExecutionProvider"], "0")
    with pytest.raises(ConfigError, match="would not run depth.onnx on cuda:1"):
        runner._check_gpu_session()
