"""The transactional outbox (spec/15): messages added in a transaction, released only by the
commit that carried them, then delivered at least once (spec/15, Outbox delivery).

- :class:`OutboxBuffer` is ``ctx.outbox`` / ``tx.outbox``: one attempt's messages.
- :class:`OutboxStage` is the built-in pipeline stage releasing a landed commit's messages.
- :class:`Outbox` is ``engine.outbox``: it keeps released messages until they are delivered to
  subscriptions (handlers called on the outbox's worker thread, retried with a
  :class:`RetryPolicy` when they raise) or taken by :meth:`Outbox.drain`.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .errors import ContextError
from .pipeline import Changes, OutboxMessage, Stage
from .topics import compile_topics

__all__ = [
    "Outbox",
    "OutboxBuffer",
    "OutboxFailure",
    "OutboxHandler",
    "OutboxStage",
    "OutboxSubscription",
    "RetryPolicy",
]

log = logging.getLogger("theus")

#: a subscription's or a drain's handler: called with each message; its return value is ignored
OutboxHandler = Callable[[OutboxMessage], object]

_CLOSE_TIMEOUT = 5.0  # seconds close() waits by default for the worker thread to stop


class OutboxBuffer:
    """``ctx.outbox`` / ``tx.outbox``: the messages of one transaction attempt.

    ``add(topic, payload)`` records a message; nothing leaves the transaction until its commit
    lands. A failed, rolled-back or conflicted attempt's buffer is discarded (a re-run starts
    with an empty one).
    """

    __slots__ = ("_messages",)

    def __init__(self) -> None:
        self._messages: list[OutboxMessage] = []

    def add(self, topic: str, payload: Any = None) -> None:
        """Queue ``payload`` for ``topic``; released after the commit."""
        if not isinstance(topic, str) or not topic:
            raise TypeError(f"outbox topic must be a non-empty str, not {topic!r}")
        self._messages.append(OutboxMessage(topic, payload))

    @property
    def messages(self) -> tuple[OutboxMessage, ...]:
        """The messages added so far, in order."""
        return tuple(self._messages)

    def __len__(self) -> int:
        return len(self._messages)

    def __bool__(self) -> bool:
        return bool(self._messages)

    def __repr__(self) -> str:
        return f"<OutboxBuffer {len(self._messages)} message(s)>"


def _number(owner: str, name: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}({name}=...) must be a number, not {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(
            f"{owner}({name}=...) must be a finite number >= {minimum:g}, not {value!r}"
        )
    return float(value)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a message whose handler raised is offered again (spec/15, Outbox delivery).

    After the n-th consecutive failure of a message the delay is
    ``min(max_delay, base * factor ** (n - 1))`` seconds. There is no attempt limit: a message
    is never dropped.
    """

    base: float = 0.01
    factor: float = 2.0
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        for name, minimum in (("base", 0.0), ("factor", 1.0), ("max_delay", 0.0)):
            object.__setattr__(
                self, name, _number("RetryPolicy", name, getattr(self, name), minimum)
            )

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (``failures`` >= 1)."""
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise ValueError(f"RetryPolicy.delay() needs a failure count >= 1, not {failures!r}")
        if self.base == 0.0:
            return 0.0
        try:
            delay = self.base * self.factor ** (failures - 1)
        except OverflowError:
            return self.max_delay
        return min(self.max_delay, delay)


class OutboxFailure(NamedTuple):
    """A message whose last delivery attempt raised and that is still pending.

    ``subscription`` is the :class:`OutboxSubscription` whose handler raised, or ``None`` for a
    handler passed to :meth:`Outbox.drain`; ``attempts`` counts the consecutive failed calls for
    ``message``; ``error`` is the last exception.
    """

    subscription: OutboxSubscription | None
    message: OutboxMessage
    attempts: int
    error: BaseException


class _Entry:
    """A released message inside the outbox (guarded by the outbox's lock)."""

    __slots__ = ("claims", "drain_attempts", "drain_error", "message", "seq", "taken")

    def __init__(self, seq: int, message: OutboxMessage) -> None:
        self.seq = seq
        self.message = message
        self.claims = 0  # subscriptions that still have it queued (a running call included)
        self.taken = False  # some consumer has delivered it
        self.drain_attempts = 0
        self.drain_error: BaseException | None = None


class OutboxSubscription:
    """A handler subscribed with :meth:`Outbox.subscribe`; ``close()`` ends it.

    ``pending`` are the messages it still has to deliver (oldest first), ``delivered`` how many
    it delivered, ``failure`` the :class:`OutboxFailure` of its oldest pending message when the
    last call for it raised.
    """

    __slots__ = (
        "_accepts",
        "_attempts",
        "_busy",
        "_closed",
        "_delivered",
        "_error",
        "_outbox",
        "_queue",
        "_retry_at",
        "_since",
        "handler",
        "topics",
    )

    def __init__(
        self,
        outbox: Outbox,
        handler: OutboxHandler,
        topics: tuple[str, ...] | None,
        accepts: Callable[[Any], bool] | None,
    ) -> None:
        self._outbox = outbox
        #: the handler, called with each message
        self.handler = handler
        #: the topic patterns, or None (every topic)
        self.topics = topics
        self._accepts = accepts
        self._queue: deque[_Entry] = deque()
        self._busy = False  # its handler is running on the worker thread
        self._closed = False
        self._delivered = 0
        self._attempts = 0  # consecutive failed calls for the head of the queue
        self._error: BaseException | None = None
        self._retry_at = 0.0  # time.monotonic() before which the head is not offered again
        self._since = 0  # outbox tick since which its head waits for the worker (fairness)

    def _wants(self, message: OutboxMessage) -> bool:
        return self._accepts is None or self._accepts(message)

    @property
    def pending(self) -> tuple[OutboxMessage, ...]:
        """The messages this subscription still has to deliver, oldest first."""
        with self._outbox._cond:
            return tuple(e.message for e in self._queue)

    @property
    def delivered(self) -> int:
        """How many messages this subscription's handler has delivered (calls that returned)."""
        return self._delivered

    @property
    def failure(self) -> OutboxFailure | None:
        """The failure of the oldest pending message, or None when its last call returned."""
        with self._outbox._cond:
            return self._failure()

    def _failure(self) -> OutboxFailure | None:
        if not self._attempts or not self._queue or self._error is None:
            return None
        return OutboxFailure(self, self._queue[0].message, self._attempts, self._error)

    @property
    def closed(self) -> bool:
        """Whether the subscription was closed (by itself or by closing the outbox)."""
        return self._closed

    def close(self) -> None:
        """End the subscription; its undelivered messages go back to the outbox (spec/15).
        Idempotent."""
        outbox = self._outbox
        with outbox._cond:
            outbox._close_subscription(self)
            outbox._cond.notify_all()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._queue)} pending"
        return f"<OutboxSubscription {self.handler!r} topics={self.topics!r} {state}>"


def _check_handler(handler: Any, where: str) -> None:
    if not callable(handler):
        raise TypeError(f"{where}: the handler must be callable, not {handler!r}")
    call = getattr(handler, "__call__", None)  # noqa: B004 - an async __call__ is refused too
    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call):
        raise TypeError(
            f"{where}: the handler {handler!r} is a coroutine function; outbox handlers are "
            "called on a thread and must be plain callables"
        )


def _check_timeout(timeout: Any, where: str) -> float | None:
    if timeout is None:
        return None
    return _number(where, "timeout", timeout, 0.0)


class Outbox:
    """The engine's outbox (``engine.outbox``, spec/15): messages released by landed commits,
    in commit order, kept until delivered at least once.

    ::

        sub = engine.outbox.subscribe(send, topics=["orders.*"])  # send(msg) on a worker thread
        engine.outbox.flush(timeout=5)       # wait until everything released so far was sent
        engine.outbox.drain()                # or pull what no subscription takes

    A handler that raises keeps its message pending (``failures``), retried after
    ``retry.delay(n)`` seconds; each subscription receives its messages in commit order, a
    failing one blocking the later ones of that subscription only. Receivers deduplicate on
    ``(message.version, message.index)``.
    """

    def __init__(self, retry: RetryPolicy | None = None) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._retry = RetryPolicy() if retry is None else _check_retry(retry)
        self._seq = 0  # sequence number of the last released message
        self._tick = 0  # counts releases and finished calls: the worker serves the longest wait
        self._live: dict[int, _Entry] = {}  # every pending message, by seq (commit order)
        self._unclaimed: deque[_Entry] = deque()  # sorted by seq
        self._subs: list[OutboxSubscription] = []  # open subscriptions, in subscription order
        self._worker: threading.Thread | None = None
        self._closed = False

    # -- configuration -----------------------------------------------------------------------
    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of failed handler calls (applies from the next failure)."""
        return self._retry

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        self._retry = _check_retry(policy)

    # -- release (the pipeline's side) -------------------------------------------------------
    def release(self, messages: Iterable[OutboxMessage]) -> None:
        """Take the numbered messages of a landed commit (called in commit order by
        :class:`OutboxStage`). Runs no user code and waits for no delivery."""
        with self._cond:
            for message in messages:
                self._seq += 1
                entry = _Entry(self._seq, message)
                self._live[entry.seq] = entry
                for sub in self._subs:
                    if sub._wants(message):
                        if not sub._queue:
                            sub._since = self._tick
                        sub._queue.append(entry)
                        entry.claims += 1
                if not entry.claims:
                    self._unclaimed.append(entry)
            self._tick += 1
            self._cond.notify_all()

    # -- subscriptions -----------------------------------------------------------------------
    def subscribe(
        self, handler: OutboxHandler, topics: Iterable[str] | None = None
    ) -> OutboxSubscription:
        """Call ``handler(message)`` on the outbox's worker thread for every message released
        (and every unclaimed one already pending) whose topic ``topics`` accepts."""
        _check_handler(handler, "outbox.subscribe()")
        patterns = None if topics is None else _patterns(topics)
        accepts = compile_topics(patterns)  # None: every topic
        with self._cond:
            if self._closed:
                raise ContextError("the outbox is closed (its engine was closed)")
            sub = OutboxSubscription(self, handler, patterns, accepts)
            keep: deque[_Entry] = deque()
            for entry in self._unclaimed:
                if sub._wants(entry.message):
                    entry.claims = 1
                    sub._queue.append(entry)
                else:
                    keep.append(entry)
            self._unclaimed = keep
            sub._since = self._tick
            self._subs.append(sub)
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="theus-outbox", daemon=True)
                self._worker.start()
            self._cond.notify_all()
        return sub

    @property
    def subscriptions(self) -> tuple[OutboxSubscription, ...]:
        """The open subscriptions, in subscription order."""
        with self._cond:
            return tuple(self._subs)

    def _close_subscription(self, sub: OutboxSubscription) -> None:  # under the lock
        if sub._closed:
            return
        sub._closed = True
        self._subs.remove(sub)
        queue = sub._queue
        running = queue.popleft() if sub._busy and queue else None
        for entry in queue:
            self._give_up(entry, taken=False)
        sub._queue = deque() if running is None else deque([running])
        sub._attempts, sub._error = 0, None

    def _give_up(self, entry: _Entry, taken: bool) -> None:  # under the lock
        entry.claims -= 1
        entry.taken = entry.taken or taken
        if entry.claims:
            return
        if entry.taken:
            del self._live[entry.seq]
        else:
            self._insert_unclaimed(entry)

    def _insert_unclaimed(self, entry: _Entry) -> None:  # under the lock
        queue = self._unclaimed
        if not queue or queue[-1].seq < entry.seq:
            queue.append(entry)
            return
        for i, other in enumerate(queue):
            if other.seq > entry.seq:
                queue.insert(i, entry)
                return

    # -- the worker thread -------------------------------------------------------------------
    def _ready(self, now: float) -> tuple[OutboxSubscription | None, float | None]:
        best: OutboxSubscription | None = None
        wake: float | None = None
        for sub in self._subs:
            if sub._busy or not sub._queue:
                continue
            if sub._retry_at > now:
                wait = sub._retry_at - now
                wake = wait if wake is None else min(wake, wait)
                continue
            if best is None or sub._since < best._since:
                best = sub
        return best, wake

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while True:
                    if self._closed:
                        return
                    sub, wake = self._ready(time.monotonic())
                    if sub is not None:
                        break
                    cond.wait(wake)
                entry = sub._queue[0]
                sub._busy = True
            error: BaseException | None = None
            try:
                sub.handler(entry.message)
            except BaseException as exc:  # a handler's failure never ends delivery
                error = exc
            with cond:
                sub._busy = False
                attempts, delay = self._finish(sub, entry, error)
                cond.notify_all()
            if error is not None:
                message = entry.message
                log.warning(
                    "outbox handler %r failed on message %r (version %d, index %d), attempt %d; %s",
                    sub.handler,
                    message.topic,
                    message.version,
                    message.index,
                    attempts,
                    "the subscription is closed"
                    if delay is None
                    else f"it stays pending, retried in {delay:.3g} s",
                    exc_info=error,
                )
                del error

    def _finish(
        self, sub: OutboxSubscription, entry: _Entry, error: BaseException | None
    ) -> tuple[int, float | None]:  # under the lock
        self._tick += 1
        sub._since = self._tick  # its next offer waits behind the subscriptions already waiting
        attempts = sub._attempts + 1
        if error is None or sub._closed:
            if sub._queue and sub._queue[0] is entry:
                sub._queue.popleft()
            if error is None:
                sub._delivered += 1
            sub._attempts, sub._error, sub._retry_at = 0, None, 0.0
            self._give_up(entry, taken=error is None)
            return attempts, None
        delay = self._retry.delay(attempts)
        sub._attempts, sub._error = attempts, error
        sub._retry_at = time.monotonic() + delay
        return attempts, delay

    # -- pull --------------------------------------------------------------------------------
    def drain(
        self, handler: OutboxHandler | None = None, max_n: int | None = None
    ) -> list[OutboxMessage]:
        """Take the unclaimed messages (oldest first, at most ``max_n``).

        Without ``handler`` they are returned and leave the outbox. With one, it is called for
        each in turn on this thread; a message leaves when its call returns; if a call raises,
        that message and the later ones stay, the failure is recorded and the exception
        propagates.
        """
        if handler is not None:
            _check_handler(handler, "outbox.drain()")
        if max_n is not None:
            if isinstance(max_n, bool) or not isinstance(max_n, int):
                raise TypeError(f"outbox.drain(max_n=...) must be an int or None, not {max_n!r}")
            if max_n < 0:
                raise ValueError(f"outbox.drain(max_n=...) must be >= 0, not {max_n!r}")
        out: list[OutboxMessage] = []
        cond = self._cond
        if handler is None:
            with cond:
                queue = self._unclaimed
                n = len(queue) if max_n is None else min(max_n, len(queue))
                for _ in range(n):
                    entry = queue.popleft()
                    del self._live[entry.seq]
                    out.append(entry.message)
                cond.notify_all()
            return out
        while max_n is None or len(out) < max_n:
            with cond:
                if not self._unclaimed:
                    break
                entry = self._unclaimed.popleft()  # stays in _live while its call runs
            try:
                handler(entry.message)
            except BaseException as exc:
                with cond:
                    entry.drain_attempts += 1
                    entry.drain_error = exc
                    self._insert_unclaimed(entry)
                    cond.notify_all()
                if isinstance(exc, Exception):
                    log.warning(
                        "outbox drain handler %r failed on message %r (version %d, index %d), "
                        "attempt %d; it stays pending",
                        handler,
                        entry.message.topic,
                        entry.message.version,
                        entry.message.index,
                        entry.drain_attempts,
                        exc_info=exc,
                    )
                raise
            with cond:
                del self._live[entry.seq]
                entry.taken = True
                entry.drain_error = None
                cond.notify_all()
            out.append(entry.message)
        return out

    # -- introspection -----------------------------------------------------------------------
    @property
    def pending(self) -> tuple[OutboxMessage, ...]:
        """Every message released and not yet delivered, in commit order."""
        with self._cond:
            return tuple(e.message for e in self._live.values())

    @property
    def unclaimed(self) -> tuple[OutboxMessage, ...]:
        """The pending messages no subscription claims (what :meth:`drain` takes)."""
        with self._cond:
            return tuple(e.message for e in self._unclaimed)

    @property
    def failures(self) -> tuple[OutboxFailure, ...]:
        """The pending messages whose last delivery attempt raised, oldest message first."""
        with self._cond:
            found: list[tuple[int, OutboxFailure]] = []
            for sub in self._subs:
                failure = sub._failure()
                if failure is not None:
                    found.append((sub._queue[0].seq, failure))
            for entry in self._unclaimed:
                if entry.drain_attempts and entry.drain_error is not None:
                    failure = OutboxFailure(
                        None, entry.message, entry.drain_attempts, entry.drain_error
                    )
                    found.append((entry.seq, failure))
        found.sort(key=lambda item: item[0])
        return tuple(failure for _, failure in found)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    # -- waiting and closing -----------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every message released before the call has been delivered to each open
        subscription that claims it; False if ``timeout`` seconds passed first (spec/15)."""
        limit = _check_timeout(timeout, "outbox.flush")
        if self._worker is not None and threading.current_thread() is self._worker:
            raise ContextError(
                "outbox.flush() was called from an outbox handler; it would wait for itself"
            )
        deadline = None if limit is None else time.monotonic() + limit
        with self._cond:
            target = self._seq
            while True:
                if self._closed:
                    return next(iter(self._live), target + 1) > target
                if not any(s._queue and s._queue[0].seq <= target for s in self._subs):
                    return True
                remaining = None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                self._cond.wait(remaining)

    def close(self, timeout: float | None = _CLOSE_TIMEOUT) -> None:
        """Stop delivering: close every subscription (their messages stay pending, unclaimed)
        and wait at most ``timeout`` seconds for the worker thread to stop. Idempotent."""
        limit = _check_timeout(timeout, "outbox.close")
        with self._cond:
            if not self._closed:
                self._closed = True
                for sub in list(self._subs):
                    self._close_subscription(sub)
            worker = self._worker
            self._cond.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(limit)

    def __repr__(self) -> str:
        with self._cond:
            n, subs = len(self._live), len(self._subs)
        state = "closed" if self._closed else f"{subs} subscription(s)"
        return f"<Outbox {n} pending, {state}>"


def _check_retry(policy: Any) -> RetryPolicy:
    if not isinstance(policy, RetryPolicy):
        raise TypeError(f"outbox.retry must be a theus.outbox.RetryPolicy, not {policy!r}")
    return policy


def _patterns(topics: Any) -> tuple[str, ...]:
    if isinstance(topics, str) or not isinstance(topics, Iterable):
        compile_topics(topics)  # raises the TypeError of spec/08
    patterns = tuple(topics)
    compile_topics(patterns)  # a pattern that is not a str: TypeError
    return patterns


class OutboxStage(Stage):
    """The built-in stage that releases a landed commit's outbox messages to the engine's
    :class:`Outbox` (spec/15)."""

    name = "outbox"
    wants = "outbox"

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def after_commit(self, snapshot: Any, changes: Changes) -> None:
        """Release ``changes.outbox`` (numbered with the commit's version)."""
        self.outbox.release(changes.outbox)
