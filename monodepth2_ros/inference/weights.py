"""Where checkpoints come from: the bundled model, and the official releases fetched once by the user.

Nothing here runs at import time or when a network is built; only ``fetch_weights`` touches the net.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from monodepth2_ros.errors import CheckpointError, ConfigError, MissingInputError
from monodepth2_ros.model.checkpoint import DEPTH_DECODER_FILE, DEPTH_ENCODER_FILE

__all__ = [
    "ReleasedModel",
    "OFFICIAL_RELEASES",
    "BUNDLED_MODEL_NAME",
    "bundled_weights_dir",
    "bundled_model_names",
    "resolve_weights",
    "fetch_weights",
    "OFFICIAL_WEIGHTS_LICENSE_URL",
    "OFFICIAL_WEIGHTS_NOTICE",
    "ACCEPT_LICENSE_ENV",
    "license_accepted",
]

_RELEASE_BASE_URL = "https://storage.googleapis.com/niantic-lon-static/research/monodepth2/"


@dataclass(frozen=True)
class ReleasedModel:
    """One official Monodepth2 release archive: where it lives and its published MD5."""

    name: str
    md5: str

    @property
    def url(self) -> str:
        return _RELEASE_BASE_URL + self.name.replace("+", "%2B") + ".zip"


# The MD5 sums are those published with the official release.
OFFICIAL_RELEASES: dict[str, ReleasedModel] = {
    model.name: model
    for model in (
        ReleasedModel("mono_640x192", "a964b8356e08a02d009609d9e3928f7c"),
        ReleasedModel("stereo_640x192", "3dfb76bcff0786e4ec07ac00f658dd07"),
        ReleasedModel("mono+stereo_640x192", "c024d69012485ed05d7eaa9617a96b81"),
        ReleasedModel("mono_no_pt_640x192", "9c2f071e35027c895a4728358ffc913a"),
        ReleasedModel("stereo_no_pt_640x192", "41ec2de112905f85541ac33a854742d1"),
        ReleasedModel("mono+stereo_no_pt_640x192", "46c3b824f541d143a45c37df65fbab0a"),
        ReleasedModel("mono_1024x320", "0ab0766efdfeea89a0d9ea8ba90e1e63"),
        ReleasedModel("stereo_1024x320", "afc2f2126d70cf3fdf26b550898b501a"),
        ReleasedModel("mono+stereo_1024x320", "cdc5fc9b23513c07d5b19235d9ef08f7"),
    )
}

# The official weights are Niantic's, under the Monodepth2 licence (non-commercial use only). The
# notice summarises it; the full terms are at the URL. Downloading them needs the user's acceptance.
OFFICIAL_WEIGHTS_LICENSE_URL = "https://github.com/nianticlabs/monodepth2/blob/master/LICENSE"
ACCEPT_LICENSE_ENV = "MONODEPTH2_ACCEPT_LICENSE"
OFFICIAL_WEIGHTS_NOTICE = (
    "The official Monodepth2 weights are Niantic, Inc.'s work, licensed under the Monodepth2 licence,\n"
    "which allows non-commercial use only (research, evaluation, teaching); any commercial use needs\n"
    "a licence from Niantic. Neither this package's code (Apache-2.0) nor its bundled model is\n"
    f"covered by it. Full terms: {OFFICIAL_WEIGHTS_LICENSE_URL}"
)
_YES = ("1", "true", "yes", "on")

# The model trained by this project's own pipeline, shipped inside the package.
BUNDLED_MODEL_NAME = "synthetic_families_256x192"
_BUNDLED_ROOT = Path(__file__).resolve().parent.parent / "weights"

_NETWORK_TIMEOUT_S = 10.0
_CHUNK = 1 << 20


def bundled_model_names() -> list[str]:
    """The checkpoint folders shipped inside the package, by name (the default among them)."""
    if not _BUNDLED_ROOT.is_dir():
        return []
    return sorted(p.name for p in _BUNDLED_ROOT.iterdir() if (p / DEPTH_ENCODER_FILE).is_file())


def bundled_weights_dir(name: str = BUNDLED_MODEL_NAME) -> Path:
    """A bundled checkpoint folder (the default model unless named). Raises MissingInputError when this
    install has none."""
    folder = _BUNDLED_ROOT / name
    if not (folder / DEPTH_ENCODER_FILE).is_file():
        raise MissingInputError(
            f"no bundled model at {folder}; pass --weights DIR (a Monodepth2 checkpoint folder) or run "
            f"'monodepth2 fetch-weights mono+stereo_640x192 --dest DIR --accept-license' (non-commercial licence)"
        )
    return folder


def license_accepted(flag: bool, environ: Mapping[str, str] | None = None) -> bool:
    """The user accepted the official weights' licence: ``--accept-license`` or ``MONODEPTH2_ACCEPT_LICENSE=1``."""
    environ = os.environ if environ is None else environ
    return flag or environ.get(ACCEPT_LICENSE_ENV, "").strip().lower() in _YES


_DEFAULT_WORDS = ("", "bundled", "default")


def resolve_weights(weights: str | Path | None) -> Path:
    """A user's ``weights`` value -> a checkpoint folder: empty, ``bundled`` or ``default`` -> the default
    model; the name of another bundled model (``synthetic_streets_320x96``) -> that one; else a path."""
    text = "" if weights is None else str(weights).strip()
    if text in _DEFAULT_WORDS:
        return bundled_weights_dir()
    path = Path(text).expanduser()
    if not path.exists() and text in bundled_model_names():
        return bundled_weights_dir(text)
    return path


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # the release publishes MD5; used as a checksum, not for security
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, target: Path, progress: Callable[[int, int | None], None] | None) -> None:
    try:
        with urllib.request.urlopen(url, timeout=_NETWORK_TIMEOUT_S) as response, target.open("wb") as out:
            total = response.headers.get("Content-Length")
            total = int(total) if total else None
            done = 0
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except (urllib.error.URLError, socket.timeout, OSError) as err:
        reason = getattr(err, "reason", err)
        raise CheckpointError(
            f"cannot download {url}: {reason}. This machine may be offline; download the archive "
            "elsewhere and unzip it into a folder, then pass that folder as --weights"
        ) from err


def fetch_weights(
    name: str,
    dest: str | Path,
    force: bool = False,
    url: str | None = None,
    md5: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download an official release, verify its MD5 and unzip it into ``dest`` atomically.

    Args:
        name: a key of :data:`OFFICIAL_RELEASES`.
        dest: the folder the checkpoint files end up in (``dest/encoder.pth`` ...).
        force: replace an existing ``dest``.
        url, md5: override the release's address and checksum (mirrors, tests).
    Returns:
        ``dest``.
    Raises:
        ConfigError: unknown name, or ``dest`` exists and ``force`` is not set.
        CheckpointError: download failed, checksum mismatch, or not a checkpoint archive.
    """
    if name not in OFFICIAL_RELEASES and url is None:
        raise ConfigError(f"unknown model '{name}'; known: {', '.join(OFFICIAL_RELEASES)}")
    release = OFFICIAL_RELEASES.get(name)
    url = url or release.url
    md5 = md5 or (release.md5 if release else None)
    dest = Path(dest).expanduser()
    if dest.exists() and not force and (dest.is_file() or any(dest.iterdir())):
        raise ConfigError(f"{dest} already exists and is not empty; use --force to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        archive = staging / "archive.zip"
        _download(url, archive, progress)
        if md5 is not None and _md5(archive) != md5:
            raise CheckpointError(f"checksum mismatch for {url}: got MD5 {_md5(archive)}, expected {md5}")
        unpacked = staging / "unpacked"
        try:
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(unpacked)
        except zipfile.BadZipFile as err:
            raise CheckpointError(f"{url} is not a zip archive: {err}") from err
        found = sorted(unpacked.rglob(DEPTH_ENCODER_FILE))
        if not found or not (found[0].parent / DEPTH_DECODER_FILE).is_file():
            raise CheckpointError(f"{url} holds no {DEPTH_ENCODER_FILE} + {DEPTH_DECODER_FILE}")
        if dest.is_dir():
            shutil.rmtree(dest)
        elif dest.exists():
            dest.unlink()
        found[0].parent.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
