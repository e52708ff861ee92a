"""Evaluation: depth metrics (KITTI / Eigen protocol), trajectory alignment and error, pose files,
reports.

Pure numpy (plus OpenCV for the protocol's resize and matplotlib for figures and colormaps); no torch,
no ROS. The ``monodepth2 evaluate`` command wires these to the bag readers and the networks.
"""

from __future__ import annotations

from monodepth2_ros.evaluation.colorize import COLORMAPS, colorize_depth, colormap_lut, depth_range
from monodepth2_ros.evaluation.depth_metrics import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MIN_DEPTH,
    METRIC_NAMES,
    DepthEvaluation,
    DepthMetrics,
    DepthSummary,
    FrameDepthResult,
    compute_depth_metrics,
    evaluate_depth_frame,
    garg_crop_mask,
    resize_depth_via_disparity,
)
from monodepth2_ros.evaluation.pose_io import (
    Trajectory,
    associate_timestamps,
    associate_trajectories,
    matrix_to_quaternion,
    quaternion_to_matrix,
    read_kitti_poses,
    read_tum_trajectory,
    write_kitti_poses,
    write_tum_trajectory,
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
    ALIGN_MODES,
    ErrorStats,
    RelativePoseError,
    SnippetAte,
    TrajectoryAlignment,
    TrajectoryError,
    align_trajectory,
    ate,
    integrate_relative,
    invert_poses,
    relative_pose_error,
    relative_steps,
    snippet_ate,
    trajectory_ate,
    umeyama_alignment,
)

__all__ = [
    # depth
    "DEFAULT_MIN_DEPTH",
    "DEFAULT_MAX_DEPTH",
    "METRIC_NAMES",
    "DepthMetrics",
    "FrameDepthResult",
    "DepthSummary",
    "DepthEvaluation",
    "compute_depth_metrics",
    "evaluate_depth_frame",
    "garg_crop_mask",
    "resize_depth_via_disparity",
    # trajectories
    "ALIGN_MODES",
    "ErrorStats",
    "TrajectoryAlignment",
    "TrajectoryError",
    "SnippetAte",
    "RelativePoseError",
    "invert_poses",
    "integrate_relative",
    "relative_steps",
    "umeyama_alignment",
    "align_trajectory",
    "ate",
    "trajectory_ate",
    "snippet_ate",
    "relative_pose_error",
    # pose files
    "Trajectory",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "read_tum_trajectory",
    "write_tum_trajectory",
    "read_kitti_poses",
    "write_kitti_poses",
    "associate_timestamps",
    "associate_trajectories",
    # reports
    "write_json",
    "write_text_atomic",
    "markdown_table",
    "depth_metrics_table",
    "plot_trajectories",
    "plot_depth_panels",
    "COLORMAPS",
    "colormap_lut",
    "depth_range",
    "colorize_depth",
]
