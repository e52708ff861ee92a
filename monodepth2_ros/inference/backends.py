"""Where the networks run: eager PyTorch, an optimised eager graph, ``torch.compile`` or ONNX Runtime.

Every backend is wrapped in a :class:`NetworkRunner`: a callable taking network-size float tensors in
[0, 1] on the estimator's device and returning float32 tensors on that device, so the estimators'
pre- and post-processing (on the device) are shared by all of them.

Backends (``InferenceConfig.backend``) and the precisions each accepts:

* ``eager`` (fp32, fp16 on CUDA, bf16): the networks as trained, under autocast. The reference.
* ``eager_optimized`` (fp32, fp16 on CUDA, bf16): BatchNorm folded into the convolutions,
  channels-last memory, weights cast to fp16/bf16 (no autocast casts per call); on CUDA the fixed
  input shape is captured once as a CUDA graph and replayed.
* ``compile`` (fp32, fp16 on CUDA, bf16): ``torch.compile`` (inductor, with weight freezing on
  the CPU) of the ``eager_optimized`` module; the compile time is kept in ``setup_seconds``.
* ``onnxruntime`` (fp32, int8 on the CPU): the exported ONNX graph; providers are picked by
  availability (TensorRT, then CUDA, for a CUDA device; CPU otherwise).
* ``openvino`` (fp32, bf16, int8; CPU): the exported ONNX graph on OpenVINO's CPU plugin, int8
  quantised by NNCF; see :mod:`monodepth2_ros.inference.openvino_backend`.
* ``auto``: the fastest of the above that runs here within the accuracy bound, from a small cached
  measurement; see :mod:`monodepth2_ros.evaluation.backend_selection` (it resolves ``auto`` before
  an estimator is built).

A backend that cannot run here (onnxruntime not installed, no CUDA provider, no bf16 instructions)
falls back, with a logged warning, to the closest one that can; :class:`BackendChoice` records what
runs and why.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from monodepth2_ros.errors import ConfigError, MissingInputError
from monodepth2_ros.inference.device import PRECISIONS, autocast_context, resolve_precision
from monodepth2_ros.inference.export import (
    DEPTH_INPUTS,
    DEPTH_OUTPUTS,
    POSE_INPUTS,
    POSE_OUTPUTS,
    DepthOutput,
    PoseOutput,
    export_depth_onnx,
    export_pose_onnx,
    onnx_file_name,
)
from monodepth2_ros.inference.openvino_backend import OPENVINO_PRECISIONS, openvino_version
from monodepth2_ros.inference.optimize import optimized_copy

__all__ = [
    "BACKENDS",
    "AUTO_BACKEND",
    "BACKEND_PRECISIONS",
    "ALL_PRECISIONS",
    "NETWORKS",
    "BackendChoice",
    "NetworkRunner",
    "EagerRunner",
    "OptimizedRunner",
    "CompiledRunner",
    "OnnxRuntimeRunner",
    "HostStaging",
    "cpu_supports_bf16",
    "onnxruntime_providers",
    "resolve_backend",
    "build_runner",
    "inductor_cache_dir",
]

_LOG = logging.getLogger(__name__)

# "auto" is no runtime of its own: evaluation/backend_selection.py measures and picks one.
AUTO_BACKEND = "auto"
BACKENDS = ("eager", "eager_optimized", "compile", "onnxruntime", "openvino", AUTO_BACKEND)
BACKEND_PRECISIONS: dict[str, tuple[str, ...]] = {
    "eager": PRECISIONS,
    "eager_optimized": PRECISIONS,
    "compile": PRECISIONS,
    "onnxruntime": ("fp32", "int8"),
    "openvino": OPENVINO_PRECISIONS,
}
# Every precision some backend runs (checked against the chosen backend when it is resolved).
ALL_PRECISIONS = tuple(dict.fromkeys(p for precisions in BACKEND_PRECISIONS.values() for p in precisions))
NETWORKS = ("depth", "pose")

_TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# /proc/cpuinfo flags of CPUs with native bf16 dot products (AVX-512 BF16 on Zen 4 / Cooper Lake+, AMX).
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# ONNX Runtime providers in order of preference for a CUDA device.
_CUDA_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
# Calls run before a CUDA graph capture, so lazy initialisation (cuDNN autotuning, allocations) is done.
_CUDA_GRAPH_WARMUP = 3
# Inductor FX-graph cache counters (``torch._dynamo.utils.counters["inductor"]["fxgraph_cache_*"]``).
_CACHE_EVENTS = ("hit", "miss", "bypass")
# Rendered frames used to calibrate int8 when no exported int8 file is given.
_DEFAULT_CALIBRATION_FRAMES = 4


@dataclass(frozen=True)
class BackendChoice:
    """What runs the networks, after fallbacks.

    Attributes:
        backend: one of :data:`BACKENDS`.
        precision: ``fp32``, ``fp16``, ``bf16`` or ``int8``.
        device: the torch device inputs and outputs live on.
        requested: the ``backend precision`` asked for.
        note: why the choice differs from the request ("" when it does not).
    """

    backend: str
    precision: str
    device: torch.device
    requested: str
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision}"

    @property
    def fell_back(self) -> bool:
        return bool(self.note)


def cpu_supports_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when the CPU has native bf16 arithmetic (AVX-512 BF16 or AMX) and torch uses AVX-512.

    Without it oneDNN emulates bf16 and is slower than fp32, so bf16 is not worth running.
    """
    capability = torch.backends.cpu.get_cpu_capability()
    if not capability.startswith("AVX512"):
        return False
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return any(flag in flags for flag in _BF16_FLAGS)


def onnxruntime_providers() -> list[str] | None:
    """ONNX Runtime's available execution providers, or None when onnxruntime cannot be imported."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    return list(ort.get_available_providers())


def _fallback(choice: BackendChoice, backend: str, precision: str, reason: str) -> BackendChoice:
    _LOG.warning("backend '%s' unavailable: %s; running '%s %s' instead", choice.requested, reason, backend, precision)
    return BackendChoice(backend, precision, choice.device, choice.requested, reason)


def resolve_backend(backend: str, precision: str, device: torch.device) -> BackendChoice:
    """Check a backend/precision pair for a device and apply the fallbacks.

    Raises:
        ConfigError: unknown backend, a precision the backend does not have, or fp16 on the CPU.
    """
    backend = (backend or "eager").strip().lower()
    precision = (precision or "fp32").strip().lower()
    if backend not in BACKENDS:
        raise ConfigError(f"backend '{backend}' is not one of {', '.join(BACKENDS)}")
    if backend == AUTO_BACKEND:
        raise ConfigError(
            "backend 'auto' is picked by measurement: resolve it first with "
            "monodepth2_ros.evaluation.backend_selection.resolve_auto_config"
        )
    if precision not in BACKEND_PRECISIONS[backend]:
        raise ConfigError(
            f"backend '{backend}' runs {', '.join(BACKEND_PRECISIONS[backend])}; got precision '{precision}'"
        )
    if precision != "int8":
        resolve_precision(precision, device)
    choice = BackendChoice(backend, precision, device, f"{backend} {precision}")
    if backend == "onnxruntime":
        providers = onnxruntime_providers()
        if providers is None:
            return _fallback(choice, "eager", "fp32", "onnxruntime is not installed ('pip install onnxruntime')")
        if device.type == "cuda":
            if not any(p in providers for p in _CUDA_PROVIDERS):
                return _fallback(
                    choice, "eager", "fp32", f"this onnxruntime has no CUDA or TensorRT provider (has {', '.join(providers)})"
                )
            if precision == "int8" and "TensorrtExecutionProvider" not in providers:
                return _fallback(choice, "onnxruntime", "fp32", "int8 on a CUDA device needs the TensorRT provider")
    if backend == "openvino":
        if openvino_version() is None:
            return _fallback(choice, "eager", "fp32", "openvino is not installed ('pip install openvino nncf')")
        if device.type != "cpu":
            return _fallback(choice, "eager", "fp32", f"the openvino backend runs on the CPU, not {device}")
        if precision == "int8":
            try:
                import nncf  # noqa: F401  (quantises the graph)
            except ImportError:
                return _fallback(choice, "openvino", "fp32", "OpenVINO int8 needs nncf ('pip install nncf')")
    if backend in ("eager_optimized", "compile") and precision == "bf16" and device.type == "cpu":
        if not cpu_supports_bf16():
            return _fallback(choice, backend, "fp32", "this CPU has no native bf16 (avx512_bf16 / amx_bf16)")
    return choice


def _as_tuple(outputs: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return (outputs,) if isinstance(outputs, torch.Tensor) else tuple(outputs)


def _output_module(network: str, net: nn.Module) -> nn.Module:
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {NETWORKS}, got {network!r}")
    return DepthOutput(net) if network == "depth" else PoseOutput(net)


class NetworkRunner:
    """Runs one network: ``runner(*inputs) -> outputs``.

    Inputs are (B, 3, H, W) float tensors in [0, 1] at the network size on ``choice.device``
    (one for depth; ``frame_a, frame_b`` for pose). Outputs are float32 tensors on the same device:
    ``(disparity (B, 1, H, W),)`` for depth, ``(axis_angle, translation)`` (B, 2, 1, 3) for pose.

    Attributes:
        choice: the backend that runs.
        setup_seconds: one-off cost of building it (export, quantisation, compilation).
    """

    choice: BackendChoice
    setup_seconds: float = 0.0

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError


class EagerRunner(NetworkRunner):
    """The module as is, under autocast for fp16/bf16: exactly the estimators' historical path."""

    def __init__(self, module: nn.Module, choice: BackendChoice) -> None:
        self.module = module
        self.choice = choice

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode(), autocast_context(self.choice.device, self.choice.precision):
            return tuple(out.float() for out in _as_tuple(self.module(*inputs)))


class _CudaGraph:
    """One captured CUDA graph for fixed input shapes, with its static input and output tensors."""

    def __init__(self, module: nn.Module, inputs: Sequence[torch.Tensor]) -> None:
        self.static_inputs = [x.clone() for x in inputs]
        side = torch.cuda.Stream(device=inputs[0].device)
        side.wait_stream(torch.cuda.current_stream(inputs[0].device))
        with torch.cuda.stream(side):
            for _ in range(_CUDA_GRAPH_WARMUP):
                module(*self.static_inputs)
        torch.cuda.current_stream(inputs[0].device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_outputs = _as_tuple(module(*self.static_inputs))

    def __call__(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        for static, x in zip(self.static_inputs, inputs):
            static.copy_(x)
        self.graph.replay()
        return self.static_outputs


class OptimizedRunner(NetworkRunner):
    """BatchNorm folded, channels-last, weights in the run precision; CUDA graphs on CUDA.

    Args:
        module: the output module (on any device; it is copied).
        choice: backend choice (``eager_optimized``).
        cuda_graphs: capture each new input shape as a CUDA graph (CUDA only).
    """

    def __init__(self, module: nn.Module, choice: BackendChoice, cuda_graphs: bool = True) -> None:
        start = time.perf_counter()
        self.choice = choice
        self.dtype = _TORCH_DTYPES[choice.precision]
        self.module = optimized_copy(module, choice.device, self.dtype)
        self.cuda_graphs = cuda_graphs and choice.device.type == "cuda"
        self._graphs: dict[tuple[tuple[int, ...], ...], _CudaGraph] = {}
        self._lock = threading.Lock()  # a graph's static buffers serve one call at a time
        self.setup_seconds = time.perf_counter() - start

    def _prepare(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [x.to(self.dtype).contiguous(memory_format=torch.channels_last) for x in inputs]

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode():
            prepared = self._prepare(inputs)
            if not self.cuda_graphs:
                return tuple(out.float() for out in _as_tuple(self.module(*prepared)))
            key = tuple(tuple(x.shape) for x in prepared)
            with self._lock:
                graph = self._graphs.get(key)
                if graph is None:
                    graph = self._graphs[key] = _CudaGraph(self.module, prepared)
                # .float() copies out of the graph's static outputs before the next replay reuses them.
                return tuple(out.float() if out.dtype != torch.float32 else out.clone() for out in graph(prepared))


def inductor_cache_dir() -> str:
    """The directory inductor caches compiled graphs in (``TORCHINDUCTOR_CACHE_DIR`` or its default)."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    return cache_dir()


class CompiledRunner(NetworkRunner):
    """``torch.compile`` of the optimised module, compiled now on ``example_inputs``.

    On the CPU inductor's weight freezing is on, so convolution weights are pre-packed for oneDNN
    once instead of on every call. ``cache_events`` counts inductor's FX-graph cache hits, misses
    and bypasses during the build: a hit means an earlier run's compiled graph (in
    :func:`inductor_cache_dir`) was reused. Frozen graphs bypass that cache (their weights are
    constants), but the compiled kernels in the same directory are still reused by a later process.
    """

    def __init__(self, module: nn.Module, choice: BackendChoice, example_inputs: Sequence[torch.Tensor]) -> None:
        from torch._dynamo.utils import counters

        self.choice = choice
        self.dtype = _TORCH_DTYPES[choice.precision]
        self.module = optimized_copy(module, choice.device, self.dtype)
        mode = "reduce-overhead" if choice.device.type == "cuda" else None  # CUDA graphs on CUDA
        self.compiled = torch.compile(self.module, mode=mode)
        before = {event: counters["inductor"][f"fxgraph_cache_{event}"] for event in _CACHE_EVENTS}
        start = time.perf_counter()
        self(*example_inputs)
        self.setup_seconds = time.perf_counter() - start
        self.cache_events = {event: counters["inductor"][f"fxgraph_cache_{event}"] - before[event] for event in _CACHE_EVENTS}
        self.cache_hits = self.cache_events["hit"]
        self.cache_dir = inductor_cache_dir()

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        prepared = [x.to(self.dtype).contiguous(memory_format=torch.channels_last) for x in inputs]
        with torch.inference_mode():
            if self.choice.device.type == "cpu":
                import torch._inductor.config as inductor_config

                with inductor_config.patch(freezing=True):
                    outputs = self.compiled(*prepared)
            else:
                outputs = self.compiled(*prepared)
            return tuple(out.float() if out.dtype != torch.float32 else out.clone() for out in _as_tuple(outputs))


class OnnxRuntimeRunner(NetworkRunner):
    """An ONNX Runtime session on an exported graph.

    On the CPU, inputs are handed over as zero-copy numpy views and outputs come back as arrays
    wrapped without a copy. On CUDA, inputs and outputs are bound to torch device memory (IO binding),
    so nothing crosses to the host.

    Args:
        model: the ``.onnx`` file.
        choice: backend choice (``onnxruntime``).
        input_names, output_names: the graph's names (see ``export``).
        threads: intra-op threads; 0 lets ONNX Runtime use one per physical core.
    """

    def __init__(
        self,
        model: str | Path,
        choice: BackendChoice,
        input_names: Sequence[str],
        output_names: Sequence[str],
        threads: int = 0,
    ) -> None:
        import onnxruntime as ort

        start = time.perf_counter()
        self.choice = choice
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        available = ort.get_available_providers()
        if choice.device.type == "cuda":
            index = choice.device.index or 0
            # TensorRT reads the QDQ nodes of an int8 graph itself (explicit quantisation); CPU takes
            # whatever node the GPU providers refuse.
            wanted = ("TensorrtExecutionProvider",) if choice.precision == "int8" else _CUDA_PROVIDERS
            self.providers = [(p, {"device_id": index}) for p in wanted if p in available]
            self.providers.append("CPUExecutionProvider")
        else:
            self.providers = ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(model), options, providers=self.providers)
        except Exception as err:  # onnxruntime raises its own pybind types for bad or mismatched files
            raise ConfigError(f"ONNX Runtime cannot load {model}: {str(err).splitlines()[0]}") from err
        graph_inputs = [i.name for i in self.session.get_inputs()]
        if graph_inputs != list(self.input_names):
            raise ConfigError(f"{model} has inputs {graph_inputs}, expected {list(self.input_names)}")
        self._output_shapes = {o.name: o.shape for o in self.session.get_outputs()}
        self.setup_seconds = time.perf_counter() - start

    def input_size(self) -> tuple[int, int]:
        """(height, width) the graph was exported at."""
        shape = self.session.get_inputs()[0].shape
        return int(shape[2]), int(shape[3])

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.choice.device.type != "cuda":
            feeds = {name: x.detach().float().contiguous().numpy() for name, x in zip(self.input_names, inputs)}
            return tuple(torch.from_numpy(out) for out in self.session.run(list(self.output_names), feeds))
        return self._run_cuda(inputs)

    def _run_cuda(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        device = self.choice.device
        batch = inputs[0].shape[0]
        binding = self.session.io_binding()
        contiguous = [x.detach().float().contiguous() for x in inputs]  # kept alive until the run ends
        for name, x in zip(self.input_names, contiguous):
            binding.bind_input(name, "cuda", device.index or 0, np.float32, tuple(x.shape), x.data_ptr())
        outputs = []
        for name in self.output_names:
            shape = tuple(batch if not isinstance(d, int) else d for d in self._output_shapes[name])
            out = torch.empty(shape, dtype=torch.float32, device=device)
            binding.bind_output(name, "cuda", device.index or 0, np.float32, shape, out.data_ptr())
            outputs.append(out)
        torch.cuda.current_stream(device).synchronize()  # inputs written by torch's stream are ready
        self.session.run_with_iobinding(binding)
        return tuple(outputs)


class HostStaging:
    """Device -> host copies through reused pinned buffers (CUDA); plain views on the CPU.

    One DMA copy per output into a page-locked buffer kept per shape, then the caller gets its own
    array (a host memcpy), so results never alias a buffer the next frame overwrites.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[tuple[int, ...], torch.dtype], torch.Tensor] = {}
        self._lock = threading.Lock()

    def to_numpy(self, tensor: torch.Tensor) -> np.ndarray:
        """A host numpy array with ``tensor``'s values (owned by the caller)."""
        if tensor.device.type != "cuda":
            return tensor.detach().numpy()
        key = (tuple(tensor.shape), tensor.dtype)
        with self._lock:
            buffer = self._buffers.get(key)
            if buffer is None:
                buffer = self._buffers[key] = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            buffer.copy_(tensor, non_blocking=True)
            torch.cuda.current_stream(tensor.device).synchronize()
            return buffer.numpy().copy()


def _onnx_file(
    network: str,
    net: nn.Module,
    precision: str,
    size: tuple[int, int],
    onnx_dir: str | Path | None,
    work_dir: Path,
    calibration_frames: Sequence[np.ndarray] | None,
) -> Path:
    """The ONNX file to load: from ``onnx_dir`` (written by ``monodepth2 export``), else exported now."""
    name = onnx_file_name(network, precision)
    if onnx_dir is not None:
        path = Path(onnx_dir) / name
        if not path.is_file():
            hint = " --int8" if precision == "int8" else ""
            raise MissingInputError(
                f"ONNX file not found: {path} (write it with 'monodepth2 export --format onnx{hint} --out {onnx_dir}')"
            )
        return path
    export = export_depth_onnx if network == "depth" else export_pose_onnx
    fp32_path = export(net, work_dir / onnx_file_name(network, "fp32"), *size)
    if precision != "int8":
        return fp32_path
    from monodepth2_ros.inference.quantize import depth_feeds, pose_feeds, quantize_int8, synthetic_frames

    frames = list(calibration_frames) if calibration_frames else synthetic_frames(_DEFAULT_CALIBRATION_FRAMES, *size)
    feeds = (depth_feeds if network == "depth" else pose_feeds)(frames, *size)
    return quantize_int8(fp32_path, work_dir / name, feeds)


def build_runner(
    network: str,
    net: nn.Module,
    choice: BackendChoice,
    size: tuple[int, int],
    *,
    onnx_dir: str | Path | None = None,
    calibration_frames: Sequence[np.ndarray] | None = None,
    threads: int = 0,
) -> NetworkRunner:
    """A runner of ``net`` (a ``DepthNet`` or ``PoseNet`` in eval mode) for ``choice``.

    Args:
        network: ``depth`` or ``pose``.
        net: the network; ``eager`` runs it in place (it should already be on ``choice.device``),
            the other backends work on copies.
        choice: from :func:`resolve_backend`.
        size: (height, width) of the network input.
        onnx_dir: folder with the files of ``monodepth2 export`` for ``onnxruntime``; None exports
            (and for int8 calibrates on rendered synthetic frames) at start-up.
        calibration_frames: (H, W, 3) uint8 RGB frames for the int8 calibration when exporting now.
        threads: ONNX Runtime intra-op threads (0: one per physical core); PyTorch backends use
            ``torch.get_num_threads()``.
    Raises:
        MissingInputError: ``onnx_dir`` lacks the file for this network and precision.
        ConfigError: an ONNX file that does not fit (inputs, size).
    """
    module = _output_module(network, net)
    if choice.backend == "openvino":
        from monodepth2_ros.inference.openvino_backend import build_openvino_runner

        return build_openvino_runner(
            network, net, choice, size, onnx_dir=onnx_dir, calibration_frames=calibration_frames, threads=threads
        )
    if choice.backend == "eager":
        return EagerRunner(module, choice)
    if choice.backend == "eager_optimized":
        return OptimizedRunner(module, choice)
    inputs_per_call = 1 if network == "depth" else 2
    if choice.backend == "compile":
        example = [torch.rand(1, 3, *size, device=choice.device) for _ in range(inputs_per_call)]
        return CompiledRunner(module, choice, example)
    names = (DEPTH_INPUTS, DEPTH_OUTPUTS) if network == "depth" else (POSE_INPUTS, POSE_OUTPUTS)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="monodepth2_onnx_") as work_dir:
        path = _onnx_file(network, net, choice.precision, size, onnx_dir, Path(work_dir), calibration_frames)
        runner = OnnxRuntimeRunner(path, choice, *names, threads=threads)
    if runner.input_size() != tuple(size):
        raise ConfigError(f"{path} was exported at {runner.input_size()}, the checkpoint runs at {tuple(size)}")
    runner.setup_seconds = time.perf_counter() - start
    return runner

