"""Counting, timing and reporting for the nodes: rates, latency percentiles, throttled warnings.

:class:`FrameStats` and :class:`ThrottledReporter` are plain Python (thread-safe, injectable clock) so
they are tested without ROS; :func:`diagnostic_status` turns a snapshot into the
``diagnostic_msgs/DiagnosticStatus`` the node publishes once a second.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "StatsSnapshot",
    "FrameStats",
    "ThrottledReporter",
    "diagnostic_status",
]

_RATE_WINDOW_S = 5.0
_LATENCY_SAMPLES = 256
_REPORT_PERIOD_S = 10.0
_MS_PER_S = 1000.0


@dataclass(frozen=True)
class StatsSnapshot:
    """Frame counters and recent timing of a node.

    Attributes:
        input_rate_hz, output_rate_hz: images received / frames published per second over the
            last few seconds.
        latency_p50_ms, latency_p95_ms: time from receiving an image to having published its
            outputs, over the last frames; NaN before the first output.
        received, published: totals since start.
        dropped: images replaced by a newer one before inference (the node was busy).
        rejected: images that could not be used (bad encoding, no CameraInfo, ...).
        skipped_idle: images ignored because no output had a subscriber.
        last_input_age_s: seconds since the last image; inf before the first.
    """

    input_rate_hz: float
    output_rate_hz: float
    latency_p50_ms: float
    latency_p95_ms: float
    received: int
    published: int
    dropped: int
    rejected: int
    skipped_idle: int
    last_input_age_s: float


class FrameStats:
    """Thread-safe counters and sliding windows; callbacks and the worker update it concurrently."""

    def __init__(
        self,
        rate_window_s: float = _RATE_WINDOW_S,
        latency_samples: int = _LATENCY_SAMPLES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = rate_window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._inputs: deque[float] = deque()
        self._outputs: deque[float] = deque()
        self._latencies: deque[float] = deque(maxlen=latency_samples)
        self._received = 0
        self._published = 0
        self._dropped = 0
        self._rejected = 0
        self._skipped_idle = 0
        self._last_input: float | None = None

    def _trim(self, times: deque[float], now: float) -> None:
        while times and times[0] < now - self._window:
            times.popleft()

    def image_received(self) -> None:
        with self._lock:
            now = self._clock()
            self._received += 1
            self._last_input = now
            self._inputs.append(now)
            self._trim(self._inputs, now)

    def frame_dropped(self) -> None:
        with self._lock:
            self._dropped += 1

    def frame_rejected(self) -> None:
        with self._lock:
            self._rejected += 1

    def frame_skipped_idle(self) -> None:
        with self._lock:
            self._skipped_idle += 1

    def frame_published(self, latency_s: float) -> None:
        with self._lock:
            now = self._clock()
            self._published += 1
            self._outputs.append(now)
            self._trim(self._outputs, now)
            self._latencies.append(latency_s)

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            now = self._clock()
            self._trim(self._inputs, now)
            self._trim(self._outputs, now)
            if self._latencies:
                p50, p95 = np.percentile(np.fromiter(self._latencies, dtype=np.float64), (50.0, 95.0)) * _MS_PER_S
            else:
                p50 = p95 = float("nan")
            return StatsSnapshot(
                input_rate_hz=len(self._inputs) / self._window,
                output_rate_hz=len(self._outputs) / self._window,
                latency_p50_ms=float(p50),
                latency_p95_ms=float(p95),
                received=self._received,
                published=self._published,
                dropped=self._dropped,
                rejected=self._rejected,
                skipped_idle=self._skipped_idle,
                last_input_age_s=float("inf") if self._last_input is None else now - self._last_input,
            )


class ThrottledReporter:
    """Logs each kind of problem at once, then at most once per period with a count of repeats.

    A camera that sends a bad encoding at 30 Hz produces one warning every ``period_s`` seconds,
    not 30 a second, while a *new* kind of problem is still reported immediately.

    Args:
        log: where messages go (e.g. ``node.get_logger().warning``).
        period_s: minimum time between two messages of the same kind.
    """

    def __init__(
        self, log: Callable[[str], None], period_s: float = _REPORT_PERIOD_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = log
        self._period = period_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._counts: dict[str, int] = {}

    def report(self, kind: str, message: str) -> bool:
        """Count one occurrence of ``kind``; log ``message`` unless one was logged recently.

        Returns:
            Whether the message was logged.
        """
        with self._lock:
            now = self._clock()
            self._counts[kind] = self._counts.get(kind, 0) + 1
            last = self._last.get(kind)
            if last is not None and now - last < self._period:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False
            repeats = self._suppressed.pop(kind, 0)
            self._last[kind] = now
        if repeats:
            message += f" ({repeats} more since the last report)"
        self._log(message)
        return True

    def counts(self) -> dict[str, int]:
        """Occurrences per kind since start."""
        with self._lock:
            return dict(self._counts)


def diagnostic_status(
    snapshot: StatsSnapshot,
    *,
    name: str,
    hardware_id: str,
    values: Mapping[str, str],
    warnings: Sequence[str] = (),
):
    """A ``diagnostic_msgs/DiagnosticStatus``: OK, or WARN listing ``warnings``; numbers as key/values."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    status = DiagnosticStatus()
    status.name = name
    status.hardware_id = hardware_id
    if warnings:
        status.level = DiagnosticStatus.WARN
        status.message = "; ".join(warnings)
    else:
        status.level = DiagnosticStatus.OK
        status.message = "ok"
    entries = {
        "input rate (Hz)": f"{snapshot.input_rate_hz:.2f}",
        "output rate (Hz)": f"{snapshot.output_rate_hz:.2f}",
        "latency p50 (ms)": f"{snapshot.latency_p50_ms:.1f}",
        "latency p95 (ms)": f"{snapshot.latency_p95_ms:.1f}",
        "images received": str(snapshot.received),
        "frames published": str(snapshot.published),
        "frames dropped (busy)": str(snapshot.dropped),
        "frames rejected (bad input)": str(snapshot.rejected),
        "frames skipped (no subscribers)": str(snapshot.skipped_idle),
        **values,
    }
    status.values = [KeyValue(key=key, value=value) for key, value in entries.items()]
    return status
