"""The generalisation table of the default model: held-back synthetic drives of every family and a real bag.

    python -m monodepth2_ros.tools.generalisation_table --out gen_table               # the bundled model
    python -m monodepth2_ros.tools.generalisation_table --models runs/default/best default \\
        --data data/gen_eval --drives 2 --frames 20 --width 320 --height 96 --out gen_table

For every family it renders (once, then reuses from ``--data``) the held-back drives of
``synthetic/families.py`` (seeds ending in 9 of every family, and the never-trained ``yard`` family)
and measures, in one run, each model beside two priors that learn nothing:

* median-scaled abs_rel and δ<1.25 against a constant depth per frame (a flat depth map);
* 5-frame snippet ATE against a camera moving at constant speed along its optical axis.

The target of issue 14 is model / prior ≤ 0.5 for both; the table marks each ratio pass or fail. On the
real KITTI bag (``--kitti``, no ground truth) it measures the photometric reprojection error of every
``--kitti-every``-th frame with each model's own depth and pose (SSIM + L1, minimum over the two
neighbours, no auto-masking) beside the error of the unwarped neighbours, and writes a depth strip.

Output in ``--out``: ``generalisation.md``, ``generalisation.json``, ``kitti_depth_strip.png``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from monodepth2_ros.data.bag_reader import BagImageStream, resolve_bag_paths
from monodepth2_ros.errors import ConfigError, DatasetError
from monodepth2_ros.evaluation.baselines import constant_depth, constant_forward_steps
from monodepth2_ros.evaluation.colorize import colorize_depth, depth_range
from monodepth2_ros.evaluation.depth_metrics import DepthEvaluation
from monodepth2_ros.evaluation.ground_truth import (
    camera_poses_at,
    iter_gt_depth,
    match_by_stamp,
    read_odometry,
    read_static_transforms,
)
from monodepth2_ros.evaluation.photometric import reprojection_error_map, static_photometric_error
from monodepth2_ros.evaluation.report import markdown_table, write_bytes_atomic, write_json, write_text_atomic
from monodepth2_ros.evaluation.trajectory import invert_poses, relative_steps, snippet_ate
from monodepth2_ros.synthetic import SynthConfig, write_drive_bag
from monodepth2_ros.synthetic.bag import TOPIC_DEPTH, TOPIC_ODOM
from monodepth2_ros.synthetic.families import FAMILIES, HELD_OUT_FAMILY, held_out_drives, is_held_out

__all__ = [
    "TARGET_RATIO",
    "SNIPPET_LENGTH",
    "DEFAULT_KITTI_BAG",
    "EvalDrive",
    "DepthMotionModel",
    "CheckpointModel",
    "heldout_drive_path",
    "ensure_drive",
    "load_drive",
    "prepare_drives",
    "run_table",
    "evaluate_families",
    "evaluate_photometric",
    "depth_strip",
    "render_markdown",
    "main",
]

# Issue 14's target: a model's figure at most half the prior's.
TARGET_RATIO = 0.5
SNIPPET_LENGTH = 5
DEFAULT_KITTI_BAG = Path("..") / "shared" / "real" / "kitti07_f000-159"
CONSTANT_DEPTH = "constant depth"
CONSTANT_FORWARD = "constant forward motion"
STATIC = "no motion (unwarped neighbours)"
_STAMP_TOLERANCE_NS = 5_000_000


@dataclass(frozen=True)
class EvalDrive:
    """One rendered drive held in memory: images, ground truth and intrinsics."""

    name: str
    family: str
    seed: int
    rgb: np.ndarray  # (N, H, W, 3) uint8
    depth: np.ndarray  # (N, H, W) float32 metres, NaN invalid
    poses: np.ndarray  # (N, 4, 4) T_odom_camera
    K: np.ndarray  # (3, 3)


class DepthMotionModel(Protocol):
    """What the table evaluates: depth of one frame (any scale) and the motion between two."""

    name: str

    def depth(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (H, W) depth > 0 at the input size."""

    def motion(self, rgb_a: np.ndarray, rgb_b: np.ndarray) -> np.ndarray:
        """``T_a_b`` (4, 4): pose of camera b (later frame) in camera a, in the depth's units."""


class CheckpointModel:
    """A checkpoint folder's depth and pose networks as a :class:`DepthMotionModel`."""

    def __init__(self, folder: str | Path, name: str | None = None, device: str = "cpu") -> None:
        from monodepth2_ros.inference.estimators import DepthEstimator, InferenceConfig, PoseEstimator
        from monodepth2_ros.model.checkpoint import load_checkpoint

        self.folder = Path(folder)
        checkpoint = load_checkpoint(self.folder, load_pose=True)
        config = InferenceConfig(device=device)
        self._depth = DepthEstimator(checkpoint, config)
        self._pose = PoseEstimator(checkpoint, config)
        height, width = self._depth.network_size
        self.name = name or f"{_label(self.folder)} ({width}x{height})"

    def depth(self, rgb: np.ndarray) -> np.ndarray:
        return self._depth.estimate(rgb).depth

    def motion(self, rgb_a: np.ndarray, rgb_b: np.ndarray) -> np.ndarray:
        return self._pose.estimate(rgb_a, rgb_b).T_a_b


def _label(folder: Path) -> str:
    """``run/best`` for a run's checkpoint, else the folder's name."""
    if folder.name in ("best", "last", "previous") and folder.parent.name:
        return f"{folder.parent.name}/{folder.name}"
    return folder.name


# ---------------------------------------------------------------------------------------------- drives


def heldout_drive_path(data_dir: Path, family: str, seed: int, frames: int, width: int, height: int) -> Path:
    """Where a held-back drive is cached: the size and length are in the folder name, so no stale reuse."""
    return Path(data_dir) / f"heldout_{width}x{height}_{frames}f" / f"{family}_{seed:04d}"


def ensure_drive(path: Path, family: str, seed: int, frames: int, width: int, height: int,
                 device: str = "cpu") -> bool:
    """Render the drive into ``path`` unless it is there already; True when it was rendered now.

    The bag writer removes a partial bag on any error or interrupt, so an existing bag is complete.
    """
    if path.exists():
        return False
    config = SynthConfig(frames=frames, width=width, height=height, seed=seed, family=family, randomize=True,
                         device=device)
    write_drive_bag(config, path)
    return True


def load_drive(path: Path, family: str, seed: int) -> EvalDrive:
    """Frames, ground-truth depth and camera poses of a synthetic bag (the images as recorded)."""
    paths = resolve_bag_paths(path)
    stream = BagImageStream(paths, require_camera_info=True)
    frames = list(stream)
    matched = list(match_by_stamp(frames, iter_gt_depth(paths, TOPIC_DEPTH), key=lambda f: f.stamp_ns,
                                  tolerance_ns=_STAMP_TOLERANCE_NS))
    if len(matched) != len(frames) or len(frames) < SNIPPET_LENGTH:
        raise DatasetError(f"{path}: {len(frames)} frames, {len(matched)} with ground-truth depth; need every "
                           f"frame with depth and at least {SNIPPET_LENGTH} frames")
    track = read_odometry(paths, TOPIC_ODOM)
    T_base_camera = read_static_transforms(paths).lookup(track.child_frame_id, frames[0].frame_id)
    if T_base_camera is None:
        raise DatasetError(f"{path}: no static transform {track.child_frame_id} -> {frames[0].frame_id}")
    poses = camera_poses_at(track, [f.stamp_ns for f in frames], T_base_camera, _STAMP_TOLERANCE_NS)
    return EvalDrive(
        name=path.name, family=family, seed=seed,
        rgb=np.stack([np.asarray(f.rgb) for f, _ in matched]),
        depth=np.stack([d for _, d in matched]).astype(np.float32),
        poses=poses, K=np.asarray(frames[0].camera.K, dtype=np.float64),
    )


# ------------------------------------------------------------------------------------------ evaluation


def _ratio_row(value: float, prior: float) -> dict:
    ratio = value / prior if prior > 0 else float("inf")
    return {"value": value, "ratio": ratio, "pass": bool(ratio <= TARGET_RATIO)}


def evaluate_families(drives: Sequence[EvalDrive], models: Sequence[DepthMotionModel],
                      progress: Callable[[str], None] | None = None) -> dict:
    """Per family: depth metrics and snippet ATE of each model and of the two priors.

    Depth figures are the mean over all frames of the family's drives (the paper's per-frame mean);
    snippet ATE is the mean over all 5-frame snippets of the family's drives.
    """
    families: dict[str, dict] = {}
    for family in dict.fromkeys(d.family for d in drives):
        family_drives = [d for d in drives if d.family == family]
        names = [CONSTANT_DEPTH, *(m.name for m in models)]
        depth_evals = {name: DepthEvaluation() for name in names}
        snippet_errors: dict[str, list[np.ndarray]] = {name: [] for name in [CONSTANT_FORWARD, *(m.name for m in models)]}
        for drive in family_drives:
            if progress is not None:
                progress(f"{drive.name}: {len(drive.rgb)} frames")
            gt_steps = relative_steps(drive.poses)
            for gt, rgb in zip(drive.depth, drive.rgb):
                depth_evals[CONSTANT_DEPTH].add(gt, constant_depth(*gt.shape))
                for model in models:
                    depth_evals[model.name].add(gt, model.depth(rgb))
            snippet_errors[CONSTANT_FORWARD].append(
                snippet_ate(constant_forward_steps(len(gt_steps)), gt_steps, SNIPPET_LENGTH).errors)
            for model in models:
                steps = np.stack([model.motion(a, b) for a, b in zip(drive.rgb[:-1], drive.rgb[1:])])
                snippet_errors[model.name].append(snippet_ate(steps, gt_steps, SNIPPET_LENGTH).errors)
        depth = {name: e.summary().metrics for name, e in depth_evals.items()}
        ate = {name: float(np.mean(np.concatenate(errs))) for name, errs in snippet_errors.items()}
        prior_abs_rel, prior_ate = depth[CONSTANT_DEPTH].abs_rel, ate[CONSTANT_FORWARD]
        families[family] = {
            "role": "held-out family" if family == HELD_OUT_FAMILY else "held-back seeds",
            "drives": [d.name for d in family_drives],
            "frames": int(sum(len(d.rgb) for d in family_drives)),
            "snippets": int(sum(e.size for e in snippet_errors[CONSTANT_FORWARD])),
            "depth": {name: m.as_dict() for name, m in depth.items()},
            "snippet_ate": ate,
            "models": {
                m.name: {
                    "abs_rel": _ratio_row(depth[m.name].abs_rel, prior_abs_rel),
                    "snippet_ate": _ratio_row(ate[m.name], prior_ate),
                }
                for m in models
            },
        }
    return families


def _kitti_triplets(bag: Path, every: int, width: int, height: int):
    """(prev, target, next) RGB triplets resized to ``width x height`` and their K, every ``every``-th frame."""
    import cv2

    stream = BagImageStream(resolve_bag_paths(bag), require_camera_info=True)
    resized = [cv2.resize(np.asarray(f.rgb), (width, height), interpolation=cv2.INTER_AREA) for f in stream]
    if len(resized) < 3:
        raise DatasetError(f"{bag} has {len(resized)} frames; the photometric error needs at least 3")
    K = stream.camera.K_for_size(height, width)
    centres = range(every, len(resized) - 1, every) if len(resized) > every + 1 else [1]
    return [(resized[k - 1], resized[k], resized[k + 1], k) for k in centres], K


def evaluate_photometric(triplets, K: np.ndarray, models: Sequence[DepthMotionModel]) -> dict:
    """Mean photometric reprojection error over the triplets' targets per model, and of no motion.

    Each model warps both neighbours with its own target depth and relative poses; the per-pixel
    minimum over the two neighbours is averaged over the image, then over frames.
    """
    errors: dict[str, list[float]] = {STATIC: [], **{m.name: [] for m in models}}
    for prev, target, nxt, _ in triplets:
        errors[STATIC].append(float(static_photometric_error(target, [prev, nxt]).mean()))
        for model in models:
            T_prev_target = model.motion(prev, target)  # pose of the target in prev: maps target points into prev
            T_next_target = invert_poses(model.motion(target, nxt))
            error = reprojection_error_map(target, [prev, nxt], model.depth(target), [T_prev_target, T_next_target], K)
            errors[model.name].append(float(error.mean()))
    return {
        "frames": [int(t[3]) for t in triplets],
        "mean": {name: float(np.mean(v)) for name, v in errors.items()},
        "per_frame": errors,
    }


def depth_strip(triplets, models: Sequence[DepthMotionModel], columns: int = 4) -> np.ndarray:
    """(rows, cols) mosaic, RGB uint8: the input frames on top, each model's depth in a row below."""
    chosen = [triplets[round(i)] for i in np.linspace(0, len(triplets) - 1, min(columns, len(triplets)))]
    rows = [np.concatenate([t[1] for t in chosen], axis=1)]
    for model in models:
        cells = []
        for _, target, _, _ in chosen:
            depth = model.depth(target)
            vmin, vmax = depth_range(depth)
            cells.append(colorize_depth(depth, vmin, max(vmax, vmin)))
        rows.append(np.concatenate(cells, axis=1))
    gap = np.full((2, rows[0].shape[1], 3), 255, np.uint8)
    out = [rows[0]]
    for row in rows[1:]:
        out += [gap, row]
    return np.concatenate(out, axis=0)


# ------------------------------------------------------------------------------------------- reporting


def _mark(entry: dict) -> str:
    return f"{entry['value']:.3f} ({entry['ratio']:.2f}, {'pass' if entry['pass'] else 'fail'})"


def render_markdown(result: dict) -> str:
    """The table of issue 14: one row per family, each model's figure with its ratio to the prior."""
    models = result["models"]
    settings = result["settings"]
    parts = [
        "# Generalisation table",
        "",
        f"Held-back synthetic drives ({settings['drives']} in all, {settings['frames']} frames each, {settings['width']}x{settings['height']}, randomised): seeds ending in 9 "
        f"of every family, and the `{HELD_OUT_FAMILY}` family, never trained on (seeds "
        f"{', '.join(str(seed) for seed in sorted(set(settings['seeds'].values())))}). Cells: figure "
        f"(model / prior, target ≤ {TARGET_RATIO}).",
        "",
        "## Depth: median-scaled abs_rel (δ<1.25)",
        "",
    ]
    rows = []
    for family, fig in result["families"].items():
        row = {"family": f"{family} ({fig['role']}, {len(fig['drives'])} drives)",
               "prior": f"{fig['depth'][CONSTANT_DEPTH]['abs_rel']:.3f} ({fig['depth'][CONSTANT_DEPTH]['a1']:.2f})"}
        for name in models:
            row[name] = f"{_mark(fig['models'][name]['abs_rel'])}, δ {fig['depth'][name]['a1']:.2f}"
        rows.append(row)
    parts += [markdown_table(rows, ["family", "prior", *models], ["family", CONSTANT_DEPTH, *models]), ""]
    parts += [f"## Odometry: {SNIPPET_LENGTH}-frame snippet ATE (m)", ""]
    rows = []
    for family, fig in result["families"].items():
        row = {"family": f"{family} ({fig['role']}, {len(fig['drives'])} drives)", "prior": f"{fig['snippet_ate'][CONSTANT_FORWARD]:.4f}"}
        for name in models:
            entry = fig["models"][name]["snippet_ate"]
            row[name] = f"{entry['value']:.4f} ({entry['ratio']:.2f}, {'pass' if entry['pass'] else 'fail'})"
        rows.append(row)
    parts += [markdown_table(rows, ["family", "prior", *models], ["family", CONSTANT_FORWARD, *models]), ""]
    kitti = result.get("kitti")
    parts += ["## Real KITTI bag: photometric reprojection error of held-back frames", ""]
    if kitti is None:
        parts += [result.get("kitti_skipped", "skipped"), ""]
    else:
        parts += [
            f"`{kitti['bag']}`, every {kitti['every']}th frame ({len(kitti['frames'])} frames) at "
            f"{settings['width']}x{settings['height']}: 0.85 (1-SSIM)/2 + 0.15 L1, per-pixel minimum over the two "
            "neighbours warped with each model's own depth and pose, no auto-masking (lower is better).",
            "",
            markdown_table([{"method": name, "error": value} for name, value in kitti["mean"].items()],
                           ["method", "error"], ["method", "photometric error"], "{:.4f}"),
            f"Depth strip: `{kitti['strip']}` (top: input; below, one row per model: {', '.join(models)}).",
            "",
        ]
    parts += [f"Measured in {result['seconds']:.0f} s."]
    return "\n".join(parts) + "\n"


def prepare_drives(data_dir: Path, drives_per_family: int, frames: int, width: int, height: int,
                   families: Sequence[str] = FAMILIES, log: Callable[[str], None] = print,
                   first_seed: int = 0) -> list[EvalDrive]:
    """Render (once; later runs reuse ``data_dir``) and load the held-back drives of the chosen families.

    ``first_seed`` picks another set of held-back drives (20: seeds 29, 39, ... and yards 20, 21, ...),
    for a test set that no choice made on the first one has seen."""
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ConfigError(f"unknown families {unknown}; expected some of {', '.join(FAMILIES)}")
    if frames < SNIPPET_LENGTH:
        raise ConfigError(f"--frames {frames}: a {SNIPPET_LENGTH}-frame snippet needs at least {SNIPPET_LENGTH}")
    drives = []
    for family, seed in held_out_drives(drives_per_family, first_seed):
        if not is_held_out(family, seed):
            raise ConfigError(f"--first-seed {first_seed} draws {family} seed {seed}, which training may use; "
                              f"give a multiple of 10 (seeds ending in 9 are the held-back ones)")
        if family not in families:
            continue
        path = heldout_drive_path(data_dir, family, seed, frames, width, height)
        if ensure_drive(path, family, seed, frames, width, height):
            log(f"rendered {path}")
        drives.append(load_drive(path, family, seed))
    return drives


def run_table(models: Sequence[DepthMotionModel], drives: Sequence[EvalDrive], out_dir: Path,
              kitti_bag: Path | None = DEFAULT_KITTI_BAG, kitti_every: int = 10,
              log: Callable[[str], None] = print) -> dict:
    """Evaluate every model on the drives and the real bag; write the Markdown, the JSON and the strip.

    The real bag's frames are resized to the drives' size, so every figure is measured at one size.
    """
    start = time.perf_counter()
    if not drives:
        raise ConfigError("no held-back drive to evaluate")
    height, width = drives[0].rgb.shape[1:3]
    out_dir.mkdir(parents=True, exist_ok=True)
    families = list(dict.fromkeys(d.family for d in drives))
    result = {
        "settings": {"drives": len(drives), "frames": int(drives[0].rgb.shape[0]), "width": int(width), "height": int(height),
                     "families": families, "target_ratio": TARGET_RATIO, "snippet_length": SNIPPET_LENGTH,
                     "seeds": {d.name: d.seed for d in drives}},
        "models": [m.name for m in models],
        "checkpoints": {m.name: str(getattr(m, "folder", "")) for m in models},
        "families": evaluate_families(drives, models, progress=log),
    }
    if kitti_bag is None or not Path(kitti_bag).exists():
        result["kitti_skipped"] = f"KITTI bag {kitti_bag} not found: the real-image figures were skipped."
        log(result["kitti_skipped"])
    else:
        import cv2

        triplets, K = _kitti_triplets(Path(kitti_bag), kitti_every, width, height)
        result["kitti"] = {"bag": str(kitti_bag), "every": kitti_every, **evaluate_photometric(triplets, K, models)}
        strip = out_dir / "kitti_depth_strip.png"
        ok, png = cv2.imencode(".png", depth_strip(triplets, models)[..., ::-1])
        if not ok:
            raise DatasetError(f"could not encode {strip}")
        write_bytes_atomic(strip, png.tobytes())
        result["kitti"]["strip"] = strip.name
    result["seconds"] = time.perf_counter() - start
    write_json(out_dir / "generalisation.json", result)
    write_text_atomic(out_dir / "generalisation.md", render_markdown(result))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["default"],
                        help="checkpoint folders; 'default' is the bundled model (default %(default)s)")
    parser.add_argument("--data", type=Path, default=Path("data/gen_eval"),
                        help="where the held-back drives are rendered once and reused (default %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="folder for generalisation.md/.json and the strip")
    parser.add_argument("--drives", type=int, default=2, help="held-back drives per family (default %(default)s)")
    parser.add_argument("--frames", type=int, default=20, help="frames per drive (default %(default)s)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="another set of held-back drives: 20 gives seeds 29, 39 and yards 20, 21 (default %(default)s)")
    parser.add_argument("--width", type=int, default=256, help="image width of the drives and the KITTI frames")
    parser.add_argument("--height", type=int, default=192, help="image height of the drives and the KITTI frames")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--kitti", type=Path, default=DEFAULT_KITTI_BAG,
                        help="real bag without ground truth (default %(default)s; skipped with a message if missing)")
    parser.add_argument("--kitti-every", type=int, default=10, help="evaluate every Nth frame of the real bag")
    parser.add_argument("--device", default="cpu", help="torch device of the networks (default %(default)s)")
    args = parser.parse_args(argv)
    from monodepth2_ros.inference.weights import resolve_weights

    models = [CheckpointModel(resolve_weights(m), device=args.device) for m in args.models]
    if len({m.name for m in models}) != len(models):
        for index, model in enumerate(models):
            model.name = f"{index + 1}: {model.name}"
    drives = prepare_drives(args.data, args.drives, args.frames, args.width, args.height, args.families,
                            first_seed=args.first_seed)
    run_table(models, drives, args.out, args.kitti, args.kitti_every)
    print((args.out / "generalisation.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
