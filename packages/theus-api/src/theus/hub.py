"""``LocalHub``: a pure-Python SignalHub with unbounded per-receiver queues (spec/08).

Backend-independent: any backend may return it from ``create_hub`` (the reference backend
does). Nothing published to a live receiver is ever lost.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from .errors import ContextError, SignalEmpty

__all__ = ["LocalHub", "LocalReceiver"]


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
        for loop, future in waiters:
            loop.call_soon_threadsafe(_wake, future)

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
        """Await the next message."""
        while True:
            with self._cond:
                if self._queue:
                    return self._queue.popleft()
                if self._closed:
                    raise ContextError("this receiver is closed")
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
            await future

    def close(self) -> None:
        """Unsubscribe; pending messages can still be drained."""
        self._hub._remove(self)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_wake, future)

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
    """A broadcast channel carrying any Python object."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._receivers: tuple[LocalReceiver, ...] = ()

    def publish(self, message: Any) -> int:
        """Send ``message`` to every receiver; return how many were reached."""
        receivers = self._receivers
        for receiver in receivers:
            receiver._push(message)
        return len(receivers)

    def subscribe(self) -> LocalReceiver:
        """A new receiver."""
        receiver = LocalReceiver(self)
        with self._lock:
            self._receivers = (*self._receivers, receiver)
        return receiver

    def _remove(self, receiver: LocalReceiver) -> None:
        with self._lock:
            self._receivers = tuple(r for r in self._receivers if r is not receiver)
