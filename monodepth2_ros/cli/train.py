"""``monodepth2 train``: self-supervised training / fine-tuning on bags and image folders."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from monodepth2_ros.errors import ConfigError, InsufficientDataError, MissingInputError
from monodepth2_ros.inference.device import PRECISIONS

__all__ = ["register", "run", "build_config"]

EXAMPLES = """examples:
  monodepth2 train --bag robot.mcap --init default --minutes 30
  monodepth2 train --bag drive.mcap --out runs/drive --init models/mono_640x192
  monodepth2 train --bag day1/ day2.bag --images extra_frames/ --out runs/all --epochs 20
  monodepth2 train --bag drive.mcap --out runs/small --height 96 --width 320 --set loss.automask=false
  torchrun --nproc_per_node 2 -m monodepth2_ros.training --bag drive.mcap --out runs/ddp

With --init CHECKPOINT (or --init default, the bundled model) every setting not given is chosen
from the data and printed (network size, frame stride, validation split, learning rate), the start
model is validated first and stays RUN_DIR/best until fine-tuning beats it on held-back frames, and
RUN_DIR/report holds the before/after figures and a depth strip.
Re-running the same command after an interruption resumes from RUN_DIR/last (or RUN_DIR/previous).
RUN_DIR/last and RUN_DIR/best are official-format checkpoint folders (--weights for the nodes).
"""

# flag destination -> config key; only flags the user gave override the config file.
_FLAG_KEYS = {
    "epochs": "optim.epochs",
    "max_steps": "optim.max_steps",
    "batch_size": "optim.batch_size",
    "lr": "optim.lr",
    "height": "data.height",
    "width": "data.width",
    "image_topic": "data.image_topic",
    "camera_info_topic": "data.camera_info_topic",
    "right_image_topic": "data.right_image_topic",
    "depth_topic": "data.depth_topic",
    "odometry_topic": "data.odometry_topic",
    "num_layers": "model.num_layers",
    "stereo": "model.stereo",
    "num_workers": "runtime.num_workers",
    "device": "runtime.device",
    "precision": "runtime.precision",
    "seed": "runtime.seed",
    "checkpoint_interval": "runtime.checkpoint_interval",
    "minutes": "runtime.max_minutes",
    "stride": "data.stride",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train or fine-tune on rosbags / image folders (e.g. monodepth2 train --bag b.mcap --out runs/x)",
        description=(
            "Train Monodepth2 with its self-supervised losses on frame triplets from bags (rosbag2 "
            "sqlite3/MCAP, ROS 1) and image folders. Settings come from config/train.yaml, --config, "
            "the flags below and --set section.key=value, in that order."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inputs = parser.add_argument_group("inputs and output")
    inputs.add_argument("--bag", nargs="+", action="extend", default=[], metavar="PATH", help="bag files or folders")
    inputs.add_argument("--images", nargs="+", action="extend", default=[], metavar="DIR", help="image folders")
    inputs.add_argument(
        "--out", metavar="RUN_DIR", help="run folder (checkpoints, logs, cache); default runs/<first input's name>"
    )
    inputs.add_argument(
        "--init",
        metavar="PATH",
        help="checkpoint folder to fine-tune from ('default': the bundled default model; a bundled model's name), or a torchvision ImageNet "
        "resnet*.pth file (never downloaded)",
    )
    inputs.add_argument("--config", metavar="FILE", help="YAML config (default: the package's config/train.yaml)")
    inputs.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key, e.g. optim.lr=2e-4"
    )
    topics = parser.add_argument_group("topics (default: the only colour image topic and its camera_info)")
    topics.add_argument("--image-topic")
    topics.add_argument("--camera-info-topic")
    topics.add_argument("--right-image-topic", help="stereo partner (with --stereo mono+stereo or stereo)")
    topics.add_argument("--depth-topic", help="ground-truth depth: validation reports abs_rel etc.")
    topics.add_argument(
        "--odometry-topic",
        help="nav_msgs/Odometry (wheels, VIO, GNSS): static frames by distance, and each pair's distance "
        "supervises the pose network (metric depth, no shrinking motion; loss.velocity_weight); with "
        "--set loss.pose_weight=1 and the camera's mount on /tf_static, the whole measured camera motion does",
    )
    common = parser.add_argument_group("common settings")
    common.add_argument("--minutes", type=float, help="time budget: stop cleanly (best/ written) after this long")
    common.add_argument("--epochs", type=int)
    common.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    common.add_argument("--batch-size", type=int, help="per process")
    common.add_argument("--lr", type=float)
    common.add_argument("--stride", type=int, help="frames between a target and its neighbours")
    common.add_argument("--height", type=int, help="network input height (multiple of 32)")
    common.add_argument("--width", type=int, help="network input width (multiple of 32)")
    common.add_argument("--num-layers", type=int, choices=(18, 34, 50, 101, 152))
    common.add_argument("--stereo", choices=("mono", "mono+stereo", "stereo"))
    common.add_argument("--num-workers", type=int, help="DataLoader worker processes")
    common.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    common.add_argument("--precision", choices=PRECISIONS)
    common.add_argument(
        "--compile",
        nargs="?",
        const="loss",
        choices=("none", "loss", "all"),
        help="torch.compile the loss (--compile, the faster choice on CPUs) or the networks too (--compile all)",
    )
    common.add_argument("--channels-last", action="store_true", default=None, help="channels-last memory format")
    common.add_argument("--seed", type=int)
    common.add_argument("--checkpoint-interval", type=int, help="steps between checkpoints")
    parser.set_defaults(func=run)


def _init_path(value: str) -> Path:
    from monodepth2_ros.inference.weights import resolve_weights

    return resolve_weights(value)


def explicit_keys(args: argparse.Namespace) -> set[str]:
    """``section.key`` names the user set (flags, --set, the --config file): auto-choices leave them."""
    from monodepth2_ros.training.config import parse_override

    keys = {key for name, key in _FLAG_KEYS.items() if getattr(args, name, None) is not None}
    keys.update(parse_override(text)[0] for text in args.set)
    if args.config is not None and Path(args.config).is_file():
        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        if isinstance(loaded, dict):
            keys.update(
                f"{section}.{key}" for section, values in loaded.items() if isinstance(values, dict) for key in values
            )
    return keys


def default_run_dir(args: argparse.Namespace) -> Path:
    """``runs/<name of the first bag or image folder>``."""
    first = (args.bag or args.images or ["run"])[0]
    name = Path(first).name
    for suffix in (".mcap", ".db3", ".bag"):
        name = name.removesuffix(suffix)
    return Path("runs") / (name or "run")


def build_config(args: argparse.Namespace):
    """The :class:`~monodepth2_ros.training.config.TrainConfig` the arguments describe.

    Raises:
        MissingInputError: the config file or the --init path does not exist.
        ConfigError: an invalid key or value.
    """
    from monodepth2_ros.training.config import apply_overrides, load_config, parse_override

    overrides: dict[str, Any] = {
        key: getattr(args, name) for name, key in _FLAG_KEYS.items() if getattr(args, name, None) is not None
    }
    if args.bag:
        overrides["data.bags"] = list(args.bag)
    if args.images:
        overrides["data.image_dirs"] = list(args.images)
    if args.compile is not None:
        overrides["runtime.compile"] = args.compile
    if args.channels_last:
        overrides["runtime.channels_last"] = True
    if args.init is not None:
        path = _init_path(args.init)
        if not path.exists():
            raise MissingInputError(f"--init {path} does not exist (expected a checkpoint folder or a resnet*.pth file)")
        overrides["model.init" if path.is_dir() else "model.pretrained"] = str(path)
    if args.stereo == "stereo":  # stereo only: no temporal sources (a --set may still say otherwise)
        overrides["model.frame_ids"] = [0]
    overrides.update(parse_override(text) for text in args.set)  # --set last: it wins
    return apply_overrides(load_config(args.config), overrides)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = build_config(args)
    run_dir = Path(args.out) if args.out else default_run_dir(args)
    created = not run_dir.exists()
    try:
        if config.model.init is not None and config.finetune.enabled:
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                raise ConfigError(
                    "a guarded fine-tune (--init CHECKPOINT) runs in one process; start it without torchrun, "
                    "or train from the checkpoint without the guards: --set finetune.enabled=false"
                )
            return _finetune(args, config, run_dir, started)
        return _train(config, run_dir)
    except InsufficientDataError:
        # Nothing half-written: a run folder this command created goes again (a resumed one stays).
        if created and run_dir.exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _finetune(args: argparse.Namespace, config, run_dir: Path, started: float) -> int:
    from monodepth2_ros.training.finetune import finetune
    from monodepth2_ros.training.finetune_plan import plan_finetune

    cache_root = Path(config.data.cache_dir) if config.data.cache_dir is not None else run_dir / "cache"
    config, plan = plan_finetune(config, explicit_keys(args), cache_root)
    print(f"fine-tuning {config.model.init} into {run_dir}")
    for reason in plan.reasons:
        print(f"  chose {reason}")
    result = finetune(config, run_dir, show_progress=sys.stderr.isatty(), started=started)
    _print_summary(result.train, run_dir)
    report = result.report
    print(
        f"held-back frames ({report.frames}): photometric error start model {report.start.photometric:.4f}, "
        f"fine-tuned {report.best.photometric:.4f} ({100 * report.photometric_change:+.1f}%)"
    )
    if report.depth is not None:
        print(
            f"held-back frames with ground truth ({report.depth['frames']}): median-scaled abs_rel start model "
            f"{report.depth['start_model']['abs_rel']:.4f}, fine-tuned {report.depth['fine_tuned']['abs_rel']:.4f} "
            f"({100 * report.abs_rel_change:+.1f}%)"
        )
    if report.best_is_start:
        print("fine-tuning did not beat the start model on held-back frames: best/ holds the start model")
        if report.last is not None and result.train.steps > 0:
            last_depth = (report.depth or {}).get("last_checkpoint")
            abs_rel = f", abs_rel {last_depth['abs_rel']:.4f}" if last_depth else ""
            print(
                f"  (last/ after {result.train.steps} steps: photometric {report.last.photometric:.4f}, depth "
                f"consistency {report.last.consistency:.4f}, drift from the start model {report.last.drift:.4f}{abs_rel})"
            )
    print(f"report: {report.folder / 'report.json'} and {report.folder / 'depth_strip.png'}")
    return 0


def _train(config, run_dir: Path) -> int:
    from monodepth2_ros.training.finetune_plan import check_cameras
    from monodepth2_ros.training.trainer import train

    if os.environ.get("RANK", "0") == "0":
        check_cameras(config)
    result = train(config, run_dir, show_progress=sys.stderr.isatty())
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    _print_summary(result, run_dir)
    return 0


def _print_summary(result, run_dir: Path) -> None:
    counts = result.counts
    print(
        f"data: {counts.frames} frames ({counts.skipped_frames} unreadable), {counts.static} static samples "
        f"removed, {counts.train} train / {counts.val} val samples"
    )
    resumed = f", resumed from step {result.resumed_from_step}" if result.resumed_from_step is not None else ""
    print(
        f"trained {result.steps} steps ({result.epochs_completed} epochs{resumed}), last loss {result.last_loss:.4f}, "
        f"{result.skipped_steps} steps skipped for NaN/Inf"
    )
    if result.stop_reason is not None:
        print(f"stopped: {result.stop_reason}")
    if result.best is not None:
        print(f"best: {result.best['criterion']} {result.best['value']:.4f} at step {result.best['step']}")
        if result.best["criterion"] == "train_loss":
            print(
                "  no held-back validation samples: best/ follows the training loss, which can fall while depth "
                "gets worse; raise data.val_fraction or lower data.split_block_s (--set)"
            )
    print(f"checkpoints: {run_dir / 'last'} and {run_dir / 'best'}")
