"""Where the networks run: eager PyTorch, an optimised eager graph, ``torch.compile`` or ONNX Runtime.

Every backend is wrapped in a :class:`NetworkRunner`: a callable taking network-size float tensors in
[0, 1] on the estimator's device and returning float32 tensors on that device, so the estimators'
pre- and post-processing (on the device) are shared by all of them.

Backends (``InferenceConfig.backend``) and the precisions each accepts:

* ``eager`` (fp32, fp16 on CUDA, bf16): the networks as trained, under autocast. The reference.
* ``eager_optimized`` (fp32, fp16 on CUDA, bf16): BatchNorm folded into the convolutions,
  channels-last memory, weights cast to fp16/bf16 (no autocast casts per call); on CUDA each input
  shape is captured once as a CUDA graph and replayed (the batch sizes the caller names at
  construction, others on first use; the last few shapes are kept).
* ``compile`` (fp32, fp16 on CUDA, bf16): ``torch.compile`` (inductor, with weight freezing on
  the CPU) of the ``eager_optimized`` module; the compile time is kept in ``setup_seconds``.
* ``onnxruntime`` (fp32, int8): the exported ONNX graph; providers are picked by availability
  (TensorRT, then CUDA, for a CUDA device; CPU otherwise), and what the session really runs on is
  checked after it is made (``providers_used``). int8 on TensorRT uses a symmetric signed-int8 graph.
* ``openvino`` (fp32, bf16, int8; CPU): the exported ONNX graph on OpenVINO's CPU plugin, int8
  quantised by NNCF; see :mod:`monodepth2_ros.inference.openvino_backend`.
* ``auto``: the fastest of the above that runs here within the accuracy bound, from a small cached
  measurement; see :mod:`monodepth2_ros.evaluation.backend_selection` (it resolves ``auto`` before
  an estimator is built).

CUDA rules kept by every runner here: the runner's device is made current around each call (the
current device is per thread, and a ROS worker thread starts on GPU 0), graphs are captured on a
private stream of that device in ``thread_local`` capture mode, and one capture or compile warm-up
runs at a time in the process (:data:`CAPTURE_LOCK`), so two nodes in one process can start at once.

A backend that cannot run here (onnxruntime not installed, no CUDA provider, no bf16 instructions)
falls back, with a logged warning, to the closest one that can; :class:`BackendChoice` records what
runs and why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import torch
from torch import nn

from monodepth2_ros.errors import ConfigError, MissingInputError
from monodepth2_ros.inference.device import PRECISIONS, autocast_context, cuda_device_guard, resolve_precision
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
    "ShapeCache",
    "CAPTURE_LOCK",
    "SHAPE_CACHE_SIZE",
    "cpu_supports_bf16",
    "onnxruntime_provider_list",
    "tensorrt_cache_dir",
    "onnx_node_placement",
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
# Input shapes whose CUDA graphs / pinned host buffers are kept (least recently used dropped first):
# enough for a node's batch sizes, bounded when a caller sends ever new shapes.
SHAPE_CACHE_SIZE = 8
# One CUDA graph capture or compile warm-up at a time in the process: captures on two threads at once
# (the depth and pose nodes of one bringup process) would otherwise record each other's work or fail.
CAPTURE_LOCK = threading.Lock()
# Calls per batch size that warm a ``compile`` runner in a thread: CUDA-graph trees run a new shape
# eagerly once, record it on the next call, and replay from the third.
_COMPILE_WARMUP_CALLS = 3
# Where TensorRT engines and timing caches are kept between runs (overridable).
TENSORRT_CACHE_ENV = "MONODEPTH2_TENSORRT_CACHE"

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class ShapeCache(Generic[_K, _V]):
    """A small least-recently-used map (per-shape CUDA graphs, pinned buffers); not thread-safe."""

    def __init__(self, capacity: int = SHAPE_CACHE_SIZE) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[_K, _V] = OrderedDict()

    def get(self, key: _K) -> _V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: _K, value: _V) -> list[_V]:
        """Store ``value``; returns what was evicted to stay within ``capacity``."""
        self._items[key] = value
        self._items.move_to_end(key)
        evicted = []
        while len(self._items) > self.capacity:
            evicted.append(self._items.popitem(last=False)[1])
        return evicted

    def keys(self) -> list[_K]:
        """Keys, least recently used first."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items


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
        device = self.choice.device
        with torch.inference_mode(), cuda_device_guard(device), autocast_context(device, self.choice.precision):
            return tuple(out.float() for out in _as_tuple(self.module(*inputs)))


class _CudaGraph:
    """One captured CUDA graph for fixed input shapes, with its static input and output tensors.

    Captured with the inputs' device current and on a private stream of that device: with another
    device current (a second GPU, a worker thread that starts on GPU 0) or on the class-wide default
    capture stream, the kernels would be issued outside the capture and every replay would return
    the capture frame's output. ``thread_local`` capture mode lets other threads allocate, copy and
    synchronise meanwhile; :data:`CAPTURE_LOCK` keeps two captures from overlapping.
    """

    def __init__(self, module: nn.Module, inputs: Sequence[torch.Tensor]) -> None:
        device = inputs[0].device
        with CAPTURE_LOCK, torch.cuda.device(device):
            caller = torch.cuda.current_stream(device)
            stream = torch.cuda.Stream(device=device)
            self.static_inputs = [x.clone() for x in inputs]
            stream.wait_stream(caller)
            with torch.cuda.stream(stream):
                for _ in range(_CUDA_GRAPH_WARMUP):
                    module(*self.static_inputs)
            stream.synchronize()
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, stream=stream, capture_error_mode="thread_local"):
                self.static_outputs = _as_tuple(module(*self.static_inputs))
            caller.wait_stream(stream)

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
        cuda_graphs: capture each input shape as a CUDA graph (CUDA only).
        capture_shapes: input shapes to capture now, e.g. ``[[(1, 3, 192, 640)]]`` (one list of
            input shapes per call signature): the batch sizes the caller will use, so no capture
            happens later in a worker thread. Other shapes are captured on first use.
        graph_cache_size: CUDA graphs kept (least recently used dropped).
    """

    def __init__(
        self,
        module: nn.Module,
        choice: BackendChoice,
        cuda_graphs: bool = True,
        capture_shapes: Sequence[Sequence[tuple[int, ...]]] = (),
        graph_cache_size: int = SHAPE_CACHE_SIZE,
    ) -> None:
        start = time.perf_counter()
        self.choice = choice
        self.dtype = _TORCH_DTYPES[choice.precision]
        self.module = optimized_copy(module, choice.device, self.dtype)
        self.cuda_graphs = cuda_graphs and choice.device.type == "cuda"
        self._graphs: ShapeCache[tuple[tuple[int, ...], ...], _CudaGraph] = ShapeCache(graph_cache_size)
        self._lock = threading.Lock()  # a graph's static buffers serve one call at a time
        if self.cuda_graphs:
            with torch.inference_mode(), cuda_device_guard(choice.device):
                for shapes in capture_shapes:
                    examples = self._prepare([torch.zeros(shape, device=choice.device) for shape in shapes])
                    self._graph_for(examples)
        self.setup_seconds = time.perf_counter() - start

    @property
    def captured_shapes(self) -> list[tuple[tuple[int, ...], ...]]:
        """Input shapes with a captured graph, least recently used first."""
        return self._graphs.keys()

    def _prepare(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [x.to(self.dtype).contiguous(memory_format=torch.channels_last) for x in inputs]

    def _graph_for(self, prepared: Sequence[torch.Tensor]) -> _CudaGraph:
        """The graph of these input shapes, captured now if needed (caller holds ``_lock`` or is ``__init__``)."""
        key = tuple(tuple(x.shape) for x in prepared)
        graph = self._graphs.get(key)
        if graph is None:
            graph = _CudaGraph(self.module, prepared)
            if self._graphs.put(key, graph) and self.choice.device.type == "cuda":
                # The dropped graph frees its memory pool: let its last replay finish first.
                torch.cuda.synchronize(self.choice.device)
        return graph

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode(), cuda_device_guard(self.choice.device):
            prepared = self._prepare(inputs)
            if not self.cuda_graphs:
                return tuple(out.float() for out in _as_tuple(self.module(*prepared)))
            with self._lock:
                graph = self._graph_for(prepared)
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

    On CUDA (``reduce-overhead``: CUDA-graph trees, whose state is per thread) the runner is warmed
    at every shape of ``example_inputs`` in the building thread, and again in each other thread
    the first time it calls, under :data:`CAPTURE_LOCK`, so no recording overlaps another thread's
    capture and no shape is first recorded in the middle of a node's frame.

    Args:
        example_inputs: one list of inputs per batch size the caller will use (at least one).
    """

    def __init__(
        self, module: nn.Module, choice: BackendChoice, example_inputs: Sequence[Sequence[torch.Tensor]]
    ) -> None:
        from torch._dynamo.utils import counters

        if not example_inputs:
            raise ValueError("CompiledRunner needs example inputs for at least one batch size")
        self.choice = choice
        self.dtype = _TORCH_DTYPES[choice.precision]
        self.module = optimized_copy(module, choice.device, self.dtype)
        self._on_cuda = choice.device.type == "cuda"
        mode = "reduce-overhead" if self._on_cuda else None  # CUDA graphs on CUDA
        self.compiled = torch.compile(self.module, mode=mode)
        self._examples = [list(inputs) for inputs in example_inputs]
        self._warm_threads: set[int] = set()
        self._warm_lock = threading.Lock()
        before = {event: counters["inductor"][f"fxgraph_cache_{event}"] for event in _CACHE_EVENTS}
        start = time.perf_counter()
        self._warm_this_thread()
        self.setup_seconds = time.perf_counter() - start
        self.cache_events = {event: counters["inductor"][f"fxgraph_cache_{event}"] - before[event] for event in _CACHE_EVENTS}
        self.cache_hits = self.cache_events["hit"]
        self.cache_dir = inductor_cache_dir()

    @property
    def warm_batch_sizes(self) -> list[int]:
        return [int(inputs[0].shape[0]) for inputs in self._examples]

    def _warm_this_thread(self) -> None:
        thread = threading.get_ident()
        if thread in self._warm_threads:
            return
        calls = _COMPILE_WARMUP_CALLS if self._on_cuda else 1
        with CAPTURE_LOCK:
            for inputs in self._examples:
                for _ in range(calls):
                    self._run(inputs)
            if self._on_cuda:
                torch.cuda.synchronize(self.choice.device)
        with self._warm_lock:
            self._warm_threads.add(thread)

    def _run(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        prepared = [x.to(self.dtype).contiguous(memory_format=torch.channels_last) for x in inputs]
        with torch.inference_mode(), cuda_device_guard(self.choice.device):
            if not self._on_cuda:
                import torch._inductor.config as inductor_config

                with inductor_config.patch(freezing=True):
                    outputs = self.compiled(*prepared)
            else:
                # Each call is a new step for the graph trees; outputs are copied out below before
                # the next replay overwrites them.
                torch.compiler.cudagraph_mark_step_begin()
                outputs = self.compiled(*prepared)
            return tuple(out.float() if out.dtype != torch.float32 else out.clone() for out in _as_tuple(outputs))

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self._on_cuda:
            self._warm_this_thread()
        return self._run(inputs)


def _gpu_slug(gpu_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", gpu_name).strip("_").lower() or "gpu"


def tensorrt_cache_dir(model: str | Path, gpu_name: str, root: str | Path | None = None) -> Path:
    """Folder for the TensorRT engines and timing cache of one ONNX file on one kind of GPU.

    Keyed by the file's content (a checkpoint exported at one size and precision) and the GPU's
    name and compute capability, so a restart reuses the engine (minutes to build) and another GPU
    or checkpoint never picks up a stale one. Root: ``$MONODEPTH2_TENSORRT_CACHE`` or
    ``~/.cache/monodepth2_ros/tensorrt``.
    """
    digest = hashlib.sha256(Path(model).read_bytes()).hexdigest()[:16]
    if root is None:
        root = os.environ.get(TENSORRT_CACHE_ENV) or Path.home() / ".cache" / "monodepth2_ros" / "tensorrt"
    return Path(root) / f"{Path(model).stem}-{digest}" / _gpu_slug(gpu_name)


def _profile_shapes(input_names: Sequence[str], size: tuple[int, int], batch: int) -> str:
    height, width = size
    return ",".join(f"{name}:{batch}x3x{height}x{width}" for name in input_names)


def onnxruntime_provider_list(
    available: Sequence[str],
    device: torch.device,
    precision: str,
    input_names: Sequence[str],
    size: tuple[int, int],
    batch_sizes: Sequence[int] = (1,),
    tensorrt_cache: Path | None = None,
    tf32: bool = True,
) -> list[str | tuple[str, dict[str, str]]]:
    """The ``providers`` argument of an ONNX Runtime session for ``device``, with their options.

    On CUDA: TensorRT (int8 explicitly enabled for the symmetric QDQ graph; engine and timing
    caches in ``tensorrt_cache``; one optimisation profile spanning ``batch_sizes``, optimised for
    the first), then CUDA (not for int8: its QDQ kernels are not faster than the CPU's), each on
    ``device_id`` = the device's index, then the CPU for whatever they refuse.
    """
    if device.type != "cuda":
        return ["CPUExecutionProvider"]
    index = str(device.index or 0)
    providers: list[str | tuple[str, dict[str, str]]] = []
    if "TensorrtExecutionProvider" in available:
        options = {
            "device_id": index,
            "trt_int8_enable": "1" if precision == "int8" else "0",
            "trt_profile_min_shapes": _profile_shapes(input_names, size, min(batch_sizes)),
            "trt_profile_opt_shapes": _profile_shapes(input_names, size, batch_sizes[0]),
            "trt_profile_max_shapes": _profile_shapes(input_names, size, max(batch_sizes)),
        }
        if tensorrt_cache is not None:
            options.update(
                trt_engine_cache_enable="1",
                trt_engine_cache_path=str(tensorrt_cache),
                trt_timing_cache_enable="1",
                trt_timing_cache_path=str(tensorrt_cache),
            )
        providers.append(("TensorrtExecutionProvider", options))
    if "CUDAExecutionProvider" in available and precision != "int8":
        providers.append(("CUDAExecutionProvider", {"device_id": index, "use_tf32": "1" if tf32 else "0"}))
    providers.append("CPUExecutionProvider")
    return providers


def _provider_names(providers: Sequence[str | tuple[str, dict[str, str]]]) -> list[str]:
    return [p if isinstance(p, str) else p[0] for p in providers]


def onnx_node_placement(model: str | Path, providers: Sequence, feeds: dict[str, np.ndarray]) -> dict[str, int]:
    """Nodes of ``model`` each execution provider ran, from one profiled run: ``{"CPUExecutionProvider": 42}``.

    A provider that takes a whole subgraph (TensorRT) counts as its fused nodes. This is how a
    silent fallback shows: nodes the GPU providers refused run on ``CPUExecutionProvider``.
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="monodepth2_ort_profile_") as folder:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "profile")
        session = ort.InferenceSession(str(model), options, providers=list(providers))
        session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    nodes: dict[str, set[str]] = {}
    for event in events:
        provider = event.get("args", {}).get("provider") if isinstance(event, dict) else None
        if event.get("cat") == "Node" and provider:
            nodes.setdefault(provider, set()).add(event["name"].removesuffix("_kernel_time"))
    return dict(Counter({provider: len(names) for provider, names in nodes.items()}))


class OnnxRuntimeRunner(NetworkRunner):
    """An ONNX Runtime session on an exported graph.

    On the CPU, inputs are handed over as zero-copy numpy views and outputs come back as arrays
    wrapped without a copy. On CUDA, inputs and outputs are bound to torch device memory (IO binding),
    so nothing crosses to the host.

    ONNX Runtime does not fail when a GPU provider cannot start (TensorRT or cuDNN libraries
    missing although the provider is listed): it drops it, or re-creates the session with default
    fallback providers on GPU 0. So after creation the providers actually in use are read back
    (``providers_used``); a session on the wrong GPU is rebuilt on the CUDA provider alone, one
    without any GPU provider runs as a CPU session (inputs copied over), and ``choice.note`` says so.

    Args:
        model: the ``.onnx`` file.
        choice: backend choice (``onnxruntime``).
        input_names, output_names: the graph's names (see ``export``).
        threads: intra-op threads; 0 lets ONNX Runtime use one per physical core.
        batch_sizes: batch sizes the caller will use (TensorRT's optimisation profile).
    """

    def __init__(
        self,
        model: str | Path,
        choice: BackendChoice,
        input_names: Sequence[str],
        output_names: Sequence[str],
        threads: int = 0,
        batch_sizes: Sequence[int] = (1,),
        tensorrt_cache: Path | None = None,
    ) -> None:
        import onnxruntime as ort

        start = time.perf_counter()
        self.choice = choice
        self.model = Path(model)
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self._options = ort.SessionOptions()
        self._options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._options.intra_op_num_threads = threads
        device = choice.device
        self.providers = onnxruntime_provider_list(
            ort.get_available_providers(),
            device,
            choice.precision,
            self.input_names,
            self._graph_size(model) if device.type == "cuda" else (0, 0),
            batch_sizes,
            tensorrt_cache,
            tf32=bool(torch.backends.cudnn.allow_tf32),
        )
        self.session = self._session(self.providers)
        self.providers_used: list[str] = list(self.session.get_providers())
        self._on_gpu = False
        if device.type == "cuda":
            self._check_gpu_session()
        graph_inputs = [i.name for i in self.session.get_inputs()]
        if graph_inputs != list(self.input_names):
            raise ConfigError(f"{model} has inputs {graph_inputs}, expected {list(self.input_names)}")
        self._output_shapes = {o.name: o.shape for o in self.session.get_outputs()}
        self.setup_seconds = time.perf_counter() - start

    @staticmethod
    def _graph_size(model: str | Path) -> tuple[int, int]:
        import onnx

        shape = onnx.load(str(model), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
        return int(shape[2].dim_value), int(shape[3].dim_value)

    def _session(self, providers: Sequence):
        import onnxruntime as ort

        try:
            return ort.InferenceSession(str(self.model), self._options, providers=list(providers))
        except Exception as err:  # onnxruntime raises its own pybind types for bad or mismatched files
            raise ConfigError(f"ONNX Runtime cannot load {self.model}: {str(err).splitlines()[0]}") from err

    def _gpu_provider_on_wrong_device(self) -> str | None:
        index = str(self.choice.device.index or 0)
        options = self.session.get_provider_options()
        for name in _CUDA_PROVIDERS:
            if name in self.providers_used and str(options.get(name, {}).get("device_id", "0")) != index:
                return name
        return None

    def _check_gpu_session(self) -> None:
        wanted = [p for p in _provider_names(self.providers) if p in _CUDA_PROVIDERS]
        if self._gpu_provider_on_wrong_device() is not None:
            # ONNX Runtime's own fallback drops the provider options, device_id included.
            index = str(self.choice.device.index or 0)
            self.session = self._session([("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"])
            self.providers_used = list(self.session.get_providers())
            if self._gpu_provider_on_wrong_device() is not None:
                raise ConfigError(f"ONNX Runtime would not run {self.model} on {self.choice.device}")
        running = [p for p in self.providers_used if p in _CUDA_PROVIDERS]
        self._on_gpu = bool(running)
        missing = [p for p in wanted if p not in self.providers_used]
        if missing or not running:
            what = ", ".join(running) if running else "the CPU alone (inputs are copied to the host)"
            if wanted:
                note = f"{', '.join(missing or wanted)} could not start (libraries missing?); running on {what}"
            else:
                note = f"this onnxruntime has no CUDA or TensorRT provider; running on {what}"
            _LOG.warning("onnxruntime on %s: %s", self.choice.device, note)
            self.choice = replace(self.choice, note="; ".join(n for n in (self.choice.note, note) if n))

    def input_size(self) -> tuple[int, int]:
        """(height, width) the graph was exported at."""
        shape = self.session.get_inputs()[0].shape
        return int(shape[2]), int(shape[3])

    def node_placement(self) -> dict[str, int]:
        """Nodes per provider actually used, from one profiled run on random input (see :func:`onnx_node_placement`)."""
        height, width = self.input_size()
        feeds = {name: np.random.rand(1, 3, height, width).astype(np.float32) for name in self.input_names}
        return onnx_node_placement(self.model, self.providers, feeds)

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self._on_gpu:
            with cuda_device_guard(self.choice.device):
                return self._run_cuda(inputs)
        feeds = {name: x.detach().float().cpu().contiguous().numpy() for name, x in zip(self.input_names, inputs)}
        outputs = tuple(torch.from_numpy(out) for out in self.session.run(list(self.output_names), feeds))
        if self.choice.device.type == "cuda":  # a GPU session that fell back to the CPU
            return tuple(out.to(self.choice.device) for out in outputs)
        return outputs

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

    One DMA copy per output into a page-locked buffer kept per shape (the last
    :data:`SHAPE_CACHE_SIZE` shapes), then the caller gets its own array (a host memcpy), so
    results never alias a buffer the next frame overwrites. Buffers are allocated with the
    tensor's device current, so they never create a context on GPU 0.
    """

    def __init__(self, cache_size: int = SHAPE_CACHE_SIZE) -> None:
        self._buffers: ShapeCache[tuple[tuple[int, ...], torch.dtype], torch.Tensor] = ShapeCache(cache_size)
        self._lock = threading.Lock()

    def to_numpy(self, tensor: torch.Tensor) -> np.ndarray:
        """A host numpy array with ``tensor``'s values (owned by the caller)."""
        if tensor.device.type != "cuda":
            return tensor.detach().numpy()
        key = (tuple(tensor.shape), tensor.dtype)
        with self._lock, torch.cuda.device(tensor.device):
            buffer = self._buffers.get(key)
            if buffer is None:
                buffer = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
                self._buffers.put(key, buffer)
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
    for_tensorrt: bool = False,
) -> Path:
    """The ONNX file to load: from ``onnx_dir`` (written by ``monodepth2 export``), else exported now.

    int8 for TensorRT (``for_tensorrt``) must be symmetric signed int8 (TensorRT rejects zero
    points): an exported file that is not (the CPU's asymmetric uint8 activations) is quantised
    again, symmetric, from the folder's fp32 file.
    """
    from monodepth2_ros.inference.quantize import (
        depth_feeds,
        int8_is_symmetric,
        pose_feeds,
        quantize_int8,
        synthetic_frames,
    )

    name = onnx_file_name(network, precision)
    fp32_path: Path | None = None
    if onnx_dir is not None:
        path = Path(onnx_dir) / name
        if not path.is_file():
            hint = " --int8" if precision == "int8" else ""
            raise MissingInputError(
                f"ONNX file not found: {path} (write it with 'monodepth2 export --format onnx{hint} --out {onnx_dir}')"
            )
        if precision != "int8" or not for_tensorrt or int8_is_symmetric(path):
            return path
        fp32_path = Path(onnx_dir) / onnx_file_name(network, "fp32")
        if not fp32_path.is_file():
            raise MissingInputError(f"{path} is quantised for the CPU (uint8); TensorRT needs {fp32_path} to re-quantise")
        _LOG.warning("%s has asymmetric uint8 activations, which TensorRT rejects: quantising %s symmetric", path, fp32_path)
    if fp32_path is None:
        export = export_depth_onnx if network == "depth" else export_pose_onnx
        fp32_path = export(net, work_dir / onnx_file_name(network, "fp32"), *size)
    if precision != "int8":
        return fp32_path
    frames = list(calibration_frames) if calibration_frames else synthetic_frames(_DEFAULT_CALIBRATION_FRAMES, *size)
    feeds = (depth_feeds if network == "depth" else pose_feeds)(frames, *size)
    return quantize_int8(fp32_path, work_dir / name, feeds, symmetric=for_tensorrt)


def build_runner(
    network: str,
    net: nn.Module,
    choice: BackendChoice,
    size: tuple[int, int],
    *,
    onnx_dir: str | Path | None = None,
    calibration_frames: Sequence[np.ndarray] | None = None,
    threads: int = 0,
    batch_sizes: Sequence[int] = (1,),
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
        batch_sizes: the batch sizes the caller will use, most frequent first (1; 2 with flip
            post-processing): CUDA graphs are captured and ``compile`` is warmed for them now, and
            TensorRT's optimisation profile spans them.
    Raises:
        MissingInputError: ``onnx_dir`` lacks the file for this network and precision.
        ConfigError: an ONNX file that does not fit (inputs, size).
    """
    module = _output_module(network, net)
    batch_sizes = tuple(int(b) for b in batch_sizes) or (1,)
    if min(batch_sizes) < 1:
        raise ValueError(f"batch sizes must be positive, got {batch_sizes}")
    if choice.backend == "openvino":
        from monodepth2_ros.inference.openvino_backend import build_openvino_runner

        return build_openvino_runner(
            network, net, choice, size, onnx_dir=onnx_dir, calibration_frames=calibration_frames, threads=threads
        )
    if choice.backend == "eager":
        return EagerRunner(module, choice)
    inputs_per_call = 1 if network == "depth" else 2
    if choice.backend == "eager_optimized":
        shapes = [[(batch, 3, *size)] * inputs_per_call for batch in batch_sizes]
        return OptimizedRunner(module, choice, capture_shapes=shapes)
    if choice.backend == "compile":
        examples = [
            [torch.rand(batch, 3, *size, device=choice.device) for _ in range(inputs_per_call)] for batch in batch_sizes
        ]
        return CompiledRunner(module, choice, examples)
    names = (DEPTH_INPUTS, DEPTH_OUTPUTS) if network == "depth" else (POSE_INPUTS, POSE_OUTPUTS)
    on_cuda = choice.device.type == "cuda"
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="monodepth2_onnx_") as work_dir:
        path = _onnx_file(
            network, net, choice.precision, size, onnx_dir, Path(work_dir), calibration_frames, for_tensorrt=on_cuda
        )
        cache = tensorrt_cache_dir(path, _gpu_description(choice.device)) if on_cuda else None
        runner = OnnxRuntimeRunner(path, choice, *names, threads=threads, batch_sizes=batch_sizes, tensorrt_cache=cache)
    if runner.input_size() != tuple(size):
        raise ConfigError(f"{path} was exported at {runner.input_size()}, the checkpoint runs at {tuple(size)}")
    runner.setup_seconds = time.perf_counter() - start
    return runner


def _gpu_description(device: torch.device) -> str:
    index = device.index or 0
    major, minor = torch.cuda.get_device_capability(index)
    return f"{torch.cuda.get_device_name(index)} sm{major}{minor}"
