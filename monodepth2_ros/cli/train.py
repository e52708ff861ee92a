"""``monodepth2 train``: self-supervised training / fine-tuning on bags and image folders."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from monodepth2_ros.errors import MissingInputError
from monodepth2_ros.inference.device import PRECISIONS

__all__ = ["register", "run", "build_config"]

EXAMPLES = """examples:
  monodepth2 train --bag drive.mcap --out runs/drive --init models/mono_640x192
  monodepth2 train --bag day1/ day2.bag --images extra_frames/ --out runs/all --epochs 20
  monodepth2 train --bag drive.mcap --out runs/small --height 96 --width 320 --set loss.automask=false
  torchrun --nproc_per_node 2 -m monodepth2_ros.training --bag drive.mcap --out runs/ddp

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
    inputs.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (checkpoints, logs, cache)")
    inputs.add_argument(
        "--init",
        metavar="PATH",
        help="checkpoint folder to fine-tune from, or a torchvision ImageNet resnet*.pth file (never downloaded)",
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
    topics.add_argument("--odometry-topic", help="nav_msgs/Odometry: detect static frames by distance")
    common = parser.add_argument_group("common settings")
    common.add_argument("--epochs", type=int)
    common.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    common.add_argument("--batch-size", type=int, help="per process")
    common.add_argument("--lr", type=float)
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
        path = Path(args.init).expanduser()
        if not path.exists():
            raise MissingInputError(f"--init {path} does not exist (expected a checkpoint folder or a resnet*.pth file)")
        overrides["model.init" if path.is_dir() else "model.pretrained"] = str(path)
    if args.stereo == "stereo":  # stereo only: no temporal sources (a --set may still say otherwise)
        overrides["model.frame_ids"] = [0]
    overrides.update(parse_override(text) for text in args.set)  # --set last: it wins
    return apply_overrides(load_config(args.config), overrides)


def run(args: argparse.Namespace) -> int:
    from monodepth2_ros.training.trainer import train

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = build_config(args)
    result = train(config, args.out, show_progress=sys.stderr.isatty())
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
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
    if result.best is not None:
        print(f"best: {result.best['criterion']} {result.best['value']:.4f} at step {result.best['step']}")
    print(f"checkpoints: {Path(args.out) / 'last'} and {Path(args.out) / 'best'}")
    return 0
