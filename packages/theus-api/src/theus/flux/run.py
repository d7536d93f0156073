"""A reference interpreter for Flux workflows (spec/18-flux.md, "Running").

:func:`run_workflow` runs a parsed workflow against a :class:`theus.TheusEngine`: each process
step is one ordinary ``engine.execute(name, **with)``; conditions read the latest committed
snapshot (``engine.state``) when they are evaluated. It is backend-independent and drives the
engine only through its public calls.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import FluxError, WorkflowError, WorkflowLimitError
from .expr import snapshot_scope
from .model import (
    DEFAULT_MAX_OPS,
    Expr,
    IfStep,
    Loc,
    ParallelStep,
    ProcessStep,
    RunStep,
    Step,
    WhileStep,
    Workflow,
)
from .parse import load_workflow, parse_workflow

__all__ = ["WorkflowRun", "load_for_engine", "run_workflow"]


@dataclass(frozen=True)
class WorkflowRun:
    """The result of a completed run."""

    #: the processes that committed, in order (a parallel step: branch 0's, then branch 1's ...)
    executed: tuple[str, ...]
    #: ``engine.state.version`` when the run ended
    version: int
    #: wall-clock seconds
    duration: float
    #: operations counted against ``max_ops``
    ops: int


def _specs(engine: Any) -> Mapping[str, Any]:
    registry = getattr(engine, "_by_name", None)
    if isinstance(registry, Mapping):
        return {name: entry[0] for name, entry in registry.items()}
    raise TypeError("run_workflow() needs a theus.TheusEngine")  # pragma: no cover


def load_for_engine(engine: Any, source: Workflow | str | os.PathLike[str]) -> Workflow:
    """``source`` parsed and validated against ``engine``'s registered processes and
    namespaces. A :class:`Workflow` is returned as is; a ``str`` containing a newline is YAML
    text; any other ``str`` or path-like names a file."""
    if isinstance(source, Workflow):
        return source
    specs = _specs(engine)
    namespaces = tuple(engine.state.keys())
    if isinstance(source, str) and "\n" in source:
        return parse_workflow(source, processes=specs, namespaces=namespaces)
    if isinstance(source, str | os.PathLike):
        return load_workflow(source, processes=specs, namespaces=namespaces)
    raise TypeError(
        f"a workflow is a file path, YAML text or a Workflow, not {type(source).__name__}"
    )


class _Run:
    def __init__(self, engine: Any, inputs: Mapping[str, Any], max_ops: int) -> None:
        self.engine = engine
        self.inputs = inputs
        self.max_ops = max_ops
        self.ops = 0
        self.lock = threading.Lock()

    def count(self, loc: Loc, what: str, executed: list[str]) -> None:
        with self.lock:
            self.ops += 1
            over = self.ops > self.max_ops
        if over:
            raise WorkflowLimitError(
                f"{loc}: {loc.key_path}: the run exceeded max_ops={self.max_ops} at {what}",
                loc.file,
                loc.line,
                loc.column,
                None,
                tuple(executed),
            )

    def scope(self) -> Mapping[str, Any]:
        return snapshot_scope(self.engine.state, self.inputs)

    def steps(self, steps: tuple[Step, ...], executed: list[str]) -> None:
        for step in steps:
            self.step(step, executed)

    def step(self, step: Step, executed: list[str]) -> None:
        loc = step.loc
        if isinstance(step, ProcessStep):
            self.count(loc, f"process {step.process!r}", executed)
            kwargs: dict[str, Any] = {}
            if step.with_:
                scope = None
                for key, value in step.with_.items():
                    if isinstance(value, Expr):
                        scope = scope if scope is not None else self.scope()
                        value = value.expression.evaluate(scope)
                    kwargs[key] = value
            try:
                self.engine.execute(step.process, **kwargs)
            except Exception as exc:
                raise WorkflowError(
                    f"{loc}: {loc.key_path}: process {step.process!r} failed: "
                    f"{type(exc).__name__}: {exc}",
                    loc.file,
                    loc.line,
                    loc.column,
                    step.process,
                    tuple(executed),
                ) from exc
            executed.append(step.process)
        elif isinstance(step, IfStep):
            self.count(loc, "`flux: if`", executed)
            branch = step.then if step.condition.test(self.scope()) else step.else_
            self.steps(branch, executed)
        elif isinstance(step, WhileStep):
            self.count(loc, "`flux: while`", executed)
            iterations = 0
            while step.condition.test(self.scope()):
                if step.max_iterations is not None and iterations >= step.max_iterations:
                    raise WorkflowLimitError(
                        f"{loc}: {loc.key_path}: the loop's condition is still true after "
                        f"max_iterations={step.max_iterations}",
                        loc.file,
                        loc.line,
                        loc.column,
                        None,
                        tuple(executed),
                    )
                iterations += 1
                self.count(loc, f"`flux: while` iteration {iterations}", executed)
                self.steps(step.body, executed)
        elif isinstance(step, RunStep):
            self.count(loc, "`flux: run`", executed)
            self.steps(step.steps, executed)
        else:
            self.count(loc, "`flux: parallel`", executed)
            self.parallel(step, executed)

    def parallel(self, step: ParallelStep, executed: list[str]) -> None:
        results: list[list[str]] = [[] for _ in step.branches]
        errors: list[BaseException | None] = [None] * len(step.branches)

        def branch(i: int) -> None:
            try:
                self.steps(step.branches[i], results[i])
            except BaseException as exc:  # re-raised below, in branch order
                errors[i] = exc

        with ThreadPoolExecutor(max_workers=len(step.branches)) as pool:
            list(pool.map(branch, range(len(step.branches))))
        for done in results:
            executed.extend(done)
        for exc in errors:
            if exc is not None:
                raise exc


def run_workflow(
    engine: Any,
    workflow: Workflow | str | os.PathLike[str],
    *,
    inputs: Mapping[str, Any] | None = None,
    max_ops: int | None = None,
) -> WorkflowRun:
    """Run ``workflow`` on ``engine`` and return a :class:`WorkflowRun` (blocking).

    ``inputs`` override the workflow's declared input defaults (an input declared with a
    null default must be given). ``max_ops`` (else the file's ``max_ops``, else
    ``DEFAULT_MAX_OPS``) bounds the operations: one per step entered, one per loop iteration.
    A failing process raises :class:`WorkflowError`; a limit :class:`WorkflowLimitError`;
    a condition that cannot be evaluated :class:`FluxError`. Earlier commits stay.
    """
    program = load_for_engine(engine, workflow)
    given = dict(inputs or {})
    for key in given:
        if key not in program.inputs:
            declared = ", ".join(program.inputs) or "none"
            raise TypeError(
                f"run_workflow(inputs=...): unknown input {key!r} (declared: {declared})"
            )
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
    if max_ops is not None and (
        not isinstance(max_ops, int) or isinstance(max_ops, bool) or max_ops < 1
    ):
        raise TypeError(f"run_workflow(max_ops=...) must be a positive int, not {max_ops!r}")
    limit = max_ops if max_ops is not None else program.max_ops or DEFAULT_MAX_OPS
    run = _Run(engine, values, limit)
    executed: list[str] = []
    start = time.perf_counter()
    run.steps(program.steps, executed)
    return WorkflowRun(tuple(executed), engine.state.version, time.perf_counter() - start, run.ops)
