"""int8 post-training quantisation of the exported networks for the CPU (ONNX Runtime, static, QDQ).

Why ONNX Runtime rather than PyTorch PT2E: on the 2-core AVX-512 VNNI development CPU the
quantised ONNX graph ran the depth network (640x192) about 3x faster than eager fp32 on one
uncontended thread and the fastest of every backend, and it needs no compiler at start-up; PT2E now
lives in torchao (not a dependency), needs a ~20-40 s ``torch.compile`` per graph, and torchao
0.18's ``X86InductorQuantizer`` refused the ResNet encoder ("Input partition has more than one
output node": torchvision's blocks reuse one ReLU module).

Calibration feeds real frames through the fp32 graph to fix each activation's range (min/max);
weights are quantised per output channel (symmetric int8), activations per tensor, in the QDQ
format. For the CPU activations are asymmetric uint8 (the range after a ReLU is all used, and
x86's u8 x s8 dot products are the fast ones); for TensorRT (``symmetric=True``) they are
symmetric signed int8 with zero points 0, the only form TensorRT's explicit quantisation accepts
(nodes it rejects would otherwise fall back to the CPU).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from monodepth2_ros.errors import ConfigError, DatasetError
from monodepth2_ros.inference import preprocess

__all__ = [
    "DEFAULT_CALIBRATION_FRAMES",
    "network_input",
    "synthetic_frames",
    "bag_frames",
    "depth_feeds",
    "pose_feeds",
    "quantize_int8",
    "int8_is_symmetric",
]

DEFAULT_CALIBRATION_FRAMES = 8
_SYNTHETIC_SEED = 7


def network_input(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (1, 3, height, width) float32 in [0, 1]: the network input of the nodes,
    ``infer`` and training (:func:`monodepth2_ros.inference.preprocess.network_input`), on the CPU."""
    return preprocess.network_input(rgb, height, width, torch.device("cpu")).numpy()


def synthetic_frames(count: int, height: int, width: int, seed: int = _SYNTHETIC_SEED) -> list[np.ndarray]:
    """``count`` consecutive frames of a rendered synthetic drive, (height, width, 3) uint8 RGB."""
    from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive

    drive = SyntheticDrive(SynthConfig(frames=max(count, 1), width=width, height=height, seed=seed))
    return [frame.rgb for frame in drive.iter_frames(0, count)]


def bag_frames(bag: str | Path | Sequence[str | Path], count: int, image_topic: str | None = None) -> list[np.ndarray]:
    """Up to ``count`` RGB frames spread over a bag's image topic (every k-th image).

    Raises:
        DatasetError: the bag has no readable image on the topic (and the readers' own errors).
    """
    from monodepth2_ros.data import BagImageStream

    stream = BagImageStream(bag, image_topic=image_topic, require_camera_info=False)
    stride = max(1, len(stream) // max(count, 1))
    frames = [frame.rgb.copy() for frame in itertools.islice(stream, 0, None, stride)][:count]
    if not frames:
        raise DatasetError(f"{bag}: no decodable image on {stream.image_topic} to calibrate with")
    return frames


def depth_feeds(frames: Iterable[np.ndarray], height: int, width: int) -> list[dict[str, np.ndarray]]:
    """Inputs of the depth graph (``image``), one per frame."""
    return [{"image": network_input(rgb, height, width)} for rgb in frames]


def pose_feeds(frames: Sequence[np.ndarray], height: int, width: int) -> list[dict[str, np.ndarray]]:
    """Inputs of the pose graph (``frame_a``, ``frame_b``) for consecutive frame pairs."""
    inputs = [network_input(rgb, height, width) for rgb in frames]
    return [{"frame_a": a, "frame_b": b} for a, b in zip(inputs[:-1], inputs[1:])]


def quantize_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    feeds: Sequence[dict[str, np.ndarray]],
    per_channel: bool = True,
    symmetric: bool = False,
) -> Path:
    """Static int8 quantisation (QDQ, MinMax calibration) of an fp32 ONNX file.

    Args:
        fp32_path: the exported fp32 graph.
        out_path: where the int8 graph goes.
        feeds: calibration inputs (name -> array), e.g. from :func:`depth_feeds`.
        per_channel: per-output-channel weight scales (much more accurate for convolutions).
        symmetric: signed int8 activations with zero point 0 (TensorRT) instead of asymmetric uint8 (CPU).
    Raises:
        ConfigError: onnxruntime is missing, or ``feeds`` is empty.
    """
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as err:
        raise ConfigError("int8 quantisation needs onnxruntime; 'pip install onnxruntime'") from err
    if not feeds:
        raise ConfigError("int8 calibration needs at least one frame")

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds: Iterator[dict[str, np.ndarray]] = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    prepared = out_path.with_name(out_path.stem + ".prep.onnx")
    try:
        # Shape inference and graph clean-up the quantiser expects. The symbolic pass cannot resolve the
        # reflection pads' computed widths, so only ONNX's own shape inference runs.
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out_path),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
        )
    finally:
        prepared.unlink(missing_ok=True)
    return out_path


def int8_is_symmetric(path: str | Path) -> bool:
    """Whether every quantise/dequantise node of an ONNX file has zero point 0 in signed int8 (TensorRT's form).

    Dequantised convolution biases are int32 with zero point 0, as in every QDQ graph.

    False for a graph without QDQ nodes.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    initializers = {init.name: init for init in graph.initializer}
    found = False
    for node in graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        found = True
        zero_point = initializers.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zero_point is None:  # no zero point: uint8 with 0 by the standard's default
            return False
        # int32 zero points belong to the convolution biases (dequantised only), int8 to all the rest.
        allowed = (onnx.TensorProto.INT8, onnx.TensorProto.INT32) if node.op_type == "DequantizeLinear" else (onnx.TensorProto.INT8,)
        if zero_point.data_type not in allowed or np.any(numpy_helper.to_array(zero_point) != 0):
            return False
    return found
