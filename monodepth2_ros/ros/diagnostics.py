"""Counting, timing and reporting for the nodes: rates, latency percentiles, transport loss, throttled warnings.

:class:`FrameStats`, :class:`TransportLoss` and :class:`ThrottledReporter` are plain Python
(thread-safe, injectable clock) so they are tested without ROS; :func:`diagnostic_status` turns a snapshot into the
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
    "TransportLoss",
    "ThrottledReporter",
    "diagnostic_status",
]

_RATE_WINDOW_S = 5.0
_LATENCY_SAMPLES = 256
_REPORT_PERIOD_S = 10.0
_MS_PER_S = 1000.0
# Stamp intervals the publisher's period is the median of.
_PERIOD_SAMPLES = 64
# Intervals needed before gaps are judged.
_MIN_PERIOD_SAMPLES = 4
# A gap of this many periods or more holds lost frames (1.5: one frame missing between two).
_GAP_PERIODS = 1.5
# A longer silence, in periods, is the publisher pausing (a stopped camera, a restarted bag), not loss.
_PAUSE_PERIODS = 100
_NS_PER_S = 1e9


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
        lost_in_transport: frames the publisher sent that never arrived (see :class:`TransportLoss`);
            unlike ``dropped`` and ``skipped_idle`` the node never had them.
        transport_loss_rate_hz: of those, per second over the last few seconds.
        transport_loss_percent: lost / (lost + received) over the last few seconds.
        input_period_ms: the publisher's period from the image stamps (median); NaN until known.
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
    lost_in_transport: int = 0
    transport_loss_rate_hz: float = 0.0
    transport_loss_percent: float = 0.0
    input_period_ms: float = float("nan")


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
        self.transport = TransportLoss(rate_window_s, clock)

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
            received_recently = len(self._inputs)
            lost, lost_recently, period_s = self.transport.counts()
            lost_percent = 100.0 * lost_recently / (lost_recently + received_recently) if lost_recently else 0.0
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
                lost_in_transport=lost,
                transport_loss_rate_hz=lost_recently / self._window,
                transport_loss_percent=lost_percent,
                input_period_ms=period_s * _MS_PER_S,
            )


class TransportLoss:
    """Frames that never arrived, told apart from the ones the node skipped on purpose.

    Two witnesses, each counting what the other can miss; the larger count is the loss:

    * the stamps: the publisher's period is the median interval between consecutive image stamps,
      and a gap of ``n`` periods between two arriving frames held ``n - 1`` that did not arrive
      (works with every middleware, but needs most frames to arrive to know the period);
    * the middleware: DDS readers report samples they know they missed (Fast DDS: every frame a
      best-effort reader lost a fragment of), through the subscription's message-lost event.

    Gaps of :data:`_PAUSE_PERIODS` periods or more count as the publisher pausing, and a stamp going
    backwards (a bag replayed again) restarts the cadence.

    Args:
        window_s: the window of the recent loss rate.
        clock: seconds, monotonic (injectable for tests).
    """

    def __init__(self, window_s: float = _RATE_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._intervals: deque[int] = deque(maxlen=_PERIOD_SAMPLES)
        self._last_stamp: int | None = None
        self._by_stamps = 0
        self._by_middleware = 0
        self._middleware_before = 0
        self._counted = 0
        self._recent: deque[tuple[float, int]] = deque()

    def stamp_received(self, stamp_ns: int) -> int:
        """Note the stamp of an arriving frame. Returns the frames found missing before it."""
        with self._lock:
            last, self._last_stamp = self._last_stamp, stamp_ns
            if last is None or stamp_ns <= last:
                if last is not None and stamp_ns < last:
                    self._intervals.clear()
                return 0
            interval = stamp_ns - last
            period = self._period_ns()
            if period is None:
                self._intervals.append(interval)
                return 0
            periods = interval / period
            if periods >= _PAUSE_PERIODS:
                return 0
            self._intervals.append(interval)
            if periods < _GAP_PERIODS:
                return 0
            missing = int(round(periods)) - 1
            self._by_stamps += missing
            self._update()
            return missing

    def middleware_lost(self, total: int) -> None:
        """The middleware's running total of samples this subscription lost (message-lost event)."""
        with self._lock:
            self._by_middleware = max(self._by_middleware, int(total))
            self._update()

    def restart_middleware_count(self) -> None:
        """A new subscription reports its own total from zero: keep what the old one reported."""
        with self._lock:
            self._middleware_before += self._by_middleware
            self._by_middleware = 0

    def _total(self) -> int:
        return max(self._by_stamps, self._middleware_before + self._by_middleware)

    def _update(self) -> None:
        total = self._total()
        if total > self._counted:
            self._recent.append((self._clock(), total - self._counted))
            self._counted = total

    def _period_ns(self) -> float | None:
        if len(self._intervals) < _MIN_PERIOD_SAMPLES:
            return None
        return float(np.median(np.fromiter(self._intervals, dtype=np.float64)))

    def witnesses(self) -> dict[str, int]:
        """Frames found lost by each witness: ``stamps`` (gaps) and ``middleware`` (DDS reports)."""
        with self._lock:
            return {"stamps": self._by_stamps, "middleware": self._middleware_before + self._by_middleware}

    def counts(self) -> tuple[int, int, float]:
        """(frames lost since start, of them in the last window, the period in seconds or NaN)."""
        with self._lock:
            now = self._clock()
            while self._recent and self._recent[0][0] < now - self._window:
                self._recent.popleft()
            period = self._period_ns()
            return (
                self._counted,
                sum(count for _, count in self._recent),
                float("nan") if period is None else period / _NS_PER_S,
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
        "frames lost in transport": str(snapshot.lost_in_transport),
        "transport loss rate (Hz)": f"{snapshot.transport_loss_rate_hz:.2f}",
        "transport loss (%)": f"{snapshot.transport_loss_percent:.1f}",
        "input period (ms)": f"{snapshot.input_period_ms:.1f}",
        **values,
    }
    status.values = [KeyValue(key=key, value=value) for key, value in entries.items()]
    return status
