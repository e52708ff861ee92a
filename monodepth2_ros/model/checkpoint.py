"""The official Monodepth2 checkpoint folder format, read and written.

A release folder holds ``encoder.pth`` (the depth encoder's state plus ``height``, ``width`` and
``use_stereo``), ``depth.pth``, and for mono / mono+stereo models ``pose_encoder.pth`` and
``pose.pth``. The official decoders name their layers by list position (``decoder.7.conv.conv``,
``net.2``); our modules have readable names, and :data:`OFFICIAL_KEY_MAP` translates between the
two. The map is checked against the published manifest by the tests.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from monodepth2_ros.errors import CheckpointError, MissingInputError
from monodepth2_ros.model.constants import DEFAULT_HEIGHT, DEFAULT_WIDTH
from monodepth2_ros.model.encoder import RESNET_SPECS
from monodepth2_ros.model.networks import DepthNet, PoseNet

__all__ = [
    "CheckpointInfo",
    "LoadedCheckpoint",
    "DEPTH_ENCODER_FILE",
    "DEPTH_DECODER_FILE",
    "POSE_ENCODER_FILE",
    "POSE_DECODER_FILE",
    "to_official_keys",
    "from_official_keys",
    "strip_wrapper_prefixes",
    "load_checkpoint",
    "save_checkpoint",
    "atomic_torch_save",
    "read_state_dict",
    "infer_num_layers",
]

DEPTH_ENCODER_FILE = "encoder.pth"
DEPTH_DECODER_FILE = "depth.pth"
POSE_ENCODER_FILE = "pose_encoder.pth"
POSE_DECODER_FILE = "pose.pth"

# Permissions of written checkpoints (temporary files and folders start out private).
_FILE_MODE = 0o644
_FOLDER_MODE = 0o755

# The largest checkpoint file read (a ResNet-152 encoder is about 230 MB): a bigger one is not ours.
MAX_CHECKPOINT_BYTES = 2 * 2**30
# What torch.save writes first: a zip archive (torch >= 1.6) or a pickle (protocol 2, older releases).
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL = b"\x80"

# Non-tensor entries the official trainer stores in encoder.pth.
_INFO_KEYS = ("height", "width", "use_stereo")


def _decoder_key_pairs() -> list[tuple[str, str]]:
    """(ours, official) name prefixes for the depth and pose decoders."""
    pairs = []
    for stage in range(5):  # official decoder.0..9: (reduce, fuse) per stage, deepest first
        pairs.append((f"stages.{stage}.reduce.conv.", f"decoder.{2 * stage}.conv.conv."))
        pairs.append((f"stages.{stage}.fuse.conv.", f"decoder.{2 * stage + 1}.conv.conv."))
    for scale in range(4):  # official decoder.10..13: the disparity heads, scale 0 first
        pairs.append((f"disp_heads.{scale}.", f"decoder.{10 + scale}.conv."))
    return pairs


# Our parameter-name prefix -> the official one, per file.
OFFICIAL_KEY_MAP: dict[str, tuple[tuple[str, str], ...]] = {
    DEPTH_ENCODER_FILE: (("encoder.", "encoder."),),
    DEPTH_DECODER_FILE: tuple(_decoder_key_pairs()),
    POSE_ENCODER_FILE: (("encoder.", "encoder."),),
    POSE_DECODER_FILE: (
        ("squeeze.", "net.0."),
        ("conv1.", "net.1."),
        ("conv2.", "net.2."),
        ("head.", "net.3."),
    ),
}


def _rename(state: dict[str, torch.Tensor], pairs, reverse: bool) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state.items():
        for ours, official in pairs:
            old, new = (official, ours) if reverse else (ours, official)
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        renamed[key] = value
    return renamed


def to_official_keys(file_name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename one of our module state dicts to the official names of ``file_name``."""
    return _rename(state, OFFICIAL_KEY_MAP[file_name], reverse=False)


def from_official_keys(file_name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official state dict (of ``file_name``) to our module's names."""
    return _rename(state, OFFICIAL_KEY_MAP[file_name], reverse=True)


_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def strip_wrapper_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the prefixes DistributedDataParallel (``module.``) and torch.compile (``_orig_mod.``) add."""
    stripped = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key = key[len(prefix) :]
                    changed = True
        stripped[key] = value
    return stripped


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint folder says about its networks.

    Attributes:
        height, width: the network input size the model was trained at (pixels).
        use_stereo: trained with stereo pairs, so ``depth * STEREO_SCALE`` is metric.
        num_layers: ResNet depth of the depth encoder (read from the tensors).
        has_pose: the folder holds the pose network.
    """

    height: int = DEFAULT_HEIGHT
    width: int = DEFAULT_WIDTH
    use_stereo: bool = False
    num_layers: int = 18
    has_pose: bool = True


@dataclass
class LoadedCheckpoint:
    info: CheckpointInfo
    depth_net: DepthNet
    pose_net: PoseNet | None
    folder: Path


def _check_file_looks_like_a_checkpoint(path: Path) -> None:
    """Refuse, before torch reads it, a file too large for any network or not in a torch format."""
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"{path} is {size / 2**30:.1f} GiB; refused: a checkpoint file of these networks is at most a few "
            f"hundred MB (limit {MAX_CHECKPOINT_BYTES / 2**30:.0f} GiB)"
        )
    with path.open("rb") as handle:
        head = handle.read(len(_ZIP_MAGIC))
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_PROTOCOL)):
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (it starts with {head!r}; expected a torch.save zip "
            "archive or the older pickle format); it may be truncated, empty or another kind of file"
        )


def read_state_dict(path: Path) -> dict:
    """``torch.load`` of one checkpoint file, safely (``weights_only``), with errors naming the file."""
    if not path.is_file():
        raise MissingInputError(f"checkpoint file not found: {path}")
    _check_file_looks_like_a_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated zip, a pickle with code, a text file: many types
        raise CheckpointError(
            f"cannot read checkpoint file {path} ({type(err).__name__}: {str(err).splitlines()[0]}); "
            "it may be truncated or not a PyTorch state dict"
        ) from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, expected a state dict")
    return state


def infer_num_layers(state: dict[str, torch.Tensor], path: Path) -> int:
    """ResNet depth from an encoder state dict's block counts and block type."""
    counts = []
    for stage in range(1, 5):
        indices = {
            int(m.group(1))
            for key in state
            if (m := re.match(rf"encoder\.layer{stage}\.(\d+)\.", key)) is not None
        }
        counts.append(len(indices))
    bottleneck = any(key.endswith("conv3.weight") for key in state)
    for num_layers, spec in RESNET_SPECS.items():
        if tuple(counts) == spec.blocks_per_stage and (spec.block.expansion == 4) == bottleneck:
            return num_layers
    raise CheckpointError(
        f"{path} is not a ResNet encoder of a known depth (blocks per stage {counts}); "
        f"expected one of ResNet-{sorted(RESNET_SPECS)}"
    )


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Strict load whose error names the file, missing/unexpected keys and the first shape mismatch."""
    expected = module.state_dict()
    not_tensors = [f"{key} ({type(value).__name__})" for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"{path} does not fit the {type(module).__name__}: {len(not_tensors)} entries are not tensors "
            f"(first: {', '.join(not_tensors[:3])})"
        )
    wrong_dtype = next(
        (
            (key, state[key].dtype, tensor.dtype)
            for key, tensor in expected.items()
            if key in state and tensor.is_floating_point() and not state[key].is_floating_point()
        ),
        None,
    )
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    mismatch = next(
        (
            (key, tuple(state[key].shape), tuple(tensor.shape))
            for key, tensor in expected.items()
            if key in state and tuple(state[key].shape) != tuple(tensor.shape)
        ),
        None,
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (first: {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (first: {', '.join(unexpected[:3])})")
    if mismatch:
        key, found, wanted = mismatch
        problems.append(f"shape mismatch at {key}: file has {list(found)}, network expects {list(wanted)}")
    if wrong_dtype:
        key, found, wanted = wrong_dtype
        problems.append(f"dtype mismatch at {key}: file has {found}, network expects a floating type like {wanted}")
    if problems:
        raise CheckpointError(f"{path} does not fit the {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def _read_part(folder: Path, file_name: str) -> dict[str, torch.Tensor]:
    return from_official_keys(file_name, strip_wrapper_prefixes(read_state_dict(folder / file_name)))


def load_checkpoint(folder: str | Path, load_pose: bool | None = None) -> LoadedCheckpoint:
    """Load an official-format checkpoint folder onto the CPU, networks in eval mode.

    Args:
        folder: the folder with ``encoder.pth`` and ``depth.pth`` (and the pose files).
        load_pose: True requires the pose files, False skips them, None loads them when present.
    Raises:
        MissingInputError: the folder or a required file does not exist.
        CheckpointError: a file is unreadable or does not fit the networks.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(
            f"checkpoint folder not found: {folder} (expected a folder with {DEPTH_ENCODER_FILE} and "
            f"{DEPTH_DECODER_FILE}, e.g. from 'monodepth2 fetch-weights')"
        )
    encoder_state = _read_part(folder, DEPTH_ENCODER_FILE)
    info_values = {key: encoder_state.pop(key) for key in _INFO_KEYS if key in encoder_state}
    num_layers = infer_num_layers(encoder_state, folder / DEPTH_ENCODER_FILE)
    depth_net = DepthNet(num_layers)
    _load_into(depth_net.encoder, encoder_state, folder / DEPTH_ENCODER_FILE)
    _load_into(depth_net.decoder, _read_part(folder, DEPTH_DECODER_FILE), folder / DEPTH_DECODER_FILE)

    pose_present = (folder / POSE_ENCODER_FILE).exists() and (folder / POSE_DECODER_FILE).exists()
    pose_net = None
    if load_pose or (load_pose is None and pose_present):
        pose_encoder_state = _read_part(folder, POSE_ENCODER_FILE)
        pose_net = PoseNet(infer_num_layers(pose_encoder_state, folder / POSE_ENCODER_FILE))
        _load_into(pose_net.encoder, pose_encoder_state, folder / POSE_ENCODER_FILE)
        _load_into(pose_net.decoder, _read_part(folder, POSE_DECODER_FILE), folder / POSE_DECODER_FILE)
        pose_net.eval()

    info = CheckpointInfo(
        height=int(info_values.get("height", DEFAULT_HEIGHT)),
        width=int(info_values.get("width", DEFAULT_WIDTH)),
        use_stereo=bool(info_values.get("use_stereo", False)),
        num_layers=num_layers,
        has_pose=pose_net is not None,
    )
    return LoadedCheckpoint(info=info, depth_net=depth_net.eval(), pose_net=pose_net, folder=folder)


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, _FILE_MODE)  # mkstemp makes it private; a checkpoint is meant to be shared
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _cpu_state(module: nn.Module, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    state = strip_wrapper_prefixes(module.state_dict())
    return {
        key: (value.detach().to("cpu", dtype) if dtype is not None and value.is_floating_point() else value.detach().cpu())
        for key, value in state.items()
    }


def save_checkpoint(
    folder: str | Path,
    depth_net: nn.Module,
    pose_net: nn.Module | None,
    info: CheckpointInfo,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write an official-format checkpoint folder, replacing ``folder`` as a whole.

    Files are written into a sibling temporary folder that then takes ``folder``'s place, so a kill at
    any moment leaves either the old checkpoint or the new one, never a mix.

    Args:
        depth_net, pose_net: our networks (possibly wrapped by DDP / torch.compile).
        dtype: store floating tensors in this dtype (e.g. torch.float16 for a compact release);
            loading converts back to float32.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        os.chmod(staging, _FOLDER_MODE)
        depth = getattr(depth_net, "module", depth_net)
        encoder_state = to_official_keys(DEPTH_ENCODER_FILE, _cpu_state(depth.encoder, dtype))
        encoder_state.update(height=int(info.height), width=int(info.width), use_stereo=bool(info.use_stereo))
        atomic_torch_save(encoder_state, staging / DEPTH_ENCODER_FILE)
        atomic_torch_save(to_official_keys(DEPTH_DECODER_FILE, _cpu_state(depth.decoder, dtype)), staging / DEPTH_DECODER_FILE)
        if pose_net is not None:
            pose = getattr(pose_net, "module", pose_net)
            atomic_torch_save(to_official_keys(POSE_ENCODER_FILE, _cpu_state(pose.encoder, dtype)), staging / POSE_ENCODER_FILE)
            atomic_torch_save(to_official_keys(POSE_DECODER_FILE, _cpu_state(pose.decoder, dtype)), staging / POSE_DECODER_FILE)
        retired = None
        if folder.exists():
            retired = folder.parent / f".{folder.name}.old"
            if retired.exists():
                shutil.rmtree(retired)
            os.replace(folder, retired)
        os.replace(staging, folder)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder
