"""spec/10 — calling the engine from inside its own running process raises
``NestedExecutionError`` at once, never a deadlock (REQUIREMENTS §4.9).

Every call that could hang runs under ``run_with_timeout``: a deadlock fails the test instead of
hanging the suite.
"""

from __future__ import annotations

import asyncio

import pytest

from theus import NestedExecutionError, TheusError, process
from theus_conformance.support import in_thread, run_with_timeout


@process
def inner(ctx):
    return "inner ran"


def _nested_calls(engine):
    return {
        "execute": lambda: engine.execute(inner),
        "execute-by-name": lambda: engine.execute("inner"),
        "transaction": lambda: engine.transaction().__enter__(),
        "transaction-with": lambda: _with_transaction(engine),
        "compare_and_swap": lambda: engine.compare_and_swap(
            engine.state.version, data={"domain.x": 1}
        ),
        "execute_workflow": lambda: engine.execute_workflow("steps: []"),
    }


def _with_transaction(engine):
    with engine.transaction() as tx:
        tx.update(data={"domain.x": 1})


NESTED = sorted(_nested_calls(None))


@pytest.mark.parametrize("call", NESTED)
def test_nested_call_raises_at_once_and_can_be_handled(make_engine, call):
    engine = make_engine({"domain": {"x": 0, "y": 0}})
    engine.register(inner)

    @process(outputs=["domain.y"])
    def outer(ctx):
        try:
            _nested_calls(engine)[call]()
        except NestedExecutionError as exc:
            assert isinstance(exc, RuntimeError) and isinstance(exc, TheusError)
            ctx.domain.y = "handled"
            return {"y": "handled"}  # after in-place writes only an exact mapping (spec/06)
        return "no error raised"

    assert run_with_timeout(lambda: engine.execute(outer)) == {"y": "handled"}
    assert engine.state.domain.y == "handled"
    assert engine.state.domain.x == 0
    assert engine.state.version == 1


@pytest.mark.parametrize("call", NESTED)
def test_propagated_nested_error_commits_nothing(make_engine, call):
    engine = make_engine({"domain": {"x": 0, "y": 0}})
    engine.register(inner)
    before = engine.state

    @process(outputs=["domain.y"])
    def outer(ctx):
        ctx.domain.y = "written before"
        _nested_calls(engine)[call]()

    with pytest.raises(NestedExecutionError):
        run_with_timeout(lambda: engine.execute(outer))
    assert engine.state is before
    # the engine still works afterwards
    assert run_with_timeout(lambda: engine.execute(inner)) == "inner ran"


def test_reading_state_inside_a_process_is_allowed(make_engine):
    engine = make_engine({"domain": {"x": 5}})

    @process
    def peek(ctx):
        return engine.state.domain.x, engine.state.version

    assert run_with_timeout(lambda: engine.execute(peek)) == (5, 0)


def test_other_engines_are_not_affected(make_engine):
    e1 = make_engine()
    e2 = make_engine({"domain": {"n": 0}})

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def bump(ctx):
        ctx.domain.n = ctx.domain.n + 1

    @process
    def drive_other(ctx):
        e2.execute(bump)
        with e2.transaction() as tx:
            tx.update(data={"domain.m": 1})
        return e2.state.domain.n

    assert run_with_timeout(lambda: e1.execute(drive_other)) == 1
    assert e2.state.version == 2


@pytest.mark.requires("threads")
def test_calls_from_other_threads_are_not_nested(make_engine):
    engine = make_engine({"domain": {"n": 0}})

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def bump(ctx):
        ctx.domain.n = ctx.domain.n + 1

    @process
    def spawn(ctx):
        return in_thread(lambda: engine.execute(bump))

    run_with_timeout(lambda: engine.execute(spawn))
    assert engine.state.domain.n == 1


@pytest.mark.requires("async")
def test_aexecute_from_a_sync_process_is_nested(make_engine):
    engine = make_engine()
    engine.register(inner)

    @process
    def run_async_inside(ctx):
        try:
            asyncio.run(engine.aexecute(inner))
        except NestedExecutionError:
            return "nested"
        return "not detected"

    assert run_with_timeout(lambda: engine.execute(run_async_inside)) == "nested"


@pytest.mark.requires("async")
@pytest.mark.parametrize("front", ["execute", "aexecute"])
@pytest.mark.parametrize("call", ["aexecute", "execute", "aexecute_workflow"])
def test_nested_call_from_an_async_process(make_engine, front, call):
    engine = make_engine({"domain": {"y": 0}})
    engine.register(inner)

    @process(outputs=["domain.y"])
    async def async_outer(ctx):
        await asyncio.sleep(0)
        try:
            if call == "aexecute":
                await engine.aexecute(inner)
            elif call == "aexecute_workflow":
                await engine.aexecute_workflow("steps: []")
            else:
                engine.execute(inner)
        except NestedExecutionError:
            return "handled"  # written by return mapping
        return "not detected"

    if front == "execute":
        result = run_with_timeout(lambda: engine.execute(async_outer))
    else:
        result = run_with_timeout(lambda: asyncio.run(engine.aexecute(async_outer)))
    assert result == "handled"
    assert engine.state.domain.y == "handled"


@pytest.mark.requires("async")
def test_concurrent_tasks_are_not_nested(make_engine):
    engine = make_engine({"domain": {"a": 0, "b": 0}})

    def make(path):
        @process(outputs=[f"domain.{path}"], name=f"set_{path}", retries=20)
        async def setter(ctx):
            await asyncio.sleep(0.01)
            setattr(ctx.domain, path, 1)

        return setter

    async def scenario():
        await asyncio.gather(engine.aexecute(make("a")), engine.aexecute(make("b")))

    run_with_timeout(lambda: asyncio.run(scenario()))
    assert engine.state.domain == {"a": 1, "b": 1}


@pytest.mark.requires("async")
@pytest.mark.parametrize("front", ["execute", "aexecute"])
def test_a_task_spawned_by_a_process_is_not_nested_after_it_returned(make_engine, front):
    engine = make_engine({"domain": {"x": 0, "y": 0}})
    spawned: list[asyncio.Task] = []

    @process(outputs=["domain.y"])
    async def set_y(ctx):
        ctx.domain.y = 2

    @process(outputs=["domain.x"])
    async def spawner(ctx):
        async def later():
            await asyncio.sleep(0.05)  # runs after spawner has committed
            return await engine.aexecute(set_y)

        spawned.append(asyncio.create_task(later()))
        ctx.domain.x = 1

    if front == "aexecute":

        async def scenario():
            await engine.aexecute(spawner)
            return await spawned[0]

        run_with_timeout(lambda: asyncio.run(scenario()))
    else:
        run_with_timeout(lambda: engine.execute(spawner))

        async def wait_for_task():
            while not spawned[0].done():
                await asyncio.sleep(0.01)

        loop = spawned[0].get_loop()
        run_with_timeout(lambda: asyncio.run_coroutine_threadsafe(wait_for_task(), loop).result(20))
        spawned[0].result()
    assert engine.state.domain == {"x": 1, "y": 2}
    assert engine.state.version == 2


@pytest.mark.requires("async")
def test_a_task_spawned_by_a_process_is_nested_while_it_runs(make_engine):
    engine = make_engine({"domain": {"x": 0}})

    @process(outputs=["domain.x"])
    async def spawner(ctx):
        async def inside():
            try:
                await engine.aexecute(inner)
            except NestedExecutionError:
                return "nested"
            return "ran"

        ctx.domain.x = await asyncio.create_task(inside())

    engine.register(inner)
    run_with_timeout(lambda: asyncio.run(engine.aexecute(spawner)))
    assert engine.state.domain.x == "nested"


def test_a_thread_started_with_the_process_context_is_nested(make_engine):
    import contextvars
    import threading

    engine = make_engine({"domain": {"x": 0}})
    engine.register(inner)

    @process(outputs=["domain.x"])
    def outer(ctx):
        seen = []
        context = contextvars.copy_context()

        def in_thread():
            try:
                engine.execute(inner)
                seen.append("ran")
            except NestedExecutionError:
                seen.append("nested")

        t = threading.Thread(target=context.run, args=(in_thread,))
        t.start()
        t.join(20)
        ctx.domain.x = seen[0]

    run_with_timeout(lambda: engine.execute(outer))
    assert engine.state.domain.x == "nested"
