"""The OpenVINO backend: our exported ONNX graphs on OpenVINO's CPU plugin (fp32, bf16, int8).

Why OpenVINO next to ONNX Runtime: on a CPU with AMX / AVX-512 BF16 its CPU plugin runs the same
``depth.onnx`` in bf16 inference precision (some layers stay fp32 where OpenVINO judges it
necessary) and an int8 graph quantised by NNCF several times faster than eager PyTorch, with the
fixed-shape latency path (``PERFORMANCE_HINT: LATENCY``) a robot wants.

* fp32 and bf16 compile the fp32 ONNX file with ``INFERENCE_PRECISION_HINT`` ``f32`` / ``bf16``
  (the CPU plugin's default on such CPUs is bf16, so fp32 is asked for explicitly);
* int8 quantises the fp32 graph with NNCF (post-training, calibrated on frames; activations per
  tensor, weights per channel) and keeps the remaining float layers in fp32. The quantised model
  is cached in the user's cache folder keyed by the fp32 graph and the calibration frames, so a
  node starts in seconds after the first time.

Batch 1 runs a model compiled for exactly that shape (the latency path); other batch sizes (the
pose node's batches of pairs) run one compiled with a dynamic batch axis, built on first use.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from monodepth2_ros.errors import ConfigError, MissingInputError
from monodepth2_ros.inference.export import (
    DEPTH_INPUTS,
    DEPTH_OUTPUTS,
    POSE_INPUTS,
    POSE_OUTPUTS,
    export_depth_onnx,
    export_pose_onnx,
    onnx_file_name,
)
from monodepth2_ros.inference.user_cache import user_cache_dir

__all__ = [
    "OPENVINO_PRECISIONS",
    "openvino_version",
    "quantize_openvino_int8",
    "OpenVinoRunner",
    "build_openvino_runner",
]

_LOG = logging.getLogger(__name__)

OPENVINO_PRECISIONS = ("fp32", "bf16", "int8")
# INFERENCE_PRECISION_HINT per precision: int8 layers run int8 whatever the hint; the rest stay f32.
_PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
# Rendered frames NNCF calibrates int8 on when no frames are given.
_DEFAULT_CALIBRATION_FRAMES = 8


def openvino_version() -> str | None:
    """OpenVINO's version, or None when it cannot be imported."""
    try:
        import openvino
    except ImportError:
        return None
    return str(openvino.__version__)


def _feeds_digest(fp32_path: Path, feeds: Sequence[dict[str, np.ndarray]]) -> str:
    digest = hashlib.sha256(fp32_path.read_bytes())
    for feed in feeds:
        for name in sorted(feed):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(feed[name], dtype=np.float32).tobytes())
    return digest.hexdigest()[:20]


def quantize_openvino_int8(
    fp32_path: str | Path, feeds: Sequence[dict[str, np.ndarray]], cache: bool = True
) -> Path:
    """An int8 OpenVINO model (``.xml`` + ``.bin``) of the fp32 ONNX graph, quantised by NNCF.

    Args:
        fp32_path: the exported fp32 ONNX graph.
        feeds: calibration inputs (name -> (1, 3, H, W) float32), e.g. ``depth_feeds`` of frames.
        cache: reuse (and keep) the result under ``user_cache_dir("openvino")``.
    Raises:
        ConfigError: openvino or nncf is missing, or ``feeds`` is empty.
    """
    try:
        import nncf
        import openvino as ov
    except ImportError as err:
        raise ConfigError("OpenVINO int8 needs openvino and nncf: 'pip install openvino nncf'") from err
    if not feeds:
        raise ConfigError("int8 calibration needs at least one frame")
    fp32_path = Path(fp32_path)
    key = f"{fp32_path.stem}.{_feeds_digest(fp32_path, feeds)}.nncf{nncf.__version__}.int8.xml"
    target = user_cache_dir("openvino") / key
    if cache and target.is_file() and target.with_suffix(".bin").is_file():
        return target
    start = time.perf_counter()
    model = ov.Core().read_model(str(fp32_path))
    names = [port.get_any_name() for port in model.inputs]
    dataset = nncf.Dataset(list(feeds), lambda feed: {name: feed[name] for name in names})
    with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars stay off stdout (JSON, tables)
        quantized = nncf.quantize(model, dataset, subset_size=len(feeds), preset=nncf.QuantizationPreset.MIXED)
    partial = target.with_name(target.stem + f".{os.getpid()}.partial.xml")
    ov.save_model(quantized, str(partial), compress_to_fp16=False)
    partial.with_suffix(".bin").replace(target.with_suffix(".bin"))
    partial.replace(target)  # the .xml last: a model is complete once its .xml is there
    _LOG.info("OpenVINO int8: %s quantised by NNCF in %.1f s (cached: %s)", fp32_path.name, time.perf_counter() - start, target)
    return target


class OpenVinoRunner:
    """A :class:`~monodepth2_ros.inference.backends.NetworkRunner` on OpenVINO's CPU plugin.

    Args:
        model: an ONNX file or OpenVINO ``.xml`` (with a dynamic batch axis, as ``export`` writes).
        choice: the backend choice (``openvino``, CPU).
        input_names, output_names: the graph's names.
        threads: inference threads; 0 lets OpenVINO choose.
    """

    def __init__(self, model: str | Path, choice, input_names: Sequence[str], output_names: Sequence[str], threads: int = 0) -> None:
        import openvino as ov

        start = time.perf_counter()
        self.choice = choice
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self._core = ov.Core()
        try:
            self._model = self._core.read_model(str(model))
        except Exception as err:  # openvino raises its own RuntimeError subclasses for bad files
            raise ConfigError(f"OpenVINO cannot read {model}: {str(err).splitlines()[0]}") from err
        graph_inputs = [port.get_any_name() for port in self._model.inputs]
        if graph_inputs != list(self.input_names):
            raise ConfigError(f"{model} has inputs {graph_inputs}, expected {list(self.input_names)}")
        self.config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": _PRECISION_HINTS[choice.precision],
        }
        if threads > 0:
            self.config["INFERENCE_NUM_THREADS"] = int(threads)
        self._lock = threading.Lock()  # an infer request serves one call at a time
        self._requests: dict[int | None, object] = {}
        self._request(1)  # compile the latency path now, so set-up cost is paid at start
        self.setup_seconds = time.perf_counter() - start

    def input_size(self) -> tuple[int, int]:
        """(height, width) the graph was exported at."""
        shape = self._model.inputs[0].get_partial_shape()
        return int(shape[2].get_length()), int(shape[3].get_length())

    def _request(self, batch: int):
        key = 1 if batch == 1 else None
        request = self._requests.get(key)
        if request is None:
            import openvino as ov

            model = self._model.clone()
            if key == 1:
                height, width = self.input_size()
                model.reshape({name: ov.PartialShape([1, 3, height, width]) for name in self.input_names})
            compiled = self._core.compile_model(model, "CPU", self.config)
            request = self._requests[key] = compiled.create_infer_request()
        return request

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feeds = {name: x.detach().float().contiguous().cpu().numpy() for name, x in zip(self.input_names, inputs)}
        with self._lock:
            request = self._request(inputs[0].shape[0])
            request.infer(feeds)
            # the request's output buffers are reused by the next call: copy out
            outputs = tuple(torch.from_numpy(np.array(request.get_tensor(name).data, copy=True)) for name in self.output_names)
        return tuple(out.to(self.choice.device) for out in outputs)


def build_openvino_runner(
    network: str,
    net: nn.Module,
    choice,
    size: tuple[int, int],
    *,
    onnx_dir: str | Path | None = None,
    calibration_frames: Sequence[np.ndarray] | None = None,
    threads: int = 0,
) -> OpenVinoRunner:
    """The OpenVINO runner of ``net`` (see :func:`monodepth2_ros.inference.backends.build_runner`).

    The fp32 ONNX file comes from ``onnx_dir`` (``monodepth2 export``) or is exported now; int8
    quantises it with NNCF on ``calibration_frames`` (default: rendered synthetic frames), cached.

    Raises:
        MissingInputError: ``onnx_dir`` lacks the fp32 file of this network.
        ConfigError: a file that does not fit (inputs, size).
    """
    from monodepth2_ros.inference.quantize import depth_feeds, pose_feeds, synthetic_frames

    start = time.perf_counter()
    names = (DEPTH_INPUTS, DEPTH_OUTPUTS) if network == "depth" else (POSE_INPUTS, POSE_OUTPUTS)
    with tempfile.TemporaryDirectory(prefix="monodepth2_openvino_") as work_dir:
        if onnx_dir is not None:
            fp32_path = Path(onnx_dir) / onnx_file_name(network, "fp32")
            if not fp32_path.is_file():
                raise MissingInputError(
                    f"ONNX file not found: {fp32_path} (write it with 'monodepth2 export --format onnx --out {onnx_dir}')"
                )
        else:
            export = export_depth_onnx if network == "depth" else export_pose_onnx
            fp32_path = export(net, Path(work_dir) / onnx_file_name(network, "fp32"), *size)
        model = fp32_path
        if choice.precision == "int8":
            frames = list(calibration_frames) if calibration_frames else synthetic_frames(_DEFAULT_CALIBRATION_FRAMES, *size)
            feeds = (depth_feeds if network == "depth" else pose_feeds)(frames, *size)
            model = quantize_openvino_int8(fp32_path, feeds)
        runner = OpenVinoRunner(model, choice, *names, threads=threads)
    if runner.input_size() != tuple(size):
        raise ConfigError(f"{model} was exported at {runner.input_size()}, the checkpoint runs at {tuple(size)}")
    runner.setup_seconds = time.perf_counter() - start
    return runner
