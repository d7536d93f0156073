"""``TheusEngine``: the user facade over the selected backend (REQUIREMENTS §3)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import itertools
import os
import random
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from types import TracebackType
from typing import Any, cast

from . import messages
from ._discovery import select_backend
from ._runner import run_async, run_sync
from .compat import _support as _v3  # Theus 3 surface (spec/19)
from .contracts import ProcessSpec, check_executor, spec_of, validate_contract
from .errors import (
    BatchError,
    ConflictError,
    ContextError,
    NestedExecutionError,
    ProcessNotFoundError,
)
from .flux.events import WorkflowRun
from .flux.handle import RunHandle
from .flux.machine import WorkflowIterator
from .flux.model import Workflow
from .flux.position import Position
from .flux.run import prepare
from .heavy import HeavyZone
from .outbox import Outbox, OutboxBuffer, OutboxStage
from .parallel.dispatch import Target, dispatch_async, dispatch_sync
from .parallel.executors import check_available, make_executor
from .paths import parse_path, parse_pattern
from .pipeline import CommitPipeline, Stage
from .protocols import EngineCore, EngineOptions, HubCore, TxCore
from .signals import SignalHub, SignalStage
from .update import Update, make_update

__all__ = ["TheusEngine", "Transaction"]

_ids = itertools.count(1)


class _Execution:
    """The marker of one running process call (spec/10).

    Set in the context the process runs in, so that every task and thread started from that
    context inherits it; ``active`` is cleared when the call returns, so a task the process
    spawned is no longer nested once the process has finished.
    """

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = True


class _Loop:
    """The engine-owned event loop (a daemon thread) for async processes called from sync code."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            asyncio.set_event_loop(None)

    def stop(self) -> None:
        """Cancel every task still running on the loop, stop it and join its thread."""
        loop = self.loop
        if self.thread is threading.current_thread():
            loop.call_soon(loop.stop)  # closing from the loop itself: stop after this callback
            return
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                asyncio.run_coroutine_threadsafe(_cancel_all(), loop)
        self.thread.join(timeout=_STOP_TIMEOUT)
        if not self.thread.is_alive() and not loop.is_closed():
            loop.close()


_STOP_TIMEOUT = 10.0  # seconds close() waits for cancelled async processes to unwind


async def _cancel_all() -> None:
    """Cancel the loop's other tasks, give them time to unwind, then stop the loop."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=_STOP_TIMEOUT / 2)
    asyncio.get_running_loop().stop()


def _shutdown(
    loop_box: list[_Loop | None],
    pool_box: list[Executor | None],
    outbox: Outbox,
    parallel: dict[str, Target],
    wait: bool = False,
) -> None:
    outbox.close()
    loop, pool = loop_box[0], pool_box[0]
    loop_box[0] = pool_box[0] = None
    owned = list(parallel.values())
    parallel.clear()
    if loop is not None:
        loop.stop()
    if pool is not None:
        pool.shutdown(wait=False)
    for target in owned:  # the engine's own parallel executors (spec/22); a user's stays open
        target.executor.shutdown(wait=wait, cancel_futures=True)


_POLL = 0.25  # seconds between checks that the engine loop is still alive while a caller waits

_CLOSED_DURING_CALL = (
    "the TheusEngine was closed while this call was running; nothing was committed by it"
)


class TheusEngine:
    """A versioned, transactional state engine running ``@process`` functions.

    ::

        engine = TheusEngine(context={"domain": {"count": 0}})

        @process(inputs=["domain.count"], outputs=["domain.count"])
        def bump(ctx):
            ctx.domain.count += 1

        engine.execute(bump)
        assert engine.state.domain.count == 1

    ``backend`` picks the implementation (spec/13): a name, a backend object or
    ``"module:attr"``; default ``$THEUS_BACKEND``, then the highest-priority installed backend.
    """

    def __init__(
        self,
        context: Mapping[str, Any] | None = None,
        backend: Any = None,
        strict_guards: bool = True,
        strict_cas: bool = False,
        audit_recipe: Any = None,
        schema: Any = None,
        version: int = 0,
        store: Any = None,
        run_id: str | None = None,
        write_timeout_ms: int | None = None,
        executor: Any = "processes",
    ) -> None:
        check_executor(executor, "TheusEngine(executor=...)")
        if executor is None:
            executor = "processes"
        if isinstance(executor, str):
            check_available(executor, "TheusEngine(executor=...)")
        for name, flag in (("strict_guards", strict_guards), ("strict_cas", strict_cas)):
            if not isinstance(flag, bool):
                raise TypeError(f"TheusEngine({name}=...) must be a bool, not {flag!r}")
        _v3.check_timeout(write_timeout_ms, "TheusEngine()")
        context = _check_context(_v3.as_context(context))
        self._strict = (strict_guards, strict_cas)
        self._durable: Any = None  # theus.durable.DurableRun (spec/21)
        if store is not None or run_id is not None:
            from .durable import DurableRun

            self._durable = DurableRun(store, run_id, context, _check_version(version))
            context, version = self._durable.context, self._durable.version
        self._backend = select_backend(backend)
        self._hub: HubCore = self._backend.create_hub()
        self._outbox = Outbox()
        self._pipeline = CommitPipeline([SignalStage(self._hub), OutboxStage(self._outbox)])
        self._audit: Any = None
        if audit_recipe is not None:
            self._install_audit(audit_recipe)
        if schema is not None:
            self.set_schema(schema)
        options = EngineOptions(
            strict_guards=strict_guards,
            strict_cas=strict_cas,
            hub=self._hub,
            pipeline=self._pipeline,
            version=_check_version(version),
        )
        self._core: EngineCore = self._backend.create_engine(context, options)
        if self._durable is not None:
            try:
                self._durable.install(self)
            except BaseException:
                self._core.close()
                self._durable.release()
                raise
        self._workflows: dict[Any, Any] = {}  # loaded Flux workflows (theus.flux.run)
        self._paused: Any = None  # theus.pausing.Paused: requests of this engine's runs
        self._namespaces = frozenset(context)
        self._native = "native-execute" in self._backend.capabilities
        self._by_name: dict[str, tuple[ProcessSpec, Any]] = {}
        self._by_func: dict[Callable[..., Any], tuple[ProcessSpec, Any]] = {}
        self._register_lock = threading.RLock()  # re-entrant: a handler may register
        self._id = next(_ids)
        self._running: contextvars.ContextVar[_Execution | None] = contextvars.ContextVar(
            f"theus_engine_{self._id}_running", default=None
        )
        self._rng = random.Random()
        self._loop_box: list[_Loop | None] = [None]
        self._pool_box: list[Executor | None] = [None]
        self._helpers_lock = threading.RLock()
        self._default_executor: Any = executor
        self._parallel: dict[str, Target] = {}  # executors this engine made, by name
        self._closed = False
        self._finalizer = weakref.finalize(
            self, _shutdown, self._loop_box, self._pool_box, self._outbox, self._parallel
        )

    # -- introspection -------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """The selected backend's name."""
        return self._backend.name

    @property
    def core(self) -> EngineCore:
        """The backend's engine core (diagnostics and provenance checks)."""
        return self._core

    @property
    def state(self) -> Any:
        """The current immutable snapshot: ``.version``, ``.domain``, ``.global_``, ..."""
        return self._core.snapshot()

    @property
    def executor(self) -> Any:
        """The default executor of this engine's parallel processes (spec/22): a name or the
        ``concurrent.futures.Executor`` given as ``TheusEngine(executor=...)``."""
        return self._default_executor

    @property
    def signals(self) -> SignalHub:
        """The engine's own SignalHub (spec/08)."""
        return cast(SignalHub, self._hub)

    @property
    def heavy(self) -> HeavyZone:
        """Allocate ``heavy_`` buffers in named shared memory that reach workers by name
        (spec/22, :mod:`theus.heavy`): ``engine.heavy.alloc(shape, dtype)``, ``alloc_bytes(n)``."""
        return HeavyZone(self)

    @property
    def pipeline(self) -> CommitPipeline:
        """The engine's commit pipeline (spec/15): add a :class:`theus.pipeline.Stage` to
        check commits before they land or observe them after."""
        return self._pipeline

    @property
    def outbox(self) -> Outbox:
        """The engine's transactional outbox (spec/15): released messages, their delivery."""
        return self._outbox

    @property
    def audit(self) -> Any:
        """The engine's audit (counters and violation log), or None without a recipe."""
        return self._audit

    def __repr__(self) -> str:
        return f"<TheusEngine backend={self.backend!r} version={self.state.version}>"

    # -- registration --------------------------------------------------------------------
    def register(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn`` (decorated with ``@process`` or not) under its name; return it."""
        self._entry(fn)
        return fn

    def _entry(self, fn_or_name: Any) -> tuple[ProcessSpec, Any]:
        entry = self._by_func.get(fn_or_name) if callable(fn_or_name) else None
        if entry is not None:
            return entry
        if isinstance(fn_or_name, str):
            entry = self._by_name.get(fn_or_name)
            if entry is None:
                raise ProcessNotFoundError(
                    f"no process named {fn_or_name!r} is registered on this engine "
                    f"(registered: {sorted(self._by_name) or 'none'})"
                )
            return entry
        if not callable(fn_or_name):
            raise TypeError(
                f"execute() expects a process function or a registered name, "
                f"not {type(fn_or_name).__name__}"
            )
        self._check_open()
        spec = spec_of(fn_or_name)
        with self._register_lock:
            existing = self._by_name.get(spec.name)
            if existing is not None:
                if existing[0].func is fn_or_name:
                    return existing
                raise ValueError(
                    f"a different process named {spec.name!r} is already registered; "
                    "pass name=... to @process to register both"
                )
            validate_contract(spec, self._namespaces)
            _v3.method_name_hints(spec)
            handle = self._core.compile(spec)
            entry = (spec, handle)
            self._by_name[spec.name] = entry
            self._by_func[fn_or_name] = entry
            return entry

    # -- execution -----------------------------------------------------------------------
    def _nested(self) -> bool:
        marker = self._running.get()
        return marker is not None and marker.active

    def _enter(self, what: str) -> None:
        if self._nested():
            raise NestedExecutionError(
                f"{what} was called from inside a process running on this engine; compose the "
                "work into one process, or run it after this process returns"
            )
        self._check_open()

    def _check_open(self) -> None:
        if self._closed:
            raise ContextError("this TheusEngine is closed")

    def execute(self, fn_or_name: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Run a process as one atomic transaction and return its return value (blocking).

        Positional ``args`` are passed by the function's parameter names; ``retries=n`` is
        reserved: it replaces the process's ``retries`` for this call (spec/19)."""
        spec, handle = self._call(fn_or_name, args, kwargs)
        self._enter("engine.execute()")
        self._check_call(spec, kwargs)
        if spec.is_async:
            return self._run_on_loop(spec, handle, kwargs)[0]
        marker = _Execution()
        token = self._running.set(marker)
        try:
            if spec.parallel:
                return self._dispatch(spec, handle, kwargs)[0]
            if self._native:
                return self._core.execute(handle, kwargs)  # type: ignore[attr-defined]
            return run_sync(self._core, handle, spec, kwargs, self._rng)[0]
        finally:
            marker.active = False
            self._running.reset(token)

    def _step(self, spec: ProcessSpec, handle: Any, kwargs: dict[str, Any]) -> tuple[Any, int]:
        """One workflow step (spec/18 §6): ``execute`` of a registered process, returning its
        return value and the version its commit made."""
        self._enter("engine.execute_workflow()")
        self._check_call(spec, kwargs)
        if spec.is_async:
            return self._run_on_loop(spec, handle, kwargs)
        marker = _Execution()
        token = self._running.set(marker)
        try:
            if spec.parallel:
                return self._dispatch(spec, handle, kwargs)
            if self._native:
                value, version = self._core.execute_step(handle, kwargs)  # type: ignore[attr-defined]
                return value, int(version)
            return run_sync(self._core, handle, spec, kwargs, self._rng)
        finally:
            marker.active = False
            self._running.reset(token)

    async def _astep(
        self, spec: ProcessSpec, handle: Any, kwargs: dict[str, Any]
    ) -> tuple[Any, int]:
        """The async twin of :meth:`_step` (``aexecute`` semantics, spec/11)."""
        self._enter("engine.aexecute_workflow()")
        self._check_call(spec, kwargs)
        marker = _Execution()
        token = self._running.set(marker)
        try:
            return await self._arun(spec, handle, kwargs)
        finally:
            marker.active = False
            self._running.reset(token)

    async def aexecute(self, fn_or_name: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Run a process from async code (spec/11) and return its return value (positional
        ``args`` and ``retries=`` as for :meth:`execute`)."""
        spec, handle = self._call(fn_or_name, args, kwargs)
        self._enter("engine.aexecute()")
        self._check_call(spec, kwargs)
        marker = _Execution()
        token = self._running.set(marker)
        try:
            return (await self._arun(spec, handle, kwargs))[0]
        finally:
            marker.active = False
            self._running.reset(token)

    # -- batches (spec/22) ------------------------------------------------------------------
    def execute_many(self, calls: Iterable[Any], /) -> list[Any]:
        """Run several calls concurrently and return their results in order (spec/22).

        ``calls`` holds ``(process, kwargs)`` pairs (``kwargs`` a mapping, or None). Parallel
        processes run on their executors at once, other ones on threads as concurrent
        ``execute`` calls would. Every call runs, and each commits on its own; when any
        failed, :class:`theus.errors.BatchError` (an ``ExceptionGroup``) is raised after all
        ran, holding the failed calls' exceptions and ``results`` (a value or an exception
        per call, in order)."""
        self._enter("engine.execute_many()")
        batch = self._batch(calls, "engine.execute_many()")
        if not batch:
            return []
        outcomes: list[Any] = [None] * len(batch)
        ok = [False] * len(batch)

        def run(i: int) -> None:
            name, kwargs = batch[i]
            try:
                outcomes[i] = self.execute(name, **kwargs)
                ok[i] = True
            except BaseException as exc:
                outcomes[i] = exc

        workers = min(len(batch), _BATCH_THREADS)
        with ThreadPoolExecutor(workers, thread_name_prefix=f"theus-{self._id}-batch") as pool:
            list(pool.map(run, range(len(batch))))
        return _batch_results(batch, outcomes, ok)

    async def aexecute_many(self, calls: Iterable[Any], /) -> list[Any]:
        """:meth:`execute_many` from async code: every call is an ``aexecute`` task (parallel
        processes on their executors; the loop keeps running)."""
        self._enter("engine.aexecute_many()")
        batch = self._batch(calls, "engine.aexecute_many()")
        done = await asyncio.gather(
            *(self.aexecute(name, **kwargs) for name, kwargs in batch), return_exceptions=True
        )
        ok = [not isinstance(v, BaseException) for v in done]
        return _batch_results(batch, list(done), ok)

    def map(self, fn_or_name: Any, items: Iterable[Any], /) -> list[Any]:
        """Run ``fn_or_name`` once per item, concurrently, results in order (spec/22).

        A process with exactly one parameter after ``ctx`` receives each item as that
        parameter (whatever it is, a dict too); any other process needs each item to be a
        mapping of keyword arguments. Errors as for :meth:`execute_many`."""
        return self.execute_many(self._map_calls(fn_or_name, items, "engine.map()"))

    async def amap(self, fn_or_name: Any, items: Iterable[Any], /) -> list[Any]:
        """:meth:`map` from async code."""
        return await self.aexecute_many(self._map_calls(fn_or_name, items, "engine.amap()"))

    def _map_calls(self, fn_or_name: Any, items: Iterable[Any], what: str) -> list[Any]:
        spec = self._entry(fn_or_name)[0]
        if isinstance(items, str | bytes) or not isinstance(items, Iterable):
            raise TypeError(f"{what}: items must be an iterable, not {type(items).__name__}")
        param = _single_param(spec.func)
        calls: list[Any] = []
        for i, item in enumerate(items):
            if param is not None:
                calls.append((spec.name, {param: item}))
            elif isinstance(item, Mapping):
                calls.append((spec.name, dict(item)))
            else:
                raise TypeError(
                    f"{what}: process {spec.name!r} does not take exactly one argument after "
                    f"ctx, so each item must be a mapping of keyword arguments; item {i} is "
                    f"{type(item).__name__} {item!r}"
                )
        return calls

    def _batch(self, calls: Iterable[Any], what: str) -> list[tuple[str, dict[str, Any]]]:
        """The calls of a batch, checked before any runs: (registered name, kwargs)."""
        if isinstance(calls, str | bytes) or not isinstance(calls, Iterable):
            raise TypeError(
                f"{what} expects a list of (process, kwargs) pairs, not {type(calls).__name__}"
            )
        batch: list[tuple[str, dict[str, Any]]] = []
        for i, call in enumerate(calls):
            if not isinstance(call, tuple | list) or len(call) != 2:
                raise TypeError(f"{what}: call {i} must be a (process, kwargs) pair, not {call!r}")
            fn, kwargs = call
            if kwargs is None:
                kwargs = {}
            if not isinstance(kwargs, Mapping):
                raise TypeError(
                    f"{what}: call {i}'s kwargs must be a mapping or None, "
                    f"not {type(kwargs).__name__}"
                )
            spec = self._entry(fn)[0]
            batch.append((spec.name, dict(kwargs)))
        return batch

    def _dispatch(self, spec: ProcessSpec, handle: Any, kwargs: dict[str, Any]) -> tuple[Any, int]:
        """A parallel process from sync code (spec/22): on its executor, the caller waits."""
        target = self._target(spec)
        return dispatch_sync(self._core, handle, spec, kwargs, self._rng, target, self._strict[0])

    async def _arun(
        self, spec: ProcessSpec, handle: Any, kwargs: dict[str, Any]
    ) -> tuple[Any, int]:
        """Any process from async code: a parallel one on its executor (the loop runs on),
        others as spec/11 says."""
        if spec.parallel:
            target = self._target(spec)
            return await dispatch_async(
                self._core, handle, spec, kwargs, self._rng, target, self._strict[0]
            )
        return await run_async(self._core, handle, spec, kwargs, self._rng, self._executor)

    def _target(self, spec: ProcessSpec) -> Target:
        """The executor of a parallel process: its own ``executor=``, else the engine's."""
        choice = spec.executor if spec.executor is not None else self._default_executor
        if isinstance(choice, Executor):
            return Target(choice, True)  # a user's executor (Dask, Ray ...): calls are pickled
        target = self._parallel.get(choice)
        if target is not None:
            return target
        with self._helpers_lock:
            self._check_open()
            target = self._parallel.get(choice)
            if target is None:
                check_available(choice, f"process {spec.name!r}")
                pool, pickled = make_executor(choice, f"theus-{self._id}")
                target = self._parallel[choice] = Target(pool, pickled)
            return target

    async def _boxed(self, spec: ProcessSpec, handle: Any, kwargs: dict[str, Any]) -> Any:
        """Run an async process on the engine loop; every outcome comes back as a value, so
        ``SystemExit``/``KeyboardInterrupt`` raised by the process reach the caller instead of
        killing the loop's thread (spec/11)."""
        marker = _Execution()
        self._running.set(marker)  # this task's own context
        try:
            result = await run_async(self._core, handle, spec, kwargs, self._rng, self._executor)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            return False, exc
        finally:
            marker.active = False
        return True, result

    def _run_on_loop(
        self, spec: ProcessSpec, handle: Any, kwargs: dict[str, Any]
    ) -> tuple[Any, int]:
        holder = self._event_loop()
        future = asyncio.run_coroutine_threadsafe(self._boxed(spec, handle, kwargs), holder.loop)
        try:
            ok, value = self._wait(future, holder)
        except BaseException:
            future.cancel()  # e.g. Ctrl-C in the caller: do not leave the process running
            raise
        if ok:
            return cast(tuple[Any, int], value)
        try:
            raise value
        finally:
            del value

    def _wait(self, future: concurrent.futures.Future[Any], holder: _Loop) -> Any:
        """The outcome of ``future``; never waits on a loop that can no longer finish it."""
        while True:
            try:
                return future.result(timeout=_POLL)
            except concurrent.futures.CancelledError:
                raise ContextError(_CLOSED_DURING_CALL) from None
            except concurrent.futures.TimeoutError:
                if not holder.thread.is_alive():
                    raise ContextError(
                        _CLOSED_DURING_CALL if self._closed else "the engine's event loop stopped"
                    ) from None

    def _event_loop(self) -> _Loop:
        with self._helpers_lock:
            self._check_open()
            loop = self._loop_box[0]
            if loop is None:
                loop = self._loop_box[0] = _Loop(f"theus-engine-{self._id}-loop")
            return loop

    def _executor(self) -> Executor:
        with self._helpers_lock:
            self._check_open()
            pool = self._pool_box[0]
            if pool is None:
                pool = self._pool_box[0] = ThreadPoolExecutor(
                    thread_name_prefix=f"theus-{self._id}"
                )
            return pool

    # -- explicit writes -----------------------------------------------------------------
    def transaction(self, write_timeout_ms: int | None = None) -> Transaction:
        """A host transaction: ``with engine.transaction() as tx: tx.update(data={...})``.

        ``write_timeout_ms=`` (Theus 3) is accepted and ignored (spec/19)."""
        _v3.check_timeout(write_timeout_ms, "engine.transaction()")
        self._enter("engine.transaction()")
        return Transaction(self)

    def compare_and_swap(
        self,
        expected_version: int,
        data: Mapping[str, Any] | None = None,
        heavy: Mapping[str, Any] | None = None,
        signal: Mapping[str, Any] | None = None,
        delete: Iterable[str] = (),
        replace: Mapping[str, Any] | None = None,
        requester: str | None = None,
    ) -> Any:
        """Commit the update only if the current version is ``expected_version`` (spec/05).

        ``requester=`` (Theus 3's priority ticket) is accepted and ignored (spec/19)."""
        self._enter("engine.compare_and_swap()")
        if isinstance(expected_version, bool) or not isinstance(expected_version, int):
            raise TypeError(f"expected_version must be an int, not {expected_version!r}")
        if requester is not None and not isinstance(requester, str):
            raise TypeError(f"requester= must be a str or None, not {requester!r}")
        update = make_update(data, heavy, signal, delete, replace)
        tx = self._core.begin(None)
        try:
            if tx.version != expected_version:
                raise ConflictError(messages.cas_mismatch(expected_version, tx.version))
            tx.apply(update)
            return tx.commit(strict=True)
        finally:
            tx.close()

    # -- checks ---------------------------------------------------------------------------
    def set_schema(self, schema: Any) -> None:
        """Check every later commit against ``schema`` (Type Shield, spec/16): a Pydantic
        model of the whole context, or a mapping ``{namespace: Model}``; ``None`` removes it."""
        from .schema import SchemaStage

        self._replace_stage("schema", None if schema is None else SchemaStage(schema), 0)

    def _install_audit(self, recipe: Any) -> None:
        from .audit import Audit

        audit = Audit(recipe)
        self._replace_stage("audit", audit.stage, 1 if self._pipeline.find("schema") else 0)
        self._audit = audit

    def _replace_stage(self, name: str, stage: Stage | None, index: int) -> None:
        old = self._pipeline.find(name)
        if old is not None:
            self._pipeline.remove(old)
        if stage is not None:
            self._pipeline.add(stage, index=index)

    def _check_call(self, spec: ProcessSpec, kwargs: dict[str, Any]) -> None:
        """Checks of a call's arguments before the process runs (audit input rules)."""
        audit = self._audit
        if audit is not None:
            audit.check_inputs(spec, kwargs)

    # -- workflows (spec/18 §6) ------------------------------------------------------------
    def execute_workflow(
        self,
        workflow: Workflow | str | os.PathLike[str],
        *,
        inputs: Mapping[str, Any] | None = None,
        max_ops: int | None = None,
        on_event: Any = None,
        dry_run: bool = False,
        run_id: str | None = None,
        position: Position | Mapping[str, Any] | None = None,
    ) -> WorkflowRun:
        """Run a Flux workflow to its end (blocking) and return its :class:`WorkflowRun`.

        ``workflow`` is a file path, YAML text (a ``str`` containing a newline) or a loaded
        :class:`theus.flux.Workflow`; it is loaded and checked before anything runs, and
        cached. ``inputs`` override the declared defaults; ``max_ops`` bounds the run;
        ``on_event`` (a callable or a list) receives each event on this thread; ``dry_run``
        runs on a throw-away fork of the current state and commits nothing here;
        ``position`` (from ``iter_workflow(...).position``) resumes a stopped run. A failing
        step raises :class:`theus.errors.WorkflowError`; earlier steps stay committed.
        """
        self._enter("engine.execute_workflow()")
        machine, fork = prepare(self, workflow, inputs=inputs, max_ops=max_ops,
                                on_event=on_event, dry_run=dry_run, run_id=run_id,
                                position=position)  # fmt: skip
        try:
            for _ in machine.events():
                pass
        finally:
            if fork is not None:
                fork.close()
        assert machine.result is not None
        return machine.result

    async def aexecute_workflow(
        self,
        workflow: Workflow | str | os.PathLike[str],
        *,
        inputs: Mapping[str, Any] | None = None,
        max_ops: int | None = None,
        on_event: Any = None,
        dry_run: bool = False,
        run_id: str | None = None,
        position: Position | Mapping[str, Any] | None = None,
    ) -> WorkflowRun:
        """:meth:`execute_workflow` from async code: each step is awaited as ``aexecute``
        would (async processes run on the caller's loop), parallel branches are tasks."""
        self._enter("engine.aexecute_workflow()")
        machine, fork = prepare(self, workflow, inputs=inputs, max_ops=max_ops,
                                on_event=on_event, dry_run=dry_run, run_id=run_id,
                                position=position)  # fmt: skip
        try:
            return await machine.arun()
        finally:
            if fork is not None:
                fork.close()

    def iter_workflow(
        self,
        workflow: Workflow | str | os.PathLike[str],
        *,
        inputs: Mapping[str, Any] | None = None,
        max_ops: int | None = None,
        on_event: Any = None,
        dry_run: bool = False,
        run_id: str | None = None,
        position: Position | Mapping[str, Any] | None = None,
    ) -> WorkflowIterator:
        """Run a workflow one event at a time: each ``next()`` advances the run to its next
        event (``RunStarted``, ``StepStarted``, ``StepCommitted`` ... ``RunCompleted``) and
        returns it; nothing runs between calls. After ``RunFailed`` the next ``next()``
        raises the run's error. ``.position`` is where the run is, ``.close()`` stops it."""
        self._enter("engine.iter_workflow()")
        machine, fork = prepare(self, workflow, inputs=inputs, max_ops=max_ops,
                                on_event=on_event, dry_run=dry_run, run_id=run_id,
                                position=position)  # fmt: skip
        machine.always = True
        return WorkflowIterator(machine, fork)

    def start_workflow(
        self,
        workflow: Workflow | str | os.PathLike[str],
        *,
        inputs: Mapping[str, Any] | None = None,
        max_ops: int | None = None,
        on_event: Any = None,
        dry_run: bool = False,
        run_id: str | None = None,
        position: Position | Mapping[str, Any] | None = None,
    ) -> RunHandle:
        """Run a workflow on a background thread; the :class:`RunHandle` gives its events,
        ``cancel()`` (between steps) and ``result(timeout)``."""
        iterator = self.iter_workflow(workflow, inputs=inputs, max_ops=max_ops,
                                      on_event=on_event, dry_run=dry_run, run_id=run_id,
                                      position=position)  # fmt: skip
        return RunHandle(iterator)

    def pending(self) -> list[Any]:
        """The open requests of paused workflow runs (``theus.flux.PendingRequest``: run id,
        token, prompt, into, step location, created, deadline), oldest first. A durable
        engine lists those stored for its run, whichever process paused it (spec/21 §9)."""
        from .pausing import list_pending

        self._check_open()
        return list_pending(self)

    def resume(
        self,
        run_id: str,
        token: str,
        value: Any,
        *,
        workflow: Workflow | str | os.PathLike[str] | None = None,
        on_event: Any = None,
        max_ops: int | None = None,
    ) -> WorkflowRun:
        """Answer a paused run: write ``value`` at the request's ``into`` as one host commit
        (schema and zones apply; contracts do not), then continue the run from its position
        (no committed process runs again) and return its :class:`WorkflowRun`.

        ``workflow`` defaults to the one the run paused in (its file, for another process).
        The same token again does nothing and returns the first call's result; an unknown or
        stale token raises :class:`theus.errors.ResumeTokenError`, an expired one
        :class:`theus.errors.PauseExpiredError` (spec/21 §9)."""
        from .pausing import resume

        self._enter("engine.resume()")
        return resume(self, run_id, token, value, workflow, on_event=on_event, max_ops=max_ops)

    # -- durability (spec/21) --------------------------------------------------------------
    @property
    def run_id(self) -> str | None:
        """The durable run's id (``None`` for an engine without a store)."""
        return None if self._durable is None else self._durable.run_id

    @property
    def store(self) -> Any:
        """The engine's :class:`theus.stores.Store`, or ``None``."""
        return None if self._durable is None else self._durable.store

    def history(self, limit: int | None = None, before: int | None = None) -> list[Any]:
        """The stored commits, newest first (``theus.durable.HistoryEntry``: version, time,
        process or ``None`` for the host, changed paths); those below ``before``, at most
        ``limit``."""
        from .durable import need

        return need(self, "engine.history()").history(limit, before)

    def at(self, version: int) -> Any:
        """A read-only snapshot of stored ``version``, equal to what it was (its data;
        signals are not kept, spec/21)."""
        from .durable import at

        return at(self, version)

    def fork(self, version: int, *, run_id: str | None = None) -> TheusEngine:
        """A new durable engine whose run starts at stored ``version`` of this one (parent
        pointer set; this run is unchanged), with the same processes, schema and audit."""
        from .durable import fork

        return cast(TheusEngine, fork(self, version, run_id))

    def diff(self, v1: int, v2: int) -> tuple[Any, ...]:
        """The ``Change`` entries (``set``/``delete``, plain values, sorted by path) that turn
        stored version ``v1`` into ``v2``."""
        from .durable import diff

        return diff(self, v1, v2)

    def resume_workflow(
        self,
        workflow: Workflow | str | os.PathLike[str],
        run_id: str | None = None,
        **kwargs: Any,
    ) -> WorkflowRun:
        """Continue a workflow from the position stored with this run's newest workflow step
        (spec/21 §8): steps whose commit was stored are not run again. ``workflow`` is the
        same program; ``run_id`` (optional) must be the stored workflow run's id; other
        keywords (``on_event``, ``max_ops``, ``inputs``: default the stored ones) as for
        :meth:`execute_workflow`."""
        from .durable import resume_workflow

        return cast(WorkflowRun, resume_workflow(self, workflow, run_id, **kwargs))

    # -- Theus 3 surface (spec/19) ---------------------------------------------------------
    @property
    def strict_guards(self) -> bool:
        """Whether guards are strict (fixed when the engine is made; read-only)."""
        return self._strict[0]

    @property
    def strict_cas(self) -> bool:
        """Whether any intervening commit is a conflict (fixed when the engine is made;
        read-only)."""
        return self._strict[1]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("strict_guards", "strict_cas"):
            raise AttributeError(
                f"engine.{name} is read-only: it is fixed when the engine is made; "
                f"pass TheusEngine(..., {name}={value!r}) instead (spec/19)"
            )
        object.__setattr__(self, name, value)

    def _call(
        self, fn_or_name: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[ProcessSpec, Any]:
        """The process of an ``execute`` call, with positional arguments bound by name and the
        ``retries=`` override applied (a handle compiled for it, kept per count)."""
        spec, handle = self._entry(fn_or_name)
        if args:
            _v3.bind_positional(spec, args, kwargs)
        retries = _v3.call_retries(kwargs)
        if retries is None or retries == spec.retries:
            return spec, handle
        with self._register_lock:
            overrides: dict[tuple[str, int], tuple[ProcessSpec, Any]] = self.__dict__.setdefault(
                "_overrides", {}
            )
            entry = overrides.get((spec.name, retries))
            if entry is None or entry[0].func is not spec.func:
                override = dataclasses.replace(spec, retries=retries)
                entry = overrides[(spec.name, retries)] = (override, self._core.compile(override))
            return entry

    def scan_and_register(self, directory: str) -> list[str]:
        """Import every ``.py`` module under ``directory`` and register its ``@process``
        functions; return their names. A module that fails to import raises ``ImportError``
        naming the file (spec/19)."""
        self._check_open()
        return _v3.scan_modules(os.fspath(directory), self.register)

    @contextlib.contextmanager
    def edit(self) -> Iterator[Any]:
        """A host edit in place: ``with engine.edit() as ctx: ctx.domain.counter = 999``.

        ``ctx`` may read and write every namespace (zone rules apply); the writes commit
        together when the block ends, as one host transaction (a conflict raises
        ``ConflictError``; an exception commits nothing). Spec/19."""
        self._enter("engine.edit()")
        handle = self.__dict__.get("_edit_handle")
        if handle is None:
            patterns = tuple(parse_pattern(f"{ns}.**") for ns in sorted(self._namespaces))
            spec = ProcessSpec(name="engine.edit", func=_edit_marker, inputs=(), outputs=patterns)
            handle = self.__dict__["_edit_handle"] = self._core.compile(spec)
        tx = self._core.begin(handle)
        try:
            yield tx.ctx
            tx.commit()
        finally:
            tx.close()

    def shutdown(self) -> None:
        """Theus 3's name of :meth:`close`."""
        self.close()

    # -- lifetime ------------------------------------------------------------------------
    def close(self) -> None:
        """Close the engine (spec/11).

        Later calls raise ``ContextError``. A commit in progress finishes first; every call
        still in flight then fails with ``ContextError`` and commits nothing (async processes
        on the engine's loop are cancelled). When ``close()`` returns, nothing commits any
        more. Calling it from inside one of the engine's own processes raises
        ``NestedExecutionError`` and closes nothing. Idempotent.
        """
        if self._nested():
            raise NestedExecutionError(
                "engine.close() was called from inside a process running on this engine; "
                "close it after the process returns"
            )
        self._closed = True
        self._core.close()
        if self._finalizer.detach() is not None:
            _shutdown(self._loop_box, self._pool_box, self._outbox, self._parallel, wait=True)
        if self._durable is not None:
            self._durable.store_mark()
            self._durable.release()

    def __enter__(self) -> TheusEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transaction:
    """A host transaction (spec/05): writes are applied together when the ``with`` block ends."""

    def __init__(self, engine: TheusEngine) -> None:
        self._engine = engine
        self._tx: TxCore | None = None
        self.state: Any = None

    def __enter__(self) -> Transaction:
        self._tx = self._engine._core.begin(None)
        return self

    def _open(self) -> TxCore:
        if self._tx is None:
            raise ContextError("use the transaction inside its 'with' block")
        return self._tx

    @property
    def version(self) -> int:
        """The base version the transaction reads."""
        return self._open().version

    def update(
        self,
        data: Mapping[str, Any] | None = None,
        heavy: Mapping[str, Any] | None = None,
        signal: Mapping[str, Any] | None = None,
        delete: Iterable[str] = (),
        replace: Mapping[str, Any] | None = None,
    ) -> None:
        """Write dotted paths: ``data={"domain.x": 1}``; ``delete=["domain.old"]``.

        The nested form ``data={"domain": {"x": 1}}`` merges into what is there (spec/05);
        ``replace={"domain": {...}}`` replaces the whole subtree."""
        self._open().apply(make_update(data, heavy, signal, delete, replace))

    def append(self, path: str, value: Any) -> None:
        """Append ``value`` to the list at ``path`` (the way to extend a ``log_`` list)."""
        self._open().apply(Update((("append", parse_path(path), value),)))

    def delete(self, *paths: str) -> None:
        """Delete dotted paths."""
        self._open().apply(make_update(delete=paths))

    def get(self, path: str, default: Any = None) -> Any:
        """Read the draft at ``path``."""
        return self._open().get(path, default)

    @property
    def outbox(self) -> OutboxBuffer:
        """This transaction's outbox: ``tx.outbox.add(topic, payload)`` (spec/15)."""
        return self._open().outbox

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tx = self._open()
        try:
            if exc_type is None:
                self.state = tx.commit()
        finally:
            tx.close()
            self._tx = None


def _edit_marker(ctx: Any) -> None:
    """The function of ``engine.edit()``'s contract (never called)."""


def _check_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise TypeError(f"TheusEngine(version=...) must be an int >= 0, not {version!r}")
    return version


def _check_context(context: Mapping[str, Any] | None) -> dict[str, Any]:
    if context is None:
        context = {}
    if not isinstance(context, Mapping):
        raise TypeError(
            f"TheusEngine(context=...) must be a mapping of namespaces, "
            f"not {type(context).__name__}"
        )
    out = dict(context)
    for name in ("domain", "global"):
        out.setdefault(name, {})
    for name, value in out.items():
        if not isinstance(name, str) or not name or "." in name or name in ("*", "**"):
            raise ContextError(f"invalid namespace name {name!r}")
        if not isinstance(value, Mapping):
            raise TypeError(
                f"TheusEngine(context=...): namespace {name!r} must be a mapping, "
                f"not {type(value).__name__}"
            )
    return out


_BATCH_THREADS = 64  # threads of one execute_many() call at most


def _single_param(func: Callable[..., Any]) -> str | None:
    """The name of the one parameter ``func`` takes after ``ctx``, or None (none, several, or
    ``*args``/``**kwargs``)."""
    import inspect

    try:
        params = list(inspect.signature(func).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if len(params) == 1 and params[0].kind in kinds:
        return params[0].name
    return None


def _batch_results(
    batch: list[tuple[str, dict[str, Any]]], outcomes: list[Any], ok: list[bool]
) -> list[Any]:
    """The results of a batch, or ``BatchError`` when a call failed (a ``BaseException`` that
    is not an ``Exception``, e.g. ``KeyboardInterrupt``, is re-raised as it is)."""
    failed = [i for i, good in enumerate(ok) if not good]
    if not failed:
        return outcomes
    for i in failed:
        if not isinstance(outcomes[i], Exception):
            raise outcomes[i]
    errors: list[Exception] = []
    for i in failed:
        exc = outcomes[i]
        exc.add_note(f"engine batch: call {i} (process {batch[i][0]!r})")
        errors.append(exc)
    first = failed[0]
    raise BatchError(
        f"{len(failed)} of {len(batch)} calls failed (the others committed); first: call "
        f"{first} (process {batch[first][0]!r}): {type(outcomes[first]).__name__}: "
        f"{outcomes[first]}",
        errors,
        outcomes,
        failed,
    )
