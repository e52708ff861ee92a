"""``monodepth2 evaluate``: depth metrics and odometry error against ground truth in a bag."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.evaluation.backend_selection import resolve_auto_config
from monodepth2_ros.evaluation.runner import EvaluationConfig, evaluate_bag, evaluate_image_folder
from monodepth2_ros.inference import DepthEstimator, InferenceConfig, PoseEstimator
from monodepth2_ros.inference.backends import ALL_PRECISIONS, BACKENDS
from monodepth2_ros.inference.camera_input import RECTIFY_MODES
from monodepth2_ros.inference.weights import resolve_weights
from monodepth2_ros.model.checkpoint import load_checkpoint

__all__ = ["register", "run"]

EXAMPLES = """examples:
  monodepth2 evaluate --bag drive.mcap --out eval/                 median-scaled depth + odometry
  monodepth2 evaluate --bag drive.mcap --metric --out eval/        metric depth (stereo models)
  monodepth2 evaluate --bag drive.mcap --post-process --garg-crop --out eval/
  monodepth2 evaluate --bag drive.mcap --no-odometry --gt-depth-topic /lidar/depth --out eval/
  monodepth2 evaluate --images kitti/eigen_images --gt-depth-npz gt_depths.npz --garg-crop --no-odometry --out eval/
  monodepth2 evaluate --images kitti/09/image_2 --gt-poses kitti/poses/09.txt --no-depth --out eval/
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="depth metrics and odometry ATE/RPE against ground truth in a bag",
        description=(
            "Evaluate a checkpoint on a bag holding ground truth: depth metrics (abs_rel, sq_rel, rmse, "
            "rmse_log, d<1.25^k) per image, median-scaled or metric; 5-frame snippet ATE, whole-trajectory "
            "ATE and RPE after Sim(3) alignment. Writes metrics.json, metrics.md and plots."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bag", nargs="+", help="bag file(s) or folder(s) with ground-truth topics")
    source.add_argument("--images", help="image folder (e.g. KITTI), with --gt-depth-npz and/or --gt-poses")
    parser.add_argument("--gt-depth-npz", default=None, help="gt_depths.npz (key 'data', one map per image in file order)")
    parser.add_argument("--gt-poses", default=None, help="camera poses: TUM (matched by time) or KITTI (one per image)")
    parser.add_argument("--rate", type=float, default=10.0, help="frame rate of --images without timestamped names")
    parser.add_argument(
        "--calibration", default=None,
        help="camera calibration of --images (camera_calibration YAML with D, K text, KITTI calib); default: one in the folder",
    )
    parser.add_argument(
        "--rectify", default="auto", choices=RECTIFY_MODES,
        help="undistort frames as the nodes and training do (auto: when the calibration has distortion); "
        "ground-truth depth on the raw grid is mapped to the rectified grid",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--weights", default=None, help="checkpoint folder or a bundled model's name (default: the bundled default model)")
    parser.add_argument("--image-topic", default=None)
    parser.add_argument("--camera-info-topic", default=None)
    parser.add_argument("--gt-depth-topic", default="/ground_truth/depth")
    parser.add_argument("--gt-odom-topic", default="/ground_truth/odom")
    parser.add_argument("--no-depth", action="store_true", help="skip the depth evaluation")
    parser.add_argument("--no-odometry", action="store_true", help="skip the odometry evaluation")
    parser.add_argument("--metric", action="store_true", help="no median scaling: evaluate metric depth")
    parser.add_argument("--scale", type=float, default=None, help="metres per network unit (default from the checkpoint)")
    parser.add_argument("--post-process", action="store_true", help="the paper's flip post-processing")
    parser.add_argument("--garg-crop", action="store_true", help="evaluate inside the Garg crop")
    parser.add_argument("--min-depth", type=float, default=1e-3, help="ground-truth cap, metres")
    parser.add_argument("--max-depth", type=float, default=80.0, help="ground-truth cap, metres")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", choices=ALL_PRECISIONS, help="int8 needs --backend onnxruntime or openvino")
    parser.add_argument("--backend", default="eager", choices=BACKENDS, help="network runtime (default eager); auto: the fastest accurate one here, measured once and cached")
    parser.set_defaults(func=run)


def _auto_config(inference: InferenceConfig, checkpoint, network: str) -> InferenceConfig:
    """``--backend auto``: measure (or read the cached pick) and say what runs."""
    config, selection = resolve_auto_config(inference, checkpoint, network, say=_progress)
    if selection is not None:
        print(selection.describe(), file=sys.stderr)
    return config


def _progress(line: str) -> None:
    if sys.stderr.isatty():
        print(f"... {line}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.no_depth and args.no_odometry:
        raise ConfigError("nothing to evaluate: both --no-depth and --no-odometry were given")
    checkpoint = load_checkpoint(resolve_weights(args.weights), load_pose=None)
    inference = InferenceConfig(device=args.device, precision=args.precision, backend=args.backend, post_process=args.post_process, scale=args.scale)
    depth_fn = None
    if not args.no_depth:
        depth = DepthEstimator(checkpoint, _auto_config(inference, checkpoint, "depth"))
        depth_fn = lambda rgb: depth.estimate(rgb).depth  # noqa: E731
    motion_fn = None
    if not args.no_odometry:
        if checkpoint.pose_net is None:
            raise ConfigError(f"{checkpoint.folder} has no pose network; use --no-odometry")
        pose = PoseEstimator(checkpoint, _auto_config(inference, checkpoint, "pose"))
        motion_fn = lambda a, b: pose.estimate(a, b).T_a_b  # noqa: E731
    config = EvaluationConfig(
        image_topic=args.image_topic,
        camera_info_topic=args.camera_info_topic,
        gt_depth_topic=None if args.no_depth else args.gt_depth_topic,
        gt_odom_topic=None if args.no_odometry else args.gt_odom_topic,
        min_depth=args.min_depth,
        max_depth=args.max_depth,
        median_scaling=not args.metric,
        garg_crop=args.garg_crop,
        max_frames=args.max_frames,
        rectify=args.rectify,
    )
    with tqdm(desc="evaluate", unit="frame", disable=None) as bar:
        if args.bag:
            result = evaluate_bag(args.bag, Path(args.out), config, depth_fn, motion_fn, progress=bar.update, gt_poses_file=args.gt_poses)
        else:
            if args.gt_depth_npz is None and args.gt_poses is None:
                raise ConfigError("--images needs ground truth: --gt-depth-npz and/or --gt-poses")
            result = evaluate_image_folder(
                args.images, Path(args.out), config, depth_fn if args.gt_depth_npz else None,
                motion_fn if args.gt_poses else None, args.gt_depth_npz, args.gt_poses, args.rate, progress=bar.update,
                calibration=args.calibration,
            )
    print(result.files["markdown"].read_text())
    for name, path in result.files.items():
        print(f"{name}: {path}")
    return 0
