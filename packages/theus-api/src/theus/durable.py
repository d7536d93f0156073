"""Durable engines (spec/21-durability.md): every commit stored in one store transaction,
reopening at the last stored version, history, time travel, forks, diffs.

``TheusEngine(store=..., run_id=...)`` builds a :class:`DurableRun` before the engine core
(a reopened run gives the core its stored state and version) and installs its
:class:`DurableStage` in the commit pipeline right before the ``outbox`` stage, so a commit is
stored before its outbox messages are released and before the committing call returns.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ContextError, StoreConflictError, StoreCorruptError, StoreError
from .flux.machine import current_step
from .paths import Path, format_path
from .pipeline import Change, Changes, CommitPipeline, OutboxMessage, Stage
from .protocols import EngineOptions
from .stores import codec
from .stores.base import OutboxRow, PendingRow, RunRecord, Store, VersionRecord
from .stores.sqlite import SqliteStore, rebuild
from .zones import Zone, zone_of

__all__ = [
    "DEFAULT_SNAPSHOT_EVERY",
    "DurableRun",
    "DurableStage",
    "HistoryEntry",
    "at",
    "diff",
    "fork",
    "need",
    "open_engine",
    "resume_workflow",
]

log = logging.getLogger("theus")

#: a full snapshot is considered every this many versions (spec/21 §3)
DEFAULT_SNAPSHOT_EVERY = 100
_CACHE = 64  # before_commit encodings kept for their after_commit
MARK_INTERVAL = 0.1  # seconds: the delivery mark is stored at most this often (and at close)


@dataclass(frozen=True)
class HistoryEntry:
    """One stored commit as ``engine.history()`` lists it."""

    version: int
    #: seconds since the epoch when the commit was stored
    time: float
    #: the process's name, or None for a host transaction / compare-and-swap
    process: str | None
    #: the dotted changed paths: tree changes (sorted), then signals (in write order)
    paths: tuple[str, ...]


class _Owner:
    """A store the engines opened themselves (a path): closed with the last of them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.users = 0
        self.lock = threading.Lock()

    def take(self) -> None:
        with self.lock:
            self.users += 1

    def release(self) -> None:
        with self.lock:
            self.users -= 1
            last = self.users == 0
        if last:
            self.store.close()


def _check_store(store: object) -> tuple[Store, _Owner | None]:
    if isinstance(store, (str, os.PathLike)):
        opened = SqliteStore(store)
        return opened, _Owner(opened)
    if not isinstance(store, Store):
        raise TypeError(
            "TheusEngine(store=...) must be a theus.stores.Store (SqliteStore(path)) or a "
            f"path, not {type(store).__name__}"
        )
    return store, None


class DurableRun:
    """The durable side of one engine: its store, run id and the stage writing commits."""

    def __init__(
        self,
        store: object,
        run_id: object,
        context: Mapping[str, Any],
        version: int,
    ) -> None:
        if run_id is not None and (not isinstance(run_id, str) or not run_id):
            raise TypeError(f"TheusEngine(run_id=...) must be a non-empty str, not {run_id!r}")
        if store is None:
            raise TypeError("TheusEngine(run_id=...) needs store=... (a Store or a path)")
        self.store, self._owner = _check_store(store)
        if self._owner is not None:
            self._owner.take()
        self.run_id: str = run_id if run_id is not None else uuid.uuid4().hex
        self.every = int(getattr(self.store, "snapshot_every", DEFAULT_SNAPSHOT_EVERY))
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self._cache: dict[int, tuple[Any, str, tuple[str, ...], Any]] = {}
        self._cache_lock = threading.Lock()
        self._outbox: Any = None  # the engine's Outbox, once installed
        self._mark: tuple[int, int] | None = None  # the delivery mark last stored
        self._mark_time = 0.0
        self._mark_lock = threading.Lock()
        #: the workflow steps landed at the current version (stored with the position, for
        #: run pictures: a step that wrote nothing lands at the version of the one before)
        self._landed: list[Any] = []
        #: tokens of the pending requests this engine stored
        self.stored_tokens: set[str] = set()
        try:
            record = self.store.get_run(self.run_id)
            self.reopened = record is not None
            if record is not None:
                if version != 0:
                    raise ValueError(
                        f"TheusEngine(version={version}) cannot be given when reopening run "
                        f"{self.run_id!r}: it restarts at its stored version {record.head}"
                    )
                self.context: dict[str, Any] = rebuild(
                    self.store.chain(self.run_id, record.head), self.run_id
                )
                self.version = record.head
                self._snap_bytes = record.snapshot_bytes
                self._delta_bytes = record.delta_bytes
                self._delta_count = record.delta_count
                self._landed = _landed_at(self.store, self.run_id, record.head)
            else:
                self.context = dict(context)
                self.version = version
                self._snap_bytes = self._delta_bytes = self._delta_count = 0
        except BaseException:
            self.release()
            raise
        self.stage = DurableStage(self)

    def install(self, engine: Any) -> None:
        """Create a new run from the engine's initial snapshot (a reopened run exists), then
        put the stage into the engine's pipeline right before the ``outbox`` stage; a
        reopened run's stored outbox messages from its delivery mark on are released again
        into the engine's outbox (spec/21 §3)."""
        outbox = engine._outbox
        if self.reopened:
            self._redeliver(outbox)
        else:
            snapshot = engine._core.snapshot()
            text = codec.encode(snapshot.to_dict())
            self.store.create_run(
                RunRecord(self.run_id, self.version, self.version, time.time()), text
            )
            self._snap_bytes = len(text)
            self.reopened = True
        pipeline: CommitPipeline = engine._pipeline
        outbox_stage = pipeline.find("outbox")
        stages = pipeline.stages
        pipeline.add(
            self.stage, index=stages.index(outbox_stage) if outbox_stage in stages else None
        )
        self._outbox = outbox
        outbox.on_delivered = self._delivered

    # -- the outbox after a reopen (spec/21 §3) ----------------------------------------------
    def _redeliver(self, outbox: Any) -> None:
        mark = self.store.delivered(self.run_id)
        self._mark = mark
        rows = self.store.outbox(self.run_id, after=None if mark is None else mark[0] - 1)
        where = f"run {self.run_id!r} outbox row"
        messages = [
            OutboxMessage(
                row.topic,
                codec.decode(row.payload, f"{where} ({row.version}, {row.index})"),
                row.version,
                row.index,
            )
            for row in rows
            if mark is None or (row.version, row.index) >= mark
        ]
        if messages:
            outbox.release(messages)

    def _delivered(self) -> None:
        """The outbox delivered a message: store the delivery mark, at most every
        ``MARK_INTERVAL`` seconds."""
        if time.monotonic() - self._mark_time >= MARK_INTERVAL:
            self.store_mark()

    def store_mark(self) -> None:
        """Store the outbox's delivery mark now (when it moved). The engine calls this when
        it closes; a failure is logged, never raised (the mark is an optimisation: without
        it, messages are delivered again after a reopen, which at-least-once allows)."""
        outbox = self._outbox
        if outbox is None or self.error is not None:
            return
        with self._mark_lock:
            mark = outbox.delivery_mark()
            if mark is None or mark == self._mark:
                return
            try:
                self.store.set_delivered(self.run_id, mark[0], mark[1])
            except Exception:
                log.warning(
                    "storing the outbox delivery mark of run %r failed", self.run_id, exc_info=True
                )
                return
            self._mark, self._mark_time = mark, time.monotonic()

    def release(self) -> None:
        """The engine closed: close the store if the engines opened it and this was the last."""
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.release()

    def share(self) -> _Owner | None:
        """The owner a fork shares (taken once more), or None."""
        if self._owner is not None:
            self._owner.take()
        return self._owner

    # -- the commit path -------------------------------------------------------------------
    def check(self) -> None:
        """Refuse a commit when an earlier write failed or another writer moved the run."""
        with self._lock:
            if self.error is not None:
                err = self.error
                cls = StoreConflictError if isinstance(err, StoreConflictError) else StoreError
                raise cls(
                    f"run {self.run_id!r}: storing an earlier commit failed ({err}); this engine "
                    "refuses further commits: reopen the run"
                )
            head = self.store.head(self.run_id)
            if head != self.version:
                raise StoreConflictError(
                    f"run {self.run_id!r}: another writer stored version {head} (this engine is "
                    f"at version {self.version}); reopen the run to continue from it"
                )

    def encode_changes(self, changes: Changes) -> tuple[str, tuple[str, ...], Any]:
        """The delta text and changed paths of a commit (``TypeError`` for a value outside
        the durable format, naming its path), and the workflow step it belongs to (kept by
        ``before_commit``; None when not known)."""
        items = getattr(changes, "_items", None)
        if items is not None:
            with self._cache_lock:
                hit = self._cache.pop(id(items), None)
            if hit is not None and hit[0] is items:
                return hit[1], hit[2], hit[3]
        delta, paths = _delta(changes)
        return delta, paths, None

    def remember(self, changes: Changes, delta: str, paths: tuple[str, ...], step: Any) -> None:
        """Keep ``before_commit``'s work (and the workflow step) for ``after_commit``."""
        items = getattr(changes, "_items", None)
        if items is None:
            return
        with self._cache_lock:
            cache = self._cache
            cache[id(items)] = (items, delta, paths, step)
            while len(cache) > _CACHE:
                del cache[next(iter(cache))]

    def write(self, snapshot: Any, changes: Changes) -> None:
        """Store the commit that made ``snapshot`` (one store transaction)."""
        with self._lock:
            if self.error is not None:
                return  # already reported; every later commit is refused in check()
            try:
                version = snapshot.version
                delta, paths, step = self.encode_changes(changes)
                position = None
                pending = answered = None
                landed = self._landed
                if step is not None:
                    step.landed()  # the stored position counts this step (spec/21 §8)
                    landed = _step_record(step, [])
                    position = _position(step, landed)
                    pending = pending_row(self.run_id, step.pause_request())
                    answered = step.answers
                rows = [
                    OutboxRow(self.run_id, m.version, m.index, m.topic, _payload(m))
                    for m in changes.outbox
                ]
                delta_bytes = self._delta_bytes + len(delta)
                count = self._delta_count + 1
                full = None
                if delta_bytes >= self._snap_bytes or (
                    count >= self.every and delta_bytes * 16 >= self._snap_bytes
                ):
                    full = codec.encode(snapshot.to_dict())
                record = VersionRecord(version, time.time(), changes.process, paths, delta)
                self.store.append(
                    self.run_id,
                    record,
                    snapshot=full,
                    outbox=rows,
                    position=position,
                    pending=pending,
                    answered=answered,
                )
            except BaseException as exc:
                self.error = exc
                raise
            if pending is not None:
                self.stored_tokens.add(pending.token)
            if step is not None:
                step.stored = True
                self._landed = landed
            else:
                self._landed = []
            self.version = version
            if full is None:
                self._delta_bytes, self._delta_count = delta_bytes, count
            else:
                self._snap_bytes, self._delta_bytes, self._delta_count = len(full), 0, 0

    def refuse_if_failed(self) -> None:
        """Raise the failure of an earlier store write (the commit it was for is not stored)."""
        err = self.error
        if err is not None:
            cls = StoreConflictError if isinstance(err, StoreConflictError) else StoreError
            raise cls(f"run {self.run_id!r}: the commit was not stored: {err}")

    def after_step(self, step: Any) -> None:
        """After a workflow step returned: fail it when its commit was not stored (another
        writer won the run, spec/21 §9); store the position alone when the step made no
        commit (it wrote nothing), so that it is not run again after a crash."""
        self.refuse_if_failed()
        if step is not None and not step.stored:
            step.landed()
            self.put_position(step, step.pause_request(), None)

    def finished(self, machine: Any) -> None:
        """A workflow run of this engine ended: store its end position (an empty stack), so
        that resuming it runs nothing and its picture shows it completed."""
        from .flux.machine import StepContext

        self.put_position(
            StepContext(machine, "", None, 0, (machine.stack, (), (), None)), None, None
        )

    def put_position(self, step: Any, request: Any, answered: str | None) -> None:
        """Store the run's workflow position (and a new pending request, or the answer of
        one) without a commit, in one store transaction."""
        with self._lock:
            self.refuse_if_failed()
            landed = _step_record(step, list(self._landed))
            row = pending_row(self.run_id, request)
            self.store.put_position(
                self.run_id,
                self.version,
                _position(step, landed),
                pending=row,
                answered=answered,
            )
            step.stored = True
            self._landed = landed
            if row is not None:
                self.stored_tokens.add(row.token)

    # -- reading ---------------------------------------------------------------------------
    def history(self, limit: int | None, before: int | None) -> list[HistoryEntry]:
        for name, value in (("limit", limit), ("before", before)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"history({name}=...) must be an int or None, not {value!r}")
            if value is not None and value < 0:
                raise ValueError(f"history({name}=...) must be >= 0, not {value}")
        return [
            HistoryEntry(r.version, r.time, r.process, r.paths)
            for r in self.store.versions(self.run_id, limit=limit, before=before)
        ]

    def tree(self, version: object, what: str) -> dict[str, Any]:
        if isinstance(version, bool) or not isinstance(version, int):
            raise TypeError(f"{what}: a version must be an int, not {version!r}")
        return rebuild(self.store.chain(self.run_id, version), self.run_id)  # type: ignore[no-any-return]


def _inputs(step: Any) -> str:
    machine = getattr(step, "_machine", None)
    inputs = getattr(machine, "inputs", {})
    try:
        return codec.encode(inputs, zoned=False)
    except TypeError as exc:
        raise TypeError(f"the inputs of workflow run {step.run_id!r}: {exc}") from None


def _position(step: Any, landed: list[Any]) -> str:
    """The stored form of a workflow's position (spec/21 §8): also the workflow's source and
    the steps landed at this version (``theus graph --run``, spec/20)."""
    machine = step._machine
    data = {
        "format": 1,
        "run": step.run_id,
        "position": step.position().to_json(),
        "inputs": codec.decode(_inputs(step), "inputs"),
        "workflow": machine.workflow.source,
        "steps": landed,
    }
    return codec.encode(data, zoned=False)


#: at most this many steps landed at one version are kept with the position (a loop of steps
#: that write nothing keeps its newest ones: the position stays small)
_LANDED_CAP = 64


def _step_record(step: Any, landed: list[Any]) -> list[Any]:
    """``landed`` (the steps of the same workflow run landed at this version) with ``step``
    (a process step of a workflow) appended, capped at the newest :data:`_LANDED_CAP`."""
    loc = step._loc
    if landed and landed[-1].get("run") != step.run_id:
        landed = []
    if step.process and loc is not None:
        landed.append(
            {
                "run": step.run_id,
                "process": step.process,
                "loc": [loc.file, loc.line, loc.column, loc.key_path],
                "iterations": list(step.iterations),
            }
        )
        del landed[:-_LANDED_CAP]
    return landed


def _landed_at(store: Store, run_id: str, head: int) -> list[Any]:
    """The steps stored with the run's newest position when it is at ``head``."""
    stored = store.position(run_id)
    if stored is None or stored[0] != head:
        return []
    try:
        data = codec.decode(stored[1], f"run {run_id!r} position {head}")
    except StoreCorruptError:
        return []  # reported when the position is read to resume
    steps = data.get("steps") if type(data) is dict else None
    return list(steps) if type(steps) is list else []


def pending_row(run_id: str, request: Any) -> PendingRow | None:
    """The stored form of a pending request (``TypeError`` when its prompt is outside the
    durable format, spec/21 §2), or None."""
    if request is None:
        return None
    try:
        text = codec.encode(request.to_json(), zoned=False)
    except TypeError as exc:
        raise TypeError(f"the prompt of the pause at {request.loc}: {exc}") from None
    return PendingRow(run_id, request.token, text, request.created, request.deadline)


def stored_position(engine: Any, run_id: str | None) -> tuple[Any, Any]:
    """The run's newest stored workflow position and inputs (spec/21 §8), checked."""
    position, inputs, _ = _stored(engine, run_id, "engine.resume()")
    return position, inputs


def _stored(engine: Any, run_id: str | None, what: str) -> tuple[Any, Any, str]:
    from .flux.position import Position

    run = need(engine, what)
    stored = run.store.position(run.run_id)
    if stored is None:
        raise StoreError(f"run {run.run_id!r} has no stored workflow position")
    version, text = stored
    where = f"run {run.run_id!r} position {version}"
    data = codec.decode(text, where)
    if type(data) is not dict or data.get("format") != 1 or type(data.get("run")) is not str:
        raise StoreCorruptError(f"{where}: malformed workflow position")
    if run_id is not None and run_id != data["run"]:
        raise StoreError(
            f"run {run.run_id!r}: the stored workflow position is of workflow run "
            f"{data['run']!r}, not {run_id!r}"
        )
    try:
        position = Position.from_json(data["position"])
    except ValueError as exc:
        raise StoreCorruptError(f"{where}: {exc}") from None
    return position, data.get("inputs") or None, data["run"]


def resume_workflow(engine: Any, workflow: Any, run_id: str | None, **kwargs: Any) -> Any:
    """``engine.resume_workflow``: continue the newest stored workflow position (a run that
    waits on an answer is returned paused, nothing runs)."""
    position, stored_inputs, workflow_run = _stored(engine, run_id, "engine.resume_workflow()")
    from .pausing import paused_run

    waiting = paused_run(engine, workflow_run)
    if waiting is not None:
        return waiting  # the run waits on an answer: nothing runs (spec/21 §9)
    inputs = kwargs.pop("inputs", None)
    if inputs is None:
        inputs = stored_inputs
    return engine.execute_workflow(
        workflow, position=position, run_id=workflow_run, inputs=inputs, **kwargs
    )


def _payload(message: Any) -> str:
    try:
        return codec.encode(message.payload, zoned=False)
    except TypeError as exc:
        raise TypeError(f"outbox message {message.index} ({message.topic!r}): {exc}") from None


def _delta(changes: Changes) -> tuple[str, tuple[str, ...]]:
    ops: list[Any] = []
    signals: list[Any] = []
    paths: list[str] = []
    for change in changes:
        path = change.path
        dotted = format_path(path)
        paths.append(dotted)
        zone = zone_of(path)
        if zone is Zone.SIGNAL:
            signals.append([dotted, codec.encode_value(change.value, path, False)])
            continue
        if zone is Zone.HEAVY and change.kind != "delete":
            raise TypeError(
                f"cannot store {dotted!r} durably: heavy values are not stored (keep them "
                "outside the store and put a reference in the data zone)"
            )
        zoned = zone is Zone.DATA
        if change.kind == "delete":
            ops.append(["delete", list(path), None])
        elif change.kind == "append":
            items = [codec.encode_value(v, (*path, "-"), zoned) for v in change.value]
            ops.append(["append", list(path), items])
        else:
            ops.append(["set", list(path), codec.encode_value(change.value, path, zoned)])
    text = codec.json_text({"ops": ops, "signals": signals})
    return text, tuple(paths)


class DurableStage(Stage):
    """The pipeline stage of a durable engine (spec/21 §3).

    ``before_commit`` refuses a commit whose values are outside the durable format, or when
    the run moved in the store under this engine (another writer); ``after_commit`` stores the
    commit — delta, version, outbox rows — in one store transaction. A write that fails there
    is logged (spec/15) and makes every later commit of the engine fail in ``before_commit``.
    """

    name = "durable"

    def __init__(self, run: DurableRun) -> None:
        self.run = run

    def before_commit(self, changes: Changes) -> None:
        """Check the commit can be stored; keep its encoding for ``after_commit``."""
        run = self.run
        run.check()
        delta, paths = _delta(changes)
        for i, message in enumerate(changes.outbox):
            _payload(message._replace(index=i))
        step = current_step.get()
        if step is not None:
            _inputs(step)  # refuse inputs the position could not be stored with
            pending_row(run.run_id, step.pause_request())  # and a prompt outside the format
        run.remember(changes, delta, paths, step)

    def after_commit(self, snapshot: Any, changes: Changes) -> None:
        """Store the landed commit."""
        self.run.write(snapshot, changes)


# -- engine helpers (called by TheusEngine's methods) ------------------------------------------


def need(engine: Any, what: str) -> DurableRun:
    """The engine's durable run, or ``ContextError`` naming ``what`` needs one."""
    run: DurableRun | None = engine._durable
    if run is None:
        raise ContextError(
            f"{what} needs a durable engine: TheusEngine(store=SqliteStore(path), run_id=...)"
        )
    return run


def at(engine: Any, version: int) -> Any:
    """A read-only snapshot of stored ``version``, built on the engine's backend."""
    run = need(engine, "engine.at()")
    tree = run.tree(version, "engine.at()")
    backend = engine._backend
    options = EngineOptions(
        strict_guards=engine.strict_guards,
        strict_cas=engine.strict_cas,
        hub=backend.create_hub(),
        pipeline=CommitPipeline(),
        version=version,
    )
    core = backend.create_engine(tree, options)
    try:
        return core.snapshot()
    finally:
        core.close()


def fork(engine: Any, version: int, run_id: str | None) -> Any:
    """A new durable run starting at ``version`` of this one (parent pointer set), on the
    same store and backend, with the same processes, schema and audit recipe."""
    from .engine import TheusEngine

    run = need(engine, "engine.fork()")
    tree = run.tree(version, "engine.fork()")
    if run_id is not None and (not isinstance(run_id, str) or not run_id):
        raise TypeError(f"fork(run_id=...) must be a non-empty str, not {run_id!r}")
    new_id = run_id if run_id is not None else uuid.uuid4().hex
    text = codec.encode(tree, zoned=False)
    run.store.create_run(
        RunRecord(new_id, version, version, time.time(), run.run_id, version), text
    )
    audit = engine._audit
    child = TheusEngine(
        backend=engine._backend,
        strict_guards=engine.strict_guards,
        strict_cas=engine.strict_cas,
        audit_recipe=None if audit is None else audit.recipe,
        store=run.store,
        run_id=new_id,
        executor=engine.executor,
    )
    owner = run.share()
    if owner is not None:
        child._durable._owner = owner
    schema = engine._pipeline.find("schema")
    if schema is not None:
        child._pipeline.add(schema, index=0)
    for spec, _ in engine._by_name.values():
        child._entry(spec.func)
    return child


def diff(engine: Any, v1: int, v2: int) -> tuple[Change, ...]:
    """The changes that turn stored version ``v1`` into ``v2`` (plain values)."""
    run = need(engine, "engine.diff()")
    a = run.tree(v1, "engine.diff()")
    b = run.tree(v2, "engine.diff()")
    out: list[Change] = []
    _diff(a, b, (), out)
    return tuple(out)


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _diff(a: Mapping[str, Any], b: Mapping[str, Any], path: Path, out: list[Change]) -> None:
    for key in sorted(set(a) | set(b)):
        sub = (*path, key)
        if key not in b:
            out.append(Change("delete", sub, None))
        elif key not in a:
            out.append(Change("set", sub, b[key]))
        elif type(a[key]) is dict and type(b[key]) is dict:
            _diff(a[key], b[key], sub, out)
        elif not _same(a[key], b[key]):
            out.append(Change("set", sub, b[key]))


def open_engine(path: str | os.PathLike[str] | Store, run_id: str | None, **kwargs: Any) -> Any:
    """``theus.open``: a durable engine on a SQLite file (or a store)."""
    from .engine import TheusEngine

    return TheusEngine(store=path, run_id=run_id, **kwargs)


def stored_events(store: Store, run_id: str) -> list[Any]:
    """The events of run ``run_id``'s workflow as its store keeps them, for a run picture
    (spec/20 §4): ``StepStarted`` + ``StepCommitted`` per stored step (location, iterations),
    ``RunPaused`` at an open pending request, ``RunCompleted`` when the newest position is
    the end. A failed step stores nothing: it is not drawn as failed."""
    from .flux.events import RunCompleted, RunPaused, StepCommitted, StepStarted
    from .flux.model import Loc
    from .pausing import decode_row

    rows = []
    for version, text in store.positions(run_id):
        where = f"run {run_id!r} position {version}"
        data = codec.decode(text, where)
        if type(data) is not dict:
            raise StoreCorruptError(f"{where}: malformed workflow position")
        rows.append((version, where, data))
    events: list[Any] = []
    newest: Any = rows[-1][2] if rows else None
    for version, where, data in rows:
        if data.get("run") != newest.get("run"):
            continue  # another workflow run of this durable run: the newest one is drawn
        for step in data.get("steps") or ():
            try:
                file, line, column, key_path = step["loc"]
                loc = Loc(file, line, column, key_path)
                fields = (step["process"], (), tuple(step["iterations"]))
            except (KeyError, TypeError, ValueError):
                raise StoreCorruptError(f"{where}: malformed step record") from None
            events.append(StepStarted(data.get("run", ""), len(events), loc, *fields))
            events.append(StepCommitted(data.get("run", ""), len(events), loc, *fields, version))
    if newest is None:
        return events
    workflow_run = newest.get("run", "")
    for row in store.pending(run_id):
        request = decode_row(row, run_id)
        if request.run_id == workflow_run:
            events.append(RunPaused(workflow_run, len(events), request.loc, request))
            return events
    position = newest.get("position")
    if type(position) is dict and position.get("stack") == []:
        events.append(RunCompleted(workflow_run, len(events), None))
    return events
