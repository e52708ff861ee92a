"""``monodepth2 infer``: depth (and optionally motion) for image files and folders."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from monodepth2_ros.data.camera import CameraModel, load_camera_file, save_camera_yaml
from monodepth2_ros.data.folder_reader import IMAGE_SUFFIXES, read_image_file
from monodepth2_ros.data.paths import natural_key
from monodepth2_ros.errors import ConfigError, DatasetError, MissingInputError
from monodepth2_ros.evaluation.backend_selection import resolve_auto_config
from monodepth2_ros.evaluation.colorize import colorize_depth
from monodepth2_ros.evaluation.pose_io import Trajectory, write_tum_trajectory
from monodepth2_ros.evaluation.trajectory import integrate_relative
from monodepth2_ros.inference import DepthEstimator, InferenceConfig, PoseEstimator
from monodepth2_ros.inference.backends import ALL_PRECISIONS, BACKENDS
from monodepth2_ros.inference.camera_input import RECTIFY_MODES, CameraInput, rectification_wanted
from monodepth2_ros.inference.weights import resolve_weights
from monodepth2_ros.model.checkpoint import load_checkpoint

__all__ = ["register", "run", "collect_images", "InferOutputs"]

_LOG = logging.getLogger(__name__)

EXAMPLES = """examples:
  monodepth2 infer --weights models/mono+stereo_640x192 frame.png --out results
  monodepth2 infer drive/images --out results --post-process
  monodepth2 infer --pose --rate 10 drive/images --out results   (adds trajectory.txt)
  monodepth2 infer --calibration camera.yaml raw_images/ --out results   (rectified, adds camera_rect.yaml)
"""

POSE_AXISANGLE_FILE = "pose_axisangle.npy"
POSE_TRANSLATION_FILE = "pose_translation.npy"
TRAJECTORY_FILE = "trajectory.txt"
RECTIFIED_CAMERA_FILE = "camera_rect.yaml"
# An image of another size than the calibration is accepted when the aspect ratios agree this closely.
ASPECT_RATIO_TOLERANCE = 0.01


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "infer",
        help="predict depth for image files or folders",
        description=(
            "Predict depth for images. Per image STEM writes STEM_disp.npy (float32 sigmoid disparity at "
            "the network size), STEM_depth.npy (float32 depth in metres x scale, input size) and "
            "STEM_depth.png (colourised). With --pose also the pose network's outputs for consecutive "
            "pairs and a TUM trajectory."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--weights", default=None, help="checkpoint folder or a bundled model's name (default: the bundled default model)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--precision", default="fp32", choices=ALL_PRECISIONS, help="int8 needs --backend onnxruntime or openvino")
    parser.add_argument("--backend", default="eager", choices=BACKENDS, help="network runtime (default eager); auto: the fastest accurate one here, measured once and cached")
    parser.add_argument("--post-process", action="store_true", help="the paper's flip post-processing (2x cost)")
    parser.add_argument("--scale", type=float, default=None, help="metres per network unit (default from the checkpoint)")
    parser.add_argument("--pose", action="store_true", help="also run the pose network over consecutive inputs")
    parser.add_argument("--rate", type=float, default=10.0, help="frame rate for trajectory.txt stamps (Hz)")
    parser.add_argument("--colormap", default="magma", help="colour map of the depth PNGs")
    parser.add_argument(
        "--calibration", default=None,
        help="camera calibration of the images (camera_calibration YAML with D): they are rectified as the "
        "nodes and training do, and the depth is on the rectified grid (its camera in camera_rect.yaml)",
    )
    parser.add_argument(
        "--rectify", default="auto", choices=RECTIFY_MODES,
        help="with --calibration: auto rectifies when it has distortion (default), true always, false never",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    parser.set_defaults(func=run)


def collect_images(inputs: list[str]) -> list[Path]:
    """Image files named directly, and those inside named folders (natural order), in input order.

    Raises:
        MissingInputError: an input does not exist.
        ConfigError: two inputs share a file stem (their outputs would collide), or nothing to do.
    """
    files: list[Path] = []
    for entry in inputs:
        path = Path(entry).expanduser()
        if path.is_dir():
            for child in sorted(path.iterdir(), key=natural_key):
                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES:
                    files.append(child)
                elif child.is_file():
                    _LOG.warning("skipping %s: not an image file (%s)", child, ", ".join(IMAGE_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            raise MissingInputError(f"input not found: {path} (expected an image file or a folder of images)")
    if not files:
        raise ConfigError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(inputs)}")
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise ConfigError(f"{path} and {stems[path.stem]} share the name '{path.stem}'; outputs would collide")
        stems[path.stem] = path
    return files


@dataclass(frozen=True)
class InferOutputs:
    """The files ``infer`` writes for one image."""

    disparity: Path
    depth: Path
    depth_png: Path

    @classmethod
    def for_image(cls, out: Path, image: Path) -> InferOutputs:
        return cls(out / f"{image.stem}_disp.npy", out / f"{image.stem}_depth.npy", out / f"{image.stem}_depth.png")

    def paths(self) -> tuple[Path, ...]:
        return (self.disparity, self.depth, self.depth_png)


def _check_overwrite(paths: list[Path], force: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise ConfigError(
            f"{len(existing)} output file(s) already exist (e.g. {existing[0]}); use --force to overwrite"
        )


def _auto_configs(config: InferenceConfig, checkpoint, pose: bool) -> tuple[InferenceConfig, InferenceConfig]:
    """``--backend auto``: the pick for each network (measured once, then cached), said on stderr."""
    configs = []
    for network in ("depth", "pose") if pose else ("depth",):
        resolved, selection = resolve_auto_config(config, checkpoint, network)
        if selection is not None:
            print(selection.describe(), file=sys.stderr)
        configs.append(resolved)
    return configs[0], configs[-1]


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    images = collect_images(args.inputs)
    out = Path(args.out).expanduser()
    planned = [p for image in images for p in InferOutputs.for_image(out, image).paths()]
    if args.pose:
        planned += [out / POSE_AXISANGLE_FILE, out / POSE_TRANSLATION_FILE, out / TRAJECTORY_FILE]
    calibration = None
    if args.calibration is not None:
        calibration = load_camera_file(args.calibration)
        if rectification_wanted(args.rectify, calibration):
            planned.append(out / RECTIFIED_CAMERA_FILE)
    _check_overwrite(planned, args.force)
    camera_inputs: dict[tuple[int, int], CameraInput] = {}

    config = InferenceConfig(device=args.device, precision=args.precision, backend=args.backend, post_process=args.post_process, scale=args.scale)
    checkpoint = load_checkpoint(resolve_weights(args.weights), load_pose=True if args.pose else False)
    depth_config, pose_config = _auto_configs(config, checkpoint, args.pose)
    depth_estimator = DepthEstimator(checkpoint, depth_config)
    pose_estimator = PoseEstimator(checkpoint, pose_config) if args.pose else None
    out.mkdir(parents=True, exist_ok=True)

    axis_angles, translations, steps, used = [], [], [], []
    previous: np.ndarray | None = None
    for image_path in tqdm(images, desc="infer", unit="img", disable=None):
        try:
            rgb = read_image_file(image_path)
        except DatasetError as err:
            _LOG.warning("skipping %s", err)
            continue
        camera_input = None
        if calibration is not None:
            camera_input = _camera_input(camera_inputs, calibration, args.rectify, rgb.shape[:2], image_path)
            if camera_input.rectified and not (out / RECTIFIED_CAMERA_FILE).exists():
                save_camera_yaml(camera_input.camera, out / RECTIFIED_CAMERA_FILE, camera_name="rectified")
        prediction = depth_estimator.estimate(rgb, camera_input=camera_input)
        outputs = InferOutputs.for_image(out, image_path)
        np.save(outputs.disparity, prediction.disparity.astype(np.float32))
        np.save(outputs.depth, prediction.depth.astype(np.float32))
        colour = colorize_depth(prediction.depth, cmap=args.colormap)
        cv2.imwrite(str(outputs.depth_png), cv2.cvtColor(colour, cv2.COLOR_RGB2BGR))
        if pose_estimator is not None:
            if previous is not None:
                if previous.shape != rgb.shape:
                    raise DatasetError(f"{image_path} is {rgb.shape[1]}x{rgb.shape[0]}, unlike the previous image; --pose needs one camera")
                motion = pose_estimator.estimate(previous, rgb, camera_input=camera_input)
                axis_angles.append(motion.axis_angle)
                translations.append(motion.translation / pose_estimator.scale)
                steps.append(motion.T_a_b)
            previous = rgb
        used.append(image_path)

    if pose_estimator is not None:
        _write_pose_outputs(out, axis_angles, translations, steps, args.rate)
    print(f"wrote depth for {len(used)} image(s) to {out}")
    return 0


def _camera_input(
    cache: dict[tuple[int, int], CameraInput], calibration: CameraModel, mode: str, size: tuple[int, int], image: Path
) -> CameraInput:
    """The rectification of images of this size (maps built once per size)."""
    if size not in cache:
        height, width = size
        aspect = calibration.width / calibration.height
        if abs(width / height - aspect) > ASPECT_RATIO_TOLERANCE * aspect:
            raise DatasetError(
                f"{image} is {width}x{height} but the calibration is for {calibration.width}x{calibration.height} "
                "(another aspect ratio); expected the calibration of these images"
            )
        cache[size] = CameraInput(calibration, size, rectification_wanted(mode, calibration))
    return cache[size]


def _write_pose_outputs(out: Path, axis_angles, translations, steps, rate_hz: float) -> None:
    np.save(out / POSE_AXISANGLE_FILE, np.asarray(axis_angles, dtype=np.float32).reshape(-1, 3))
    np.save(out / POSE_TRANSLATION_FILE, np.asarray(translations, dtype=np.float32).reshape(-1, 3))
    poses = integrate_relative(np.asarray(steps, dtype=np.float64).reshape(-1, 4, 4))
    stamps = np.arange(len(poses), dtype=np.float64) / rate_hz
    write_tum_trajectory(out / TRAJECTORY_FILE, Trajectory(stamps, poses))
