"""Render the training drives of the default model (``families.training_drives``), resuming where it stopped.

    python -m monodepth2_ros.tools.default_model_data --data data/default --drives 12 --frames 150 \\
        --width 256 --height 192 --jobs 2

Each drive goes to ``DATA/train_WxH_Nf/FAMILY_SEED`` (randomised, with sensor effects, as the held-back
drives of the generalisation table); a drive already there is kept, so an interrupted run resumes (the
bag writer removes a partial bag on any error or interrupt). Prints the bag folders, one a line, for
``monodepth2 train --bag``. Held-back drives (seeds ending in 9, the ``yard`` family) are never listed.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.synthetic.families import training_drives
from monodepth2_ros.tools.generalisation_table import ensure_drive

__all__ = ["training_drive_path", "render_training_drives", "main"]


def training_drive_path(data_dir: Path, family: str, seed: int, frames: int, width: int, height: int) -> Path:
    """Where a training drive lives: the size and length are in the folder name, so no stale reuse."""
    return Path(data_dir) / f"train_{width}x{height}_{frames}f" / f"{family}_{seed:04d}"


def _render(job: tuple[Path, str, int, int, int, int, str]) -> tuple[Path, bool]:
    import torch

    path, family, seed, frames, width, height, device = job
    torch.set_num_threads(1)  # one render per core is faster than threads sharing them
    return path, ensure_drive(path, family, seed, frames, width, height, device)


def render_training_drives(data_dir: Path, drives_per_family: int, frames: int, width: int, height: int,
                           jobs: int = 1, device: str = "cpu", log=print) -> list[Path]:
    """Render the missing training drives (``jobs`` processes) and return every drive's bag folder, in order."""
    if drives_per_family < 1 or frames < 3:
        raise ConfigError(f"need at least 1 drive per family and 3 frames, got {drives_per_family} and {frames}")
    todo = []
    for family, seed in training_drives(drives_per_family):
        todo.append((training_drive_path(data_dir, family, seed, frames, width, height), family, seed, frames,
                     width, height, device))
    missing = [job for job in todo if not job[0].exists()]
    log(f"{len(todo)} training drives, {len(todo) - len(missing)} already rendered, {len(missing)} to render")
    if missing:
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for path, _ in pool.map(_render, missing):
                    log(f"rendered {path}")
        else:
            for job in missing:
                path, _ = _render(job)
                log(f"rendered {path}")
    return [job[0] for job in todo]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="data folder (drives are added under it)")
    parser.add_argument("--drives", type=int, default=12, help="training drives per training family (default %(default)s)")
    parser.add_argument("--frames", type=int, default=150, help="frames per drive (default %(default)s)")
    parser.add_argument("--width", type=int, default=256, help="image width (default %(default)s)")
    parser.add_argument("--height", type=int, default=192, help="image height (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=1, help="render processes (one per free core)")
    parser.add_argument("--device", default="cpu", help="render device: cpu, cuda (default %(default)s)")
    args = parser.parse_args(argv)
    paths = render_training_drives(args.data, args.drives, args.frames, args.width, args.height, args.jobs,
                                   args.device, log=lambda line: print(line, file=sys.stderr))
    print("\n".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
