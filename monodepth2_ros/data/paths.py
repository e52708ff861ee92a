"""Small path helpers shared by the readers."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["natural_key"]

_DIGITS = re.compile(r"(\d+)")


def natural_key(path: Path) -> tuple[str | int, ...]:
    """Sort key reading digit runs as numbers, so ``frame_2`` sorts before ``frame_10``.

    Digit runs always sit at odd positions of the key, so keys of any two names compare.
    """
    return tuple(int(part) if i % 2 else part for i, part in enumerate(_DIGITS.split(path.name)))
