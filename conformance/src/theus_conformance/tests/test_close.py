"""spec/11 — every call returns or raises, and what ``close()`` does to calls in flight.

Each scenario that could strand a caller runs under ``run_with_timeout``.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from theus import ContextError, NestedExecutionError, TheusEngine, process
from theus_conformance.support import run_with_timeout


@pytest.mark.requires("async")
@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt, GeneratorExit])
def test_base_exceptions_of_async_processes_reach_the_caller(make_engine, exc_type):
    engine = make_engine({"domain": {"x": 0}})

    @process(outputs=["domain.x"])
    async def bails_out(ctx):
        ctx.domain.x = 1
        await asyncio.sleep(0)
        raise exc_type("bye")

    @process(inputs=["domain.x"], outputs=["domain.x"])
    async def bump(ctx):
        await asyncio.sleep(0)
        ctx.domain.x += 1

    for _ in range(2):  # the engine loop survives: a second call works too
        with pytest.raises(exc_type):
            run_with_timeout(lambda: engine.execute(bails_out))
    assert engine.state.version == 0
    run_with_timeout(lambda: engine.execute(bump))
    assert engine.state.domain.x == 1


@pytest.mark.requires("async")
def test_close_inside_an_async_process_is_refused(make_engine):
    engine = make_engine({"domain": {"x": 0}})

    @process(outputs=["domain.x"])
    async def closes(ctx):
        try:
            engine.close()
        except NestedExecutionError:
            ctx.domain.x = "refused"
        await asyncio.sleep(0)

    run_with_timeout(lambda: engine.execute(closes))
    assert engine.state.domain.x == "refused"
    run_with_timeout(lambda: engine.execute(closes))  # still open
    assert engine.state.version == 2


@pytest.mark.parametrize("handled", [True, False])
def test_close_inside_a_sync_process_is_refused(make_engine, handled):
    engine = make_engine({"domain": {"x": 0}})

    @process(outputs=["domain.x"])
    def closes(ctx):
        ctx.domain.x = 1
        try:
            engine.close()
        except NestedExecutionError:
            if not handled:
                raise
            ctx.domain.x = "refused"

    if handled:
        run_with_timeout(lambda: engine.execute(closes))
        assert engine.state.domain.x == "refused"
    else:
        with pytest.raises(NestedExecutionError):
            run_with_timeout(lambda: engine.execute(closes))
        assert engine.state.version == 0
    with engine.transaction() as tx:  # the engine is still open
        tx.update(data={"domain.x": 5})
    assert engine.state.domain.x == 5


def _close_while(engine, started: threading.Event, call, release=None):
    """Run ``call`` on a thread, close the engine once ``started`` is set (then set
    ``release``, so the process goes on after close() returned); return the outcome of
    ``call``: the exception it raised, or ``("returned", value)``."""
    outcome: dict[str, object] = {}

    def target():
        try:
            outcome["value"] = ("returned", call())
        except BaseException as exc:
            outcome["value"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert started.wait(20), "the process never started"
    run_with_timeout(engine.close)
    if release is not None:
        release.set()
    thread.join(20)
    assert not thread.is_alive(), "a call in flight was stranded by close()"
    return outcome["value"]


@pytest.mark.requires("async")
def test_close_from_another_thread_fails_an_async_call_in_flight(backend):
    engine = TheusEngine(context={"domain": {"x": 0}}, backend=backend)
    started = threading.Event()

    @process(outputs=["domain.x"])
    async def slow(ctx):
        started.set()
        await asyncio.sleep(30)
        ctx.domain.x = 1

    result = _close_while(engine, started, lambda: engine.execute(slow))
    assert isinstance(result, ContextError), result
    assert "closed" in str(result)
    assert engine.state.version == 0


@pytest.mark.requires("async")
def test_close_from_another_thread_fails_an_aexecute_in_flight(backend):
    engine = TheusEngine(context={"domain": {"x": 0}}, backend=backend)
    started = threading.Event()
    release = threading.Event()

    @process(outputs=["domain.x"])
    async def slow(ctx):
        started.set()
        while not release.is_set():
            await asyncio.sleep(0.01)
        ctx.domain.x = 1

    result = _close_while(engine, started, lambda: asyncio.run(engine.aexecute(slow)), release)
    assert isinstance(result, ContextError), result
    assert engine.state.version == 0


def test_close_from_another_thread_fails_a_sync_call_in_flight(backend):
    engine = TheusEngine(context={"domain": {"x": 0}}, backend=backend)
    started = threading.Event()
    release = threading.Event()

    @process(outputs=["domain.x"])
    def slow(ctx):
        started.set()
        release.wait(20)
        ctx.domain.x = 1

    result = _close_while(engine, started, lambda: engine.execute(slow), release)
    assert isinstance(result, ContextError), result
    assert "closed" in str(result)
    assert engine.state.version == 0


def test_close_from_another_thread_fails_an_open_host_transaction(backend):
    engine = TheusEngine(context={"domain": {"x": 0}}, backend=backend)
    tx = engine.transaction().__enter__()
    tx.update(data={"domain.x": 1})
    run_with_timeout(engine.close)
    with pytest.raises(ContextError, match="closed"):
        tx.__exit__(None, None, None)
    assert engine.state.version == 0


def test_nothing_commits_after_close_returned(backend):
    """Many threads commit while the engine is closed: every commit either landed before
    close() returned or failed with ContextError; the count of landed commits is the version."""
    engine = TheusEngine(context={"domain": {"n": 0}}, backend=backend)
    landed = []
    failed = []
    go = threading.Event()

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def bump(ctx):
        ctx.domain.n += 1

    def worker():
        go.wait()
        while True:
            try:
                engine.execute(bump)
                landed.append(1)
            except ContextError:
                failed.append(1)
                return

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    go.set()
    threading.Event().wait(0.05)
    run_with_timeout(engine.close)
    version_at_close = engine.state.version
    for t in threads:
        t.join(20)
        assert not t.is_alive()
    assert len(failed) == 4
    assert engine.state.version == version_at_close == len(landed)
    assert engine.state.domain.n == len(landed)


def test_close_is_idempotent_and_state_stays_readable(backend):
    engine = TheusEngine(context={"domain": {"x": 1}}, backend=backend)
    engine.close()
    engine.close()
    assert engine.state.domain.x == 1
    with pytest.raises(ContextError, match="closed"):
        with engine.transaction() as tx:
            tx.update(data={"domain.x": 2})
