"""The user's cache folder for things worth measuring or building once per machine (quantised
models, the ``auto`` backend's measurement)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["user_cache_dir"]

_APP = "monodepth2_ros"


def user_cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/monodepth2_ros/<parts>`` (default ``~/.cache/...``), created on demand."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(root, _APP, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
