"""spec/08 — signals published after commit, the SignalHub (REQUIREMENTS §4.7)."""

from __future__ import annotations

import asyncio
import queue
import threading

import pytest

from theus import Signal, SignalEmpty, SignalHub, TheusError, process
from theus_conformance.support import DEADLOCK_TIMEOUT, drain, run_with_timeout

# ---------------------------------------------------------------------------------------------
# publication after commit


def test_signals_are_published_after_commit_in_write_order(make_engine):
    engine = make_engine({"domain": {"n": 0}})
    rx = engine.signals.subscribe()
    seen_during_run = []

    @process(inputs=["domain.n"], outputs=["domain.n", "domain.sig_b", "domain.sig_a"])
    def emit(ctx):
        ctx.domain.sig_b = "first"
        ctx.domain.sig_a = {"payload": [1]}
        ctx.domain.n = ctx.domain.n + 1
        seen_during_run.extend(drain(rx))

    engine.execute(emit)
    assert seen_during_run == []  # nothing before the commit
    messages = drain(rx)
    assert all(isinstance(m, Signal) for m in messages)
    assert [(m.name, m.value, m.version) for m in messages] == [
        ("domain.sig_b", "first", 1),
        ("domain.sig_a", {"payload": [1]}, 1),
    ]


def test_signals_follow_commit_order_across_transactions(make_engine):
    engine = make_engine()
    rx = engine.signals.subscribe()
    for i in range(5):
        with engine.transaction() as tx:
            tx.update(signal={"domain.sig_tick": i, "global.cmd_echo": -i})
    messages = drain(rx)
    assert [(m.name, m.value, m.version) for m in messages] == [
        pair
        for i in range(5)
        for pair in (("domain.sig_tick", i, i + 1), ("global.cmd_echo", -i, i + 1))
    ]


def test_signal_lives_one_version(make_engine):
    engine = make_engine()
    with engine.transaction() as tx:
        tx.update(signal={"domain.sig_x": 1})
    with_signal = engine.state
    assert dict(with_signal.signals) == {"domain.sig_x": 1}
    assert "sig_x" not in with_signal.domain
    with engine.transaction() as tx:
        tx.update(data={"domain.y": 1})
    assert dict(engine.state.signals) == {}
    assert dict(with_signal.signals) == {"domain.sig_x": 1}


def test_snapshot_signals_is_read_only(make_engine):
    engine = make_engine()
    with engine.transaction() as tx:
        tx.update(signal={"domain.sig_x": 1})
    signals = engine.state.signals
    with pytest.raises((TheusError, TypeError)):
        signals["domain.sig_y"] = 2
    assert dict(engine.state.signals) == {"domain.sig_x": 1}


def test_failed_transaction_publishes_nothing(make_engine):
    engine = make_engine({"domain": {"n": 0}})
    rx = engine.signals.subscribe()

    @process(outputs=["domain.sig_x"])
    def emit_then_fail(ctx):
        ctx.domain.sig_x = 1
        raise ValueError("no")

    with pytest.raises(ValueError):
        engine.execute(emit_then_fail)
    assert drain(rx) == []
    assert dict(engine.state.signals) == {}


# ---------------------------------------------------------------------------------------------
# the hub


def test_standalone_hub_publish_and_subscribe(backend):
    hub = SignalHub(backend=backend)
    assert hub.publish("nobody listens") == 0
    rx1, rx2 = hub.subscribe(), hub.subscribe()
    payload = {"any": ["python", "object"]}
    obj = object()
    assert hub.publish(payload) == 2
    assert hub.publish(obj) == 2
    for rx in (rx1, rx2):
        first = rx.recv(timeout=1)
        assert first == payload
        assert rx.try_recv() is obj
    rx1.close()
    assert hub.publish(3) == 1
    assert rx2.try_recv() == 3


def test_receiver_sees_only_messages_after_subscribing(backend):
    hub = SignalHub(backend=backend)
    hub.publish("early")
    rx = hub.subscribe()
    hub.publish("late")
    assert drain(rx) == ["late"]


def test_receiver_within_capacity_is_lossless_and_ordered(backend):
    hub = SignalHub(capacity=10_000, backend=backend)
    rx = hub.subscribe()
    for i in range(10_000):
        hub.publish(i)
    assert drain(rx) == list(range(10_000))


def test_try_recv_empty_raises_signal_empty(backend):
    hub = SignalHub(backend=backend)
    rx = hub.subscribe()
    with pytest.raises(SignalEmpty) as info:
        rx.try_recv()
    assert isinstance(info.value, queue.Empty)
    assert isinstance(info.value, TheusError)
    with pytest.raises(queue.Empty):
        rx.try_recv()


def test_recv_timeout(backend):
    hub = SignalHub(backend=backend)
    rx = hub.subscribe()
    with pytest.raises(TimeoutError):
        run_with_timeout(lambda: rx.recv(timeout=0.05))


@pytest.mark.requires("threads")
def test_recv_blocks_until_a_message_from_another_thread(backend):
    hub = SignalHub(backend=backend)
    rx = hub.subscribe()
    started = threading.Event()

    def publisher():
        started.wait()
        hub.publish("from another thread")

    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    started.set()
    assert run_with_timeout(lambda: rx.recv(timeout=DEADLOCK_TIMEOUT)) == "from another thread"
    thread.join()


@pytest.mark.requires("threads")
def test_iteration_until_closed(backend):
    hub = SignalHub(backend=backend)
    rx = hub.subscribe()
    got = []
    three = threading.Event()

    def consume():
        for message in rx:
            got.append(message)
            if len(got) == 3:
                three.set()
        return "iteration ended"

    consumer = threading.Thread(target=lambda: got.append(consume()), daemon=True)
    consumer.start()
    for i in range(3):
        hub.publish(i)
    assert three.wait(DEADLOCK_TIMEOUT)
    rx.close()
    consumer.join(DEADLOCK_TIMEOUT)
    assert not consumer.is_alive(), "iterating a receiver must end when it is closed"
    assert got == [0, 1, 2, "iteration ended"]


def test_iteration_of_a_closed_receiver_ends(backend):
    hub = SignalHub(backend=backend)
    rx = hub.subscribe()
    rx.close()
    hub.publish("after close")
    assert run_with_timeout(lambda: list(rx)) == []


@pytest.mark.requires("async")
def test_recv_async(backend):
    hub = SignalHub(backend=backend)
    rx = hub.subscribe()

    async def scenario():
        waiter = asyncio.ensure_future(rx.recv_async())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        hub.publish("hello")
        first = await asyncio.wait_for(waiter, DEADLOCK_TIMEOUT)
        hub.publish("world")
        second = await asyncio.wait_for(rx.recv_async(), DEADLOCK_TIMEOUT)
        return first, second

    assert asyncio.run(scenario()) == ("hello", "world")


def test_engine_hubs_are_per_engine(make_engine):
    e1, e2 = make_engine(), make_engine()
    assert e1.signals is not e2.signals
    rx1, rx2 = e1.signals.subscribe(), e2.signals.subscribe()
    with e1.transaction() as tx:
        tx.update(signal={"domain.sig_only_e1": 1})
    assert [m.name for m in drain(rx1)] == ["domain.sig_only_e1"]
    assert drain(rx2) == []
    assert e1.signals.publish("manual") == 1
    assert drain(rx1) == ["manual"]
    assert drain(rx2) == []


def test_signal_message_fields():
    message = Signal(name="domain.sig_x", value=1, version=3)
    assert (message.name, message.value, message.version) == ("domain.sig_x", 1, 3)
    assert message == Signal(name="domain.sig_x", value=1, version=3)


def test_a_conflicted_attempt_publishes_nothing(make_engine):
    """spec/05 + 08: only the attempt that commits publishes; a lost attempt's signals vanish
    with its draft (the first attempt loses to a commit landed from another thread)."""
    from theus_conformance.support import in_thread

    engine = make_engine({"domain": {"n": 0}})
    rx = engine.signals.subscribe()
    attempts = []

    @process(inputs=["domain.n"], outputs=["domain.n", "domain.sig_attempt"], retries=3)
    def bump(ctx):
        attempts.append(ctx.domain.n)
        ctx.domain.sig_attempt = len(attempts)
        ctx.domain.n += 1
        if len(attempts) == 1:  # a concurrent commit on what this attempt read

            def other():
                with engine.transaction() as tx:
                    tx.update(data={"domain.n": 100})

            in_thread(other)

    engine.execute(bump)
    assert len(attempts) == 2
    assert engine.state.domain.n == 101
    assert [(s.name, s.value) for s in drain(rx)] == [("domain.sig_attempt", 2)]
