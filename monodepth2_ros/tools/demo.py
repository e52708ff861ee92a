"""The one-command demo: a synthetic drive through the real nodes over real DDS, recorded and scored.

Steps (each a function, so the tests run them at a tiny size):

1. render a held-out synthetic drive as an MCAP bag (ground truth included): by default a street
   with a camera, lens and looks drawn from the seed, as the default model's training drives have;
2. start the depth and pose nodes as their own processes, as on a robot (the bringup plan, metric
   scale from the camera height), and in this one a recorder of every output topic and a bag player
   replaying the drive at its rate;
3. score what the nodes published (metric depth against ground-truth depth at the same stamps, on
   the rectified grid the nodes publish when the lens distorts; odometry against ground-truth
   odometry) and the model offline (``evaluate_bag``: median-scaled depth, 5-frame snippet ATE,
   baselines);
4. write ``depth_strip.png``, ``cloud.ply``, ``trajectory.png``, ``metrics.json`` and ``metrics.md``.

Transport: the player publishes reliable and the nodes' ``qos_reliability: auto`` subscribes reliable,
so every frame crosses the process boundary with the default transports; each node process gets an
equal share of the cores for its network (``OMP_NUM_THREADS``), so the two do not oversubscribe them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monodepth2_ros.data.bag_reader import BagImageStream, iter_messages, resolve_bag_paths
from monodepth2_ros.data.image_codec import depth_image_to_metres, image_to_rgb
from monodepth2_ros.evaluation.baselines import flat_ground_depth
from monodepth2_ros.evaluation.depth_metrics import DepthEvaluation
from monodepth2_ros.evaluation.ground_truth import pose_to_matrix, stamp_ns
from monodepth2_ros.evaluation.pointcloud_io import write_ply, xyzrgb_cloud_arrays
from monodepth2_ros.evaluation.report import plot_depth_panels, plot_trajectories, write_json, write_text_atomic
from monodepth2_ros.evaluation.runner import EvaluationConfig, evaluate_bag, rectification_for
from monodepth2_ros.evaluation.trajectory import trajectory_ate
from monodepth2_ros.inference import DepthEstimator, InferenceConfig, PoseEstimator
from monodepth2_ros.inference.camera_input import CameraInput
from monodepth2_ros.inference.weights import resolve_weights
from monodepth2_ros.model.checkpoint import load_checkpoint
from monodepth2_ros.synthetic import SynthConfig, SyntheticDrive, write_drive_bag
from monodepth2_ros.tools.child_process import stop_process
from monodepth2_ros.tools.node_bench_common import NodeDiagnostics

__all__ = [
    "DemoConfig", "DemoResult", "OUTPUT_TOPICS", "render_drive", "run_nodes_on_bag", "score", "run_demo",
    "drive_camera_input", "camera_height",
]

# Node outputs the demo records (relative names resolve to these without a namespace).
OUTPUT_TOPICS = {
    "/depth": "sensor_msgs/msg/Image",
    "/depth/camera_info": "sensor_msgs/msg/CameraInfo",
    "/depth/colored": "sensor_msgs/msg/Image",
    "/points": "sensor_msgs/msg/PointCloud2",
    "/odom": "nav_msgs/msg/Odometry",
    "/path": "nav_msgs/msg/Path",
    "/scale": "std_msgs/msg/Float64",
}
INPUT_REMAPS = ("image:=/camera/image_raw", "camera_info:=/camera/camera_info")
FILES = {
    "drive": "drive",
    "output": "output",
    "strip": "depth_strip.png",
    "cloud": "cloud.ply",
    "trajectory": "trajectory.png",
    "json": "metrics.json",
    "markdown": "metrics.md",
    "logs": "node_logs",
}
# A world no training drive has: seeds ending in 9 are held back in every family (synthetic/families.py).
HELD_OUT_SEED = 9


@dataclass(frozen=True)
class DemoConfig:
    """Settings of one demo run.

    Attributes:
        out_dir: where everything goes (its demo files are replaced on every run).
        weights: checkpoint folder; None is the bundled model.
        frames, width, height, rate_hz, seed: the synthetic drive (a street: the camera-height scale
            needs a road).
        randomize: draw the camera (field of view, height, pitch, roll, lens distortion) and the looks
            from the seed, as in the default model's training drives; False: the plain street world.
        play_rate: replay speed factor (1 = real time).
        device: inference device of the nodes and the offline evaluation.
        backend: the nodes' ``backend`` parameter (``auto``: the fastest accurate one here).
    """

    out_dir: Path = Path("demo_output")
    weights: str | None = None
    frames: int = 80
    width: int = 640
    height: int = 480
    rate_hz: float = 10.0
    seed: int = HELD_OUT_SEED
    randomize: bool = True
    play_rate: float = 1.0
    device: str = "cpu"
    backend: str = "eager"


@dataclass
class DemoResult:
    figures: dict
    files: dict[str, Path] = field(default_factory=dict)


def _progress(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def render_drive(config: DemoConfig, say: Callable[[str], None] = _progress) -> tuple[Path, SyntheticDrive]:
    synth = SynthConfig(frames=config.frames, width=config.width, height=config.height, rate_hz=config.rate_hz,
                        seed=config.seed, randomize=config.randomize)
    drive = SyntheticDrive(synth)
    path = config.out_dir / FILES["drive"]
    look = "randomised camera and looks" if config.randomize else "the plain street"
    say(f"rendering a {config.frames}-frame synthetic drive ({config.width}x{config.height}, seed {config.seed}, {look}) ...")
    write_drive_bag(synth, path, overwrite=True, drive=drive)
    return path, drive


def run_nodes_on_bag(
    bag: Path,
    out_bag: Path,
    weights: Path,
    device: str,
    play_rate: float = 1.0,
    say: Callable[[str], None] = _progress,
    backend: str = "eager",
    camera_height_m: float | None = None,
) -> dict:
    """Replay ``bag`` into the depth and pose nodes and record their outputs into ``out_bag``.

    The nodes run as their own processes, started from the bringup plan as ``ros2 launch`` would
    start them; player and recorder share this one. ``camera_height_m`` is the depth node's
    ``camera_height`` (None: its default). Returns counts of what was played and recorded, and the
    pose node's frame-pair counts read from its last ``/diagnostics``.
    """
    import rclpy
    from rclpy.node import Node

    from monodepth2_ros.ros.bringup import bringup_plan, node_process_command
    from monodepth2_ros.ros.node_common import callback_executor
    from monodepth2_ros.ros.player import BagPlayer
    from monodepth2_ros.ros.recorder import BagRecorder

    options = argparse.Namespace(
        pose=True, weights=str(weights), device=device, params_file="", namespace="", remap=[], scale_mode="camera_height",
    )
    plan = [dataclasses.replace(spec, parameters=(*spec.parameters, {"backend": backend})) for spec in bringup_plan(options)]
    if camera_height_m is not None:
        plan = [dataclasses.replace(spec, parameters=(*spec.parameters, {"camera_height": float(camera_height_m)}))
                if spec.executable == "depth_node" else spec for spec in plan]
    logs_dir = out_bag.parent / FILES["logs"]
    shutil.rmtree(logs_dir, ignore_errors=True)
    logs_dir.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(_node_threads(len(plan)))}
    processes: dict[str, subprocess.Popen] = {}
    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    executor = callback_executor(context)
    local_nodes = []
    spinner = None
    try:
        for spec in plan:
            command = node_process_command(spec, logs_dir / f"{spec.name}.params.yaml", INPUT_REMAPS)
            with (logs_dir / f"{spec.name}.log").open("w") as log:
                processes[spec.name] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        recorder = BagRecorder(out_bag, OUTPUT_TOPICS, context=context)
        player = BagPlayer(bag, rate=play_rate, context=context)
        listener = Node("demo_diagnostics_listener", context=context)
        pose_name = next(spec.name for spec in plan if spec.executable == "pose_node")
        pose_diagnostics = NodeDiagnostics(listener, pose_name)  # the pose node's counts, from its process
        local_nodes += [recorder, player, listener]
        for node in local_nodes:
            executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        say(f"starting {' and '.join(processes)} as their own processes (logs in {logs_dir}) ...")
        _wait_until_ready(player, recorder, processes, logs_dir)
        say(f"replaying {bag.name} into them at {play_rate:g}x real time over real DDS ...")
        stats = player.play()
        # Let the last frames through the networks and the recorder.
        settle = time.monotonic() + 10.0
        last = -1
        while time.monotonic() < settle:
            now = sum(recorder.counts.values())
            if now == last:
                break
            last = now
            time.sleep(1.0)
        recorder.close()
        counts = {"played": dict(stats.published), "recorded": dict(recorder.counts)}
        pose_values = pose_diagnostics.fresh(timeout=5.0)  # published after the playback
        if pose_values:
            counts["pose_node"] = {
                "events": {event: int(pose_values.get(key, 0)) for event, key in _POSE_EVENT_KEYS.items()},
                "received": int(pose_values.get("images received", 0)),
                "dropped": int(pose_values.get("frames dropped (busy)", 0)),
            }
        return counts
    finally:
        executor.shutdown()
        for node in local_nodes:
            node.destroy_node()
        context.try_shutdown()
        if spinner is not None:
            spinner.join(timeout=5.0)
        for process in processes.values():
            stop_process(process, _STOP_TIMEOUT_S)


# pair_figures' event names -> the pose node's diagnostics keys.
_POSE_EVENT_KEYS = {
    "integrated": "poses integrated",
    "overflow": "pairs over dropped images (buffer overflow)",
    "batched_pairs": "pairs run in batches",
    "gap": "gaps (restarted)",
    "static": "static frames",
}
_START_TIMEOUT_S = 180.0  # imports, model load and (backend auto) a first measurement, on a busy CPU
_STOP_TIMEOUT_S = 10.0


def _node_threads(nodes: int) -> int:
    """Intra-op threads per node process: the cores shared out, so the nodes do not oversubscribe them."""
    return max(1, (os.cpu_count() or 1) // max(nodes, 1))


def _wait_until_ready(player, recorder, processes: dict[str, subprocess.Popen], logs_dir: Path) -> None:
    """Until both nodes subscribe to the camera and publish what the recorder takes (or one exits)."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not (
        player.count_subscribers("/camera/image_raw") >= len(processes)
        and recorder.count_publishers("/depth") >= 1
        and recorder.count_publishers("/odom") >= 1
    ):
        for name, process in processes.items():
            if process.poll() is not None:
                tail = (logs_dir / f"{name}.log").read_text()[-2000:]
                raise RuntimeError(f"{name} exited with code {process.returncode} at start-up:\n{tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the nodes were not up within {_START_TIMEOUT_S:.0f} s; see the logs in {logs_dir}")
        time.sleep(0.1)
    time.sleep(0.5)  # discovery of the remaining endpoints


def drive_camera_input(drive_bag: Path) -> CameraInput | None:
    """The rectification ``evaluate_bag`` and the nodes (``rectify: auto``) apply to the drive's
    camera, or None for a pinhole camera: the published depth is on that grid, so ground truth is
    carried there to score it."""
    camera = BagImageStream(resolve_bag_paths(drive_bag), require_camera_info=False).camera
    return rectification_for(camera, EvaluationConfig())


def _node_depth_scores(drive_bag: Path, out_bag: Path, camera_input: CameraInput | None) -> tuple[dict, list]:
    """Metric depth the node published vs ground truth at the same stamps (on ``camera_input``'s
    rectified grid when it is not None); a few panels."""
    on_grid = camera_input.rectify_depth if camera_input is not None else (lambda depth: depth)
    image_on_grid = camera_input.rectify_image if camera_input is not None else (lambda rgb: rgb)
    gt = {stamp_ns(m.msg.header): on_grid(depth_image_to_metres(m.msg)) for m in iter_messages(drive_bag, "/ground_truth/depth")}
    images = {stamp_ns(m.msg.header): m.msg for m in iter_messages(drive_bag, "/camera/image_raw")}
    evaluation = DepthEvaluation(median_scaling=False)
    panels = []
    for message in iter_messages(out_bag, "/depth"):
        stamp = stamp_ns(message.msg.header)
        if stamp not in gt:
            continue
        pred = depth_image_to_metres(message.msg)
        pred = np.where(np.isfinite(pred), pred, 80.0)  # NaN = outside the published range
        evaluation.add(gt[stamp], pred)
        if len(panels) < 3 and len(evaluation) % 15 == 1:  # the first frame always gets a panel
            panels.append((image_on_grid(image_to_rgb(images[stamp])), pred, gt[stamp]))
    if len(evaluation) == 0:
        return {"frames": 0}, panels
    summary = evaluation.summary().as_dict()
    summary["frames"] = summary.pop("num_frames")
    return summary, panels


def _node_odometry_scores(drive_bag: Path, out_bag: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    gt = {stamp_ns(m.msg.header): pose_to_matrix(m.msg.pose.pose) for m in iter_messages(drive_bag, "/ground_truth/odom")}
    pred, truth = [], []
    for message in iter_messages(out_bag, "/odom"):
        stamp = stamp_ns(message.msg.header)
        if stamp in gt:
            pred.append(pose_to_matrix(message.msg.pose.pose))
            truth.append(gt[stamp])
    if len(pred) < 3:
        return {"frames": len(pred)}, np.zeros((0, 3)), np.zeros((0, 3))
    pred, truth = np.stack(pred), np.stack(truth)
    raw = trajectory_ate(pred, truth, mode="se3")  # metric: no scale fitted
    aligned = trajectory_ate(pred, truth, mode="sim3")
    figures = {
        "frames": len(pred),
        "ate_se3_m": raw.stats.rmse,
        "ate_sim3_m": aligned.stats.rmse,
        "sim3_scale": aligned.alignment.scale,
        "distance_m": float(np.linalg.norm(np.diff(truth[:, :3, 3], axis=0), axis=1).sum()),
    }
    return figures, truth[:, :3, 3], aligned.alignment.poses[:, :3, 3]


def pair_figures(counts: dict, frames: int) -> dict:
    """How many of the drive's adjacent frame pairs the pose node integrated (or held as static).

    Every odometry message after the first closes one pair with the frame before it; a pair across
    images dropped from a full buffer (``overflow``) is not adjacent; frames never received or
    dropped close no pair at all.
    """
    published = counts.get("recorded", {}).get("/odom", 0)
    pose = counts.get("pose_node", {})
    overflow = pose.get("events", {}).get("overflow", 0)
    adjacent = max(published - 1 - overflow, 0)
    return {
        "adjacent_pairs": max(frames - 1, 0),
        "adjacent_pairs_integrated": adjacent,
        "pairs_integrated_pct": 100.0 * adjacent / max(frames - 1, 1),
        "pairs_over_dropped_images": overflow,
        "pairs_run_in_batches": pose.get("events", {}).get("batched_pairs", 0),
    }


def _last_cloud(out_bag: Path):
    last = None
    for message in iter_messages(out_bag, "/points"):
        last = message.msg
    return last


def score(config: DemoConfig, drive_bag: Path, drive: SyntheticDrive, out_bag: Path, weights: Path, say=_progress) -> DemoResult:
    """All figures and files of the demo."""
    out = config.out_dir
    files: dict[str, Path] = {}
    camera_input = drive_camera_input(drive_bag)  # the nodes' grid; evaluate_bag rectifies the same way
    figures: dict = {"weights": str(weights), "drive": {
        "frames": config.frames, "size": [config.width, config.height], "seed": config.seed,
        "randomize": config.randomize, "camera_height_m": camera_height(drive),
        "lens_distortion": camera_input is not None,
    }}

    say("scoring the nodes' outputs against ground truth ...")
    figures["node_depth_metric"], panels = _node_depth_scores(drive_bag, out_bag, camera_input)
    figures["node_odometry"], gt_xyz, pred_xyz = _node_odometry_scores(drive_bag, out_bag)
    if panels:
        files["strip"] = out / FILES["strip"]
        plot_depth_panels(panels, files["strip"], title="input | published metric depth (camera-height scale) | abs-rel error")
    if len(pred_xyz):
        files["trajectory"] = out / FILES["trajectory"]
        plot_trajectories(gt_xyz, pred_xyz, files["trajectory"], title=f"pose_node odometry vs ground truth (Sim(3)-aligned ATE {figures['node_odometry']['ate_sim3_m']:.2f} m)")
    cloud = _last_cloud(out_bag)
    if cloud is not None:
        files["cloud"] = out / FILES["cloud"]
        write_ply(files["cloud"], *xyzrgb_cloud_arrays(cloud.data, cloud.point_step))

    say("evaluating the model offline (median-scaled depth, snippet ATE, baselines) ...")
    checkpoint = load_checkpoint(weights)
    inference = InferenceConfig(device=config.device)
    depth = DepthEstimator(checkpoint, inference)
    pose = PoseEstimator(checkpoint, inference) if checkpoint.pose_net is not None else None
    untrained = _untrained_estimator(checkpoint, inference)
    K = camera_input.camera.K if camera_input is not None else drive.K
    prior = flat_ground_depth(K, config.height, config.width, camera_height(drive))
    evaluation = evaluate_bag(
        drive_bag, out / "offline", EvaluationConfig(),
        depth_fn=lambda rgb: depth.estimate(rgb).depth,
        motion_fn=(lambda a, b: pose.estimate(a, b).T_a_b) if pose is not None else None,
        extra_depth_rows={
            "untrained network": lambda rgb: untrained.estimate(rgb).depth,
            "flat ground + constant depth prior": lambda rgb: prior,
        },
    )
    figures["offline"] = evaluation.figures
    files["json"] = out / FILES["json"]
    write_json(files["json"], figures)
    files["markdown"] = out / FILES["markdown"]
    write_text_atomic(files["markdown"], _markdown(figures, evaluation.files["markdown"].read_text()))
    return DemoResult(figures, files)


def camera_height(drive: SyntheticDrive) -> float:
    """The camera's height above the road in metres (the car's base_link is on the road)."""
    return float(drive.T_base_camera[2, 3])


def _untrained_estimator(checkpoint, inference: InferenceConfig) -> DepthEstimator:
    """The same architecture with seeded random weights: the 'no learning' baseline."""
    import torch

    from monodepth2_ros.model.checkpoint import LoadedCheckpoint
    from monodepth2_ros.model.networks import DepthNet

    torch.manual_seed(0)
    random = LoadedCheckpoint(info=checkpoint.info, depth_net=DepthNet(checkpoint.info.num_layers).eval(), pose_net=None, folder=checkpoint.folder)
    return DepthEstimator(random, inference)


def _markdown(figures: dict, offline_markdown: str) -> str:
    node_depth = figures["node_depth_metric"]
    node_odom = figures["node_odometry"]
    drive = figures["drive"]
    look = "randomised camera and looks" if drive["randomize"] else "the plain street"
    lens = ", a distorting lens (the nodes rectify)" if drive["lens_distortion"] else ""
    lines = [
        "# monodepth2_ros demo", "",
        f"Street seed {drive['seed']}, {drive['frames']} frames at {drive['size'][0]}x{drive['size'][1]}, {look}, "
        f"camera {drive['camera_height_m']:.2f} m above the road{lens}. Weights: `{figures['weights']}`.", "",
        "## What the nodes published (real DDS, metric, camera-height scale)", "",
    ]
    if node_depth.get("frames"):
        lines.append(
            f"- depth: {node_depth['frames']} frames, metric abs_rel {node_depth['abs_rel']:.3f}, "
            f"δ<1.25 {node_depth['a1']:.3f}, rmse {node_depth['rmse']:.2f} m"
        )
    if node_odom.get("frames", 0) >= 3:
        lines.append(
            f"- odometry: {node_odom['frames']} poses over {node_odom['distance_m']:.1f} m, ATE {node_odom['ate_se3_m']:.2f} m "
            f"(metric, rigid alignment), {node_odom['ate_sim3_m']:.2f} m after Sim(3) (scale x{node_odom['sim3_scale']:.2f})"
        )
    lines += ["", "## The model offline", "", offline_markdown.replace("# Evaluation", "").strip(), ""]
    return "\n".join(lines)


def run_demo(config: DemoConfig, say: Callable[[str], None] = _progress) -> DemoResult:
    """Everything, end to end. Replaces the demo files in ``config.out_dir`` (and nothing else)."""
    start = time.monotonic()
    weights = resolve_weights(config.weights)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("drive", "output", "offline", FILES["logs"]):
        shutil.rmtree(config.out_dir / name, ignore_errors=True)
    drive_bag, drive = render_drive(config, say)
    counts = run_nodes_on_bag(
        drive_bag, config.out_dir / FILES["output"], weights, config.device, config.play_rate, say, config.backend,
        camera_height(drive),
    )
    result = score(config, drive_bag, drive, config.out_dir / FILES["output"], weights, say)
    result.figures["topics"] = counts
    pairs = pair_figures(counts, config.frames)
    result.figures["node_odometry"].update(pairs)
    line = (
        f"- pose node: {pairs['adjacent_pairs_integrated']}/{pairs['adjacent_pairs']} adjacent frame pairs integrated "
        f"({pairs['pairs_integrated_pct']:.0f} %), {pairs['pairs_over_dropped_images']} across dropped images, "
        f"{pairs['pairs_run_in_batches']} run in batches"
    )
    markdown = result.files["markdown"].read_text().replace("\n\n## The model offline", f"\n{line}\n\n## The model offline", 1)
    write_text_atomic(result.files["markdown"], markdown)
    result.figures["wall_time_s"] = time.monotonic() - start
    write_json(result.files["json"], result.figures)
    result.files["drive"] = drive_bag
    result.files["output"] = config.out_dir / FILES["output"]
    result.files["logs"] = config.out_dir / FILES["logs"]
    return result
