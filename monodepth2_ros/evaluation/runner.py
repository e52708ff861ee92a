"""``monodepth2 evaluate`` as a library call: a drive with ground truth in, figures and plots out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monodepth2_ros.data.bag_reader import BagImageStream, list_topics, resolve_bag_paths
from monodepth2_ros.data.frame import Frame
from monodepth2_ros.errors import DatasetError
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

__all__ = ["EvaluationConfig", "EvaluationResult", "evaluate_bag", "RESULT_FILES"]

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


@dataclass
class EvaluationResult:
    """All figures of one evaluation, and the files written."""

    figures: dict
    files: dict[str, Path] = field(default_factory=dict)


def _depth_pass(frames, paths, config, depth_fn, progress) -> tuple[DepthSummary, list]:
    """Run depth on frames that have ground truth; returns figures and a few panels."""
    evaluation = DepthEvaluation(config.min_depth, config.max_depth, config.median_scaling, config.garg_crop)
    panels = []
    gt_stream = iter_gt_depth(paths, config.gt_depth_topic)
    matched = match_by_stamp(frames, gt_stream, key=lambda f: f.stamp_ns, tolerance_ns=config.stamp_tolerance_ns)
    for frame, gt_depth in matched:
        pred = depth_fn(frame.rgb)
        result = evaluation.add(gt_depth, pred)
        if len(panels) < config.panel_frames and len(evaluation) % 10 == 1:
            shown = pred * (result.scale_ratio if config.median_scaling else 1.0)
            panels.append((np.array(frame.rgb), shown, gt_depth))
        if progress is not None:
            progress(1)
    if len(evaluation) == 0:
        raise DatasetError(f"no frame had a ground-truth depth image on {config.gt_depth_topic} at its stamp")
    return evaluation.summary(), panels


def evaluate_bag(
    bags,
    out_dir: str | Path,
    config: EvaluationConfig,
    depth_fn: Callable[[np.ndarray], np.ndarray] | None,
    motion_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
    progress: Callable[[int], None] | None = None,
    extra_depth_rows: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
) -> EvaluationResult:
    """Evaluate depth and/or odometry on a bag with ground truth.

    Args:
        bags: bag path(s) as the data readers accept them.
        out_dir: folder for metrics.json, metrics.md and the plots.
        depth_fn: RGB (H, W, 3) uint8 -> depth (H', W') in metres (or network units with median
            scaling); None skips depth.
        motion_fn: (rgb_a, rgb_b) -> ``T_a_b`` (4, 4), pose of camera b in camera a; None skips odometry.
        extra_depth_rows: more depth predictors evaluated the same way (baselines), by name.
    """
    paths = resolve_bag_paths(bags)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    topics = {t.name for t in list_topics(paths)}
    stream = BagImageStream(paths, config.image_topic, config.camera_info_topic, require_camera_info=False)

    def frames():
        for count, frame in enumerate(stream):
            if config.max_frames is not None and count >= config.max_frames:
                return
            yield frame

    figures: dict = {"bags": [str(p) for p in paths], "image_topic": stream.image_topic, "config": config.__dict__.copy()}
    files: dict[str, Path] = {}
    rows = []
    if depth_fn is not None and config.gt_depth_topic:
        if config.gt_depth_topic not in topics:
            raise DatasetError(f"ground-truth depth topic {config.gt_depth_topic} is not in {paths[0]}; topics: {', '.join(sorted(topics))}")
        depth_rows = {"model": depth_fn, **(extra_depth_rows or {})}
        figures["depth"] = {}
        for name, fn in depth_rows.items():
            summary, panels = _depth_pass(frames(), paths, config, fn, progress if name == "model" else None)
            figures["depth"][name] = summary.as_dict()
            rows.append((name, summary.metrics))
            if name == "model" and panels:
                files["depth_panels"] = out_dir / RESULT_FILES["depth_panels"]
                plot_depth_panels(panels, files["depth_panels"], title="image | predicted depth | abs-rel error")

    if motion_fn is not None and config.gt_odom_topic:
        figures["odometry"] = _odometry_pass(frames(), paths, config, motion_fn, out_dir, files)

    write_json(out_dir / RESULT_FILES["json"], figures)
    files["json"] = out_dir / RESULT_FILES["json"]
    write_text_atomic(out_dir / RESULT_FILES["markdown"], _markdown(figures, rows))
    files["markdown"] = out_dir / RESULT_FILES["markdown"]
    return EvaluationResult(figures, files)


def _odometry_pass(frames, paths, config, motion_fn, out_dir, files) -> dict:
    track = read_odometry(paths, config.gt_odom_topic)
    static = read_static_transforms(paths)
    stamps, steps, frame_id, previous = [], [], "", None
    for frame in frames:
        if previous is not None:
            steps.append(motion_fn(previous.rgb, frame.rgb))
        stamps.append(frame.stamp_ns)
        frame_id = frame_id or frame.frame_id
        previous = frame
    if len(stamps) < config.snippet_length:
        raise DatasetError(f"odometry evaluation needs at least {config.snippet_length} frames, got {len(stamps)}")
    T_base_camera = static.lookup(track.child_frame_id, frame_id) if frame_id else None
    if T_base_camera is None:
        _LOG.warning(
            "no static transform %s -> %s in the bag: comparing camera motion with %s motion directly",
            track.child_frame_id, frame_id or "(camera)", track.child_frame_id,
        )
        T_base_camera = np.eye(4)
    gt_poses = camera_poses_at(track, stamps, T_base_camera, config.stamp_tolerance_ns)
    pred_poses = integrate_relative(np.stack(steps), initial=gt_poses[0])
    snippets = snippet_ate(np.stack(steps), relative_steps(gt_poses), config.snippet_length)
    whole = trajectory_ate(pred_poses, gt_poses, mode="sim3")
    rpe = relative_pose_error(pred_poses, gt_poses, delta=1, mode="sim3")
    files["trajectory_plot"] = out_dir / RESULT_FILES["trajectory_plot"]
    plot_trajectories(
        gt_poses[:, :3, 3], whole.alignment.poses[:, :3, 3], files["trajectory_plot"],
        title=f"top-down, Sim(3)-aligned: ATE {whole.stats.rmse:.3f} m",
    )
    return {"snippet_ate": snippets.as_dict(), "trajectory_ate": whole.as_dict(), "rpe": rpe.as_dict(), "frames": len(stamps)}


def _markdown(figures: dict, rows) -> str:
    parts = ["# Evaluation", ""]
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
