"""Store a training run's checkpoint as the package's bundled model (fp16 tensors, official format).

    python scripts/bundle_model.py RUN_DIR/best monodepth2_ros/weights/synthetic_streets_320x96

Loading converts the tensors back to float32; fp16 halves the size (ResNet-18 depth + pose: ~56 MB).
"""

import argparse
import shutil
from pathlib import Path

import torch

from monodepth2_ros.model.checkpoint import load_checkpoint, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="official-format checkpoint folder (e.g. RUN_DIR/best)")
    parser.add_argument("dest", type=Path, help="bundled model folder to (re)write")
    args = parser.parse_args()
    loaded = load_checkpoint(args.checkpoint, load_pose=True)
    # The model card and plots beside the tensors survive the folder being replaced.
    kept = {p.name: p.read_bytes() for p in args.dest.glob("*") if p.is_file() and p.suffix != ".pth"} if args.dest.is_dir() else {}
    save_checkpoint(args.dest, loaded.depth_net, loaded.pose_net, loaded.info, dtype=torch.float16)
    for name, data in kept.items():
        (args.dest / name).write_bytes(data)
    run_config = args.checkpoint.parent / "config.yaml"
    if run_config.is_file():
        shutil.copy(run_config, args.dest / "train_config.yaml")
    print(f"{args.checkpoint} -> {args.dest} ({sum(p.stat().st_size for p in args.dest.iterdir()) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
