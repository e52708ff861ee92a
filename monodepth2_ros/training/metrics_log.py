"""Training logs: always JSON lines in ``RUN_DIR/metrics.jsonl``, plus TensorBoard when installed."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["MetricsLogger", "tensorboard_available"]

_LOG = logging.getLogger(__name__)


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` imports (it needs the separate tensorboard package)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Inf
    return value


class MetricsLogger:
    """Writes one JSON object per record; mirrors scalars and images to TensorBoard when present.

    Every record carries ``kind`` (``train``, ``val``, ``data``, ``checkpoint``, ``resume``,
    ``skipped_step``, ...), ``step`` and the wall-clock ``time``. Only rank 0 should own one;
    ``enabled=False`` makes every call a no-op (the other ranks).
    """

    def __init__(self, path: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._file = None
        self._writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        if tensorboard and tensorboard_available():
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.path.parent / "tensorboard"))

    @property
    def has_tensorboard(self) -> bool:
        return self._writer is not None

    def record(self, kind: str, step: int, **values: Any) -> None:
        """Append one JSON line (and, for numbers, TensorBoard scalars named ``kind/name``)."""
        if self._file is None:
            return
        line = {"kind": kind, "step": int(step), "time": round(time.time(), 3)}
        line.update({key: _json_value(value) for key, value in values.items()})
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(f"{kind}/{key}", value, step)

    def images(self, step: int, images: dict[str, torch.Tensor]) -> None:
        """TensorBoard images (each (3, H, W) or (1, H, W), uint8 or float in [0, 1]); nothing without TensorBoard."""
        if self._writer is None:
            return
        for name, image in images.items():
            image = image.detach().cpu()
            image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
            self._writer.add_image(name, image.clamp(0, 1), step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
