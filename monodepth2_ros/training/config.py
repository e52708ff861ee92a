"""``TrainConfig``: every training setting, a frozen nested dataclass read from ``config/train.yaml``.

The YAML mirrors the dataclasses section by section. Loading is strict: an unknown key, a value of
the wrong type or an out-of-range value is a :class:`~monodepth2_ros.errors.ConfigError` naming the
key. Overrides are ``section.key=value`` strings whose value is parsed as YAML and checked against
the field's type (``optim.lr=2e-4``, ``model.frame_ids=[0,-1,1]``, ``data.image_topic=null``).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monodepth2_ros.errors import ConfigError, MissingInputError
from monodepth2_ros.model.constants import DEFAULT_HEIGHT, DEFAULT_WIDTH, NUM_SCALES
from monodepth2_ros.model.encoder import RESNET_SPECS
from monodepth2_ros.model.geometry import MAX_DEPTH, MIN_DEPTH
from monodepth2_ros.model.losses import REPROJECTION_MODES, SMOOTHNESS_WEIGHT, SSIM_WEIGHT, VELOCITY_WEIGHT

__all__ = [
    "POSE_MODES",
    "STEREO_MODES",
    "MULTISCALE_MODES",
    "COMPILE_MODES",
    "NETWORK_STRIDE",
    "DataConfig",
    "AugmentConfig",
    "ModelConfig",
    "LossConfig",
    "OptimConfig",
    "RuntimeConfig",
    "FinetuneConfig",
    "TrainConfig",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "apply_overrides",
    "parse_override",
    "save_config",
    "config_differences",
    "DEFAULT_CONFIG_FILE",
]

# pose network: a ResNet on the frame pair (paper), the depth encoder's features, or a small CNN.
POSE_MODES = ("separate", "shared", "posecnn")
# supervision: temporal neighbours only, plus the stereo partner, or the stereo partner only.
STEREO_MODES = ("mono", "mono+stereo", "stereo")
# where each scale's disparity is compared: upsampled to the input (paper) or at its own size.
MULTISCALE_MODES = ("full_resolution", "per_scale")
PRECISIONS = ("fp32", "bf16", "fp16")
# torch.compile: nothing, the loss function only, or the networks and the loss.
COMPILE_MODES = ("none", "loss", "all")
# Encoder downsampling: the network input must be a multiple of this.
NETWORK_STRIDE = 32

DEFAULT_CONFIG_FILE = Path(__file__).resolve().parents[2] / "config" / "train.yaml"


def _check(condition: bool, key: str, value: Any, expected: str) -> None:
    if not condition:
        raise ConfigError(f"{key} is {value!r}; expected {expected}")


@dataclass(frozen=True)
class DataConfig:
    """Inputs, topics, frame selection and the train/validation split."""

    bags: tuple[str, ...] = ()  # bag files / rosbag2 folders / folders of bags
    image_dirs: tuple[str, ...] = ()  # folders of images (with a calibration file)
    height: int = DEFAULT_HEIGHT  # network input height, pixels (multiple of 32)
    width: int = DEFAULT_WIDTH  # network input width, pixels (multiple of 32)
    image_topic: str | None = None  # None: the only colour image topic of each bag
    camera_info_topic: str | None = None  # None: the image topic's camera_info sibling
    right_image_topic: str | None = None  # stereo partner (mono+stereo / stereo modes)
    right_camera_info_topic: str | None = None  # None: the right topic's camera_info sibling
    depth_topic: str | None = None  # ground-truth depth for validation figures (e.g. abs_rel)
    odometry_topic: str | None = None  # nav_msgs/Odometry: static frames by distance, not pixels
    undistort: bool = True  # undistort images with their CameraInfo (a no-op for pinhole cameras)
    folder_rate_hz: float = 10.0  # frame rate of image folders without timestamped names
    stride: int = 1  # frames between a target and its neighbours (frame_ids are multiplied by it)
    max_gap_factor: float = 2.5  # a stamp gap above this times the median period splits a sequence
    static_threshold: float = 0.01  # mean |I_t - I_s| (0..1) below which a pair counts as static
    static_min_motion_m: float = 0.01  # with odometry: below this a pair is static (a 10 Hz handheld moves 2-3 cm)
    val_fraction: float = 0.1  # share of time blocks held out for validation
    split_block_s: float = 10.0  # length of the time blocks of the train/validation split
    stereo_max_offset_s: float = 0.01  # largest stamp offset of a left/right pair
    cache_dir: str | None = None  # decoded-frame cache; None: RUN_DIR/cache

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            _check(
                value >= NETWORK_STRIDE and value % NETWORK_STRIDE == 0,
                f"data.{name}",
                value,
                f"a positive multiple of {NETWORK_STRIDE}",
            )
        _check(self.stride >= 1, "data.stride", self.stride, "an integer >= 1")
        _check(self.max_gap_factor > 1.0, "data.max_gap_factor", self.max_gap_factor, "a number > 1")
        _check(self.static_threshold >= 0.0, "data.static_threshold", self.static_threshold, ">= 0")
        _check(self.static_min_motion_m >= 0.0, "data.static_min_motion_m", self.static_min_motion_m, ">= 0")
        _check(0.0 <= self.val_fraction < 1.0, "data.val_fraction", self.val_fraction, "0 <= x < 1")
        _check(self.split_block_s > 0.0, "data.split_block_s", self.split_block_s, "a positive duration (s)")
        _check(self.folder_rate_hz > 0.0, "data.folder_rate_hz", self.folder_rate_hz, "a positive rate (Hz)")
        _check(self.stereo_max_offset_s >= 0.0, "data.stereo_max_offset_s", self.stereo_max_offset_s, ">= 0")


@dataclass(frozen=True)
class AugmentConfig:
    """The paper's augmentation (Sec. 4.1): flips and colour jitter, each with probability 0.5."""

    flip_probability: float = 0.5
    jitter_probability: float = 0.5
    brightness: float = 0.2  # factor drawn from [1 - b, 1 + b]
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.1  # shift drawn from [-h, h] (fraction of the hue circle)

    def __post_init__(self) -> None:
        for name in ("flip_probability", "jitter_probability"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, f"augment.{name}", value, "a probability in [0, 1]")
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            _check(0.0 <= value < 1.0, f"augment.{name}", value, "0 <= x < 1")
        _check(0.0 <= self.hue <= 0.5, "augment.hue", self.hue, "0 <= x <= 0.5")


@dataclass(frozen=True)
class ModelConfig:
    """Networks and their initialisation."""

    num_layers: int = 18  # ResNet depth of the encoders (18 or 50 in the paper)
    pose: str = "separate"  # one of POSE_MODES
    frame_ids: tuple[int, ...] = (0, -1, 1)  # target first, then temporal source offsets
    stereo: str = "mono"  # one of STEREO_MODES
    pretrained: str | None = None  # torchvision ImageNet ResNet file (or a folder holding one)
    init: str | None = None  # official-format checkpoint folder to fine-tune from

    def __post_init__(self) -> None:
        _check(self.num_layers in RESNET_SPECS, "model.num_layers", self.num_layers, f"one of {sorted(RESNET_SPECS)}")
        _check(self.pose in POSE_MODES, "model.pose", self.pose, f"one of {list(POSE_MODES)}")
        _check(self.stereo in STEREO_MODES, "model.stereo", self.stereo, f"one of {list(STEREO_MODES)}")
        ids = self.frame_ids
        _check(len(ids) >= 1 and ids[0] == 0, "model.frame_ids", list(ids), "a list starting with 0")
        _check(len(set(ids)) == len(ids), "model.frame_ids", list(ids), "distinct offsets")
        if self.stereo == "stereo":
            _check(ids == (0,), "model.frame_ids", list(ids), "[0] with model.stereo 'stereo' (no temporal sources)")
        else:
            _check(len(ids) >= 2, "model.frame_ids", list(ids), "0 and at least one source offset, e.g. [0, -1, 1]")

    @property
    def source_offsets(self) -> tuple[int, ...]:
        """Temporal source frames relative to the target, in frames (before the data stride)."""
        return self.frame_ids[1:]

    @property
    def uses_stereo(self) -> bool:
        return self.stereo != "mono"

    @property
    def needs_pose(self) -> bool:
        return bool(self.source_offsets)


@dataclass(frozen=True)
class LossConfig:
    """Depth range and the loss switches of the paper's ablation (Table 2)."""

    scales: int = NUM_SCALES  # disparity scales in the loss (1..4)
    min_depth: float = MIN_DEPTH  # disparity -> depth range, network units
    max_depth: float = MAX_DEPTH
    ssim_weight: float = SSIM_WEIGHT
    use_ssim: bool = True  # False: plain L1 photometric error
    smoothness_weight: float = SMOOTHNESS_WEIGHT  # divided by 2**scale
    automask: bool = True
    reprojection: str = "min"  # one of REPROJECTION_MODES
    multiscale: str = "full_resolution"  # one of MULTISCALE_MODES
    # With an odometry topic: PackNet-SfM's weak velocity supervision, |‖t‖ - odometry distance|
    # per pair, which gives the pose network metres and keeps it from shrinking the motion (0: off).
    velocity_weight: float = VELOCITY_WEIGHT
    # With an odometry topic and the camera's mounting on /tf_static: the pose network's whole motion
    # against the odometry's (rotation angle in rad + translation L1 in m), opt-in (0: off). The
    # measured motion then decides the pose, and the photometric loss teaches depth alone.
    pose_weight: float = 0.0

    def __post_init__(self) -> None:
        _check(1 <= self.scales <= NUM_SCALES, "loss.scales", self.scales, f"1 .. {NUM_SCALES}")
        _check(self.velocity_weight >= 0.0, "loss.velocity_weight", self.velocity_weight, ">= 0")
        _check(self.pose_weight >= 0.0, "loss.pose_weight", self.pose_weight, ">= 0")
        _check(0.0 < self.min_depth < self.max_depth, "loss.min_depth", self.min_depth, "0 < min_depth < max_depth")
        _check(0.0 <= self.ssim_weight <= 1.0, "loss.ssim_weight", self.ssim_weight, "0 .. 1")
        _check(self.smoothness_weight >= 0.0, "loss.smoothness_weight", self.smoothness_weight, ">= 0")
        _check(
            self.reprojection in REPROJECTION_MODES,
            "loss.reprojection",
            self.reprojection,
            f"one of {list(REPROJECTION_MODES)}",
        )
        _check(
            self.multiscale in MULTISCALE_MODES, "loss.multiscale", self.multiscale, f"one of {list(MULTISCALE_MODES)}"
        )


@dataclass(frozen=True)
class OptimConfig:
    """Adam with one step decay of the learning rate (paper: 1e-4, x0.1 for the last 5 of 20 epochs)."""

    lr: float = 1e-4
    epochs: int = 20
    max_steps: int | None = None  # stop after this many optimiser steps (whatever the epoch)
    batch_size: int = 12  # per process
    lr_decay_fraction: float = 0.75  # decay after this share of the epochs (epoch 15 of 20)
    lr_decay_factor: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float | None = None  # max gradient norm; None: no clipping (the paper)

    def __post_init__(self) -> None:
        _check(self.lr > 0.0, "optim.lr", self.lr, "a positive learning rate")
        _check(self.epochs >= 1, "optim.epochs", self.epochs, "an integer >= 1")
        _check(self.max_steps is None or self.max_steps >= 1, "optim.max_steps", self.max_steps, "null or >= 1")
        _check(self.batch_size >= 1, "optim.batch_size", self.batch_size, "an integer >= 1")
        _check(0.0 < self.lr_decay_fraction <= 1.0, "optim.lr_decay_fraction", self.lr_decay_fraction, "0 < x <= 1")
        _check(0.0 < self.lr_decay_factor <= 1.0, "optim.lr_decay_factor", self.lr_decay_factor, "0 < x <= 1")
        _check(self.weight_decay >= 0.0, "optim.weight_decay", self.weight_decay, ">= 0")
        _check(self.grad_clip is None or self.grad_clip > 0, "optim.grad_clip", self.grad_clip, "null or > 0")

    @property
    def lr_decay_epoch(self) -> int:
        """The epoch (0-based) from which the decayed rate applies: 15 for 20 epochs."""
        return max(1, round(self.lr_decay_fraction * self.epochs))


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how fast: device, precision, loader, checkpoints, logging."""

    device: str = "auto"  # auto, cpu, cuda, cuda:N (under torchrun: each rank's local GPU)
    precision: str = "fp32"  # fp32, bf16 (CPU or CUDA), fp16 (CUDA, with a GradScaler)
    channels_last: bool = False
    compile: str = "none"  # torch.compile: none | loss (the loss's many small ops) | all (networks too)
    num_workers: int = 4  # DataLoader worker processes
    pin_memory: bool = True  # only used with CUDA
    seed: int = 0
    checkpoint_interval: int = 1000  # steps between checkpoints (plus one at each epoch end)
    log_interval: int = 50  # steps between scalar logs
    image_log_interval: int = 500  # steps between image logs (TensorBoard only)
    max_val_batches: int | None = None  # cap validation cost; None: the whole validation split
    max_minutes: float | None = None  # time budget of the run (wall clock); None: no limit

    def __post_init__(self) -> None:
        _check(
            self.max_minutes is None or self.max_minutes > 0.0, "runtime.max_minutes", self.max_minutes, "null or > 0"
        )
        _check(self.precision in PRECISIONS, "runtime.precision", self.precision, f"one of {list(PRECISIONS)}")
        _check(self.compile in COMPILE_MODES, "runtime.compile", self.compile, f"one of {list(COMPILE_MODES)}")
        _check(self.num_workers >= 0, "runtime.num_workers", self.num_workers, ">= 0")
        for name in ("checkpoint_interval", "log_interval", "image_log_interval"):
            value = getattr(self, name)
            _check(value >= 1, f"runtime.{name}", value, "an integer >= 1")
        _check(
            self.max_val_batches is None or self.max_val_batches >= 1,
            "runtime.max_val_batches",
            self.max_val_batches,
            "null or >= 1",
        )


@dataclass(frozen=True)
class FinetuneConfig:
    """Guards of a fine-tune from a checkpoint (``model.init``) against a silently degrading model.

    Validation on held-back time blocks scores each checkpoint by its photometric reprojection
    error plus ``consistency_weight`` times the disagreement of its depth between views, times
    ``1 + drift_weight * drift`` (how far its scale-free depth moved from the start model's: with
    little parallax the photometric error falls for changes that do not make depth better, so a
    departure from the start model has to be paid for). A checkpoint whose auto-mask share moved
    more than ``automask_tolerance`` from the start model's is not eligible for ``best/``. The
    start model is scored first and is ``best/`` until a fine-tuned checkpoint beats it, so a run
    never ends with a ``best/`` worse than its start by this score.
    """

    enabled: bool = True  # the guards below; false: plain training from the init checkpoint
    consistency_weight: float = 0.5  # weight of the depth consistency between views in the score
    drift_weight: float = 2.0  # the score is multiplied by 1 + this x the drift from the start model
    freeze_batchnorm: bool = True  # keep the start model's BatchNorm statistics (small batches, new domain)
    automask_tolerance: float = 0.2  # largest change of the auto-mask share from the start model's
    min_improvement: float = 0.002  # relative score improvement that counts as better
    patience: int = 3  # validations without improvement before stopping early (0: never)
    anchor_weight: float = 0.05  # pull of the scale-free log depth towards the start model's
    warmup_steps: int = 20  # linear learning-rate warm-up (fresh Adam moments on trained weights)

    def __post_init__(self) -> None:
        _check(self.consistency_weight >= 0.0, "finetune.consistency_weight", self.consistency_weight, ">= 0")
        _check(self.drift_weight >= 0.0, "finetune.drift_weight", self.drift_weight, ">= 0")
        _check(
            0.0 < self.automask_tolerance <= 1.0, "finetune.automask_tolerance", self.automask_tolerance, "0 < x <= 1"
        )
        _check(self.min_improvement >= 0.0, "finetune.min_improvement", self.min_improvement, ">= 0")
        _check(self.patience >= 0, "finetune.patience", self.patience, "an integer >= 0")
        _check(self.anchor_weight >= 0.0, "finetune.anchor_weight", self.anchor_weight, ">= 0")
        _check(self.warmup_steps >= 0, "finetune.warmup_steps", self.warmup_steps, "an integer >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run depends on; recorded as ``RUN_DIR/config.yaml``."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def __post_init__(self) -> None:
        if self.model.uses_stereo and self.data.right_image_topic is None:
            raise ConfigError(
                f"model.stereo is {self.model.stereo!r} but data.right_image_topic is not set; "
                "name the right camera's image topic (or use model.stereo 'mono')"
            )
        if self.model.uses_stereo and self.data.image_dirs:
            raise ConfigError("stereo training reads left/right topics from bags; data.image_dirs cannot be used")


# --------------------------------------------------------------------------------------------
# Loading, overriding, saving


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """``value`` (from YAML) as ``annotation``, or a ConfigError naming ``key``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key} is {value!r}; expected {_type_name(annotation)}")
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(annotation)
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            if item_type is str and isinstance(value, str):
                return (value,)
            raise ConfigError(f"{key} is {value!r}; expected a list of {_type_name(item_type)}")
        return tuple(_coerce(item, item_type, f"{key}[{i}]") for i, item in enumerate(value))
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads "2e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, Path):
            return str(value)
    else:  # pragma: no cover - a field type this loader does not know: a programming error
        raise TypeError(f"unsupported config field type {annotation!r} for {key}")
    raise ConfigError(f"{key} is {value!r} ({type(value).__name__}); expected {_type_name(annotation)}")


def _section_from_dict(cls: type, values: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{prefix} must be a mapping of keys to values, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [key for key in values if key not in names]
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}.{unknown[0]}'; valid keys of '{prefix}': {', '.join(names)}"
        )
    kwargs = {key: _coerce(value, hints[key], f"{prefix}.{key}") for key, value in values.items()}
    return cls(**kwargs)


def config_from_dict(values: Mapping[str, Any] | None) -> TrainConfig:
    """A :class:`TrainConfig` from a nested mapping; missing keys take their defaults.

    Raises:
        ConfigError: an unknown section or key, a wrong type or an invalid value.
    """
    values = dict(values or {})
    hints = typing.get_type_hints(TrainConfig)
    sections = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = [key for key in values if key not in sections]
    if unknown:
        raise ConfigError(f"unknown config section '{unknown[0]}'; valid sections: {', '.join(sections)}")
    return TrainConfig(
        **{name: _section_from_dict(hints[name], values[name] or {}, name) for name in sections if name in values}
    )


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def config_to_dict(config: TrainConfig) -> dict[str, dict[str, Any]]:
    """Nested plain dict (lists for tuples) that :func:`config_from_dict` reads back equal."""
    values: dict[str, dict[str, Any]] = {}
    for section in dataclasses.fields(config):
        part = getattr(config, section.name)
        values[section.name] = {f.name: _plain(getattr(part, f.name)) for f in dataclasses.fields(part)}
    return values


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> TrainConfig:
    """Read a YAML config (default: the package's ``config/train.yaml``), then apply overrides.

    Args:
        path: YAML file; None uses the defaults file when it exists, else the dataclass defaults.
        overrides: ``section.key=value`` strings, see :func:`apply_overrides`.
    Raises:
        MissingInputError: ``path`` does not exist.
        ConfigError: the file is not valid YAML or holds an invalid key or value.
    """
    if path is None:
        path = DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise MissingInputError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of sections, got {type(loaded).__name__}")
        values = loaded or {}
    try:
        config = config_from_dict(values)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    return apply_overrides(config, overrides)


def parse_override(text: str) -> tuple[str, Any]:
    """``"section.key=value"`` -> ``("section.key", value parsed as YAML)``.

    Raises:
        ConfigError: not of that form, or the value is not valid YAML.
    """
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ConfigError(f"override {text!r} is not of the form section.key=value (e.g. optim.lr=2e-4)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: the value is not valid YAML: {err}") from err
    return ".".join(parts), value


def apply_overrides(config: TrainConfig, overrides: Iterable[str] | Mapping[str, Any]) -> TrainConfig:
    """A copy of ``config`` with ``section.key=value`` overrides applied (typed, validated).

    ``overrides`` may also be a mapping ``{"section.key": value}`` of already-typed values.

    Raises:
        ConfigError: malformed text, an unknown key, a wrong type or an invalid value.
    """
    pairs = list(overrides.items()) if isinstance(overrides, Mapping) else [parse_override(t) for t in overrides]
    items: list[tuple[str, str, Any]] = []
    for key, value in pairs:
        section, _, name = key.partition(".")
        if not name:
            raise ConfigError(f"override key {key!r} is not of the form section.key")
        items.append((section, name, value))
    values = config_to_dict(config)
    for section, name, value in items:
        if section not in values:
            raise ConfigError(f"unknown config section '{section}'; valid sections: {', '.join(values)}")
        if name not in values[section]:
            raise ConfigError(
                f"unknown config key '{section}.{name}'; valid keys of '{section}': {', '.join(values[section])}"
            )
        values[section][name] = _plain(value)
    return config_from_dict(values)


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write ``config`` as YAML (atomically: a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        "# Recorded by monodepth2 train; read back on resume.\n"
        + yaml.safe_dump(config_to_dict(config), sort_keys=False, default_flow_style=None)
    )
    tmp.replace(path)
    return path


def config_differences(old: TrainConfig, new: TrainConfig, keys: Iterable[str] | None = None) -> list[str]:
    """``section.key`` names whose values differ (all keys, or only those listed)."""
    before, after = config_to_dict(old), config_to_dict(new)
    names = [f"{section}.{key}" for section in before for key in before[section]] if keys is None else list(keys)
    differing = []
    for name in names:
        section, _, key = name.partition(".")
        if before[section][key] != after[section][key]:
            differing.append(name)
    return differing
