"""Worker threads that keep subscription callbacks cheap: callbacks submit and return at once.

* :class:`LatestOnlyWorker` (the depth node): a one-slot mailbox, only the newest frame is ever
  waiting. A frame submitted while another is still waiting replaces it (the replaced one is
  counted as dropped), so nothing queues up behind a slow device and the output is never older than
  one frame plus one inference.
* :class:`BatchWorker` (the pose node): keeps up to ``capacity`` frames that arrive while it is
  busy and hands all of them to the handler at once, so a slow network runs every adjacent pair as
  one batch instead of losing the motion between skipped frames. Only when more than ``capacity``
  arrive is the oldest dropped, and the next batch says how many are missing before it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["LatestOnlyWorker", "Batch", "BatchWorker"]

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
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
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

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._has_pending and not self._stopping:
                    self._condition.wait()
                if self._stopping:
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


@dataclass(frozen=True)
class Batch(Generic[T]):
    """Frames handed to a :class:`BatchWorker`'s handler in one call, oldest first.

    Attributes:
        items: the frames that arrived since the previous batch was taken (at most ``capacity``).
        dropped_before: frames that overflowed the buffer between the previous batch and
            ``items[0]``: when non-zero, the first item does not follow the previous batch's last.
    """

    items: tuple[T, ...]
    dropped_before: int = 0


class BatchWorker(Generic[T]):
    """Runs ``handler`` on every frame that arrived while it was busy, in one call, in its own thread.

    Same interface as :class:`LatestOnlyWorker` (``submit`` returns True when it dropped an item),
    but the handler gets a :class:`Batch`.

    Args:
        handler: called with each batch in the worker thread; exceptions go to ``on_error``.
        on_error: called with the exception (in the worker thread).
        capacity: most frames kept while busy (>= 1; 1 keeps only the newest, as LatestOnlyWorker).
        name: the thread's name.
    """

    def __init__(
        self, handler: Callable[[Batch[T]], None], on_error: Callable[[BaseException], None], capacity: int, name: str = "worker"
    ) -> None:
        if capacity < 1:
            raise ValueError(f"a batch worker keeps at least one frame, got capacity {capacity}")
        self._handler = handler
        self._on_error = on_error
        self._condition = threading.Condition()
        self._pending: deque[T] = deque()
        self._capacity = capacity
        self._dropped_before = 0  # overflowed since the last batch was taken
        self._busy = False
        self._stopping = False
        self._dropped = 0
        self._processed = 0
        self._batches = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def capacity(self) -> int:
        with self._condition:
            return self._capacity

    @capacity.setter
    def capacity(self, value: int) -> None:
        """A new bound; frames beyond it (the oldest) are dropped at once."""
        if value < 1:
            raise ValueError(f"a batch worker keeps at least one frame, got capacity {value}")
        with self._condition:
            self._capacity = value
            while len(self._pending) > value:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        self._pending.popleft()
        self._dropped += 1
        self._dropped_before += 1

    def submit(self, item: T) -> bool:
        """Queue ``item``; returns True when the buffer was full and its oldest item was dropped."""
        with self._condition:
            if self._stopping:
                return False
            overflow = len(self._pending) >= self._capacity
            if overflow:
                self._drop_oldest()
            self._pending.append(item)
            self._condition.notify()
            return overflow

    @property
    def dropped(self) -> int:
        """Items that overflowed the buffer before the worker got to them."""
        with self._condition:
            return self._dropped

    @property
    def processed(self) -> int:
        """Items in the batches the handler has finished (successfully or not)."""
        with self._condition:
            return self._processed

    @property
    def batches(self) -> int:
        """Handler calls finished."""
        with self._condition:
            return self._batches

    @property
    def idle(self) -> bool:
        """Nothing running and nothing waiting."""
        with self._condition:
            return not self._busy and not self._pending

    def stop(self, timeout: float = _JOIN_TIMEOUT_S) -> bool:
        """Drop the waiting items, let the running batch finish and end the thread."""
        with self._condition:
            self._stopping = True
            self._pending.clear()
            self._condition.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                batch = Batch(tuple(self._pending), self._dropped_before)
                self._pending.clear()
                self._dropped_before = 0
                self._busy = True
            try:
                self._handler(batch)
            except Exception as err:  # a bad batch must not end the worker; the node reports it
                self._on_error(err)
            finally:
                with self._condition:
                    self._busy = False
                    self._processed += len(batch.items)
                    self._batches += 1
                    self._condition.notify_all()
