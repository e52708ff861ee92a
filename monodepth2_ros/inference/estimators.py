"""Frames in, metric depth and camera motion out: the API the nodes, the CLI and evaluation share.

Both estimators hold no per-call state, so one instance may serve a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.backends import BACKENDS, HostStaging, build_runner, resolve_backend
from monodepth2_ros.inference.camera_input import CameraInput, prepare_frame
from monodepth2_ros.inference.device import resolve_device
from monodepth2_ros.inference.preprocess import resize_to_network
from monodepth2_ros.model.checkpoint import CheckpointInfo, LoadedCheckpoint, load_checkpoint
from monodepth2_ros.model.constants import STEREO_SCALE
from monodepth2_ros.model.geometry import MAX_DEPTH, MIN_DEPTH, disp_to_depth, pose_vec_to_mat, scale_intrinsics
from monodepth2_ros.model.networks import DepthNet, PoseNet
from monodepth2_ros.model.postprocess import blend_flipped_disparity

__all__ = [
    "InferenceConfig",
    "DepthPrediction",
    "RelativeMotion",
    "DepthEstimator",
    "PoseEstimator",
    "checkpoint_scale",
]


@dataclass(frozen=True)
class InferenceConfig:
    """How the networks run and how their output becomes metres.

    Attributes:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32``, ``fp16`` (CUDA) or ``bf16``; ``int8`` with the ``onnxruntime`` backend.
        min_depth, max_depth: the disparity -> depth range of the checkpoint (0.1 / 100 officially).
        scale: metres per network unit; None takes it from the checkpoint (``STEREO_SCALE`` for
            stereo-trained models, else 1, i.e. relative depth).
        post_process: the paper's flip post-processing; doubles the network cost.
        backend: what runs the networks: ``eager`` (PyTorch as trained), ``eager_optimized``
            (BatchNorm folded, channels-last, CUDA graphs), ``compile`` (torch.compile),
            ``onnxruntime`` or ``openvino``; see :mod:`monodepth2_ros.inference.backends`. One that
            cannot run here falls back to eager with a logged warning. ``auto`` is accepted here
            but must be resolved (``evaluation.backend_selection.resolve_auto_config``) before an
            estimator is built.
        onnx_dir: folder written by ``monodepth2 export`` for the ``onnxruntime`` and ``openvino`` backends; None
            exports (and for int8 calibrates on rendered frames) when the estimator is built.
    """

    device: str = "auto"
    precision: str = "fp32"
    min_depth: float = MIN_DEPTH
    max_depth: float = MAX_DEPTH
    scale: float | None = None
    post_process: bool = False
    backend: str = "eager"
    onnx_dir: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend '{self.backend}' is not one of {', '.join(BACKENDS)}")
        if not 0 < self.min_depth < self.max_depth:
            raise ConfigError(f"need 0 < min_depth < max_depth, got {self.min_depth} and {self.max_depth}")
        if self.scale is not None and not (np.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(f"scale must be a positive number, got {self.scale}")


def checkpoint_scale(info: CheckpointInfo, config: InferenceConfig) -> float:
    """Metres per network depth unit: the configured scale, or the one the checkpoint implies."""
    if config.scale is not None:
        return float(config.scale)
    return STEREO_SCALE if info.use_stereo else 1.0


@dataclass(frozen=True)
class DepthPrediction:
    """One frame's depth.

    Attributes:
        disparity: (h, w) float32 sigmoid disparity at the network size (post-processed if asked).
        depth: (H, W) float32 depth along the optical axis in metres (times ``scale``) at the
            requested output size (the input size by default).
        scale: the factor applied to the network depth.
        K: (3, 3) intrinsics for ``depth``'s size when intrinsics were given, else None.
    """

    disparity: np.ndarray
    depth: np.ndarray
    scale: float
    K: np.ndarray | None = None


@dataclass(frozen=True)
class RelativeMotion:
    """Camera motion between two frames a (earlier) and b (later).

    Attributes:
        T_b_a: (4, 4) maps points in camera a's optical frame into camera b's (the network's own
            convention: the transform that warps frame a's geometry into frame b).
        axis_angle, translation: (3,) the pose decoder's first prediction, translation times scale.
    """

    T_b_a: np.ndarray
    axis_angle: np.ndarray
    translation: np.ndarray

    @property
    def T_a_b(self) -> np.ndarray:
        """Pose of camera b in camera a's frame: what odometry composes, ``T_w_b = T_w_a @ T_a_b``."""
        return np.linalg.inv(self.T_b_a)


def _load(weights: str | Path | LoadedCheckpoint, need_pose: bool) -> LoadedCheckpoint:
    if isinstance(weights, LoadedCheckpoint):
        checkpoint = weights
    else:
        checkpoint = load_checkpoint(weights, load_pose=True if need_pose else False)
    if need_pose and checkpoint.pose_net is None:
        raise ConfigError(f"{checkpoint.folder} has no pose network (pose_encoder.pth / pose.pth)")
    return checkpoint


class DepthEstimator:
    """Monodepth2 depth for 8-bit RGB frames of any size.

    Args:
        weights: a checkpoint folder (or an already loaded checkpoint).
        config: device, precision, depth range, metric scale, post-processing.
    """

    def __init__(self, weights: str | Path | LoadedCheckpoint, config: InferenceConfig | None = None) -> None:
        self.config = config or InferenceConfig()
        self.device = resolve_device(self.config.device)
        self.backend = resolve_backend(self.config.backend, self.config.precision, self.device)
        self.precision = self.backend.precision
        checkpoint = _load(weights, need_pose=False)
        self.info = checkpoint.info
        self.scale = checkpoint_scale(self.info, self.config)
        self.network: DepthNet = checkpoint.depth_net.to(self.device).eval()
        batch = 2 if self.config.post_process else 1  # the flipped copy rides in the same batch
        self.runner = build_runner(
            "depth", self.network, self.backend, self.network_size, onnx_dir=self.config.onnx_dir, batch_sizes=(batch,)
        )
        self._host = HostStaging()

    @property
    def network_size(self) -> tuple[int, int]:
        """(height, width) the network runs at."""
        return self.info.height, self.info.width

    @torch.inference_mode()
    def warm_up(self) -> None:
        """One network call on a blank frame: the runtime's first call sets up its kernels (hundreds of
        ms on a CPU), which a node should spend before it says it is ready, not on the first camera frame."""
        batch = 2 if self.config.post_process else 1
        self.predict_disparity(torch.zeros(batch, 3, *self.network_size, device=self.device))

    @torch.inference_mode()
    def predict_disparity(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float RGB in [0, 1] on the device -> (B, 1, h, w) float32 sigmoid disparity."""
        images = resize_to_network(images, *self.network_size)
        if self.config.post_process:
            batch = images.shape[0]
            both = self.runner(torch.cat([images, torch.flip(images, dims=[-1])]))[0]
            return blend_flipped_disparity(both[:batch], both[batch:])
        return self.runner(images)[0]

    @torch.inference_mode()
    def disparity_to_depth(self, disparity: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        """Sigmoid disparity (B, 1, h, w) -> metric depth (B, 1, H, W).

        The disparity (not the depth) is resized, as the official evaluation does: interpolating
        inverse depth keeps far surfaces from bleeding into near ones at edges.
        """
        scaled_disp, _ = disp_to_depth(disparity, self.config.min_depth, self.config.max_depth)
        if scaled_disp.shape[-2:] != tuple(output_size):
            scaled_disp = F.interpolate(scaled_disp, size=output_size, mode="bilinear", align_corners=False)
        return self.scale / scaled_disp

    def estimate(
        self,
        rgb: np.ndarray,
        K: np.ndarray | None = None,
        output_size: tuple[int, int] | None = None,
        camera_input: CameraInput | None = None,
    ) -> DepthPrediction:
        """Depth for one (H, W, 3) uint8 RGB frame.

        Args:
            rgb: the frame (raw when ``camera_input`` rectifies it).
            K: optional (3, 3) intrinsics of ``rgb``; returned rescaled to the output size. With a
                ``camera_input`` its output camera's K is used.
            output_size: (height, width) of the depth; defaults to the input size.
            camera_input: the camera's rectification; the depth is then on the rectified grid.
        """
        prepared = prepare_frame(rgb, camera_input, self.network_size, self.device)
        if prepared.camera is not None:
            K = prepared.camera.K
        input_size = (prepared.rgb.shape[0], prepared.rgb.shape[1])
        output_size = tuple(output_size or input_size)
        disparity = self.predict_disparity(prepared.images)
        depth = self.disparity_to_depth(disparity, output_size)
        K_out = None
        if K is not None:
            K_out = scale_intrinsics(np.asarray(K, dtype=np.float64), input_size, output_size)
        return DepthPrediction(
            disparity=self._host.to_numpy(disparity[0, 0]),
            depth=self._host.to_numpy(depth[0, 0]),
            scale=self.scale,
            K=K_out,
        )


class PoseEstimator:
    """Relative camera motion between two frames with the Monodepth2 pose network."""

    def __init__(self, weights: str | Path | LoadedCheckpoint, config: InferenceConfig | None = None) -> None:
        self.config = config or InferenceConfig()
        self.device = resolve_device(self.config.device)
        self.backend = resolve_backend(self.config.backend, self.config.precision, self.device)
        self.precision = self.backend.precision
        checkpoint = _load(weights, need_pose=True)
        self.info = checkpoint.info
        self.scale = checkpoint_scale(self.info, self.config)
        self.network: PoseNet = checkpoint.pose_net.to(self.device).eval()
        size = (self.info.height, self.info.width)
        self.runner = build_runner("pose", self.network, self.backend, size, onnx_dir=self.config.onnx_dir)

    @torch.inference_mode()
    def warm_up(self, max_pairs: int = 1) -> None:
        """A call on blank frames for every batch size up to ``max_pairs``: each new batch shape sets up
        its kernels on first use, which would otherwise stall the first batches of a busy node."""
        size = (self.info.height, self.info.width)
        for pairs in range(1, max(1, max_pairs) + 1):
            blank = torch.zeros(pairs, 3, *size, device=self.device)
            self.predict_raw(blank, blank)

    @torch.inference_mode()
    def predict_raw(self, frame_a: torch.Tensor, frame_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) frames in [0, 1] -> the decoder's first (axis_angle, translation), (B, 3) each."""
        size = (self.info.height, self.info.width)
        frame_a = resize_to_network(frame_a, *size)
        frame_b = resize_to_network(frame_b, *size)
        axis_angle, translation = self.runner(frame_a, frame_b)
        return axis_angle[:, 0, 0], translation[:, 0, 0]

    def estimate(self, rgb_a: np.ndarray, rgb_b: np.ndarray, camera_input: CameraInput | None = None) -> RelativeMotion:
        """Motion from frame a (earlier) to frame b (later), two (H, W, 3) uint8 RGB frames
        (raw when ``camera_input`` rectifies them)."""
        return self.estimate_pairs([(rgb_a, rgb_b)], camera_input)[0]

    def estimate_pairs(
        self, pairs: list[tuple[np.ndarray, np.ndarray]], camera_input: CameraInput | None = None
    ) -> list[RelativeMotion]:
        """Motions of several (earlier, later) frame pairs in one batched network call.

        On a CPU a batch costs far less per pair than single calls; a frame shared by two pairs
        (consecutive pairs of a sequence) is prepared once.
        """
        if not pairs:
            return []
        size = (self.info.height, self.info.width)
        tensors: dict[int, torch.Tensor] = {}

        def tensor(rgb: np.ndarray) -> torch.Tensor:
            key = id(rgb)
            if key not in tensors:
                # at the network size now, so frames of different sizes still stack
                tensors[key] = prepare_frame(rgb, camera_input, size, self.device).images
            return tensors[key]

        frames_a = torch.cat([tensor(a) for a, _ in pairs])
        frames_b = torch.cat([tensor(b) for _, b in pairs])
        axis_angle, translation = self.predict_raw(frames_a, frames_b)
        axis_angle = axis_angle.double().cpu()
        translation = translation.double().cpu() * self.scale
        T_b_a = pose_vec_to_mat(axis_angle, translation).numpy()
        return [
            RelativeMotion(T_b_a=T_b_a[i], axis_angle=axis_angle[i].numpy(), translation=translation[i].numpy())
            for i in range(len(pairs))
        ]
