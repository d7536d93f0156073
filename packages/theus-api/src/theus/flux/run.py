"""Starting workflow runs on an engine (spec/18-flux.md §6): loading with a per-engine cache,
inputs, the engine host the machine drives, dry runs on a fork.

``engine.execute_workflow`` / ``aexecute_workflow`` / ``iter_workflow`` / ``start_workflow``
call :func:`prepare` and drive the :class:`~theus.flux.machine.Machine` it returns;
:func:`run_workflow` is ``engine.execute_workflow`` as a function.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import FluxError
from .events import FluxEvent, WorkflowRun
from .expr import Expression, snapshot_scope
from .machine import Machine, current_step
from .model import DEFAULT_MAX_OPS, IfStep, RunStep, WhileStep, Workflow, iter_steps
from .parse import load_workflow, parse_workflow
from .pause import Interrupt, PendingRequest
from .position import Position

__all__ = ["WorkflowRun", "durable_copy", "load_for_engine", "prepare", "run_workflow"]

#: how many loaded workflows an engine keeps
_CACHE_LIMIT = 64


def _specs(engine: Any) -> Mapping[str, Any]:
    return {name: entry[0] for name, entry in engine._by_name.items()}


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class _Loaded:
    """A cached workflow with what it was loaded from and its native conditions."""

    __slots__ = ("files", "natives", "workflow")

    def __init__(self, workflow: Workflow, files: dict[str, tuple[int, int] | None]) -> None:
        self.workflow = workflow
        self.files = files
        #: (the engine core they were compiled for, id(condition) -> native condition)
        self.natives: tuple[Any, dict[int, Any]] | None = None

    def fresh(self) -> bool:
        return all(_stamp(path) == stamp for path, stamp in self.files.items())


def load_for_engine(engine: Any, source: Workflow | str | os.PathLike[str]) -> Workflow:
    """``source`` parsed and validated against ``engine``'s registered processes and
    namespaces (cached per engine: a file is loaded again when it or a file it includes
    changed, text when the registered processes changed). A :class:`Workflow` is returned as
    is; a ``str`` containing a newline is YAML text; any other ``str`` or path names a file."""
    return _load(engine, source).workflow


def _load(engine: Any, source: Workflow | str | os.PathLike[str]) -> _Loaded:
    cache: dict[Any, _Loaded] = engine._workflows
    generation = len(engine._by_name)
    if isinstance(source, Workflow):
        key: Any = ("workflow", id(source), generation)
    elif isinstance(source, str) and "\n" in source:
        key = ("text", source, generation)
    elif isinstance(source, str | os.PathLike):
        key = ("file", os.path.abspath(os.fspath(source)), generation)
    else:
        raise TypeError(
            f"a workflow is a file path, YAML text or a Workflow, not {type(source).__name__}"
        )
    hit = cache.get(key)
    if hit is not None and hit.fresh() and (key[0] != "workflow" or hit.workflow is source):
        return hit
    specs = _specs(engine)
    namespaces = tuple(engine.state.keys())
    files: dict[str, tuple[int, int] | None] = {}
    if isinstance(source, Workflow):
        workflow = source
    elif key[0] == "text":
        workflow = parse_workflow(str(source), processes=specs, namespaces=namespaces)
    else:
        files[key[1]] = _stamp(key[1])
        workflow = load_workflow(source, processes=specs, namespaces=namespaces)
    for step in iter_steps(workflow.steps):
        if isinstance(step, RunStep) and step.workflow is not None:
            files[step.workflow] = _stamp(step.workflow)
    loaded = _Loaded(workflow, files)
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = loaded
    return loaded


def _inputs(program: Workflow, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    given = dict(inputs or {})
    for key in given:
        if key not in program.inputs:
            declared = ", ".join(program.inputs) or "none"
            raise TypeError(f"inputs=: unknown input {key!r} (declared: {declared})")
    values: dict[str, Any] = {}
    for key, default in program.inputs.items():
        if key in given:
            values[key] = given[key]
        elif default is None:
            raise FluxError(
                f"input {key!r} has no default and was not given", program.source, None, None
            )
        else:
            values[key] = default
    return values


def _callbacks(on_event: Any) -> tuple[Callable[[FluxEvent], Any], ...]:
    if on_event is None:
        return ()
    if callable(on_event):
        return (on_event,)
    if isinstance(on_event, Iterable) and not isinstance(on_event, str | bytes):
        callbacks = tuple(on_event)
        if all(callable(c) for c in callbacks):
            return callbacks
    raise TypeError(f"on_event= must be a callable or a list of callables, not {on_event!r}")


class _EngineHost:
    """The machine's view of a :class:`theus.TheusEngine` (spec/18 §6)."""

    def __init__(self, engine: Any, loaded: _Loaded, publish: bool) -> None:
        self.engine = engine
        self.by_name = engine._by_name
        self.core = engine._core
        self.hub = engine._hub if publish else None
        # a dry run's fork compiles its own, uncached (it is closed when the run ends)
        self.natives = _natives(engine, loaded, cache=publish)

    def step(self, process: str, kwargs: dict[str, Any]) -> tuple[Any, int]:
        spec, handle = self.by_name[process]
        value, version = self.engine._step(spec, handle, kwargs)
        self._after(value)
        return value, int(version)

    async def astep(self, process: str, kwargs: dict[str, Any]) -> tuple[Any, int]:
        spec, handle = self.by_name[process]
        value, version = await self.engine._astep(spec, handle, kwargs)
        self._after(value)
        return value, int(version)

    def _after(self, value: Any) -> None:
        """A durable engine: check the step's commit was stored; store the position (with the
        request of an ``interrupt()`` made on another thread, e.g. by an async process) when
        the commit did not."""
        durable = self.engine._durable
        if durable is None:
            return
        context = current_step.get()
        if context is not None and context.interrupt is None and isinstance(value, Interrupt):
            context.interrupt = value
        durable.after_step(context)

    def pause(self, machine: Machine, request: PendingRequest) -> None:
        from ..pausing import record

        record(self.engine, machine, request)

    def finished(self, machine: Machine) -> None:
        durable = self.engine._durable
        if durable is not None:
            durable.finished(machine)

    def find_pending(
        self, machine: Machine, address: tuple[int, ...], iterations: tuple[int, ...]
    ) -> PendingRequest | None:
        from ..pausing import find

        return find(self.engine, machine, address, iterations)

    def snapshot(self) -> Any:
        return self.core.snapshot()

    def test(self, expression: Expression, inputs: Mapping[str, Any]) -> bool:
        native = self.natives.get(id(expression)) if self.natives else None
        if native is not None:
            return bool(native.test(inputs))
        return expression.test(snapshot_scope(self.core.snapshot(), inputs))

    def publish(self, event: FluxEvent) -> None:
        if self.hub is not None:
            self.hub.publish(event)

    def watched(self) -> bool:
        return self.hub is not None and getattr(self.hub, "receiver_count", 1) > 0


def _natives(engine: Any, loaded: _Loaded, cache: bool = True) -> dict[int, Any]:
    """The backend's native form of each condition (capability ``native-conditions``),
    compiled once per loaded workflow and engine core (a native condition reads the snapshot of
    the core it was compiled for: a dry run's fork needs its own); empty when the backend has
    none."""
    core = engine._core
    if loaded.natives is None or loaded.natives[0] is not core:
        natives: dict[int, Any] = {}
        compile_native = getattr(core, "compile_expression", None)
        if compile_native is not None:
            for step in iter_steps(loaded.workflow.steps):
                if isinstance(step, IfStep | WhileStep):
                    native = compile_native(step.condition)
                    if native is not None:
                        natives[id(step.condition)] = native
        if not cache:
            return natives
        loaded.natives = (core, natives)
    return loaded.natives[1]


def _fork(engine: Any, store: Any = None, run_id: str | None = None) -> Any:
    """A throw-away engine on the same backend holding the current snapshot's data at its
    version, with the same processes, schema and audit recipe (spec/18 §6, dry runs). With
    ``store``: a durable engine on run ``run_id`` of it instead (created from that snapshot,
    or reopened when the store has the run: ``theus run/resume --store``, spec/20)."""
    from ..engine import TheusEngine

    snapshot = engine._core.snapshot()
    audit = engine._audit
    durable: dict[str, Any] = {}
    version = snapshot.version
    if store is not None:
        durable = {"store": store, "run_id": run_id}
        if store.get_run(run_id) is not None:
            version = 0  # reopened: the stored version is used
    fork = TheusEngine(
        context=snapshot.to_dict(),
        backend=engine._backend,
        strict_guards=engine.strict_guards,
        strict_cas=engine.strict_cas,
        audit_recipe=None if audit is None else audit.recipe,
        version=version,
        executor=engine.executor,
        **durable,
    )
    schema = engine._pipeline.find("schema")
    if schema is not None:
        fork._pipeline.add(schema, index=0)
    for spec, _ in engine._by_name.values():
        fork._entry(spec.func)
    return fork


def durable_copy(engine: Any, store: Any, run_id: str) -> Any:
    """A durable engine on run ``run_id`` of ``store`` with ``engine``'s backend, processes,
    schema and audit recipe: a new run from ``engine``'s current state, or the stored run
    reopened (its stored state; ``engine``'s is not used)."""
    return _fork(engine, store, run_id)


def prepare(
    engine: Any,
    workflow: Workflow | str | os.PathLike[str],
    *,
    inputs: Mapping[str, Any] | None = None,
    max_ops: int | None = None,
    on_event: Any = None,
    dry_run: bool = False,
    run_id: str | None = None,
    position: Position | Mapping[str, Any] | None = None,
) -> tuple[Machine, Any]:
    """Load ``workflow`` for ``engine`` and build the run's machine; also the dry run's fork
    engine (or None), which the caller closes when the run ends."""
    if max_ops is not None and (
        not isinstance(max_ops, int) or isinstance(max_ops, bool) or max_ops < 1
    ):
        raise TypeError(f"max_ops= must be a positive int, not {max_ops!r}")
    if not isinstance(dry_run, bool):
        raise TypeError(f"dry_run= must be a bool, not {dry_run!r}")
    if run_id is not None and (not isinstance(run_id, str) or not run_id):
        raise TypeError(f"run_id= must be a non-empty str, not {run_id!r}")
    callbacks = _callbacks(on_event)
    if position is not None and not isinstance(position, Position):
        position = Position.from_json(position)
    loaded = _load(engine, workflow)
    program = loaded.workflow
    values = _inputs(program, inputs)
    limit = max_ops if max_ops is not None else program.max_ops or DEFAULT_MAX_OPS
    fork = _fork(engine) if dry_run else None
    host = _EngineHost(fork if fork is not None else engine, loaded, publish=not dry_run)
    try:
        machine = Machine(
            host,
            program,
            run_id=run_id or uuid.uuid4().hex,
            inputs=values,
            max_ops=limit,
            position=position,
            on_event=callbacks,
            dry_run=dry_run,
        )
    except BaseException:
        if fork is not None:
            fork.close()
        raise
    return machine, fork


def run_workflow(
    engine: Any,
    workflow: Workflow | str | os.PathLike[str] | Path,
    *,
    inputs: Mapping[str, Any] | None = None,
    max_ops: int | None = None,
) -> WorkflowRun:
    """``engine.execute_workflow(workflow, inputs=..., max_ops=...)``."""
    result: WorkflowRun = engine.execute_workflow(workflow, inputs=inputs, max_ops=max_ops)
    return result
