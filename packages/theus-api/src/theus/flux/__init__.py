"""Flux: YAML workflows whose control flow runs in the engine (spec/18-flux.md).

- :mod:`theus.flux.expr` — the safe condition language (parsed with :mod:`ast`, checked
  against an allow-list, compiled to closures; never ``eval``);
- :mod:`theus.flux.parse` — YAML text or file -> a validated :class:`Workflow`, every error a
  :class:`theus.errors.FluxError` naming ``file:line:column``;
- :mod:`theus.flux.model` — the typed program;
- :mod:`theus.flux.machine` — the resumable state machine that runs a workflow;
- :mod:`theus.flux.position` — where a run is, as plain data;
- :mod:`theus.flux.events` — what a run reports, and its result;
- :mod:`theus.flux.run` — loading for an engine, dry runs; :mod:`theus.flux.handle` —
  background runs.
"""

from __future__ import annotations

from .events import (
    FluxEvent,
    RunCompleted,
    RunFailed,
    RunPaused,
    RunStarted,
    StepCommitted,
    StepFailed,
    StepStarted,
    WorkflowRun,
)
from .expr import Expression, compile_expression, snapshot_scope
from .handle import RunHandle
from .machine import WorkflowIterator
from .model import (
    DEFAULT_MAX_OPS,
    Expr,
    IfStep,
    Loc,
    ParallelStep,
    PauseStep,
    ProcessStep,
    RunStep,
    Step,
    WhileStep,
    Workflow,
    iter_steps,
)
from .parse import load_workflow, parse_workflow, patterns_overlap
from .pause import Interrupt, PendingRequest, interrupt
from .position import Fork, Frame, Position
from .run import run_workflow

__all__ = [
    "DEFAULT_MAX_OPS",
    "Expr",
    "Expression",
    "FluxEvent",
    "Fork",
    "Frame",
    "IfStep",
    "Loc",
    "Interrupt",
    "ParallelStep",
    "PauseStep",
    "PendingRequest",
    "Position",
    "ProcessStep",
    "RunCompleted",
    "RunFailed",
    "RunHandle",
    "RunPaused",
    "RunStarted",
    "RunStep",
    "Step",
    "StepCommitted",
    "StepFailed",
    "StepStarted",
    "WhileStep",
    "Workflow",
    "WorkflowIterator",
    "WorkflowRun",
    "compile_expression",
    "interrupt",
    "iter_steps",
    "load_workflow",
    "parse_workflow",
    "patterns_overlap",
    "run_workflow",
    "snapshot_scope",
]
