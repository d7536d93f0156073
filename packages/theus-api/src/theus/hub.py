"""``LocalHub``: the pure-Python SignalHub (spec/08), usable by every backend.

A broadcast channel of any Python object, by reference. Each receiver has a bounded queue and a
policy: ``"lag"`` (the oldest message is dropped and counted; the next receive raises
``SignalLagged(missed=N)``) or ``"block"`` (the publisher waits for room). Receivers may filter
by topic. The hub holds its receivers weakly. ``publish`` never raises because of one receiver:
a waiter that cannot be woken (its event loop is closed) is detached, logged and counted in
``delivery_failures``, and the message stays queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from .errors import ContextError, SignalEmpty, SignalLagged
from .topics import compile_topics

__all__ = ["DEFAULT_CAPACITY", "LocalHub", "LocalReceiver", "check_capacity"]

log = logging.getLogger("theus")

DEFAULT_CAPACITY = 1024
_SLICE = 0.05  # seconds: a blocked publisher re-checks that its receiver still exists

Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


def check_capacity(capacity: object, what: str) -> int:
    """``capacity`` as a positive int (``TypeError``/``ValueError`` naming ``what``)."""
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError(f"{what} must be an int, not {capacity!r}")
    if capacity < 1:
        raise ValueError(f"{what} must be at least 1, not {capacity}")
    return capacity


def _check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
    if timeout < 0:
        raise ValueError(f"timeout must not be negative, not {timeout}")
    return float(timeout)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class LocalReceiver:
    """One subscription: the messages published after it was made, in order (spec/08)."""

    def __init__(
        self, hub: LocalHub, policy: str, capacity: int, accepts: Callable[[Any], bool] | None
    ) -> None:
        self._hub = hub
        self._block = policy == "block"
        self._capacity = capacity
        self._accepts = accepts
        self._queue: deque[Any] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._waiters: list[Waiter] = []
        self._missed = 0  # dropped since the last SignalLagged
        self._lagged = 0  # dropped in total
        self._room_waiters = 0  # publishers waiting for room (block)
        self._closed = False

    # -- the publisher's side (called by LocalHub) ------------------------------------------
    def _has_room(self) -> bool:
        return self._closed or len(self._queue) < self._capacity

    def _deliver(self, message: Any) -> list[Waiter] | None:
        """Queue ``message`` (dropping the oldest when a lag queue is full); the async waiters
        to wake once the lock is released, or None when the receiver is closed."""
        with self._cond:
            if self._closed:
                return None
            if len(self._queue) >= self._capacity:  # only a lag queue gets here full
                self._queue.popleft()
                self._missed += 1
                self._lagged += 1
            self._queue.append(message)
            self._cond.notify()
            waiters, self._waiters = self._waiters, []
        return waiters

    def _wake_all(self, waiters: list[Waiter]) -> None:
        for loop, future in waiters:
            if future.done():
                continue  # its wait was cancelled (a timeout): nobody waits on it
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:  # the waiter's event loop is closed: nobody can be woken
                self._hub._delivery_failed("its event loop is closed")

    # -- receiving ----------------------------------------------------------------------------
    def _take(self, max_n: int) -> list[Any]:
        """Up to ``max_n`` pending messages (lock held, queue not empty); lag reported first."""
        if self._missed:
            missed, self._missed = self._missed, 0
            raise SignalLagged(missed)
        queue = self._queue
        out = [queue.popleft() for _ in range(min(max_n, len(queue)))]
        if self._room_waiters:
            self._cond.notify_all()  # a blocked publisher may go on
        return out

    def _wait(self, timeout: float | None) -> bool:
        """Wait (lock held) for a message or a lag report; False on timeout. ``ContextError``
        once closed and drained."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._queue and not self._missed:
            if self._closed:
                raise ContextError("this receiver is closed")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._cond.wait(remaining)
        return True

    def recv(self, timeout: float | None = None) -> Any:
        """The next message, blocking; ``TimeoutError`` after ``timeout`` seconds."""
        timeout = _check_timeout(timeout)
        with self._cond:
            if not self._wait(timeout):
                raise TimeoutError(f"no signal within {timeout} s")
            return self._take(1)[0]

    def try_recv(self) -> Any:
        """The next message, or ``SignalEmpty``."""
        with self._cond:
            if not self._queue and not self._missed:
                if self._closed:
                    raise ContextError("this receiver is closed")
                raise SignalEmpty("no pending signal")
            return self._take(1)[0]

    def recv_many(self, max_n: int, timeout: float | None = None) -> list[Any]:
        """Wait (up to ``timeout``) for a message, then return up to ``max_n`` pending ones."""
        max_n = check_capacity(max_n, "max_n")
        timeout = _check_timeout(timeout)
        with self._cond:
            if not self._wait(timeout):
                return []
            return self._take(max_n)

    async def _wait_async(self) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = (loop, future)
        with self._cond:
            if self._queue or self._missed or self._closed:
                return
            self._waiters.append(waiter)
        try:
            await future
        finally:
            if future.cancelled() or not future.done():
                with self._cond, contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)

    async def recv_many_async(self, max_n: int) -> list[Any]:
        """Await at least one message, then return up to ``max_n`` pending ones."""
        max_n = check_capacity(max_n, "max_n")
        while True:
            with self._cond:
                if self._queue or self._missed:
                    return self._take(max_n)
                if self._closed:
                    raise ContextError("this receiver is closed")
            await self._wait_async()

    async def recv_async(self) -> Any:
        """Await the next message (a cancelled wait loses none)."""
        return (await self.recv_many_async(1))[0]

    def __iter__(self) -> Iterator[Any]:
        """Messages until the receiver (or its hub) is closed and drained."""
        while True:
            try:
                yield self.recv()
            except ContextError:
                return

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.recv_async()
        except ContextError:
            raise StopAsyncIteration from None

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def lagged(self) -> int:
        """How many messages this receiver missed in total (policy ``lag``)."""
        return self._lagged

    @property
    def policy(self) -> str:
        """``"lag"`` or ``"block"``."""
        return "block" if self._block else "lag"

    @property
    def capacity(self) -> int:
        """The bound of the queue."""
        return self._capacity

    def close(self) -> None:
        """Unsubscribe; pending messages can still be drained."""
        self._hub._remove(self)
        self._close()

    def _close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        self._wake_all(waiters)


class LocalHub:
    """A broadcast channel carrying any Python object (spec/08).

    ``delivery_failures`` counts the waiters that could not be woken (their event loop was
    closed); each is also logged on the ``theus`` logger.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = check_capacity(capacity, "capacity")
        # receivers change only by single, atomic list operations: a signal handler or a
        # destructor may subscribe at any moment, even while this thread is inside the hub
        self._receivers: list[weakref.ref[LocalReceiver]] = []
        self._publishing = threading.RLock()  # one publisher at a time: one order for all
        self._closed = False
        self.delivery_failures = 0

    @property
    def capacity(self) -> int:
        """The default capacity of a receiver's queue."""
        return self._capacity

    def subscribe(
        self, policy: str = "lag", capacity: int | None = None, topics: Iterable[str] | None = None
    ) -> LocalReceiver:
        """A new receiver (held weakly by the hub: keep a reference while you use it)."""
        if not isinstance(policy, str):
            raise TypeError(f"policy must be 'lag' or 'block', not {policy!r}")
        if policy not in ("lag", "block"):
            raise ValueError(f"policy must be 'lag' or 'block', not {policy!r}")
        size = self._capacity if capacity is None else check_capacity(capacity, "capacity")
        accepts = compile_topics(topics)
        if self._closed:
            raise ContextError("this SignalHub is closed")
        receiver = LocalReceiver(self, policy, size, accepts)
        self._receivers.append(weakref.ref(receiver, self._forget))
        return receiver

    def publish(self, message: Any, timeout: float | None = None) -> int:
        """Deliver ``message`` to every receiver that accepts it; return how many got it."""
        return self._publish((message,), _check_timeout(timeout))

    def publish_many(self, messages: Iterable[Any], timeout: float | None = None) -> int:
        """Publish each message in order; return the sum of the receivers reached."""
        return self._publish(messages, _check_timeout(timeout))

    def _publish(self, messages: Iterable[Any], timeout: float | None) -> int:
        if self._closed:
            raise ContextError("this SignalHub is closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        reached = 0
        with self._publishing:
            for message in messages:
                lagging: list[LocalReceiver] = []
                blocking: list[weakref.ref[LocalReceiver]] = []
                for ref in tuple(self._receivers):
                    receiver = ref()
                    if receiver is None or (
                        receiver._accepts is not None and not receiver._accepts(message)
                    ):
                        continue
                    if receiver._block:
                        blocking.append(ref)  # weakly: a dropped receiver ends the wait
                    else:
                        lagging.append(receiver)
                receiver = None
                for ref in blocking:
                    self._wait_for_room(ref, deadline, timeout)
                targets = lagging + [r for r in (ref() for ref in blocking) if r is not None]
                for target in targets:
                    waiters = target._deliver(message)
                    if waiters is not None:
                        reached += 1
                        if waiters:
                            target._wake_all(waiters)
        return reached

    def _wait_for_room(
        self, ref: weakref.ref[LocalReceiver], deadline: float | None, timeout: float | None
    ) -> None:
        while True:
            if self._closed:
                raise ContextError("this SignalHub was closed while publishing")
            receiver = ref()
            if receiver is None:
                return
            with receiver._cond:
                if receiver._has_room():
                    return
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(
                        f"a 'block' receiver had no room within {timeout} s; nothing was published"
                    )
                receiver._room_waiters += 1
                try:
                    receiver._cond.wait(_SLICE if remaining is None else min(_SLICE, remaining))
                finally:
                    receiver._room_waiters -= 1
            del receiver

    def close(self) -> None:
        """Close the hub and every receiver; wake every blocked call (spec/08). Idempotent."""
        self._closed = True
        for ref in tuple(self._receivers):
            receiver = ref()
            if receiver is not None:
                receiver._close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _forget(self, ref: weakref.ref[LocalReceiver]) -> None:
        with contextlib.suppress(ValueError):
            self._receivers.remove(ref)

    def _remove(self, receiver: LocalReceiver) -> None:
        for ref in tuple(self._receivers):
            if ref() is receiver:
                self._forget(ref)

    def _delivery_failed(self, why: str) -> None:
        self.delivery_failures += 1  # diagnostics only: a racing increment may be lost
        log.warning("a signal receiver could not be woken (%s); the message stays queued", why)

    @property
    def receiver_count(self) -> int:
        """The number of live receivers."""
        return sum(1 for r in tuple(self._receivers) if r() is not None)
