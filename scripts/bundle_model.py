"""Store a training run's checkpoint as the package's bundled model (fp16 tensors, official format).

    python scripts/bundle_model.py RUN_DIR/best monodepth2_ros/weights/synthetic_streets_320x96
    python scripts/bundle_model.py ROOMS_RUN/best DEST --pose-from ALL_RUN/best

--pose-from takes the pose network (pose_encoder.pth, pose.pth) from another run: the depth and pose
networks are separate files in the official format, and a later stage may improve one while it
costs the other. The nodes give the pose network the depth node's metric scale, so the two runs'
networks must agree on units: check with `monodepth2 demo --weights DEST` (the odometry's Sim(3)
scale near 1); an earlier families bundle failed that by 5x (see the families model's card). Each
run's settings are kept beside the tensors.
Loading converts the tensors back to float32; fp16 halves the size (ResNet-18 depth + pose: ~56 MB).
"""

import argparse
from pathlib import Path

import torch
import yaml

from monodepth2_ros.model.checkpoint import load_checkpoint, save_checkpoint


def _portable(value, repo: Path):
    """The run's settings without this machine's paths: relative to the repository, or the last two
    parts under ``...`` (the training drives' folder and name), so the card names what was used."""
    if isinstance(value, dict):
        return {key: _portable(item, repo) for key, item in value.items()}
    if isinstance(value, list):
        return [_portable(item, repo) for item in value]
    if isinstance(value, str) and value.startswith("/"):
        path = Path(value)
        try:
            return str(path.relative_to(repo))
        except ValueError:
            return str(Path("...", *path.parts[-2:]))
    return value


def _write_settings(checkpoint: Path, dest: Path) -> None:
    run_config = checkpoint.parent / "config.yaml"
    if run_config.is_file():
        settings = _portable(yaml.safe_load(run_config.read_text()), Path(__file__).resolve().parents[1])
        text = "# Recorded by monodepth2 train; machine paths made portable by scripts/bundle_model.py.\n"
        dest.write_text(text + yaml.safe_dump(settings, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="official-format checkpoint folder (e.g. RUN_DIR/best)")
    parser.add_argument("dest", type=Path, help="bundled model folder to (re)write")
    parser.add_argument("--pose-from", type=Path, help="checkpoint folder whose pose network is bundled instead")
    args = parser.parse_args()
    loaded = load_checkpoint(args.checkpoint, load_pose=True)
    pose_net = loaded.pose_net if args.pose_from is None else load_checkpoint(args.pose_from, load_pose=True).pose_net
    # The model card and plots beside the tensors survive the folder being replaced.
    kept = {p.name: p.read_bytes() for p in args.dest.glob("*") if p.is_file() and p.suffix != ".pth"} if args.dest.is_dir() else {}
    save_checkpoint(args.dest, loaded.depth_net, pose_net, loaded.info, dtype=torch.float16)
    kept.pop("pose_train_config.yaml", None)
    for name, data in kept.items():
        (args.dest / name).write_bytes(data)
    _write_settings(args.checkpoint, args.dest / "train_config.yaml")
    if args.pose_from is not None:
        _write_settings(args.pose_from, args.dest / "pose_train_config.yaml")
    print(f"{args.checkpoint} -> {args.dest} ({sum(p.stat().st_size for p in args.dest.iterdir()) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
