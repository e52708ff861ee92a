"""ONNX export of the depth and pose networks, checked against PyTorch on rendered frames.

The graphs take network-size float input in [0, 1] (resizing stays in PyTorch on the device, as
for every backend) and have a dynamic batch axis. The depth graph returns only the full-resolution
disparity, the one output inference uses, so the exporter drops the three coarser heads.

The TorchScript exporter (``dynamo=False``) is used: it handles the decoder's reflection padding
(``Pad`` mode ``reflect``) and nearest upsampling (``Resize``) at opset 17, and, unlike the dynamo
exporter, it needs no ``onnxscript``.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.quantize import depth_feeds, pose_feeds, quantize_int8
from monodepth2_ros.model.checkpoint import LoadedCheckpoint, load_checkpoint
from monodepth2_ros.model.networks import DepthNet, PoseNet

__all__ = [
    "DEFAULT_OPSET",
    "MIN_OPSET",
    "DEPTH_ONNX",
    "POSE_ONNX",
    "DEPTH_INT8_ONNX",
    "POSE_INT8_ONNX",
    "DEPTH_INPUTS",
    "DEPTH_OUTPUTS",
    "POSE_INPUTS",
    "POSE_OUTPUTS",
    "DepthOutput",
    "PoseOutput",
    "ExportedModel",
    "onnx_file_name",
    "export_depth_onnx",
    "export_pose_onnx",
    "run_onnx",
    "export_checkpoint",
]

DEFAULT_OPSET = 17
MIN_OPSET = 17  # Pad(mode=reflect) on any axis and Resize as used here are stable from opset 13; 17 is what we test.

DEPTH_ONNX = "depth.onnx"
POSE_ONNX = "pose.onnx"
DEPTH_INT8_ONNX = "depth.int8.onnx"
POSE_INT8_ONNX = "pose.int8.onnx"

DEPTH_INPUTS = ("image",)
DEPTH_OUTPUTS = ("disparity",)
POSE_INPUTS = ("frame_a", "frame_b")
POSE_OUTPUTS = ("axis_angle", "translation")

_BATCH_AXIS = {0: "batch"}


class DepthOutput(nn.Module):
    """``DepthNet`` reduced to its full-resolution output: (B, 3, H, W) -> (B, 1, H, W) disparity."""

    def __init__(self, net: DepthNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)[0]


class PoseOutput(nn.Module):
    """``PoseNet`` as is: two (B, 3, H, W) frames -> (axis_angle, translation), each (B, 2, 1, 3)."""

    def __init__(self, net: PoseNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, frame_a: torch.Tensor, frame_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(frame_a, frame_b)


@dataclass(frozen=True)
class ExportedModel:
    """One ONNX file written and checked.

    Attributes:
        network: ``depth`` or ``pose``.
        precision: ``fp32`` or ``int8``.
        path: the file.
        max_abs_diff: largest |ONNX Runtime - PyTorch eager fp32| over the check frames and outputs
            (disparity for depth; axis-angle and translation for pose).
        seconds: time to export (and quantise) the file.
    """

    network: str
    precision: str
    path: Path
    max_abs_diff: float
    seconds: float


def onnx_file_name(network: str, precision: str) -> str:
    """``depth.onnx``, ``pose.int8.onnx``, ...: the names ``export`` writes and the backend reads."""
    names = {
        ("depth", "fp32"): DEPTH_ONNX,
        ("pose", "fp32"): POSE_ONNX,
        ("depth", "int8"): DEPTH_INT8_ONNX,
        ("pose", "int8"): POSE_INT8_ONNX,
    }
    try:
        return names[(network, precision)]
    except KeyError:
        raise ValueError(f"no ONNX file for network {network!r} at precision {precision!r}") from None


def _check_opset(opset: int) -> None:
    if opset < MIN_OPSET:
        raise ConfigError(f"ONNX opset {opset} is too old; use {MIN_OPSET} or newer")


def _export(
    module: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    opset: int,
) -> Path:
    _check_opset(opset)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic_axes = {name: _BATCH_AXIS for name in (*input_names, *output_names)}
    with warnings.catch_warnings():
        # The TorchScript exporter announces its own deprecation and traces shape arithmetic; both harmless here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            inputs,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
    return path


def export_depth_onnx(net: DepthNet, path: str | Path, height: int, width: int, opset: int = DEFAULT_OPSET) -> Path:
    """Write the depth network as ONNX (input ``image`` (B, 3, H, W), output ``disparity`` (B, 1, H, W)).

    The network is copied to the CPU in fp32 first; ``net`` itself is not touched.
    """
    module = DepthOutput(copy.deepcopy(net).float().cpu()).eval()
    example = (torch.rand(1, 3, height, width),)
    return _export(module, example, Path(path), DEPTH_INPUTS, DEPTH_OUTPUTS, opset)


def export_pose_onnx(net: PoseNet, path: str | Path, height: int, width: int, opset: int = DEFAULT_OPSET) -> Path:
    """Write the pose network as ONNX (inputs ``frame_a``, ``frame_b``; outputs ``axis_angle``, ``translation``)."""
    module = PoseOutput(copy.deepcopy(net).float().cpu()).eval()
    example = (torch.rand(1, 3, height, width), torch.rand(1, 3, height, width))
    return _export(module, example, Path(path), POSE_INPUTS, POSE_OUTPUTS, opset)


def run_onnx(path: str | Path, feeds: dict[str, np.ndarray], threads: int = 0) -> list[np.ndarray]:
    """One ONNX Runtime CPU run of a file (for checks; the backend keeps its session open).

    Raises:
        ConfigError: onnxruntime is not installed.
    """
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ConfigError("onnxruntime is not installed; 'pip install onnxruntime' to run ONNX files") from err
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _max_diff(onnx_outputs: Sequence[np.ndarray], torch_outputs: Sequence[torch.Tensor]) -> float:
    return max(float(np.abs(a - b.numpy()).max()) for a, b in zip(onnx_outputs, torch_outputs))


def _check_depth(path: Path, net: DepthNet, feeds: Sequence[dict[str, np.ndarray]]) -> float:
    worst = 0.0
    with torch.inference_mode():
        for feed in feeds:
            reference = net(torch.from_numpy(feed["image"]))[0]
            worst = max(worst, _max_diff(run_onnx(path, feed), [reference]))
    return worst


def _check_pose(path: Path, net: PoseNet, feeds: Sequence[dict[str, np.ndarray]]) -> float:
    worst = 0.0
    with torch.inference_mode():
        for feed in feeds:
            reference = net(torch.from_numpy(feed["frame_a"]), torch.from_numpy(feed["frame_b"]))
            worst = max(worst, _max_diff(run_onnx(path, feed), reference))
    return worst


def export_checkpoint(
    weights: str | Path | LoadedCheckpoint,
    out_dir: str | Path,
    check_frames: Sequence[np.ndarray],
    *,
    opset: int = DEFAULT_OPSET,
    int8: bool = False,
    calibration_frames: Sequence[np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ExportedModel]:
    """Export a checkpoint's networks to ``out_dir`` and check each file on real frames.

    Writes ``depth.onnx`` (and ``pose.onnx`` when the checkpoint has a pose network) at the
    checkpoint's network size; with ``int8`` also ``depth.int8.onnx`` / ``pose.int8.onnx``
    calibrated on ``calibration_frames``.

    Args:
        weights: checkpoint folder or loaded checkpoint.
        out_dir: output folder (created).
        check_frames: (H, W, 3) uint8 RGB frames (at least two for the pose check) on which every
            file is compared with PyTorch eager fp32.
        opset: ONNX opset (>= 17).
        int8: also write the int8 graphs.
        calibration_frames: frames for the int8 calibration; required with ``int8``.
        progress: called with a short line per file.
    Returns:
        One :class:`ExportedModel` per file, with its largest absolute difference from PyTorch.
    Raises:
        ConfigError: bad opset, no frames, or int8 without calibration frames.
    """
    say = progress or (lambda line: None)
    if len(check_frames) < 2:
        raise ConfigError(f"the ONNX check needs at least 2 frames, got {len(check_frames)}")
    if int8 and not calibration_frames:
        raise ConfigError("int8 export needs calibration frames (a bag, or synthetic frames)")
    checkpoint = weights if isinstance(weights, LoadedCheckpoint) else load_checkpoint(weights)
    height, width = checkpoint.info.height, checkpoint.info.width
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    networks: list[tuple[str, nn.Module]] = [("depth", checkpoint.depth_net.eval())]
    if checkpoint.pose_net is not None:
        networks.append(("pose", checkpoint.pose_net.eval()))
    exported: list[ExportedModel] = []
    for network, net in networks:
        feeds_of = depth_feeds if network == "depth" else pose_feeds
        check = _check_depth if network == "depth" else _check_pose
        export = export_depth_onnx if network == "depth" else export_pose_onnx
        check_feeds = feeds_of(check_frames, height, width)
        start = time.perf_counter()
        fp32_path = export(net, out_dir / onnx_file_name(network, "fp32"), height, width, opset)
        seconds = time.perf_counter() - start
        exported.append(ExportedModel(network, "fp32", fp32_path, check(fp32_path, net, check_feeds), seconds))
        say(f"{network} fp32 -> {fp32_path} (max |onnx - torch| {exported[-1].max_abs_diff:.2e})")
        if int8:
            start = time.perf_counter()
            int8_path = quantize_int8(
                fp32_path, out_dir / onnx_file_name(network, "int8"), feeds_of(calibration_frames, height, width)
            )
            seconds = time.perf_counter() - start
            exported.append(ExportedModel(network, "int8", int8_path, check(int8_path, net, check_feeds), seconds))
            say(f"{network} int8 -> {int8_path} (max |onnx - torch| {exported[-1].max_abs_diff:.2e})")
    return exported
