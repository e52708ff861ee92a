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

    def _run(self, generation: int) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._stopping and generation == self._generation:
                    self._condition.wait()
                if self._stopping or generation != self._generation:
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


class LatestOnlyWorker(BatchWorker[T]):
    """Runs ``handler`` on the newest submitted item, one at a time, in its own daemon thread: a
    :class:`BatchWorker` of capacity 1, whose handler gets the item itself.

    ``submit`` returns True when the item replaced a waiting one (which is dropped).

    Args:
        handler: called with each item in the worker thread. Exceptions it raises are passed to
            ``on_error`` and the worker carries on with the next item.
        on_error: called with the exception (in the worker thread).
        name: the thread's name (shows in debuggers and ``py-spy``).
    """

    def __init__(self, handler: Callable[[T], None], on_error: Callable[[BaseException], None], name: str = "worker") -> None:
        super().__init__(lambda batch: handler(batch.items[-1]), on_error, capacity=1, name=name)
