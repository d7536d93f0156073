"""The engine side of a parallel process (spec/22): ship, run on a worker, commit the delta.

Each attempt begins a real transaction for the process on the engine's core, reads every
existing path its contract covers through ``tx.get`` (so the reads are recorded for conflict
detection on every backend) as plain data, sends a :class:`~theus.parallel.task.Task` to the
executor, and applies the worker's :class:`~theus.parallel.task.Outcome` to the transaction,
which then commits through the usual path (contract, zones, commit pipeline, OCC). A conflict
re-runs the attempt with fresh inputs, following the process's retry policy: the attempt loop
is :func:`theus._runner._attempts`, the same as inline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import itertools
import os
import random
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

from .._runner import _attempts, _drive, _sleep_blocking
from ..contracts import ProcessSpec
from ..errors import ConflictError, ContextError, InvalidContractError, WorkerError
from ..paths import Path, Pattern, format_path, parse_path
from ..protocols import EngineCore, TxCore
from ..schema import _plain
from ..update import Update
from ..zones import Zone, zone_of
from .pool import RemoteTraceback
from .task import Outcome, Task, func_ref
from .worker import run_task

__all__ = ["Stale", "Target", "dispatch_async", "dispatch_sync", "prepare"]

_MISSING = object()
_calls = itertools.count(1)


class Stale(ConflictError):
    """The engine moved on between the attempt's begin and the reading of its inputs: the
    attempt is re-run like one that lost a conflict."""


class Target:
    """Where a parallel process runs: an executor and whether calls to it are pickled."""

    __slots__ = ("executor", "pickled")

    def __init__(self, executor: Executor, pickled: bool) -> None:
        self.executor = executor
        self.pickled = pickled


def prepare(
    core: EngineCore, tx: TxCore, spec: ProcessSpec, kwargs: dict[str, Any], pickled: bool,
    strict_guards: bool,
) -> Task:  # fmt: skip
    """The task of one attempt: the existing paths covered by the contract, as plain data of
    the transaction's base version in a sparse context. Nothing is recorded here: the worker
    reports what the process read, and :func:`finish` records those reads on ``tx``."""
    snapshot = core.snapshot()
    if int(snapshot.version) != int(tx.version):
        raise Stale(
            f"process {spec.name!r}: version {snapshot.version} landed while the attempt at "
            f"version {tx.version} began"
        )
    patterns = spec.inputs + spec.outputs
    context: dict[str, Any] = {str(ns): {} for ns in snapshot}
    found: list[Path] = []
    maps: list[Path] = []  # the maps walked through: present (sparse) in the worker too
    for pattern in patterns:
        ns = pattern.segments[0]
        if ns in context:
            _visit(spec, pattern, (ns,), snapshot[ns], found, maps)
    for path in maps:
        _insert(context, path, None, only_maps=True)
    shipped: list[Path] = []
    for path in sorted(set(found), key=len):
        if any(path[: len(p)] == p for p in shipped):
            continue  # below a path shipped whole already
        value = snapshot.get(format_path(path), _MISSING)
        if value is _MISSING:
            continue
        shipped.append(path)
        _insert(context, path, value if zone_of(path) is Zone.HEAVY else _plain(value))
    signals: list[tuple[Path, Any]] = []
    for dotted, value in snapshot.signals.items():
        path = parse_path(dotted)
        if any(p.covers(path) for p in patterns):
            signals.append((path, _plain(value)))
    target: Any = func_ref(spec.func, spec.name) if pickled else spec.func
    return Task(
        target=target,
        kwargs=kwargs,
        name=spec.name,
        inputs=spec.inputs,
        outputs=spec.outputs,
        semantic=spec.semantic.value,
        version=int(tx.version),
        context=context,
        signals=tuple(signals),
        strict_guards=strict_guards,
        pickled=pickled,
        call=f"{os.getpid()}-{next(_calls)}-{random.getrandbits(32):08x}",
    )


def _visit(
    spec: ProcessSpec, pattern: Pattern, path: Path, node: Any, out: list[Path], maps: list[Path]
) -> None:
    """Collect in ``out`` the paths at or below ``path`` (holding ``node`` in the snapshot)
    that ``pattern`` covers, descending only where it can lead (the maps it descends through
    in ``maps``)."""
    if pattern.covers(path):
        out.append(path)
        return
    if zone_of(path) is Zone.HEAVY or isinstance(node, str | bytes):
        return  # a heavy value is one value; a pattern below it reaches nothing shippable
    if isinstance(node, Mapping):
        maps.append(path)
        depth = len(path)
        prefix = pattern.literal_prefix
        if depth < len(prefix):  # a literal segment: one key, no scan
            key = prefix[depth]
            if key in node:
                _visit(spec, pattern, (*path, key), node[key], out, maps)
            return
        for key in node:
            child = (*path, str(key))
            if pattern.leads_to(child):
                _visit(spec, pattern, child, node[key], out, maps)
    elif isinstance(node, Sequence) and len(node) and pattern.leads_to((*path, "0")):
        if any(p.covers(path) for p in spec.inputs + spec.outputs):
            return  # another pattern ships the whole list
        raise InvalidContractError(
            f"parallel process {spec.name!r}: pattern {pattern.text!r} reaches into the list at "
            f"{format_path(path)!r}; a worker receives whole lists only, so declare the list "
            f"itself ({format_path(path)!r}) in the process's inputs or outputs"
        )


def _insert(context: dict[str, Any], path: Path, value: Any, only_maps: bool = False) -> None:
    """Put ``value`` at ``path`` in the sparse context (``only_maps``: make sure the maps down
    to ``path`` exist)."""
    node = context
    for segment in path if only_maps else path[:-1]:
        child = node.get(segment)
        if not isinstance(child, dict):
            child = node[segment] = {}
        node = child
    if not only_maps:
        node[path[-1]] = value


def submit(target: Target, task: Task) -> concurrent.futures.Future[Outcome]:
    """Send ``task`` to the executor (threads: in a copy of the caller's context, so a nested
    engine call from the worker thread is refused as inline)."""
    try:
        if target.pickled:
            return target.executor.submit(run_task, task)
        context = contextvars.copy_context()
        return target.executor.submit(context.run, run_task, task)
    except RuntimeError as exc:
        if "shutdown" in str(exc) or "closed" in str(exc):
            raise ContextError(
                f"parallel process {task.name!r}: its executor is shut down "
                f"({exc}); nothing was committed"
            ) from exc
        raise
    except Exception as exc:
        if type(exc).__name__ in ("PicklingError",) or isinstance(exc, TypeError | AttributeError):
            raise TypeError(
                f"parallel process {task.name!r}: its call cannot be sent to the worker "
                f"(an argument or an input value cannot be pickled: {exc})"
            ) from exc
        raise


def finish(tx: TxCore, spec: ProcessSpec, outcome: Outcome, pickled: bool) -> Any:
    """Record the process's reads on ``tx`` (at its base version, the values the worker saw),
    apply the worker's delta and outbox messages; re-raise its exception (from a pickled call
    with the worker's traceback text as its ``__cause__``, unless it has one)."""
    if not isinstance(outcome, Outcome):
        raise TypeError(
            f"parallel process {spec.name!r}: the executor returned {type(outcome).__name__}, "
            "not the worker's Outcome"
        )
    error = outcome.error
    if error is not None:
        if pickled and outcome.trace and error.__cause__ is None:
            error.__cause__ = RemoteTraceback(outcome.trace)
        raise error
    for path in outcome.reads:  # what the process read, recorded as an inline read would be
        value = tx.get(format_path(path), _MISSING)
        if isinstance(value, Mapping | Sequence) and not isinstance(value, str | bytes):
            len(value)  # a whole-container read (the worker observed it)
    if outcome.ops:
        tx.apply(Update(outcome.ops))
    for topic, payload in outcome.outbox:
        tx.outbox.add(topic, payload)
    return outcome.result


def _failed(spec: ProcessSpec, exc: BaseException) -> BaseException:
    """The caller's error for a future that failed outside the process."""
    if isinstance(exc, WorkerError):
        error = WorkerError(
            f"parallel process {spec.name!r}: {exc}; nothing was committed",
            exc.pid,
            exc.exitcode,
        )
        error.__cause__ = exc
        return error
    if isinstance(exc, concurrent.futures.CancelledError | asyncio.CancelledError):
        return ContextError(
            f"parallel process {spec.name!r}: its call was cancelled before a worker ran it "
            "(the executor was shut down); nothing was committed"
        )
    return exc


def dispatch_sync(
    core: EngineCore, handle: Any, spec: ProcessSpec, kwargs: dict[str, Any],
    rng: random.Random, target: Target, strict_guards: bool,
) -> tuple[Any, int]:  # fmt: skip
    """Run a parallel process from sync code: the caller's thread waits for the worker.
    Returns its return value and the version its commit made."""

    async def invoke(tx: TxCore) -> Any:
        task = prepare(core, tx, spec, kwargs, target.pickled, strict_guards)
        future = submit(target, task)
        try:
            outcome = future.result()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                future.cancel()
                raise
            raise _failed(spec, exc) from None
        return finish(tx, spec, outcome, target.pickled)

    return _drive(_attempts(core, handle, spec, invoke, _sleep_blocking, rng, True, remote=True))


async def dispatch_async(
    core: EngineCore, handle: Any, spec: ProcessSpec, kwargs: dict[str, Any],
    rng: random.Random, target: Target, strict_guards: bool,
) -> tuple[Any, int]:  # fmt: skip
    """Run a parallel process from async code: the event loop keeps running while the worker
    does. Returns its return value and the version its commit made."""

    async def invoke(tx: TxCore) -> Any:
        task = prepare(core, tx, spec, kwargs, target.pickled, strict_guards)
        future = submit(target, task)
        try:
            outcome = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            raise _failed(spec, exc) from None
        return finish(tx, spec, outcome, target.pickled)

    return await _attempts(core, handle, spec, invoke, asyncio.sleep, rng, False, remote=True)
