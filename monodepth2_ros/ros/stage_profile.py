"""Where a node's time goes, per stage of its frame path: the last few hundred frames' wall times.

The depth node times decode, preprocess, network, upsample, colour map, cloud, serialisation,
publish and the robot outputs (scan, compressed images); ``monodepth2 bench`` prints the medians
beside the bare network, and the diagnostics show them. Plain Python (no ROS), thread-safe: the worker writes while the diagnostics timer reads.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

__all__ = ["DEPTH_STAGES", "StageProfile"]

# The depth node's stages, in the order a frame passes them.
DEPTH_STAGES = (
    "decode", "preprocess", "network", "upsample", "colour map", "cloud", "serialisation", "publish", "robot outputs"
)
_SAMPLES = 256
_MS_PER_S = 1e3


class StageProfile:
    """Per-stage wall times of the last ``samples`` frames that ran each stage.

    Args:
        stages: the stage names, in order (unknown names are refused, so a typo cannot hide time).
        samples: frames kept per stage.
    """

    def __init__(self, stages: Sequence[str], samples: int = _SAMPLES) -> None:
        self.stages = tuple(stages)
        self._lock = threading.Lock()
        self._times: dict[str, deque[float]] = {name: deque(maxlen=samples) for name in self.stages}
        self._frame: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        """Add ``seconds`` to ``stage`` for the current frame (a stage may run in several pieces)."""
        if stage not in self._times:
            raise KeyError(f"unknown stage {stage!r}; expected one of {', '.join(self.stages)}")
        self._frame[stage] = self._frame.get(stage, 0.0) + seconds

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as (part of) stage ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def end_frame(self) -> None:
        """Record the current frame's stage times (only the stages it ran) and start the next frame."""
        frame, self._frame = self._frame, {}
        with self._lock:
            for name, seconds in frame.items():
                self._times[name].append(seconds)

    def discard_frame(self) -> None:
        """Forget the current frame (rejected part-way: it would skew the stages it ran)."""
        self._frame = {}

    def p50_ms(self) -> dict[str, float | None]:
        """Median milliseconds per stage (None for a stage no recorded frame ran)."""
        with self._lock:
            return {
                name: (float(np.median(times)) * _MS_PER_S if times else None) for name, times in self._times.items()
            }

    def summary(self) -> str:
        """``decode 1.2, network 80.1, ...`` (ms, medians; stages not run are left out)."""
        return ", ".join(f"{name} {value:.1f}" for name, value in self.p50_ms().items() if value is not None)
