"""Paused workflow runs on an engine (spec/21-durability.md §9): recording a pause, listing the
pending requests, answering one with ``engine.resume(run_id, token, value)``.

An engine keeps the requests its own runs made (with the loaded workflow and the position);
a durable engine also stores each request in its store, in the same transaction as the run's
position, so that another process can list and answer it after a crash.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from .errors import (
    FluxError,
    PauseExpiredError,
    ResumeTokenError,
    StoreConflictError,
    StoreCorruptError,
)
from .flux.events import WorkflowRun
from .flux.machine import Machine, StepContext, current_step
from .flux.model import Workflow
from .flux.pause import PendingRequest
from .flux.position import Position
from .stores import codec

__all__ = ["Paused", "decode_row", "find", "list_pending", "paused_run", "record", "resume"]


@dataclass
class _Entry:
    """A request one of this engine's runs made: what resuming it needs."""

    request: PendingRequest
    workflow: Workflow
    position: Position
    inputs: dict[str, Any]
    answered: bool = False
    #: what the first ``engine.resume`` of the token returned (or raised), once it ended
    outcome: WorkflowRun | BaseException | None = None


class Paused:
    """The requests an engine's runs made (thread-safe), keyed by token."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, _Entry] = {}


def _registry(engine: Any) -> Paused:
    registry: Paused | None = engine._paused
    if registry is None:
        with engine._register_lock:
            registry = engine._paused
            if registry is None:
                registry = engine._paused = Paused()
    return registry


def record(engine: Any, machine: Machine, request: PendingRequest) -> None:
    """Keep ``request`` of ``machine``'s run (it stops here); a durable engine stores it with
    the run's position unless the step's commit already did."""
    durable = engine._durable
    if durable is not None and request.token not in durable.stored_tokens:
        # a pause, or an interrupt() whose step's commit did not store it (a step that wrote
        # nothing, an async process made it on another thread)
        context = StepContext(machine, "", None, 0, (machine.stack, (), (), None))
        durable.put_position(context, request, None)
    registry = _registry(engine)
    with registry.lock:
        registry.entries[request.token] = _Entry(
            request, machine.workflow, machine.position(), dict(machine.inputs)
        )


def decode_row(row: Any, store_run: str) -> PendingRequest:
    where = f"run {store_run!r} pending request"
    data = codec.decode(row.request, where)
    try:
        return PendingRequest.from_json(data, store_run)
    except ValueError as exc:
        raise StoreCorruptError(f"{where}: {exc}") from None


def _stored(engine: Any) -> list[PendingRequest]:
    durable = engine._durable
    return [decode_row(row, durable.run_id) for row in durable.store.pending(durable.run_id)]


def find(
    engine: Any, machine: Machine, address: tuple[int, ...], iterations: tuple[int, ...]
) -> PendingRequest | None:
    """The open request of ``machine``'s run at this step identity, or None."""
    if engine._durable is not None:
        candidates = _stored(engine)
    else:
        registry = _registry(engine)
        with registry.lock:
            candidates = [e.request for e in registry.entries.values() if not e.answered]
    for request in candidates:
        if (
            request.run_id == machine.run_id
            and request.address == address
            and request.iterations == iterations
        ):
            return request
    return None


def list_pending(engine: Any) -> list[PendingRequest]:
    """``engine.pending()``: the open requests, oldest first (a durable engine: those stored
    for its run, whichever process made them)."""
    if engine._durable is not None:
        return _stored(engine)
    registry = _registry(engine)
    with registry.lock:
        open_ = [e.request for e in registry.entries.values() if not e.answered]
    return sorted(open_, key=lambda r: r.created)


def paused_run(engine: Any, run_id: str) -> WorkflowRun | None:
    """A paused ``WorkflowRun`` of workflow run ``run_id`` when it waits on an open request
    (nothing runs), else None."""
    for request in list_pending(engine):
        if request.run_id == run_id:
            snapshot = engine._core.snapshot()
            return WorkflowRun((), snapshot.version, 0.0, 0, run_id, False, snapshot, "paused",
                               request)  # fmt: skip
    return None


def _unknown(run_id: str, token: object) -> ResumeTokenError:
    return ResumeTokenError(
        f"run {run_id!r} has no pending request with this token (unknown or stale token; "
        "engine.pending() lists the open ones)"
    )


def _expired(request: PendingRequest) -> PauseExpiredError:
    deadline = request.deadline or 0.0
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(deadline))
    return PauseExpiredError(
        f"{request.loc}: the pause of run {request.run_id!r} expired at {when} (its timeout "
        f"passed before it was answered); it cannot be answered any more"
    )


def _workflow_for(engine: Any, request: PendingRequest, workflow: Any) -> Any:
    if workflow is not None:
        return workflow
    source = request.workflow
    if not source or source.startswith("<") or not os.path.exists(source):
        raise FluxError(
            f"run {request.run_id!r} paused in a workflow read from {source or 'text'!r}: pass "
            "it again with engine.resume(..., workflow=...)",
            request.loc.file,
            request.loc.line,
            request.loc.column,
        )
    return source


def resume(
    engine: Any,
    run_id: object,
    token: object,
    value: Any,
    workflow: Any = None,
    **kwargs: Any,
) -> WorkflowRun:
    """``engine.resume``: write ``value`` at the request's ``into`` as one host commit, then
    continue the run from its position."""
    if not isinstance(run_id, str) or not run_id:
        raise TypeError(f"resume(run_id=...) must be a non-empty str, not {run_id!r}")
    if not isinstance(token, str) or not token:
        raise TypeError(f"resume(token=...) must be a non-empty str, not {token!r}")
    registry = _registry(engine)
    with registry.lock:
        entry = registry.entries.get(token)
    durable = engine._durable
    if entry is not None and entry.request.run_id != run_id:
        raise _unknown(run_id, token)
    if entry is not None and entry.answered:
        # the same token again: nothing is written and nothing runs; the first call's result
        outcome = entry.outcome
        if isinstance(outcome, WorkflowRun):
            return outcome
        if outcome is not None:
            raise outcome
        raise ResumeTokenError(
            f"run {run_id!r}: this request is being answered by another call right now"
        )
    request: PendingRequest | None = None if entry is None else entry.request
    if durable is not None:
        row = durable.store.get_pending(durable.run_id, token)
        if row is None:
            raise _unknown(run_id, token)
        request = decode_row(row, durable.run_id)
        if request.run_id != run_id:
            raise _unknown(run_id, token)
        if row.answered is not None:
            # answered by another engine or process: nothing is written and nothing runs
            waiting = paused_run(engine, run_id)
            if waiting is not None:
                return waiting
            snapshot = engine._core.snapshot()
            return WorkflowRun((), snapshot.version, 0.0, 0, run_id, False, snapshot, "answered")
    if request is None:
        raise _unknown(run_id, token)
    if request.expired(time.time()):
        raise _expired(request)
    # where the run continues from, and with which inputs
    if durable is not None:
        from .durable import stored_position

        position, inputs = stored_position(engine, run_id)
    else:
        assert entry is not None
        position, inputs = entry.position, entry.inputs
    source = entry.workflow if entry is not None and workflow is None else workflow
    source = _workflow_for(engine, request, source)
    given = kwargs.pop("inputs", None)
    from .flux.run import prepare

    machine, fork = prepare(
        engine, source, position=position, run_id=run_id, inputs=given or inputs or None, **kwargs
    )
    assert fork is None
    # the answer: one host commit carrying the advanced position (durable: in one store
    # transaction with the request marked answered)
    top = machine.stack[-1] if machine.stack else None
    frame = top if request.kind == "pause" else None
    index = getattr(top, "next", 0)
    context = StepContext(machine, "", frame, index, (machine.stack, (), (), None))  # type: ignore[arg-type]
    context.answers = token
    cv = current_step.set(context)
    try:
        with engine.transaction() as tx:
            tx.update(replace={request.into: value})
    finally:
        current_step.reset(cv)
    if durable is not None:
        err = durable.error
        if isinstance(err, StoreConflictError):
            raise StoreConflictError(
                f"run {durable.run_id!r}: another resumer answered or continued this run first "
                f"({err}); this engine's answer is not stored: reopen the run"
            )
        durable.refuse_if_failed()
        if not context.stored:  # the answer changed nothing: no commit was made
            context.landed()
            durable.put_position(context, None, token)
    else:
        context.landed()
    with registry.lock:
        if entry is not None:
            entry.answered = True
    try:
        for _ in machine.events():
            pass
    except BaseException as exc:
        if entry is not None:
            entry.outcome = exc
        raise
    result = machine.result
    assert result is not None
    if entry is not None:
        entry.outcome = result
    return result
