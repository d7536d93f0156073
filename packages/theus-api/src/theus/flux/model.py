"""The parsed Flux workflow: a typed program with source positions (spec/18-flux.md).

Every node is immutable and carries a :class:`Loc`. :func:`theus.flux.parse.parse_workflow`
and :func:`theus.flux.parse.load_workflow` build it; nothing here runs anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .expr import Expression

if TYPE_CHECKING:
    from ..contracts import ProcessSpec
    from .picture import Kind

__all__ = [
    "DEFAULT_MAX_OPS",
    "Expr",
    "IfStep",
    "Loc",
    "ParallelStep",
    "PauseStep",
    "ProcessStep",
    "RunStep",
    "Step",
    "WhileStep",
    "Workflow",
    "iter_steps",
]

#: the whole-run operation budget when neither the file nor the caller sets one
DEFAULT_MAX_OPS = 10_000


@dataclass(frozen=True)
class Loc:
    """A position in a workflow file (1-based line and column)."""

    file: str
    line: int
    column: int
    #: the key path of the node in its file (``steps[2].then[0]``)
    key_path: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Expr:
    """A ``with:`` argument given as ``{expr: "..."}``: evaluated when the step starts."""

    expression: Expression


@dataclass(frozen=True)
class ProcessStep:
    """Run one registered process (``- name`` or ``- process: name``)."""

    process: str
    loc: Loc
    #: keyword arguments: plain values, or :class:`Expr` evaluated when the step starts
    with_: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class IfStep:
    """``flux: if`` — run ``then`` when the condition is true, else ``else_``."""

    condition: Expression
    then: tuple[Step, ...]
    else_: tuple[Step, ...]
    loc: Loc


@dataclass(frozen=True)
class WhileStep:
    """``flux: while`` — run ``body`` while the condition is true."""

    condition: Expression
    body: tuple[Step, ...]
    loc: Loc
    #: at most this many iterations, or None (bounded by the run's ``max_ops`` only)
    max_iterations: int | None = None


@dataclass(frozen=True)
class RunStep:
    """``flux: run`` — a nested sequence: inline ``steps:`` or an included ``workflow:``."""

    steps: tuple[Step, ...]
    loc: Loc
    #: the included file's resolved path, or None for inline steps
    workflow: str | None = None


@dataclass(frozen=True)
class ParallelStep:
    """``flux: parallel`` — run each branch (a step sequence) concurrently."""

    branches: tuple[tuple[Step, ...], ...]
    loc: Loc


@dataclass(frozen=True)
class PauseStep:
    """``flux: pause`` — stop the run here and wait for a human's answer (spec/18 §1): the
    answer given to ``engine.resume(run_id, token, value)`` is written at ``into``."""

    #: any plain YAML value, shown to the human
    prompt: Any
    #: the dotted state path the answer is written to
    into: str
    loc: Loc
    #: seconds the request may wait for its answer, or None (no deadline)
    timeout: float | None = None


Step = ProcessStep | IfStep | WhileStep | RunStep | ParallelStep | PauseStep


@dataclass(frozen=True)
class Workflow:
    """A whole loaded, validated workflow."""

    steps: tuple[Step, ...]
    #: the file it came from (``<string>`` for text)
    source: str
    name: str | None = None
    description: str | None = None
    #: declared inputs and their defaults (``None``: no default, the caller must give it)
    inputs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: the file's ``max_ops``, or None
    max_ops: int | None = None
    #: the contracts of the processes it runs, when loaded with a ``name -> ProcessSpec`` map
    #: (``kind="state"`` pictures, spec/20); else None
    contracts: Mapping[str, ProcessSpec] | None = field(default=None, compare=False, repr=False)

    def to_mermaid(
        self,
        kind: Kind = "flow",
        run: Any = None,
        contracts: Mapping[str, ProcessSpec] | None = None,
    ) -> str:
        """This workflow as Mermaid text: :func:`theus.flux.picture.to_mermaid`."""
        from .picture import to_mermaid

        return to_mermaid(self, kind, run, contracts)

    def to_dot(
        self,
        kind: Kind = "flow",
        run: Any = None,
        contracts: Mapping[str, ProcessSpec] | None = None,
    ) -> str:
        """This workflow as Graphviz DOT text: :func:`theus.flux.picture.to_dot`."""
        from .picture import to_dot

        return to_dot(self, kind, run, contracts)

    def process_names(self) -> tuple[str, ...]:
        """Every process name the workflow may run, sorted, without repeats."""
        return tuple(sorted({s.process for s in iter_steps(self.steps)
                             if isinstance(s, ProcessStep)}))  # fmt: skip

    def expressions(self) -> Iterator[Expression]:
        """Every condition and ``with:`` expression, in source order."""
        for step in iter_steps(self.steps):
            if isinstance(step, IfStep | WhileStep):
                yield step.condition
            elif isinstance(step, ProcessStep):
                for value in step.with_.values():
                    if isinstance(value, Expr):
                        yield value.expression


def iter_steps(steps: tuple[Step, ...]) -> Iterator[Step]:
    """Every step of ``steps`` and of everything nested in them, in source order (iterative)."""
    stack: list[Iterator[Step]] = [iter(steps)]
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            continue
        yield step
        if isinstance(step, IfStep):
            stack.append(iter((*step.then, *step.else_)))
        elif isinstance(step, WhileStep):
            stack.append(iter(step.body))
        elif isinstance(step, RunStep):
            stack.append(iter(step.steps))
        elif isinstance(step, ParallelStep):
            stack.append(iter([s for b in step.branches for s in b]))
