"""``LocalHub``: a pure-Python SignalHub with unbounded per-receiver queues (spec/08).

Backend-independent: any backend may return it from ``create_hub`` (the reference backend
does). Nothing published to a live receiver is ever lost, and ``publish`` never raises because
of one receiver: a failure to wake one waiter is logged and counted, the message stays queued,
and the other receivers are reached (spec/08, delivery failures). The hub holds its receivers
weakly: a receiver nobody references any more stops receiving and is freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from typing import Any

from .errors import ContextError, SignalEmpty

__all__ = ["LocalHub", "LocalReceiver"]

log = logging.getLogger("theus")


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class LocalReceiver:
    """One subscription: every message published after it was made, in order."""

    def __init__(self, hub: LocalHub) -> None:
        self._hub = hub
        self._queue: deque[Any] = deque()
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False

    def _push(self, message: Any) -> None:
        with self._cond:
            self._queue.append(message)
            self._cond.notify()
            waiters, self._waiters = self._waiters, []
        self._wake_all(waiters)

    def _wake_all(
        self, waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]
    ) -> None:
        for loop, future in waiters:
            if future.done():
                continue  # its recv_async was cancelled (a timeout): nobody waits on it
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:  # the waiter's event loop is closed: nobody can be woken
                self._hub._delivery_failed(self, "its event loop is closed")

    def recv(self, timeout: float | None = None) -> Any:
        """Block for the next message; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self._closed:
                    raise ContextError("this receiver is closed")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no signal within {timeout} s")
                self._cond.wait(remaining)
            return self._queue.popleft()

    def try_recv(self) -> Any:
        """The next message, or ``SignalEmpty``."""
        with self._cond:
            if not self._queue:
                raise SignalEmpty("no pending signal")
            return self._queue.popleft()

    async def recv_async(self) -> Any:
        """Await the next message (cancellation, e.g. by ``asyncio.wait_for``, loses none)."""
        while True:
            with self._cond:
                if self._queue:
                    return self._queue.popleft()
                if self._closed:
                    raise ContextError("this receiver is closed")
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                waiter = (loop, future)
                self._waiters.append(waiter)
            try:
                await future
            finally:
                if not future.done() or future.cancelled():
                    with self._cond:
                        if waiter in self._waiters:
                            self._waiters.remove(waiter)

    def close(self) -> None:
        """Unsubscribe; pending messages can still be drained."""
        self._hub._remove(self)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        self._wake_all(waiters)

    def __iter__(self) -> Iterator[Any]:
        """Messages until the receiver is closed and drained."""
        while True:
            try:
                yield self.recv()
            except ContextError:
                return

    def __len__(self) -> int:
        return len(self._queue)


class LocalHub:
    """A broadcast channel carrying any Python object.

    ``delivery_failures`` counts the deliveries that could not complete (a receiver's waiting
    coroutine whose event loop is closed); each is also logged on the ``theus`` logger.

    The hub takes no lock of its own: its receiver list changes only by single, atomic list
    operations, so a signal handler or a destructor may publish or subscribe at any moment,
    even while the same thread is inside the hub.
    """

    def __init__(self) -> None:
        self._receivers: list[weakref.ref[LocalReceiver]] = []
        self.delivery_failures = 0

    def publish(self, message: Any) -> int:
        """Send ``message`` to every live receiver; return how many were reached."""
        reached = 0
        for ref in tuple(self._receivers):
            receiver = ref()
            if receiver is not None:
                receiver._push(message)
                reached += 1
        return reached

    def subscribe(self) -> LocalReceiver:
        """A new receiver (held weakly by the hub: keep a reference while you use it)."""
        receiver = LocalReceiver(self)
        self._receivers.append(weakref.ref(receiver, self._forget))
        return receiver

    def _forget(self, ref: weakref.ref[LocalReceiver]) -> None:
        with contextlib.suppress(ValueError):
            self._receivers.remove(ref)

    def _remove(self, receiver: LocalReceiver) -> None:
        for ref in tuple(self._receivers):
            if ref() is receiver:
                self._forget(ref)

    def _delivery_failed(self, receiver: LocalReceiver, why: str) -> None:
        self.delivery_failures += 1  # diagnostics only: a racing increment may be lost
        log.warning("a signal receiver could not be woken (%s); the message stays queued", why)

    @property
    def receiver_count(self) -> int:
        """The number of live receivers."""
        return sum(1 for r in tuple(self._receivers) if r() is not None)
