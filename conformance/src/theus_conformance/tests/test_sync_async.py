"""spec/11 — the dual sync/async interface (REQUIREMENTS §4.10)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from theus import ContextError, ContractViolationError, TheusEngine, process
from theus_conformance.support import DEADLOCK_TIMEOUT, drain, run_with_timeout


def test_sync_process_runs_inline_on_the_callers_thread(make_engine):
    engine = make_engine()

    @process
    def where(ctx):
        return threading.get_ident()

    assert engine.execute(where) == threading.get_ident()
    other = run_with_timeout(lambda: (engine.execute(where), threading.get_ident()))
    assert other[0] == other[1]


pytestmark_async = pytest.mark.requires("async")


@pytestmark_async
def test_async_process_from_sync_execute_runs_on_an_engine_loop(make_engine):
    engine = make_engine({"domain": {"n": 0}})
    where = []  # (a process that wrote in place returns nothing to the caller, spec/06)

    @process(inputs=["domain.n"], outputs=["domain.n"])
    async def async_bump(ctx, by):
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        ctx.domain.n = ctx.domain.n + by
        where.append((threading.get_ident(), id(loop)))

    caller = threading.get_ident()
    run_with_timeout(lambda: engine.execute(async_bump, by=2))
    engine.execute(async_bump, by=3)
    (_ident1, loop1), (ident2, loop2) = where
    assert ident2 != caller  # the engine's own loop thread, the caller blocks
    assert loop1 == loop2  # one engine-owned loop
    assert engine.state.domain.n == 5


@pytestmark_async
def test_aexecute_of_an_async_process_runs_in_the_callers_loop(make_engine):
    engine = make_engine({"domain": {"n": 0}})
    where = []

    @process(inputs=["domain.n"], outputs=["domain.n"])
    async def async_bump(ctx):
        await asyncio.sleep(0)
        ctx.domain.n = ctx.domain.n + 1
        where.append(asyncio.get_running_loop())

    async def scenario():
        await engine.aexecute(async_bump)
        return where[0] is asyncio.get_running_loop()

    assert run_with_timeout(lambda: asyncio.run(scenario())) is True
    assert engine.state.domain.n == 1


@pytestmark_async
def test_aexecute_of_a_sync_process_runs_inline_in_the_loop(make_engine):
    engine = make_engine({"domain": {"n": 0}})
    where = []

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def sync_bump(ctx):
        ctx.domain.n = ctx.domain.n + 1
        where.append(threading.get_ident())

    async def scenario():
        await engine.aexecute(sync_bump)
        return threading.get_ident()

    loop_thread = run_with_timeout(lambda: asyncio.run(scenario()))
    assert where == [loop_thread]
    assert engine.state.domain.n == 1


@pytestmark_async
def test_aexecute_of_a_cpu_heavy_process_runs_in_an_executor(make_engine):
    engine = make_engine({"domain": {"n": 0}})
    where = []

    @process(inputs=["domain.n"], outputs=["domain.n"], cpu_heavy=True)
    def heavy_bump(ctx, by):
        ctx.domain.n = ctx.domain.n + by
        where.append(threading.get_ident())

    async def scenario():
        await engine.aexecute(heavy_bump, by=4)
        return threading.get_ident()

    loop_thread = run_with_timeout(lambda: asyncio.run(scenario()))
    assert where[0] != loop_thread
    assert engine.state.domain.n == 4
    # the same process through the blocking API runs inline
    engine.execute(heavy_bump, by=1)
    assert where[1] == threading.get_ident()
    assert engine.state.domain.n == 5


@pytestmark_async
def test_aexecute_by_name_and_errors(make_engine):
    engine = make_engine({"domain": {"n": 0}})

    @process(outputs=["domain.n"])
    async def fail_async(ctx):
        ctx.domain.n = 1
        raise KeyError("async failure")

    engine.register(fail_async)
    before = engine.state

    async def scenario():
        with pytest.raises(KeyError, match="async failure"):
            await engine.aexecute("fail_async")

    run_with_timeout(lambda: asyncio.run(scenario()))
    assert engine.state is before
    with pytest.raises(KeyError, match="async failure"):
        run_with_timeout(lambda: engine.execute(fail_async))
    assert engine.state is before


@pytestmark_async
def test_many_concurrent_async_increments(make_engine):
    engine = make_engine({"domain": {"counter": 0}})
    tasks, per_task = 20, 5

    @process(inputs=["domain.counter"], outputs=["domain.counter"], retries=200)
    async def async_increment(ctx):
        value = ctx.domain.counter
        await asyncio.sleep(0)
        ctx.domain.counter = value + 1

    async def worker():
        for _ in range(per_task):
            await engine.aexecute(async_increment)

    async def scenario():
        await asyncio.gather(*(worker() for _ in range(tasks)))

    run_with_timeout(lambda: asyncio.run(scenario()), timeout=60)
    assert engine.state.domain.counter == tasks * per_task
    assert engine.state.version == tasks * per_task


@pytestmark_async
def test_async_processes_share_the_transaction_rules(make_engine):
    engine = make_engine({"domain": {"a": 1, "secret": 2}})

    @process(inputs=["domain.a"], outputs=["domain.sig_async"])
    async def async_reader(ctx):
        await asyncio.sleep(0)
        ctx.domain.sig_async = ctx.domain.a
        return ctx.domain.secret

    rx = engine.signals.subscribe()
    with pytest.raises(ContractViolationError):
        run_with_timeout(lambda: engine.execute(async_reader))
    assert engine.state.version == 0
    assert drain(rx) == []


def test_closed_engine_refuses_use(backend):
    engine = TheusEngine(context={"domain": {"x": 1}}, backend=backend)

    @process
    def noop(ctx):
        return None

    engine.close()
    with pytest.raises(ContextError):
        engine.execute(noop)
    with pytest.raises(ContextError):
        with engine.transaction() as tx:
            tx.update(data={"domain.x": 2})
    with pytest.raises(ContextError):
        engine.compare_and_swap(0, data={"domain.x": 2})


def test_context_manager_closes(backend):
    with TheusEngine(context={"domain": {"x": 1}}, backend=backend) as engine:
        with engine.transaction() as tx:
            tx.update(data={"domain.x": 2})
        assert engine.state.domain.x == 2
    with pytest.raises(ContextError):
        with engine.transaction() as tx:
            tx.update(data={"domain.x": 3})


@pytestmark_async
def test_close_stops_the_engine_loop(backend):
    before = {t.ident for t in threading.enumerate()}
    engine = TheusEngine(backend=backend)

    @process
    async def touch(ctx):
        return None

    engine.execute(touch)
    engine.close()
    deadline = DEADLOCK_TIMEOUT
    leftovers = []
    for _ in range(int(deadline / 0.05)):
        leftovers = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
        if not leftovers:
            break
        threading.Event().wait(0.05)
    assert leftovers == [], f"threads still alive after close(): {leftovers}"
