"""Unit tests of theus.outbox (spec/15, Outbox delivery) without a backend: the Outbox is fed
with hand-numbered messages, or through an OutboxStage in a CommitPipeline.

No test asserts on timing: waits are bounded by TIMEOUT only to fail instead of hanging, and
retry tests use a zero-delay RetryPolicy.
"""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from theus import ContextError
from theus.outbox import (
    Outbox,
    OutboxFailure,
    OutboxStage,
    OutboxSubscription,
    RetryPolicy,
)
from theus.pipeline import Change, Changes, CommitPipeline, OutboxMessage

TIMEOUT = 20.0  # only guards against hangs
NOW = RetryPolicy(base=0.0)  # retry at once


def msgs(version: int, *topics: str) -> tuple[OutboxMessage, ...]:
    return tuple(OutboxMessage(t, {"n": i}, version, i) for i, t in enumerate(topics))


def ids(messages: Any) -> list[tuple[int, int]]:
    return [(m.version, m.index) for m in messages]


@pytest.fixture
def outbox() -> Any:
    box = Outbox(retry=NOW)
    yield box
    box.close(timeout=TIMEOUT)


def wait(event: threading.Event) -> None:
    assert event.wait(TIMEOUT), "timed out (hang)"


class Recorder:
    """A handler that records messages and sets an event once it has ``until`` of them."""

    def __init__(self, until: int = 0) -> None:
        self.got: list[OutboxMessage] = []
        self.until = until
        self.done = threading.Event()
        self.threads: set[str] = set()
        if until == 0:
            self.done.set()

    def __call__(self, message: OutboxMessage) -> None:
        self.threads.add(threading.current_thread().name)
        self.got.append(message)
        if len(self.got) >= self.until:
            self.done.set()


# ------------------------------------------------------------------------------ RetryPolicy


def test_retry_policy_delays_grow_and_are_capped() -> None:
    policy = RetryPolicy(base=0.5, factor=3, max_delay=10)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 4.5, 10.0]
    assert RetryPolicy().delay(1) == 0.01 and RetryPolicy().delay(2) == 0.02
    assert RetryPolicy(base=1, factor=1).delay(50) == 1.0
    assert RetryPolicy(base=0).delay(7) == 0.0
    assert RetryPolicy(base=1, factor=10, max_delay=3).delay(100_000) == 3.0  # no overflow


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"base": -1}, ValueError),
        ({"base": float("nan")}, ValueError),
        ({"factor": 0.5}, ValueError),
        ({"max_delay": float("inf")}, ValueError),
        ({"base": "1"}, TypeError),
        ({"factor": True}, TypeError),
        ({"max_delay": None}, TypeError),
    ],
)
def test_retry_policy_rejects_bad_values(kwargs: dict[str, Any], error: type) -> None:
    name = next(iter(kwargs))
    with pytest.raises(error, match=rf"RetryPolicy\({name}=\.\.\.\)"):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize("n", [0, -1, 1.0, True])
def test_retry_policy_delay_needs_a_count(n: Any) -> None:
    with pytest.raises(ValueError, match="failure count"):
        RetryPolicy().delay(n)


def test_retry_is_settable_per_outbox_and_checked() -> None:
    a, b = Outbox(), Outbox()
    assert a.retry == RetryPolicy()
    a.retry = RetryPolicy(base=1)
    assert a.retry.base == 1.0 and b.retry == RetryPolicy()
    with pytest.raises(TypeError, match="RetryPolicy"):
        a.retry = {"base": 1}  # type: ignore[assignment]
    with pytest.raises(TypeError, match="RetryPolicy"):
        Outbox(retry=0.1)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ release/drain


def test_released_messages_are_pending_in_commit_order(outbox: Outbox) -> None:
    outbox.release(msgs(1, "a", "b"))
    outbox.release(())
    outbox.release(msgs(3, "c"))
    assert ids(outbox.pending) == [(1, 0), (1, 1), (3, 0)]
    assert outbox.unclaimed == outbox.pending
    assert outbox.failures == () and outbox.subscriptions == ()


def test_drain_without_handler_takes_oldest_first(outbox: Outbox) -> None:
    outbox.release(msgs(1, "a", "b", "c"))
    outbox.release(msgs(2, "d"))
    assert ids(outbox.drain(max_n=2)) == [(1, 0), (1, 1)]
    assert ids(outbox.drain(max_n=0)) == []
    assert ids(outbox.pending) == [(1, 2), (2, 0)]
    assert ids(outbox.drain()) == [(1, 2), (2, 0)]
    assert outbox.pending == () and outbox.drain() == []


@pytest.mark.parametrize(
    ("max_n", "error"), [(-1, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_drain_checks_max_n(outbox: Outbox, max_n: Any, error: type) -> None:
    outbox.release(msgs(1, "a"))
    with pytest.raises(error, match="max_n"):
        outbox.drain(max_n=max_n)
    assert len(outbox.pending) == 1


def test_drain_with_handler_keeps_the_failed_message_and_the_rest(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    outbox.release(msgs(1, "a", "b", "c"))
    seen: list[OutboxMessage] = []
    boom = RuntimeError("down")

    def handler(message: OutboxMessage) -> None:
        seen.append(message)
        if message.topic == "b":
            raise boom

    with caplog.at_level(logging.WARNING, logger="theus"), pytest.raises(RuntimeError) as info:
        outbox.drain(handler)
    assert info.value is boom
    assert ids(seen) == [(1, 0), (1, 1)]
    assert ids(outbox.pending) == [(1, 1), (1, 2)] == ids(outbox.unclaimed)
    assert outbox.failures == (OutboxFailure(None, seen[1], 1, boom),)
    assert any("drain handler" in r.getMessage() and r.exc_info for r in caplog.records)
    with pytest.raises(RuntimeError):
        outbox.drain(handler)
    assert outbox.failures[0].attempts == 2
    assert ids(outbox.drain(lambda m: None, max_n=1)) == [(1, 1)]
    assert outbox.failures == () and ids(outbox.pending) == [(1, 2)]


def test_drain_handler_sees_its_message_as_pending(outbox: Outbox) -> None:
    outbox.release(msgs(4, "a"))
    during: list[Any] = []
    outbox.drain(lambda m: during.append((outbox.pending, outbox.unclaimed)))
    assert [(ids(p), ids(u)) for p, u in during] == [([(4, 0)], [])]


@pytest.mark.parametrize("bad", [None, 3, "name"])
def test_handlers_must_be_callable(outbox: Outbox, bad: Any) -> None:
    if bad is not None:
        with pytest.raises(TypeError, match="callable"):
            outbox.drain(bad)
    with pytest.raises(TypeError, match="callable"):
        outbox.subscribe(bad)
    assert outbox.subscriptions == ()


def test_async_handlers_are_refused(outbox: Outbox) -> None:
    async def handler(message: OutboxMessage) -> None:
        pass

    class Async:
        async def __call__(self, message: OutboxMessage) -> None:
            pass

    for h in (handler, Async()):
        with pytest.raises(TypeError, match="coroutine"):
            outbox.subscribe(h)
    assert outbox.subscriptions == ()


@pytest.mark.parametrize("topics", ["a.*", ["a", 1], 5])
def test_subscribe_checks_topics(outbox: Outbox, topics: Any) -> None:
    with pytest.raises(TypeError, match="topic"):
        outbox.subscribe(Recorder(), topics=topics)
    assert outbox.subscriptions == ()


# ------------------------------------------------------------------------------ subscriptions


def test_no_worker_thread_without_a_subscription() -> None:
    before = {t.ident for t in threading.enumerate()}
    box = Outbox()
    box.release(msgs(1, "a"))
    box.drain()
    assert {t.ident for t in threading.enumerate()} <= before
    box.close()


def test_subscriber_gets_every_message_in_order_on_the_worker(outbox: Outbox) -> None:
    rec = Recorder(4)
    sub = outbox.subscribe(rec)
    assert isinstance(sub, OutboxSubscription) and outbox.subscriptions == (sub,)
    outbox.release(msgs(1, "a", "b"))
    outbox.release(msgs(2, "c"))
    outbox.release(msgs(5, "d"))
    assert outbox.flush(timeout=TIMEOUT)
    assert ids(rec.got) == [(1, 0), (1, 1), (2, 0), (5, 0)]
    assert rec.threads == {"theus-outbox"}
    assert sub.delivered == 4 and sub.pending == () and outbox.pending == ()
    assert sub.failure is None and not sub.closed


def test_a_new_subscription_takes_the_unclaimed_backlog_it_accepts(outbox: Outbox) -> None:
    outbox.release(msgs(1, "orders.new", "audit.x", "orders.paid"))
    rec = Recorder(3)
    outbox.subscribe(rec, topics=["orders.*"])
    outbox.release(msgs(2, "orders.new", "audit.y"))
    assert outbox.flush(timeout=TIMEOUT)
    assert [(m.topic, m.version) for m in rec.got] == [
        ("orders.new", 1),
        ("orders.paid", 1),
        ("orders.new", 2),
    ]
    assert [m.topic for m in outbox.unclaimed] == ["audit.x", "audit.y"]
    late = Recorder(1)
    outbox.subscribe(late, topics=["audit.*"])
    assert outbox.flush(timeout=TIMEOUT)
    assert [m.topic for m in late.got] == ["audit.x", "audit.y"]
    assert outbox.pending == ()


@pytest.mark.parametrize(
    ("topics", "wanted"),
    [
        (["a.*"], ["a.b", "a.c"]),
        (["a.**"], ["a.b", "a.b.c", "a.c"]),
        (["**"], ["a.b", "a.b.c", "x", "a.c"]),
        (["x", "a.c"], ["x", "a.c"]),
        ([], []),
    ],
)
def test_topic_patterns_are_those_of_the_hub(
    outbox: Outbox, topics: list[str], wanted: list[str]
) -> None:
    rec = Recorder()
    outbox.subscribe(rec, topics=iter(topics))  # any iterable of str
    outbox.release(msgs(1, "a.b", "a.b.c", "x", "a.c"))
    assert outbox.flush(timeout=TIMEOUT)
    assert [m.topic for m in rec.got] == wanted
    assert len(outbox.unclaimed) == 4 - len(wanted)


def test_every_subscription_gets_every_message_it_accepts(outbox: Outbox) -> None:
    a, b = Recorder(), Recorder()
    outbox.subscribe(a)
    outbox.subscribe(b, topics=["t.*"])
    outbox.release(msgs(1, "t.1", "u", "t.2"))
    assert outbox.flush(timeout=TIMEOUT)
    assert ids(a.got) == [(1, 0), (1, 1), (1, 2)]
    assert ids(b.got) == [(1, 0), (1, 2)]
    assert outbox.pending == ()


def test_failing_handler_is_retried_and_nothing_is_lost(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[int, int]] = []
    fails = {(1, 1): 3}  # (1, 1) fails three times

    def handler(message: OutboxMessage) -> None:
        key = (message.version, message.index)
        calls.append(key)
        if fails.get(key, 0):
            fails[key] -= 1
            raise ValueError(f"fail {key}")

    with caplog.at_level(logging.WARNING, logger="theus"):
        sub = outbox.subscribe(handler)
        outbox.release(msgs(1, "a", "b", "c"))
        outbox.release(msgs(2, "d"))
        assert outbox.flush(timeout=TIMEOUT)
    # head of line: (1, 2) waits until (1, 1) was delivered
    assert calls == [(1, 0), (1, 1), (1, 1), (1, 1), (1, 1), (1, 2), (2, 0)]
    assert sub.delivered == 4 and outbox.pending == () and outbox.failures == ()
    warnings = [r for r in caplog.records if r.name == "theus" and r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all(r.exc_info for r in warnings)
    assert "attempt 3" in warnings[-1].getMessage()


def test_a_failing_message_stays_pending_and_visible(outbox: Outbox) -> None:
    outbox.retry = RetryPolicy(base=0.001, max_delay=0.001)
    failed_twice = threading.Event()
    healed = threading.Event()
    errors: list[BaseException] = []

    def handler(message: OutboxMessage) -> None:
        if not healed.is_set():
            errors.append(KeyError(len(errors)))
            if len(errors) >= 2:
                failed_twice.set()
            raise errors[-1]

    sub = outbox.subscribe(handler)
    outbox.release(msgs(7, "a", "b"))
    wait(failed_twice)
    (failure,) = outbox.failures
    assert failure.subscription is sub and ids([failure.message]) == [(7, 0)]
    assert failure.attempts >= 2 and failure.error in errors
    assert sub.failure is not None and sub.failure.message == failure.message
    assert ids(sub.pending) == [(7, 0), (7, 1)] == ids(outbox.pending)
    assert outbox.flush(timeout=0) is False
    healed.set()
    assert outbox.flush(timeout=TIMEOUT)
    assert outbox.failures == () and sub.failure is None and outbox.pending == ()


def test_a_failing_subscription_does_not_block_another(outbox: Outbox) -> None:
    heal = threading.Event()

    def stuck(message: OutboxMessage) -> None:
        if not heal.is_set():
            raise RuntimeError("stuck")

    outbox.retry = RetryPolicy(base=0.001, max_delay=0.001)
    a = outbox.subscribe(stuck)
    ok = Recorder(3)
    outbox.subscribe(ok)
    outbox.release(msgs(1, "x", "y", "z"))
    wait(ok.done)
    assert ids(ok.got) == [(1, 0), (1, 1), (1, 2)]
    assert ids(a.pending) == ids(outbox.pending) == [(1, 0), (1, 1), (1, 2)]
    heal.set()
    assert outbox.flush(timeout=TIMEOUT) and outbox.pending == ()
    assert a.delivered == 3


def test_closing_a_subscription_gives_its_messages_back(outbox: Outbox) -> None:
    heal = threading.Event()

    def stuck(message: OutboxMessage) -> None:
        if not heal.is_set():
            raise RuntimeError("stuck")

    a = outbox.subscribe(stuck, topics=["a.*"])
    b = outbox.subscribe(Recorder(), topics=["**"])
    outbox.release(msgs(1, "a.1", "b.1", "a.2"))
    outbox.release(msgs(2, "a.3"))
    assert outbox.flush(timeout=0) is False  # a is stuck on a.1
    b.close()
    assert b.closed and outbox.subscriptions == (a,)
    a.close()
    a.close()  # idempotent
    assert a.closed and a.pending == () and a.failure is None
    # b may or may not have delivered some: what nobody delivered is unclaimed again, in order
    left = ids(outbox.unclaimed)
    assert left == ids(outbox.pending) and left == sorted(left)
    assert outbox.flush(timeout=TIMEOUT)
    assert ids(outbox.drain()) == left
    heal.set()


def test_claims_given_up_after_another_delivered_are_delivered(outbox: Outbox) -> None:
    heal = threading.Event()
    a = outbox.subscribe(lambda m: None if heal.is_set() else 1 / 0)
    b = Recorder(2)
    outbox.subscribe(b)
    outbox.release(msgs(1, "x", "y"))
    wait(b.done)
    a.close()
    assert outbox.pending == () and outbox.unclaimed == ()
    heal.set()


def test_handlers_run_one_at_a_time_and_may_use_the_outbox(outbox: Outbox) -> None:
    running = 0
    overlap: list[int] = []
    got: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def handler(message: OutboxMessage) -> None:
        nonlocal running
        running += 1
        overlap.append(running)
        got.append((message.version, message.index))
        if message.version == 1:  # a handler may release (commit) and pull
            if len(got) == 1:
                outbox.release(msgs(2, "again"))
            assert outbox.pending  # the lock is not held
            try:
                outbox.flush()
            except ContextError as exc:
                errors.append(exc)
        if got.count((2, 0)) == 2:
            done.set()
        running -= 1

    outbox.subscribe(handler)
    outbox.subscribe(handler)
    outbox.release(msgs(1, "first"))
    wait(done)
    assert outbox.flush(timeout=TIMEOUT)
    assert set(overlap) == {1}
    assert sorted(got) == [(1, 0), (1, 0), (2, 0), (2, 0)]
    assert len(errors) == 2 and "wait for itself" in str(errors[0])


def test_concurrent_releases_lose_nothing(outbox: Outbox) -> None:
    rec = Recorder()
    outbox.subscribe(rec)
    n, per = 8, 50
    barrier = threading.Barrier(n)

    def release(t: int) -> None:
        barrier.wait(TIMEOUT)
        for i in range(per):
            outbox.release((OutboxMessage("t", None, t, i), OutboxMessage("t", None, t, i)))

    threads = [threading.Thread(target=release, args=(t,)) for t in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert outbox.flush(timeout=TIMEOUT)
    assert len(rec.got) == n * per * 2
    for t in range(n):  # each release call's messages keep their order
        assert [m.index for m in rec.got if m.version == t] == [i for i in range(per) for _ in "ab"]


# ------------------------------------------------------------------------------ flush and close


def test_flush_checks_timeout_and_ignores_unclaimed(outbox: Outbox) -> None:
    outbox.release(msgs(1, "a"))
    assert outbox.flush() is True  # nobody claims it: nothing to wait for
    assert outbox.flush(timeout=0) is True
    for bad, error in ((-1, ValueError), ("1", TypeError)):
        with pytest.raises(error, match="timeout"):
            outbox.flush(timeout=bad)
        with pytest.raises(error, match="timeout"):
            outbox.close(timeout=bad)


def test_close_stops_delivery_and_keeps_the_messages() -> None:
    box = Outbox(retry=NOW)
    entered, go = threading.Event(), threading.Event()
    got: list[OutboxMessage] = []

    def handler(message: OutboxMessage) -> None:
        got.append(message)
        entered.set()
        assert go.wait(TIMEOUT)

    sub = box.subscribe(handler)
    box.release(msgs(1, "a", "b"))
    wait(entered)  # the handler is running on (1, 0)
    box.close(timeout=0)  # returns without waiting for the running call
    assert box.closed and sub.closed and box.subscriptions == ()
    assert box.flush(timeout=0) is False  # closed, something released before is pending
    with pytest.raises(ContextError, match="closed"):
        box.subscribe(Recorder())
    box.release(msgs(2, "c"))  # kept, unclaimed
    go.set()
    box.close(timeout=TIMEOUT)  # idempotent; waits for the worker this time
    assert [t for t in threading.enumerate() if t.name == "theus-outbox" and t.is_alive()] == []
    assert ids(got) == [(1, 0)]  # the running call finished; no other call started
    assert sub.delivered == 1
    assert ids(box.pending) == ids(box.unclaimed) == [(1, 1), (2, 0)]
    assert ids(box.drain()) == [(1, 1), (2, 0)]
    assert box.flush() is True


def test_close_from_a_handler_does_not_wait_for_itself() -> None:
    box = Outbox()
    closed = threading.Event()

    def handler(message: OutboxMessage) -> None:
        box.close()  # default bounded timeout; must not join its own thread
        closed.set()

    box.subscribe(handler)
    box.release(msgs(1, "a", "b"))
    wait(closed)
    box.close(timeout=TIMEOUT)
    assert ids(box.unclaimed) == [(1, 1)]


def test_a_failing_call_on_a_closed_subscription_gives_the_message_back() -> None:
    box = Outbox(retry=NOW)
    entered, go = threading.Event(), threading.Event()

    def handler(message: OutboxMessage) -> None:
        entered.set()
        assert go.wait(TIMEOUT)
        raise RuntimeError("late failure")

    sub = box.subscribe(handler)
    box.release(msgs(1, "a"))
    wait(entered)
    sub.close()
    go.set()
    box.close(timeout=TIMEOUT)
    assert sub.delivered == 0 and ids(box.unclaimed) == [(1, 0)]


# ------------------------------------------------------------------------------ the stage


def test_outbox_stage_releases_the_numbered_messages_in_commit_order() -> None:
    box = Outbox()
    pipeline = CommitPipeline([OutboxStage(box)])
    pipeline.watch(lambda has_before, wants: None, frozenset())
    assert pipeline.wants(signals=False, outbox=True)
    base = SimpleNamespace(version=0)
    tickets = []
    for version, topics in ((1, ["a", "b"]), (2, []), (3, ["c"])):
        outbox = [OutboxMessage(t, t.upper()) for t in topics]
        changes = Changes([Change("set", ("domain", "x"), version)], "proc", base, outbox)
        tickets.append(pipeline.enqueue(SimpleNamespace(version=version), changes))
    pipeline.drain(tickets[-1])
    assert list(box.pending) == [
        OutboxMessage("a", "A", 1, 0),
        OutboxMessage("b", "B", 1, 1),
        OutboxMessage("c", "C", 3, 0),
    ]
    box.close()


def test_a_message_put_back_by_a_failed_drain_stays_unclaimed(outbox: Outbox) -> None:
    outbox.release(msgs(1, "a", "b"))
    rec = Recorder()

    def handler(message: OutboxMessage) -> None:
        outbox.subscribe(rec)  # takes (1, 1), not the message being drained
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        outbox.drain(handler)
    assert outbox.flush(timeout=TIMEOUT)
    assert ids(rec.got) == [(1, 1)]
    assert ids(outbox.unclaimed) == ids(outbox.pending) == [(1, 0)]
    assert [f.subscription for f in outbox.failures] == [None]


def test_subscription_repr_and_topics(outbox: Outbox) -> None:
    sub = outbox.subscribe(Recorder(), topics=("a.*",))
    assert sub.topics == ("a.*",) and "1 subscription" in repr(outbox)
    assert "pending" in repr(sub)
    sub.close()
    assert "closed" in repr(sub)
