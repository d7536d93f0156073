"""spec/22 — parallel processes: the worker's ctx is the inline ctx, its delta commits through
the usual rules; executors, conflicts, worker failures, batches, async.

Every test runs on each backend. Process-pool start-up is paid once per module: ``pool`` is a
module-scoped :class:`theus.parallel.ProcessPool` handed to engines as an executor object; a few
tests use the engine-owned ``"processes"`` executor itself. The processes live in
``_parallel_procs`` so that a worker process can import them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from theus import (
    BatchError,
    ContractViolationError,
    ExecutorUnavailableError,
    InvalidContractError,
    WorkerError,
    process,
)
from theus.parallel import ProcessPool, available_executors
from theus.parallel.pool import RemoteTraceback
from theus_conformance.support import DEADLOCK_TIMEOUT, drain, run_with_timeout
from theus_conformance.tests import _parallel_procs as procs

MIX_CONTEXT = {
    "domain": {
        "n": 3,
        "cfg": {"m": 1},
        "items": {"a": 10, "b": 20},
        "total": 0,
        "nested": {"x": None, "keep": True},
        "log_k": [],
        "seq": [],
        "tmp": "old",
        "summary": "",
        "other": "untouched",
    }
}


@pytest.fixture(scope="module")
def pool():
    """One process pool for the module (2 workers), shut down after it."""
    executor = ProcessPool(2)
    yield executor
    executor.shutdown()


@pytest.fixture(scope="module")
def thread_pool():
    executor = ThreadPoolExecutor(2)
    yield executor
    executor.shutdown()


@pytest.fixture(params=["pool", "threads", "executor-object"])
def executor(request, pool, thread_pool):
    """Each way of running a parallel process: a process pool, the engine's threads, and an
    arbitrary concurrent.futures.Executor passed as an object."""
    return {"pool": pool, "threads": "threads", "executor-object": thread_pool}[request.param]


def _outbox(engine):
    return [(m.topic, m.payload) for m in engine.outbox.unclaimed]


def test_same_results_as_inline(make_engine, executor):
    inline = make_engine(MIX_CONTEXT)
    parallel = make_engine(MIX_CONTEXT, executor=executor)
    got = []
    for engine, fn in ((inline, procs.mix_inline), (parallel, procs.mix_parallel)):
        receiver = engine.signals.subscribe()
        assert engine.execute(fn, k=2) is None
        got.append(
            (
                engine.state.to_dict(),
                engine.state.version,
                [(s.name, s.value, s.version) for s in drain(receiver)],
                _outbox(engine),
            )
        )
    assert got[0] == got[1]
    state = got[1][0]["domain"]
    assert state["total"] == 3 * 2 + 1 + 30 and state["nested"] == {
        "x": {"deep": [2, 37]},
        "keep": True,
    }
    assert "tmp" not in state and state["log_k"] == [2] and state["seq"] == [{"k": 2}]
    assert state["summary"] == "v0:37" and got[1][2] == [("domain.sig_done", {"k": 2}, 1)]


@pytest.mark.parametrize("how", ["single", "tuple", "dict", "update", "view"])
def test_return_mapping_as_inline(make_engine, executor, how):
    context = {"domain": {"n": 1, "cfg": {"m": [1, 2]}, "a": 0, "b": 0, "gone": 1}}
    results = []
    for fn, kw in ((procs.returns_inline, {}), (procs.returns_parallel, {"executor": executor})):
        engine = make_engine(context, **kw)
        if how in ("single", "view"):
            with pytest.raises(ContractViolationError) as info:
                engine.execute(fn, how=how)
            results.append((str(info.value).replace("_inline", "_parallel"), 0))
        else:
            value = engine.execute(fn, how=how)
            results.append((value if how != "update" else None, engine.state.to_dict()))
    assert results[0] == results[1]


def test_a_returned_view_comes_back_as_plain_data(make_engine, executor):
    engine = make_engine({"domain": {"n": 1, "cfg": {"m": [1, 2]}, "a": 0}}, executor=executor)
    assert engine.execute(procs.single_parallel, how="value") == 2
    assert engine.state.domain.a == 2
    value = engine.execute(procs.single_parallel, how="view")
    assert type(value) is dict and value == {"m": [1, 2]}
    assert engine.state.domain.a == {"m": [1, 2]}


@pytest.mark.parametrize("kind", ["reads", "writes"])
def test_contract_violations_from_workers(make_engine, executor, kind):
    context = {"domain": {"n": 1, "a": 0, "secret": "s"}}
    inline_fn = procs.reads_outside_inline if kind == "reads" else procs.writes_outside_inline
    par_fn = procs.reads_outside_parallel if kind == "reads" else procs.writes_outside_parallel
    inline = make_engine(context)
    parallel = make_engine(context, executor=executor)
    with pytest.raises(ContractViolationError) as expected:
        inline.execute(inline_fn)
    with pytest.raises(ContractViolationError) as info:
        parallel.execute(par_fn)
    assert str(info.value) == str(expected.value).replace("_inline", "_parallel")
    assert "domain.secret" in str(info.value)
    assert parallel.state.version == 0 and parallel.state.to_dict() == {
        "domain": context["domain"],
        "global": {},
    }


def test_exceptions_propagate_with_the_worker_traceback(make_engine, executor):
    engine = make_engine({"domain": {"n": 1, "a": 0}}, executor=executor)
    with pytest.raises(procs.Refused, match="no thanks") as info:
        engine.execute(procs.raises, text="no thanks")
    assert engine.state.version == 0 and engine.state.domain.a == 0
    if executor != "threads":  # a pickled call: the worker's traceback text is the cause
        cause = info.value.__cause__
        assert isinstance(cause, RemoteTraceback)
        assert "raise Refused(text)" in cause.text and "in raises" in cause.text


def test_a_conflict_re_dispatches_with_fresh_inputs(make_engine, executor, tmp_path):
    engine = make_engine({"domain": {"n": 1, "total": 0}}, executor=executor)
    attempts = tmp_path / "attempts"
    outcome = []
    runner = threading.Thread(
        target=lambda: outcome.append(engine.execute(procs.gated, gate=str(tmp_path)))
    )
    runner.start()
    try:
        run_with_timeout(lambda: _wait_for(lambda: attempts.exists()))
        with engine.transaction() as tx:  # lands between the worker's snapshot and its commit
            tx.update(data={"domain.n": 5})
    finally:
        (tmp_path / "open").touch()
        runner.join(DEADLOCK_TIMEOUT)
    assert outcome == [None]
    assert attempts.read_text().split() == ["1", "5"]  # re-run on the fresh value
    assert engine.state.domain.total == 50 and engine.state.version == 2


def _wait_for(condition):
    import time

    while not condition():
        time.sleep(0.005)


def test_concurrent_increments_lose_nothing(make_engine, executor):
    engine = make_engine({"domain": {"n": 0}}, executor=executor)
    assert engine.execute_many([(procs.bump, None)] * 6) == [None] * 6
    assert engine.state.domain.n == 6


def test_a_killed_worker_fails_that_call_only(make_engine, pool):
    engine = make_engine({"domain": {"n": 1, "a": 0, "pid": 0}}, executor=pool)
    with pytest.raises(WorkerError) as info:
        engine.execute(procs.killed)
    message = str(info.value)
    assert "'killed'" in message and "SIGKILL" in message and "nothing was committed" in message
    assert info.value.exitcode == -9 and info.value.pid is not None
    assert engine.state.version == 0 and engine.state.domain.a == 0
    assert engine.execute(procs.where)[1] != info.value.pid  # a new worker
    assert engine.state.domain.a == 2


def test_a_killed_worker_in_a_batch(make_engine, pool):
    engine = make_engine({"domain": {"n": 1, "a": 0, "pid": 0}}, executor=pool)
    with pytest.raises(BatchError) as info:
        engine.execute_many([(procs.where, None), (procs.killed, None), (procs.where, None)])
    assert info.value.failed == (1,)
    assert isinstance(info.value.results[1], WorkerError)
    assert info.value.results[0][0] == 2 and info.value.results[2][0] == 2
    assert engine.state.domain.a == 2


def test_the_engine_owned_process_pool(make_engine):
    engine = make_engine({"domain": {"n": 1, "a": 0, "pid": 0}})  # default executor: "processes"
    pid = engine.execute(procs.where)[1]
    assert pid != os.getpid() and engine.state.domain.a == 2
    with pytest.raises(WorkerError) as info:
        engine.execute(procs.killed)
    pids = {pid, engine.execute(procs.where)[1]} - {info.value.pid}
    engine.close()  # stops and joins the engine's workers: none is left running or a zombie
    assert not pids & {p.pid for p in multiprocessing.active_children()}
    for worker in pids:
        assert not _running_or_zombie(worker)


def _running_or_zombie(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True  # a zombie still answers signal 0: it must have been joined


def test_map_and_execute_many_keep_order(make_engine, executor):
    engine = make_engine({"domain": {"n": 100, "out": {}}}, executor=executor)
    assert engine.map(procs.square, [3, 1, 2]) == [109, 101, 104]
    assert engine.map(procs.store, [3, 1, 2]) == [None, None, None]
    assert engine.state.domain.out == {"x3": 9, "x1": 1, "x2": 4}
    assert engine.map(procs.pair, [{"x": 1, "y": 2}, {"x": 3, "y": 4}]) == [112, 134]
    calls = [(procs.square, {"x": 5}), (procs.pair, {"x": 0, "y": 7})]
    assert engine.execute_many(calls) == [125, 107]


def test_batch_errors_are_per_item(make_engine, executor):
    engine = make_engine({"domain": {"n": 0, "out": {}}}, executor=executor)
    with pytest.raises(BatchError) as info:
        engine.map(procs.square, [1, -2, 3, -4])
    error = info.value
    assert error.failed == (1, 3) and error.results[0] == 1 and error.results[2] == 9
    assert [str(e) for e in error.exceptions] == ["negative: -2", "negative: -4"]
    assert all(isinstance(e, procs.Refused) for e in error.exceptions)
    assert "call 1 (process 'square')" in error.exceptions[0].__notes__[-1]
    with pytest.raises(BatchError) as info:
        engine.map(procs.store, [1, -2, 3])
    assert info.value.failed == (1,) and info.value.results[::2] == [None, None]
    assert engine.state.domain.out == {"x1": 1, "x3": 9}  # the successful items committed


def test_map_items_must_be_kwargs_for_several_parameters(make_engine):
    engine = make_engine({"domain": {"n": 0}}, executor="threads")
    with pytest.raises(TypeError, match="item 0 is int"):
        engine.map(procs.pair, [1])
    with pytest.raises(TypeError, match=r"\(process, kwargs\) pair"):
        engine.execute_many([procs.pair])
    assert engine.state.version == 0


def test_aexecute_does_not_block_the_loop(make_engine, pool):
    engine = make_engine({"domain": {"n": 0}}, executor=pool)

    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        loops = await engine.aexecute(procs.spin, seconds=0.5)
        stop.set()
        await task
        return ticks, loops

    ticks, loops = asyncio.run(main())
    assert loops > 0 and engine.state.domain.spun == loops
    assert ticks >= 10  # ~50 expected: the loop ran while the worker spun


def test_aexecute_many_and_amap(make_engine, executor):
    engine = make_engine({"domain": {"n": 1, "out": {}}}, executor=executor)

    async def main():
        first = await engine.amap(procs.square, [2, 3])
        second = await engine.aexecute_many([(procs.pair, {"x": 1, "y": 1})])
        return first, second

    assert asyncio.run(main()) == ([5, 10], [12])


def test_flux_parallel_branches_with_parallel_processes(make_engine, executor):
    engine = make_engine({"domain": {"n": 2, "left": 0, "right": 0}}, executor=executor)
    engine.register(procs.left)
    engine.register(procs.right)
    workflow = (
        "steps:\n"
        "  - flux: parallel\n"
        "    branches:\n"
        "      - [{process: left, with: {x: 3}}]\n"
        "      - [{process: right, with: {x: 4}}]\n"
    )
    run = engine.execute_workflow(workflow)
    assert list(run.executed) == ["left", "right"]
    assert (engine.state.domain.left, engine.state.domain.right) == (6, 6)


def test_decoration_and_construction_checks():
    with pytest.raises(ValueError, match="executor must be one of"):
        process(outputs=["domain.a"], executor="gpu")(lambda ctx: None)
    with pytest.raises(TypeError, match="executor must be one of"):
        process(outputs=["domain.a"], executor=4)(lambda ctx: None)

    async def coro(ctx):
        return None

    with pytest.raises(TypeError, match="must be a plain def"):
        process(outputs=["domain.a"], parallel=True)(coro)
    with pytest.raises(TypeError, match="parallel must be a bool"):
        process(outputs=["domain.a"], parallel="yes")(lambda ctx: None)
    spec = process(outputs=["domain.a"], executor="threads")(lambda ctx: None).__theus_process__
    assert spec.parallel and spec.executor == "threads"


def test_engine_executor_checks(make_engine):
    with pytest.raises(ValueError, match=r"TheusEngine\(executor=\.\.\.\) must be one of"):
        make_engine(executor="cluster")
    with pytest.raises(TypeError, match=r"TheusEngine\(executor=\.\.\.\)"):
        make_engine(executor=object())


@pytest.mark.skipif(
    "subinterpreters" in available_executors(),
    reason="sub-interpreters are available here: the unavailable-executor error cannot occur",
)
def test_subinterpreters_unavailable_is_a_clear_error(make_engine):
    with pytest.raises(ExecutorUnavailableError) as info:
        make_engine(executor="subinterpreters")
    message = str(info.value)
    assert "'processes'" in message and "'threads'" in message and "3.13" in message
    assert sys.version.split()[0] in message


def test_a_local_function_cannot_go_to_a_process_pool(make_engine, pool):
    engine = make_engine({"domain": {"a": 0}}, executor=pool)

    @process(outputs=["domain.a"], parallel=True)
    def local(ctx):
        ctx.domain.a = 1

    with pytest.raises(TypeError, match="must be importable"):
        engine.execute(local)
    assert engine.state.version == 0
    threads = make_engine({"domain": {"a": 0}}, executor="threads")
    threads.execute(local)  # threads need no import
    assert threads.state.domain.a == 1


def test_a_pattern_into_a_list_is_refused_clearly(make_engine, executor):
    engine = make_engine({"domain": {"lst": [0, 0]}}, executor=executor)
    engine.execute(procs.into_list)  # the list itself is an input: shipped whole
    assert engine.state.domain.lst == [1, 0]
    with pytest.raises(InvalidContractError, match=r"reaches into the list at 'domain\.lst'"):
        engine.execute(procs.into_list_only)
    assert engine.state.version == 1


def test_nested_execution_from_a_worker_thread_is_refused(make_engine):
    engine = make_engine({"domain": {"a": 0}}, executor="threads")

    @process(outputs=["domain.a"], parallel=True)
    def nested(ctx):
        engine.execute(nested)

    from theus import NestedExecutionError

    with pytest.raises(NestedExecutionError):
        run_with_timeout(lambda: engine.execute(nested))


def test_disjoint_writes_under_one_pattern_do_not_conflict(make_engine, executor, tmp_path):
    engine = make_engine({"domain": {"out": {}}}, executor=executor)
    attempts = tmp_path / "attempts"
    outcome = []
    runner = threading.Thread(
        target=lambda: outcome.append(engine.execute(procs.gated_store, x=1, gate=str(tmp_path)))
    )
    runner.start()
    try:
        run_with_timeout(lambda: _wait_for(lambda: attempts.exists()))
        engine.execute(procs.store, x=2)  # commits while the first one waits
    finally:
        (tmp_path / "open").touch()
        runner.join(DEADLOCK_TIMEOUT)
    assert outcome == [None]
    assert attempts.read_text().split() == ["1"]  # the process read nothing the other wrote
    assert engine.state.domain.out == {"x2": 4, "x1": 1} and engine.state.version == 2


def test_a_signal_of_the_base_version_reaches_the_worker(make_engine, executor):
    engine = make_engine({"domain": {"seen": 0}}, executor=executor)
    engine.execute(procs.signal_go)
    assert engine.execute(procs.sees_signal) == 1 and engine.state.domain.seen == 1


def test_a_pure_worker_sees_no_meta_keys_as_inline(make_engine, executor):
    context = {"domain": {"data": {"a": 1, "meta_note": "hidden", "b": 2}, "keys": []}}
    inline = make_engine(context)
    parallel = make_engine(context, executor=executor)
    assert inline.execute(procs.pure_inline) == parallel.execute(procs.pure_parallel) == ["a", "b"]
    assert inline.state.to_dict() == parallel.state.to_dict()


def test_async_flux_parallel_branches_with_parallel_processes(make_engine, executor):
    engine = make_engine({"domain": {"n": 3, "left": 0, "right": 0}}, executor=executor)
    engine.register(procs.left)
    engine.register(procs.right)
    workflow = (
        "steps:\n"
        "  - flux: parallel\n"
        "    branches:\n"
        "      - [{process: left, with: {x: 2}}]\n"
        "      - [{process: right, with: {x: 2}}]\n"
    )
    run = asyncio.run(engine.aexecute_workflow(workflow))
    assert list(run.executed) == ["left", "right"]
    assert (engine.state.domain.left, engine.state.domain.right) == (6, 5)


def test_a_dry_run_fork_keeps_the_executor(make_engine, executor):
    engine = make_engine({"domain": {"n": 3, "left": 0, "right": 0}}, executor=executor)
    assert engine.executor is executor
    engine.register(procs.left)
    run = engine.execute_workflow("steps:\n  - {process: left, with: {x: 5}}\n", dry_run=True)
    assert list(run.executed) == ["left"]
    assert engine.state.version == 0 and engine.state.domain.left == 0


def test_an_argument_that_cannot_be_pickled_is_a_clear_error(make_engine, pool):
    engine = make_engine({"domain": {"n": 1}}, executor=pool)
    with pytest.raises(TypeError, match="'square': its call cannot be sent to the worker"):
        engine.execute(procs.square, x=lambda: 1)
    assert engine.state.version == 0


def test_a_durable_engine_stores_a_parallel_commit(make_engine, executor, tmp_path):
    path = str(tmp_path / "run.db")
    engine = make_engine(MIX_CONTEXT, store=path, run_id="r1", executor=executor)
    engine.execute(procs.mix_parallel, k=4)
    expected = engine.state.to_dict()
    engine.close()
    again = make_engine(store=path, run_id="r1", executor=executor)
    assert again.state.version == 1 and again.state.to_dict() == expected
