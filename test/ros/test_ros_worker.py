"""The one-slot worker, the throttled reporter and the frame statistics (no ROS graph)."""

from __future__ import annotations

import threading
import time

import pytest
from ros_harness import wait_until

from monodepth2_ros.ros.diagnostics import FrameStats, ThrottledReporter, diagnostic_status
from monodepth2_ros.ros.worker import BatchWorker, LatestOnlyWorker


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_worker_runs_the_first_and_the_newest_item_and_drops_the_rest():
    started = threading.Event()
    release = threading.Event()
    handled = []

    def handler(item):
        handled.append(item)
        started.set()
        release.wait(5.0)

    worker = LatestOnlyWorker(handler, on_error=lambda err: None)
    worker.start()
    try:
        assert worker.submit(0) is False
        assert started.wait(5.0)
        replaced = [worker.submit(item) for item in range(1, 6)]
        assert replaced == [False, True, True, True, True]
        release.set()
        assert wait_until(lambda: worker.idle)
        assert handled == [0, 5]
        assert (worker.dropped, worker.processed) == (4, 2)
    finally:
        release.set()
        assert worker.stop()


def test_worker_survives_a_failing_item_and_reports_it():
    errors = []
    handled = []

    def handler(item):
        if item == "bad":
            raise RuntimeError("boom")
        handled.append(item)

    worker = LatestOnlyWorker(handler, on_error=errors.append)
    worker.start()
    try:
        worker.submit("bad")
        assert wait_until(lambda: worker.processed == 1)
        worker.submit("good")
        assert wait_until(lambda: handled == ["good"])
        assert [str(err) for err in errors] == ["boom"]
    finally:
        assert worker.stop()


def test_worker_stop_does_not_run_the_waiting_item():
    release = threading.Event()
    handled = []
    worker = LatestOnlyWorker(lambda item: (handled.append(item), release.wait(5.0)), on_error=lambda err: None)
    worker.start()
    worker.submit(1)
    assert wait_until(lambda: handled == [1])
    worker.submit(2)
    threading.Timer(0.1, release.set).start()
    assert worker.stop(timeout=5.0)
    assert handled == [1] and worker.submit(3) is False


def test_reporter_logs_a_new_kind_at_once_and_repeats_once_per_period_with_a_count():
    clock = FakeClock()
    lines = []
    reporter = ThrottledReporter(lines.append, period_s=10.0, clock=clock)
    assert reporter.report("bad_image", "bad 1")
    assert not reporter.report("bad_image", "bad 2")
    assert reporter.report("no_camera_info", "no info")  # another kind is not held back
    clock.now += 3.0
    assert not reporter.report("bad_image", "bad 3")
    clock.now += 8.0
    assert reporter.report("bad_image", "bad 4")
    assert lines == ["bad 1", "no info", "bad 4 (2 more since the last report)"]
    assert reporter.counts() == {"bad_image": 4, "no_camera_info": 1}


def test_frame_stats_rates_percentiles_and_counters():
    clock = FakeClock()
    stats = FrameStats(rate_window_s=2.0, clock=clock)
    assert stats.snapshot().latency_p50_ms != stats.snapshot().latency_p50_ms  # NaN before any output
    for index in range(10):
        clock.now += 0.1
        stats.image_received()
        stats.frame_published(latency_s=0.01 * (index + 1))
    stats.frame_dropped()
    stats.frame_rejected()
    stats.frame_skipped_idle()
    snapshot = stats.snapshot()
    assert snapshot.input_rate_hz == pytest.approx(5.0) and snapshot.output_rate_hz == pytest.approx(5.0)
    assert snapshot.latency_p50_ms == pytest.approx(55.0) and snapshot.latency_p95_ms == pytest.approx(95.5)
    assert (snapshot.received, snapshot.published, snapshot.dropped, snapshot.rejected, snapshot.skipped_idle) == (10, 10, 1, 1, 1)
    clock.now += 5.0
    later = stats.snapshot()
    assert later.input_rate_hz == 0.0 and later.last_input_age_s == pytest.approx(5.0)


def test_diagnostic_status_is_ok_or_warns_with_the_reasons():
    from diagnostic_msgs.msg import DiagnosticStatus

    snapshot = FrameStats().snapshot()
    ok = diagnostic_status(snapshot, name="depth_node: depth", hardware_id="cpu", values={"scale (m per unit)": "5.4"})
    assert ok.level == DiagnosticStatus.OK
    assert {kv.key: kv.value for kv in ok.values}["scale (m per unit)"] == "5.4"
    warn = diagnostic_status(snapshot, name="n", hardware_id="cpu", values={}, warnings=["no image for 9 s"])
    assert warn.level == DiagnosticStatus.WARN and warn.message == "no image for 9 s"


def test_worker_thread_is_named_and_daemonic():
    worker = LatestOnlyWorker(lambda item: time.sleep(0), on_error=lambda err: None, name="depth_node_inference")
    worker.start()
    try:
        thread = next(t for t in threading.enumerate() if t.name == "depth_node_inference")
        assert thread.daemon
    finally:
        assert worker.stop()


def test_a_stopped_worker_ignores_items_and_starts_again_with_a_new_thread():
    handled = []
    worker = LatestOnlyWorker(handled.append, on_error=lambda err: None)
    worker.start()
    worker.submit("before")
    assert wait_until(lambda: handled == ["before"])
    assert worker.stop()
    assert worker.submit("while stopped") is False
    time.sleep(0.05)
    assert handled == ["before"] and worker.idle
    worker.start()
    worker.start()  # already running: no second thread
    worker.submit("after")
    assert wait_until(lambda: handled == ["before", "after"])
    assert [t.name for t in threading.enumerate()].count("worker") == 1
    assert worker.stop()
def test_batch_worker_keeps_what_arrives_while_busy_and_counts_overflow():
    started = threading.Event()
    release = threading.Event()
    batches = []

    def handler(batch):
        batches.append(batch)
        started.set()
        release.wait(5.0)

    worker = BatchWorker(handler, on_error=lambda err: None, capacity=3)
    worker.start()
    try:
        assert worker.submit(0) is False
        assert started.wait(5.0)
        assert [worker.submit(item) for item in (1, 2, 3)] == [False, False, False]
        assert wait_until(lambda: worker.submit(4) is True)  # full: 1 is dropped
        release.set()
        assert wait_until(lambda: worker.idle)
        assert [(b.items, b.dropped_before) for b in batches] == [((0,), 0), ((2, 3, 4), 1)]
        assert (worker.dropped, worker.processed, worker.batches) == (1, 4, 2)
        with pytest.raises(ValueError):
            worker.capacity = 0
    finally:
        release.set()
        assert worker.stop()
