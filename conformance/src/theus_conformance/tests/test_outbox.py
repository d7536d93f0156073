"""spec/15 — the transactional outbox: messages released only by the commit that carried them
(numbered with its version and their index), then delivered at least once (Outbox delivery).

Waits go through ``engine.outbox.flush(timeout)`` or events, with a generous timeout that only
guards against hangs; retry tests use a zero-delay retry policy, so nothing depends on timing.
Conflicts are forced by landing a commit from a second thread while the attempt waits.
"""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

from theus import ConflictError, ContextError, ContractViolationError, TheusEngine, process
from theus.outbox import OutboxMessage, RetryPolicy
from theus.pipeline import Stage
from theus_conformance.support import (
    DEADLOCK_TIMEOUT,
    drain,
    in_thread,
    run_threads,
    run_with_timeout,
)


def ids(messages):
    return [(m.version, m.index) for m in messages]


class Recorder:
    """A handler recording what it receives (and the engine version it saw meanwhile)."""

    def __init__(self, engine=None):
        self.got = []
        self.seen_versions = []
        self.engine = engine

    def __call__(self, message):
        self.got.append(message)
        if self.engine is not None:
            self.seen_versions.append(self.engine.state.version)


def flushed(engine):
    assert run_with_timeout(lambda: engine.outbox.flush(timeout=DEADLOCK_TIMEOUT))


class Reject(Exception):
    pass


class Rejecting(Stage):
    name = "reject"

    def before_commit(self, changes):
        raise Reject(f"rejected {changes.process}")


# ---------------------------------------------------------------------------------------------
# release: only the landed commit, numbered


def test_process_messages_are_delivered_after_the_commit_with_version_and_index(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    rec = Recorder(engine)
    engine.outbox.subscribe(rec)
    payload = {"order": 7}

    @process(inputs=["domain.x"], outputs=["domain.x"])
    def bump(ctx):
        ctx.domain.x += 1
        ctx.outbox.add("orders.created", payload)
        ctx.outbox.add("orders.audit", ctx.domain.x)

    engine.execute(bump)
    engine.execute(bump)
    flushed(engine)
    assert [(m.topic, m.version, m.index) for m in rec.got] == [
        ("orders.created", 1, 0),
        ("orders.audit", 1, 1),
        ("orders.created", 2, 0),
        ("orders.audit", 2, 1),
    ]
    assert all(isinstance(m, OutboxMessage) for m in rec.got)
    assert rec.got[0].payload is payload  # kept as given
    assert [m.payload for m in rec.got[1::2]] == [1, 2]
    # the handler ran after the commit was visible
    assert [seen >= m.version for seen, m in zip(rec.seen_versions, rec.got, strict=True)] == [
        True
    ] * 4
    assert engine.outbox.pending == () and engine.outbox.failures == ()


def test_host_transaction_messages_are_released_by_its_commit(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    with engine.transaction() as tx:
        tx.update(data={"domain.x": 5})
        tx.outbox.add("a", 1)
        tx.outbox.add("b", 2)
    assert engine.state.version == 1
    assert list(engine.outbox.pending) == [OutboxMessage("a", 1, 1, 0), OutboxMessage("b", 2, 1, 1)]


def test_messages_alone_commit_a_version(make_engine):
    engine = make_engine({"domain": {"x": 0}})

    @process()
    def announce(ctx):
        ctx.outbox.add("hello", None)

    engine.execute(announce)
    assert engine.state.version == 1
    with engine.transaction() as tx:
        tx.outbox.add("again")
    assert engine.state.version == 2
    assert ids(engine.outbox.drain()) == [(1, 0), (2, 0)]
    assert engine.state.domain.x == 0


def test_drain_takes_what_no_subscription_claims_in_commit_order(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    for i in range(3):
        with engine.transaction() as tx:
            tx.outbox.add("t", i)
            tx.outbox.add("u", i)
    assert ids(engine.outbox.pending) == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]
    assert [m.payload for m in engine.outbox.drain(max_n=3)] == [0, 0, 1]
    got = []
    assert ids(engine.outbox.drain(got.append)) == [(2, 1), (3, 0), (3, 1)]
    assert ids(got) == [(2, 1), (3, 0), (3, 1)]
    assert engine.outbox.pending == ()


def test_signals_and_messages_of_one_commit_are_both_released(make_engine):
    engine = make_engine({"domain": {"n": 0}})
    rx = engine.signals.subscribe()
    seen_during_run = []

    @process(inputs=["domain.n"], outputs=["domain.n", "domain.sig_done"])
    def work(ctx):
        ctx.domain.n += 1
        ctx.domain.sig_done = ctx.domain.n
        ctx.outbox.add("done", ctx.domain.n)
        seen_during_run.append(engine.outbox.pending)

    engine.execute(work)
    assert seen_during_run == [()]  # nothing before the commit
    assert [(m.name, m.value, m.version) for m in drain(rx)] == [("domain.sig_done", 1, 1)]
    assert list(engine.outbox.drain()) == [OutboxMessage("done", 1, 1, 0)]


def test_messages_of_a_process_that_returns_its_writes(make_engine):
    engine = make_engine({"domain": {"x": 0, "y": 0}})

    @process(inputs=["domain.x"], outputs=["domain.x", "domain.y"])
    def mapped(ctx):
        ctx.outbox.add("mapped", ctx.domain.x)
        return 5, 6

    engine.execute(mapped)
    assert (engine.state.domain.x, engine.state.domain.y, engine.state.version) == (5, 6, 1)
    assert list(engine.outbox.drain()) == [OutboxMessage("mapped", 0, 1, 0)]


@pytest.mark.parametrize("topic", ["", None, 3])
def test_bad_topics_are_refused_by_add(make_engine, topic):
    engine = make_engine({"domain": {"x": 0}})
    with pytest.raises(TypeError, match="topic"):
        with engine.transaction() as tx:
            tx.outbox.add(topic, 1)
    assert engine.state.version == 0 and engine.outbox.pending == ()


# ---------------------------------------------------------------------------------------------
# nothing is released by an attempt that does not land


@pytest.mark.parametrize("kind", ["raises", "undeclared-write"])
def test_a_failing_process_releases_nothing(make_engine, kind):
    engine = make_engine({"domain": {"x": 0, "y": 0}})
    rec = Recorder()
    engine.outbox.subscribe(rec)

    @process(outputs=["domain.x"])
    def fails(ctx):
        ctx.outbox.add("never", 1)
        ctx.domain.x = 1
        if kind == "raises":
            raise ValueError("boom")
        ctx.domain.y = 1  # not an output

    expected = ValueError if kind == "raises" else ContractViolationError
    with pytest.raises(expected):
        engine.execute(fails)
    flushed(engine)
    assert engine.state.version == 0
    assert rec.got == [] and engine.outbox.pending == ()


def test_a_host_transaction_left_by_an_exception_releases_nothing(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    rec = Recorder()
    engine.outbox.subscribe(rec)
    with pytest.raises(KeyError):
        with engine.transaction() as tx:
            tx.update(data={"domain.x": 1})
            tx.outbox.add("never", 1)
            raise KeyError("out")
    with pytest.raises(RuntimeError):
        with engine.transaction() as tx:
            tx.outbox.add("never", 2)  # messages only
            raise RuntimeError("out")
    flushed(engine)
    assert engine.state.version == 0
    assert rec.got == [] and engine.outbox.pending == ()


@pytest.mark.parametrize("where", ["process", "transaction"])
def test_a_pipeline_rejection_releases_nothing(make_engine, where):
    engine = make_engine({"domain": {"x": 0}})
    rec = Recorder()
    engine.outbox.subscribe(rec)
    stage = Rejecting()
    engine.pipeline.add(stage)

    @process(outputs=["domain.x"])
    def write(ctx):
        ctx.domain.x = 1
        ctx.outbox.add("t", "process")

    def commit():
        if where == "process":
            engine.execute(write)
        else:
            with engine.transaction() as tx:
                tx.outbox.add("t", "transaction")

    with pytest.raises(Reject):
        commit()
    flushed(engine)
    assert engine.state.version == 0 and rec.got == [] and engine.outbox.pending == ()
    engine.pipeline.remove(stage)
    commit()
    flushed(engine)
    assert [(m.payload, m.version) for m in rec.got] == [(where, 1)]


@pytest.mark.requires("threads")
def test_a_conflicted_attempt_releases_nothing_and_the_rerun_starts_empty(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    rec = Recorder()
    engine.outbox.subscribe(rec)
    attempts = []

    @process(inputs=["domain.x"], outputs=["domain.x"])
    def increment(ctx):
        attempts.append(len(ctx.outbox))  # every attempt starts with an empty outbox
        value = ctx.domain.x
        ctx.outbox.add("inc", {"attempt": len(attempts), "from": value})
        ctx.outbox.add("inc.more", len(attempts))
        if len(attempts) == 1:
            in_thread(lambda: engine.compare_and_swap(engine.state.version, data={"domain.x": 10}))
        ctx.domain.x = value + 1

    engine.execute(increment)
    flushed(engine)
    assert attempts == [0, 0]
    assert engine.state.domain.x == 11 and engine.state.version == 2
    assert [(m.topic, m.payload, m.version, m.index) for m in rec.got] == [
        ("inc", {"attempt": 2, "from": 10}, 2, 0),
        ("inc.more", 2, 2, 1),
    ]
    assert engine.outbox.pending == ()


@pytest.mark.requires("threads")
def test_a_conflict_that_is_not_rerun_releases_nothing(make_engine):
    engine = make_engine({"domain": {"x": 0}})

    @process(inputs=["domain.x"], outputs=["domain.x"], retries=0)
    def loses(ctx):
        value = ctx.domain.x
        ctx.outbox.add("lost", value)
        in_thread(lambda: engine.compare_and_swap(engine.state.version, data={"domain.x": 10}))
        ctx.domain.x = value + 1

    with pytest.raises(ConflictError):
        engine.execute(loses)
    with pytest.raises(ConflictError):
        with engine.transaction() as tx:
            tx.update(data={"domain.x": tx.get("domain.x") + 1})
            tx.outbox.add("lost", "tx")
            in_thread(lambda: engine.compare_and_swap(engine.state.version, data={"domain.x": 20}))
    assert engine.state.version == 2
    assert engine.outbox.pending == ()


@pytest.mark.requires("threads")
def test_a_conflict_forced_by_a_concurrent_writer_releases_only_the_landed_attempt(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    read, landed = threading.Event(), threading.Event()
    runs = []

    @process(inputs=["domain.x"], outputs=["domain.x"])
    def slow(ctx):
        runs.append(None)
        value = ctx.domain.x
        ctx.outbox.add("slow", len(runs))
        if len(runs) == 1:
            read.set()
            assert landed.wait(DEADLOCK_TIMEOUT)
        ctx.domain.x = value + 1

    @process(outputs=["domain.x"])
    def writer(ctx):
        ctx.domain.x = 100
        ctx.outbox.add("writer", "w")

    def target(i):
        if i == 0:
            engine.execute(slow)
        else:
            assert read.wait(DEADLOCK_TIMEOUT)
            engine.execute(writer)
            landed.set()

    run_threads(2, target)
    assert engine.state.domain.x == 101 and engine.state.version == 2
    assert [(m.topic, m.payload, m.version) for m in engine.outbox.drain()] == [
        ("writer", "w", 1),
        ("slow", 2, 2),
    ]


# ---------------------------------------------------------------------------------------------
# delivery


def test_a_handler_that_raises_is_retried_and_nothing_is_lost(make_engine, caplog):
    engine = make_engine({"domain": {"x": 0}})
    engine.outbox.retry = RetryPolicy(base=0.0)
    calls = []

    def flaky(message):
        calls.append((message.version, message.index))
        if calls.count((message.version, message.index)) <= 2:
            raise ConnectionError(f"broker down for {message.version}")

    sub = engine.outbox.subscribe(flaky)
    for i in range(3):
        with engine.transaction() as tx:
            tx.outbox.add("t", i)
    flushed(engine)
    # each message: two failed calls then one that returns; later ones wait behind it
    assert calls == [(1, 0)] * 3 + [(2, 0)] * 3 + [(3, 0)] * 3
    assert sub.delivered == 3
    assert engine.outbox.pending == () and engine.outbox.failures == ()
    warned = [r for r in caplog.records if r.name == "theus" and "outbox handler" in r.getMessage()]
    assert len(warned) == 6


@pytest.mark.requires("threads")
def test_a_failing_message_stays_pending_and_visible(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    engine.outbox.retry = RetryPolicy(base=0.001, max_delay=0.001)
    failed, healed = threading.Event(), threading.Event()

    def handler(message):
        if not healed.is_set():
            failed.set()
            raise RuntimeError("not yet")

    sub = engine.outbox.subscribe(handler)
    with engine.transaction() as tx:
        tx.outbox.add("a", 1)
        tx.outbox.add("b", 2)
    assert failed.wait(DEADLOCK_TIMEOUT)
    (failure,) = engine.outbox.failures
    assert failure.subscription is sub and (failure.message.version, failure.message.index) == (
        1,
        0,
    )
    assert failure.attempts >= 1 and isinstance(failure.error, RuntimeError)
    assert ids(engine.outbox.pending) == [(1, 0), (1, 1)]
    healed.set()
    flushed(engine)
    assert engine.outbox.pending == () and sub.delivered == 2


@pytest.mark.requires("threads")
def test_concurrent_commits_are_delivered_in_commit_order(make_engine):
    n, per = 4, 10
    engine = make_engine({"domain": {f"c{i}": 0 for i in range(n)}})
    rec = Recorder()
    engine.outbox.subscribe(rec)

    def target(i):
        @process(inputs=[f"domain.c{i}"], outputs=[f"domain.c{i}"], name=f"step{i}")
        def step(ctx):
            ctx.domain[f"c{i}"] += 1
            ctx.outbox.add(f"t{i}", (i, ctx.domain[f"c{i}"]))

        for _ in range(per):
            engine.execute(step)

    run_threads(n, target)
    flushed(engine)
    assert engine.state.version == n * per
    assert [m.version for m in rec.got] == list(range(1, n * per + 1))
    assert sorted(m.payload for m in rec.got) == sorted(
        (i, k) for i in range(n) for k in range(1, per + 1)
    )


@pytest.mark.requires("threads")
def test_a_handler_may_use_the_engine(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    got = []

    @process(inputs=["domain.x"], outputs=["domain.x"])
    def follow_up(ctx):
        ctx.domain.x += 1
        ctx.outbox.add("followed", ctx.domain.x)

    def handler(message):
        got.append((message.topic, message.version))
        if message.topic == "start":
            engine.execute(follow_up)  # on the outbox worker, not nested

    engine.outbox.subscribe(handler)
    with engine.transaction() as tx:
        tx.outbox.add("start")
    flushed(engine)
    flushed(engine)  # the follow-up's message was released after the first flush began
    assert got == [("start", 1), ("followed", 2)]
    assert engine.state.domain.x == 1


def test_outboxes_are_per_engine(make_engine):
    a = make_engine({"domain": {"x": 0}})
    b = make_engine({"domain": {"x": 0}})
    assert a.outbox is not b.outbox
    a.outbox.retry = RetryPolicy(base=1.0)
    assert b.outbox.retry == RetryPolicy()
    with a.transaction() as tx:
        tx.outbox.add("only-a")
    assert [m.topic for m in a.outbox.pending] == ["only-a"]
    assert b.outbox.pending == ()


def test_topic_filters_and_a_late_subscription_get_the_backlog(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    with engine.transaction() as tx:
        for topic in ("orders.new", "audit.login", "orders.paid.late"):
            tx.outbox.add(topic)
    orders, everything = Recorder(), Recorder()
    engine.outbox.subscribe(orders, topics=["orders.*"])
    engine.outbox.subscribe(everything, topics=["**"])
    flushed(engine)
    assert [m.topic for m in orders.got] == ["orders.new"]
    assert [m.topic for m in everything.got] == ["audit.login", "orders.paid.late"]
    assert engine.outbox.pending == ()


@pytest.mark.requires("async")
def test_async_process_messages_are_released_by_its_commit(make_engine):
    engine = make_engine({"domain": {"x": 0}})

    @process(outputs=["domain.x"])
    async def write(ctx):
        ctx.outbox.add("async", 1)
        await asyncio.sleep(0)
        ctx.domain.x = 1

    @process(outputs=["domain.x"])
    async def fail(ctx):
        ctx.outbox.add("never", 1)
        await asyncio.sleep(0)
        raise ValueError("boom")

    asyncio.run(engine.aexecute(write))
    with pytest.raises(ValueError):
        engine.execute(fail)
    engine.execute(write)
    assert [(m.topic, m.version) for m in engine.outbox.drain()] == [("async", 1), ("async", 2)]


# ---------------------------------------------------------------------------------------------
# close


@pytest.mark.requires("threads")
def test_close_stops_delivery_without_hanging(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    entered, go = threading.Event(), threading.Event()
    got = []

    def handler(message):
        got.append(message)
        entered.set()
        assert go.wait(DEADLOCK_TIMEOUT)

    sub = engine.outbox.subscribe(handler)
    with engine.transaction() as tx:
        tx.outbox.add("a")
        tx.outbox.add("b")
    assert entered.wait(DEADLOCK_TIMEOUT)
    run_with_timeout(lambda: engine.outbox.close(timeout=0))  # a handler is still running
    go.set()
    run_with_timeout(engine.close)
    assert engine.outbox.closed and sub.closed
    assert ids(got) == [(1, 0)]  # no call started after close
    assert ids(engine.outbox.pending) == [(1, 1)]  # kept, not lost
    with pytest.raises(ContextError):
        engine.outbox.subscribe(Recorder())
    assert ids(engine.outbox.drain()) == [(1, 1)]


def test_engine_close_closes_an_idle_outbox(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    sub = engine.outbox.subscribe(Recorder())
    run_with_timeout(engine.close)
    assert sub.closed and engine.outbox.closed and engine.outbox.subscriptions == ()


def test_a_collected_engine_closes_its_outbox(backend):
    engine = TheusEngine({"domain": {"x": 0}}, backend=backend)
    got = []
    sub = engine.outbox.subscribe(got.append)  # the handler does not hold the engine
    outbox = engine.outbox
    with engine.transaction() as tx:
        tx.outbox.add("last")
    assert run_with_timeout(lambda: outbox.flush(timeout=DEADLOCK_TIMEOUT))
    del engine, tx
    gc.collect()
    assert outbox.closed and sub.closed
    assert [m.topic for m in got] == ["last"]
