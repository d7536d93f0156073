"""spec/08 (delivery failures, receivers held weakly), spec/05 — once a commit landed nothing
makes the call raise, and one receiver's trouble never deprives the others."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import weakref

import pytest

from theus import StateUpdate, process
from theus_conformance.support import drain, run_with_timeout


def _abandoned_async_receiver(hub, how):
    """A receiver whose ``recv_async`` waited on an event loop that is now closed: it timed out
    inside an ``asyncio.run`` that has returned, or its loop was closed while it still waited."""
    rx = hub.subscribe()
    if how == "timed-out":

        async def wait_briefly():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rx.recv_async(), 0.05)

        asyncio.run(wait_briefly())
    else:
        loop = asyncio.new_event_loop()
        task = loop.create_task(rx.recv_async())
        loop.run_until_complete(asyncio.sleep(0.02))
        assert not task.done()
        loop.close()  # abruptly: the waiting task is never resumed
    return rx


@process(outputs=["domain.sig_s", "domain.n"])
def emit(ctx, value):
    ctx.domain.sig_s = value
    ctx.domain.n = value


@process(outputs=["domain.sig_s", "domain.n"])
def emit_returned(ctx, value):
    return StateUpdate(signal={"domain.sig_s": value}, data={"domain.n": value})


@process(outputs=["domain.sig_s", "domain.n"])
async def emit_async(ctx, value):
    ctx.domain.sig_s = value
    ctx.domain.n = value


def _commit_with_signal(engine, how, value):
    if how == "process":
        return engine.execute(emit, value=value)
    if how == "return":
        return engine.execute(emit_returned, value=value)
    if how == "async":
        return asyncio.run(engine.aexecute(emit_async, value=value))
    if how == "sync-async":
        return engine.execute(emit_async, value=value)
    if how == "transaction":
        with engine.transaction() as tx:
            tx.update(data={"domain.n": value}, signal={"domain.sig_s": value})
        return None
    engine.compare_and_swap(
        engine.state.version, data={"domain.n": value}, signal={"domain.sig_s": value}
    )
    return None


@pytest.mark.parametrize("abandon", ["timed-out", "loop-closed"])
@pytest.mark.parametrize("how", ["process", "return", "async", "sync-async", "transaction", "cas"])
def test_a_receiver_on_a_closed_loop_makes_no_call_fail(make_engine, how, abandon, caplog):
    engine = make_engine({"domain": {"n": 0}})
    before = engine.signals.subscribe()
    dead = _abandoned_async_receiver(engine.signals, abandon)
    after = engine.signals.subscribe()
    with caplog.at_level(logging.WARNING, logger="theus"):
        for value in (1, 2, 3):
            run_with_timeout(lambda v=value: _commit_with_signal(engine, how, v))
    assert engine.state.version == 3
    assert engine.state.domain.n == 3
    for rx in (before, after):
        assert [s.value for s in drain(rx)] == [1, 2, 3], "the other receivers got everything"
    # the dead waiter was detached: the messages stay queued for the receiver itself
    assert [s.value for s in drain(dead)] == [1, 2, 3]
    if abandon == "loop-closed":  # a waiter that could not be woken is reported
        assert engine.signals.delivery_failures == 1
        assert any("receiver" in r.getMessage() for r in caplog.records)
    else:  # a timed-out wait leaves no waiter behind: nothing failed
        assert engine.signals.delivery_failures == 0


def test_recv_async_cancelled_by_a_timeout_loses_nothing(backend):
    from theus import SignalHub

    hub = SignalHub(backend=backend)
    rx = hub.subscribe()

    async def scenario():
        for _ in range(3):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(rx.recv_async(), 0.01)
        hub.publish("a")
        hub.publish("b")
        return [await rx.recv_async(), await rx.recv_async()]

    assert run_with_timeout(lambda: asyncio.run(scenario())) == ["a", "b"]


@pytest.mark.parametrize("discard", ["never-bound", "deleted"])
def test_a_receiver_nobody_holds_stops_receiving(make_engine, discard):
    engine = make_engine({"domain": {"n": 0}})
    kept = engine.signals.subscribe()
    if discard == "never-bound":
        probe = weakref.ref(engine.signals.subscribe())
    else:
        rx = engine.signals.subscribe()
        probe = weakref.ref(rx)
        del rx
    gc.collect()
    assert probe() is None, "the hub must not keep a receiver alive"
    for i in range(50):
        with engine.transaction() as tx:
            tx.update(data={"domain.n": i}, signal={"domain.sig_s": i})
    assert engine.signals.publish("direct") == 1  # only the receiver still held
    assert len(drain(kept)) == 51
