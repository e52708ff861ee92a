"""A worker thread with a one-slot mailbox: only the newest frame is ever waiting.

Subscription callbacks :meth:`LatestOnlyWorker.submit` and return at once; the worker runs the slow
part. A frame submitted while another is still waiting replaces it (the replaced one is counted as
dropped), so nothing queues up behind a slow device and the output is never older than one frame
plus one inference.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["LatestOnlyWorker"]

T = TypeVar("T")

_JOIN_TIMEOUT_S = 5.0


class LatestOnlyWorker(Generic[T]):
    """Runs ``handler`` on the newest submitted item, one at a time, in its own daemon thread.

    Args:
        handler: called with each item in the worker thread. Exceptions it raises are passed to
            ``on_error`` and the worker carries on with the next item.
        on_error: called with the exception (in the worker thread).
        name: the thread's name (shows in debuggers and ``py-spy``).
    """

    def __init__(self, handler: Callable[[T], None], on_error: Callable[[BaseException], None], name: str = "worker") -> None:
        self._handler = handler
        self._on_error = on_error
        self._condition = threading.Condition()
        self._pending: T | None = None
        self._has_pending = False
        self._busy = False
        self._stopping = False
        self._dropped = 0
        self._processed = 0
        self._name = name
        # Each started thread serves one generation; stop() ends it, start() may begin the next.
        self._generation = 0
        self._thread = threading.Thread(target=self._run, args=(0,), name=name, daemon=True)

    def start(self) -> None:
        """Start the thread; after :meth:`stop`, start a new one (a lifecycle node activated again)."""
        with self._condition:
            if self._thread.ident is not None:
                if not self._stopping:
                    return  # already running
                self._stopping = False
                self._generation += 1
                self._thread = threading.Thread(target=self._run, args=(self._generation,), name=self._name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> bool:
        """Hand over ``item``; returns True when it replaced a waiting item (which is dropped)."""
        with self._condition:
            if self._stopping:
                return False
            replaced = self._has_pending
            if replaced:
                self._dropped += 1
            self._pending = item
            self._has_pending = True
            self._condition.notify()
            return replaced

    @property
    def dropped(self) -> int:
        """Items replaced before the worker got to them."""
        with self._condition:
            return self._dropped

    @property
    def processed(self) -> int:
        """Items the handler has finished (successfully or not)."""
        with self._condition:
            return self._processed

    @property
    def idle(self) -> bool:
        """Nothing running and nothing waiting."""
        with self._condition:
            return not self._busy and not self._has_pending

    def stop(self, timeout: float = _JOIN_TIMEOUT_S) -> bool:
        """Drop any waiting item, let the running one finish and end the thread.

        Returns:
            Whether the thread ended within ``timeout`` seconds.
        """
        with self._condition:
            self._stopping = True
            self._pending = None
            self._has_pending = False
            self._condition.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self, generation: int) -> None:
        while True:
            with self._condition:
                while not self._has_pending and not self._stopping and generation == self._generation:
                    self._condition.wait()
                if self._stopping or generation != self._generation:
                    return
                item = self._pending
                self._pending = None
                self._has_pending = False
                self._busy = True
            try:
                self._handler(item)
            except Exception as err:  # a bad frame must not end the worker; the node reports it
                self._on_error(err)
            finally:
                with self._condition:
                    self._busy = False
                    self._processed += 1
                    self._condition.notify_all()
