"""Flux: YAML workflows whose control flow runs in the engine (spec/18-flux.md).

- :mod:`theus.flux.expr` — the safe condition language (parsed with :mod:`ast`, checked
  against an allow-list, compiled to closures; never ``eval``);
- :mod:`theus.flux.parse` — YAML text or file -> a validated :class:`Workflow`, every error a
  :class:`theus.errors.FluxError` naming ``file:line:column``;
- :mod:`theus.flux.model` — the typed program;
- :mod:`theus.flux.run` — a reference interpreter over ``engine.execute``.
"""

from __future__ import annotations

from .expr import Expression, compile_expression, snapshot_scope
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
    iter_steps,
)
from .parse import load_workflow, parse_workflow, patterns_overlap
from .run import WorkflowRun, run_workflow

__all__ = [
    "DEFAULT_MAX_OPS",
    "Expr",
    "Expression",
    "IfStep",
    "Loc",
    "ParallelStep",
    "ProcessStep",
    "RunStep",
    "Step",
    "WhileStep",
    "Workflow",
    "WorkflowRun",
    "compile_expression",
    "iter_steps",
    "load_workflow",
    "parse_workflow",
    "patterns_overlap",
    "run_workflow",
    "snapshot_scope",
]
