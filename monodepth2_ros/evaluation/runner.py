"""``monodepth2 evaluate`` as a library call: a drive with ground truth in, figures and plots out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monodepth2_ros.data.bag_reader import BagImageStream, list_topics, resolve_bag_paths
from monodepth2_ros.data.camera import CameraModel
from monodepth2_ros.data.folder_reader import FolderImageStream
from monodepth2_ros.data.frame import Frame
from monodepth2_ros.errors import DatasetError, MissingInputError
from monodepth2_ros.evaluation.pose_io import read_kitti_poses, read_tum_trajectory
from monodepth2_ros.evaluation.depth_metrics import DEFAULT_MAX_DEPTH, DEFAULT_MIN_DEPTH, DepthEvaluation, DepthSummary
from monodepth2_ros.evaluation.ground_truth import (
    camera_poses_at,
    iter_gt_depth,
    match_by_stamp,
    read_odometry,
    read_static_transforms,
)
from monodepth2_ros.evaluation.report import (
    depth_metrics_table,
    markdown_table,
    plot_depth_panels,
    plot_trajectories,
    write_json,
    write_text_atomic,
)
from monodepth2_ros.evaluation.trajectory import (
    integrate_relative,
    relative_pose_error,
    relative_steps,
    snippet_ate,
    trajectory_ate,
)
from monodepth2_ros.inference.camera_input import CameraInput, rectification_wanted

__all__ = [
    "EvaluationConfig",
    "EvaluationResult",
    "evaluate_sequence",
    "evaluate_bag",
    "evaluate_image_folder",
    "poses_from_file",
    "rectification_for",
    "RESULT_FILES",
]

_LOG = logging.getLogger(__name__)

RESULT_FILES = {
    "json": "metrics.json",
    "markdown": "metrics.md",
    "trajectory_plot": "trajectory.png",
    "depth_panels": "depth_panels.png",
}


@dataclass(frozen=True)
class EvaluationConfig:
    """What to evaluate and how.

    Attributes:
        image_topic, camera_info_topic: None picks them automatically.
        gt_depth_topic: a depth image topic (32FC1 metres or 16UC1 mm), or None to skip depth.
        gt_odom_topic: a nav_msgs/Odometry topic, or None to skip odometry.
        min_depth, max_depth: the ground-truth depth cap (1e-3..80 m, the standard protocol).
        median_scaling: per-image median scaling (mono models); False evaluates metric depth.
        garg_crop: evaluate inside the Garg crop only (the KITTI protocol).
        snippet_length: frames per ATE snippet (5 in the Monodepth2 protocol).
        max_frames: stop after this many frames (None: all).
        stamp_tolerance_ns: how far a ground-truth stamp may be from its frame's.
        panel_frames: how many frames get an image | depth | error panel.
        rectify: ``auto`` (a camera with distortion), ``true`` or ``false``: frames are rectified
            as the nodes and training do, and ground-truth depth of the raw pixel grid is carried
            to the rectified grid (nearest raw pixel, invalid outside) before scoring.
    """

    image_topic: str | None = None
    camera_info_topic: str | None = None
    gt_depth_topic: str | None = "/ground_truth/depth"
    gt_odom_topic: str | None = "/ground_truth/odom"
    min_depth: float = DEFAULT_MIN_DEPTH
    max_depth: float = DEFAULT_MAX_DEPTH
    median_scaling: bool = True
    garg_crop: bool = False
    snippet_length: int = 5
    max_frames: int | None = None
    stamp_tolerance_ns: int = 5_000_000
    panel_frames: int = 3
    rectify: str = "auto"


@dataclass
class EvaluationResult:
    """All figures of one evaluation, and the files written."""

    figures: dict
    files: dict[str, Path] = field(default_factory=dict)


StampedDepths = Callable[[], Iterator[tuple[int, np.ndarray]]]
CameraPosesAt = Callable[[list[int], list[int], str], np.ndarray]


def _depth_pass(frames, gt_depths: StampedDepths, config, depth_fn, progress) -> tuple[DepthSummary, list]:
    """Run depth on frames that have ground truth; returns the summary and a few panels."""
    evaluation = DepthEvaluation(config.min_depth, config.max_depth, config.median_scaling, config.garg_crop)
    panels = []
    matched = match_by_stamp(frames, gt_depths(), key=lambda f: f.stamp_ns, tolerance_ns=config.stamp_tolerance_ns)
    for frame, gt_depth in matched:
        pred = depth_fn(frame.rgb)
        result = evaluation.add(gt_depth, pred)
        if len(panels) < config.panel_frames and len(evaluation) % 10 == 1:
            shown = pred * (result.scale_ratio if config.median_scaling else 1.0)
            panels.append((np.array(frame.rgb), shown, gt_depth))
        if progress is not None:
            progress(1)
    if len(evaluation) == 0:
        raise DatasetError("no frame had a ground-truth depth map at its stamp")
    return evaluation.summary(), panels


def evaluate_sequence(
    frames: Callable[[], Iterable[Frame]],
    out_dir: str | Path,
    config: EvaluationConfig,
    depth_fn: Callable[[np.ndarray], np.ndarray] | None,
    motion_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
    gt_depths: StampedDepths | None,
    gt_camera_poses: CameraPosesAt | None,
    progress: Callable[[int], None] | None = None,
    extra_depth_rows: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
    source: dict | None = None,
) -> EvaluationResult:
    """Evaluate depth and/or odometry on a frame sequence with ground truth, whatever its source.

    Args:
        frames: returns a fresh iteration over the frames (each pass re-reads them).
        gt_depths: returns ``(stamp_ns, depth in metres, NaN invalid)`` in stamp order; None skips depth.
        gt_camera_poses: ``(stamps_ns, frame indices, camera frame_id) -> (N, 4, 4) T_world_camera``;
            None skips odometry.
        depth_fn: RGB (H, W, 3) uint8 -> depth (H', W') in metres (or network units with median
            scaling).
        motion_fn: (rgb_a, rgb_b) -> ``T_a_b`` (4, 4), pose of camera b in camera a.
        extra_depth_rows: more depth predictors evaluated the same way (baselines), by name.
        source: what was evaluated, recorded in metrics.json.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def limited():
        for count, frame in enumerate(frames()):
            if config.max_frames is not None and count >= config.max_frames:
                return
            yield frame

    figures: dict = {**(source or {}), "config": config.__dict__.copy()}
    files: dict[str, Path] = {}
    rows = []
    if depth_fn is not None and gt_depths is not None:
        figures["depth"] = {}
        for name, fn in {"model": depth_fn, **(extra_depth_rows or {})}.items():
            summary, panels = _depth_pass(limited(), gt_depths, config, fn, progress if name == "model" else None)
            figures["depth"][name] = summary.as_dict()
            rows.append((name, summary.metrics))
            if name == "model" and panels:
                files["depth_panels"] = out_dir / RESULT_FILES["depth_panels"]
                plot_depth_panels(panels, files["depth_panels"], title="image | predicted depth | abs-rel error")
    if motion_fn is not None and gt_camera_poses is not None:
        figures["odometry"] = _odometry_pass(limited(), gt_camera_poses, config, motion_fn, out_dir, files)

    write_json(out_dir / RESULT_FILES["json"], figures)
    files["json"] = out_dir / RESULT_FILES["json"]
    write_text_atomic(out_dir / RESULT_FILES["markdown"], _markdown(figures, rows))
    files["markdown"] = out_dir / RESULT_FILES["markdown"]
    return EvaluationResult(figures, files)


def evaluate_bag(
    bags,
    out_dir: str | Path,
    config: EvaluationConfig,
    depth_fn: Callable[[np.ndarray], np.ndarray] | None,
    motion_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
    progress: Callable[[int], None] | None = None,
    extra_depth_rows: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
    gt_poses_file: str | Path | None = None,
) -> EvaluationResult:
    """Evaluate on a bag whose ground truth is a depth topic and an odometry topic (+ /tf_static).

    ``gt_poses_file`` (TUM or KITTI camera poses) replaces the odometry topic when given.
    """
    paths = resolve_bag_paths(bags)
    topics = {t.name for t in list_topics(paths)}
    stream = BagImageStream(paths, config.image_topic, config.camera_info_topic, require_camera_info=False)
    camera_input = rectification_for(stream.camera, config)
    if camera_input is not None:
        stream = BagImageStream(paths, stream.image_topic, stream.camera_info_topic, undistort=True)
    gt_depths = None
    if depth_fn is not None and config.gt_depth_topic:
        if config.gt_depth_topic not in topics:
            raise DatasetError(f"ground-truth depth topic {config.gt_depth_topic} is not in {paths[0]}; topics: {', '.join(sorted(topics))}")
        gt_depths = _on_output_grid(lambda: iter_gt_depth(paths, config.gt_depth_topic), camera_input)
    gt_poses = None
    if gt_poses_file is not None:
        gt_poses = poses_from_file(gt_poses_file, config.stamp_tolerance_ns)
    elif motion_fn is not None and config.gt_odom_topic:
        gt_poses = _bag_camera_poses(paths, config)
    source = {"bags": [str(p) for p in paths], "image_topic": stream.image_topic, "rectification": _rectification_record(camera_input)}
    return evaluate_sequence(lambda: iter(stream), out_dir, config, depth_fn, motion_fn, gt_depths, gt_poses, progress, extra_depth_rows, source)


def evaluate_image_folder(
    folder: str | Path,
    out_dir: str | Path,
    config: EvaluationConfig,
    depth_fn: Callable[[np.ndarray], np.ndarray] | None,
    motion_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
    gt_depth_npz: str | Path | None = None,
    gt_poses_file: str | Path | None = None,
    rate_hz: float = 10.0,
    progress: Callable[[int], None] | None = None,
    calibration: str | Path | CameraModel | None = None,
) -> EvaluationResult:
    """Evaluate on an image folder (e.g. the KITTI Eigen split's images) with file ground truth.

    Args:
        calibration: the camera (a camera_calibration YAML with D, ...); None looks in the folder.
        gt_depth_npz: ``gt_depths.npz`` as the KITTI tools export it: key ``data``, one depth map
            per image, in the folder's (natural) file order.
        gt_poses_file: camera poses, TUM (matched by time) or KITTI (one line per image).
    """
    stream = FolderImageStream(folder, camera=calibration, rate_hz=rate_hz, require_camera_info=calibration is not None)
    camera_input = rectification_for(stream.camera, config)
    if camera_input is not None:
        stream = FolderImageStream(folder, camera=stream.camera, rate_hz=rate_hz, undistort=True)
    gt_depths = None
    if depth_fn is not None and gt_depth_npz is not None:
        depths = _load_gt_npz(gt_depth_npz, len(stream))
        gt_depths = _on_output_grid(lambda: iter(zip(stream.stamps_ns, depths)), camera_input)
    gt_poses = poses_from_file(gt_poses_file, config.stamp_tolerance_ns) if gt_poses_file is not None else None
    source = {"images": str(folder), "rectification": _rectification_record(camera_input)}
    return evaluate_sequence(lambda: iter(stream), out_dir, config, depth_fn, motion_fn, gt_depths, gt_poses, progress, None, source)


def rectification_for(camera: CameraModel | None, config: EvaluationConfig) -> CameraInput | None:
    """The rectification of the nodes and training for this camera (``config.rectify``), or None when
    frames stay raw: the grid every figure of the evaluation is measured on."""
    if not rectification_wanted(config.rectify, camera):
        return None
    return CameraInput(camera, (camera.height, camera.width), rectify=True)


def _on_output_grid(gt_depths: StampedDepths, camera_input: CameraInput | None) -> StampedDepths:
    """Ground truth of the raw pixel grid carried to the rectified grid (nearest, NaN outside)."""
    if camera_input is None:
        return gt_depths
    return lambda: ((stamp, camera_input.rectify_depth(depth)) for stamp, depth in gt_depths())


def _rectification_record(camera_input: CameraInput | None) -> dict:
    if camera_input is None:
        return {"rectified": False}
    raw = camera_input.raw_camera
    return {
        "rectified": True,
        "distortion_model": raw.distortion_model,
        "D": raw.D.tolist(),
        "rectified_K": camera_input.camera.K.tolist(),
        "ground_truth": "raw-grid depth mapped to the rectified grid (nearest raw pixel, invalid outside)",
    }


def _load_gt_npz(path: str | Path, count: int) -> list[np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"ground-truth depth file not found: {path} (expected gt_depths.npz with key 'data')")
    try:
        with np.load(path, allow_pickle=True, fix_imports=True, encoding="latin1") as archive:
            depths = [np.asarray(d, dtype=np.float32) for d in archive["data"]]
    except (OSError, KeyError, ValueError) as err:
        raise DatasetError(f"cannot read {path}: {err} (expected an .npz with one depth map per image under 'data')") from err
    if len(depths) != count:
        raise DatasetError(f"{path} holds {len(depths)} depth maps but the folder has {count} images")
    return [np.where(d > 0, d, np.nan) for d in depths]


def poses_from_file(path: str | Path, tolerance_ns: int) -> CameraPosesAt:
    """Camera poses from a TUM file (matched to frame stamps) or a KITTI file (by frame index)."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"pose file not found: {path} (expected TUM or KITTI camera poses)")
    first = next((line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")), [])
    if len(first) == 12:
        poses = read_kitti_poses(path)

        def by_index(stamps, indices, frame_id):
            if max(indices) >= len(poses):
                raise DatasetError(f"{path} has {len(poses)} poses but frame {max(indices)} was evaluated")
            return poses[np.asarray(indices)]

        return by_index
    trajectory = read_tum_trajectory(path)

    def by_time(stamps, indices, frame_id):
        times = trajectory.timestamps * 1e9
        chosen = []
        for stamp in stamps:
            nearest = int(np.argmin(np.abs(times - stamp)))
            if abs(times[nearest] - stamp) > tolerance_ns:
                raise DatasetError(f"{path}: no pose within {tolerance_ns / 1e6:.0f} ms of frame stamp {stamp}")
            chosen.append(trajectory.poses[nearest])
        return np.stack(chosen)

    return by_time


def _bag_camera_poses(paths, config) -> CameraPosesAt:
    def at(stamps, indices, frame_id):
        track = read_odometry(paths, config.gt_odom_topic)
        static = read_static_transforms(paths)
        T_base_camera = static.lookup(track.child_frame_id, frame_id) if frame_id else None
        if T_base_camera is None:
            _LOG.warning(
                "no static transform %s -> %s in the bag: comparing camera motion with %s motion directly",
                track.child_frame_id, frame_id or "(camera)", track.child_frame_id,
            )
            T_base_camera = np.eye(4)
        return camera_poses_at(track, stamps, T_base_camera, config.stamp_tolerance_ns)

    return at


def _odometry_pass(frames, gt_camera_poses: CameraPosesAt, config, motion_fn, out_dir, files) -> dict:
    stamps, indices, steps, frame_id, previous = [], [], [], "", None
    for frame in frames:
        if previous is not None:
            steps.append(motion_fn(previous.rgb, frame.rgb))
        stamps.append(frame.stamp_ns)
        indices.append(frame.index)
        frame_id = frame_id or frame.frame_id
        previous = frame
    if len(stamps) < config.snippet_length:
        raise DatasetError(f"odometry evaluation needs at least {config.snippet_length} frames, got {len(stamps)}")
    gt_poses = gt_camera_poses(stamps, indices, frame_id)
    pred_poses = integrate_relative(np.stack(steps), initial=gt_poses[0])
    snippets = snippet_ate(np.stack(steps), relative_steps(gt_poses), config.snippet_length)
    whole = trajectory_ate(pred_poses, gt_poses, mode="sim3")
    rpe = relative_pose_error(pred_poses, gt_poses, delta=1, mode="sim3")
    files["trajectory_plot"] = out_dir / RESULT_FILES["trajectory_plot"]
    plot_trajectories(
        gt_poses[:, :3, 3], whole.alignment.poses[:, :3, 3], files["trajectory_plot"],
        title=f"plane of the motion, Sim(3)-aligned: ATE {whole.stats.rmse:.3f} m",
    )
    return {"snippet_ate": snippets.as_dict(), "trajectory_ate": whole.as_dict(), "rpe": rpe.as_dict(), "frames": len(stamps)}


def _markdown(figures: dict, rows) -> str:
    parts = ["# Evaluation", ""]
    rectification = figures.get("rectification", {})
    if rectification.get("rectified"):
        parts += [
            f"Frames rectified ({rectification['distortion_model']} lens, as the nodes and training do); "
            "ground-truth depth given on the raw pixel grid was mapped to the rectified grid (nearest raw "
            "pixel, invalid outside) before scoring.",
            "",
        ]
    if rows:
        mode = "median-scaled" if figures["config"]["median_scaling"] else "metric"
        parts += [f"## Depth ({mode})", "", depth_metrics_table(rows), ""]
        model = figures["depth"]["model"]
        parts += [
            f"Frames: {model['num_frames']}; scale ratio median {model['scale_ratio_median']:.3f}, "
            f"std {model['scale_ratio_std_normalized']:.3f} (normalised by the median).",
            "",
        ]
    if "odometry" in figures:
        odometry = figures["odometry"]
        parts += ["## Odometry", "", markdown_table(
            [{
                "snippet ATE (m)": odometry["snippet_ate"]["mean"],
                "± std": odometry["snippet_ate"]["std"],
                "trajectory ATE RMSE (m)": odometry["trajectory_ate"]["rmse"],
                "RPE trans (m)": odometry["rpe"]["translation"]["rmse"],
                "RPE rot (deg)": odometry["rpe"]["rotation_deg"]["rmse"],
                "frames": odometry["frames"],
            }],
            ["snippet ATE (m)", "± std", "trajectory ATE RMSE (m)", "RPE trans (m)", "RPE rot (deg)", "frames"],
            float_format="{:.4f}",
        ), ""]
    return "\n".join(parts)
