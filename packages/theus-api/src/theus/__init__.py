"""Theus: a process-oriented, versioned, transactional state engine for Python agents.

The public surface (REQUIREMENTS §3)::

    from theus import TheusEngine, process, StateUpdate, SignalHub

The semantics are specified in the repository's ``spec/``; a backend (``theus-reference``,
``theus-rust``, or a fork) implements them. Importing ``theus`` prints nothing, writes nothing
and loads no backend; the first engine selects one (spec/13).
"""

from __future__ import annotations

from typing import Any

from ._discovery import BackendInfo, backends
from .contracts import ProcessSpec, Semantic, process
from .engine import TheusEngine, Transaction
from .errors import (
    AuditAbortError,
    AuditBlockError,
    AuditRecipeError,
    AuditStopError,
    AuditViolationError,
    BackendLoadError,
    BackendNotFoundError,
    BatchError,
    ConflictError,
    ContextError,
    ContractViolationError,
    DepthLimitError,
    ExecutorUnavailableError,
    FluxError,
    InvalidContractError,
    InvalidPathError,
    NestedExecutionError,
    PauseExpiredError,
    ProcessNotFoundError,
    ResumeTokenError,
    SchemaViolationError,
    SignalEmpty,
    SignalLagged,
    StoreConflictError,
    StoreCorruptError,
    StoreError,
    TheusError,
    WorkerError,
    WorkflowError,
    WorkflowLimitError,
)
from .flux.pause import Interrupt, PendingRequest, interrupt
from .pipeline import Change, Changes, OutboxMessage, Stage
from .schema import AppendOnly, Immutable, Mutable
from .signals import Signal, SignalHub
from .update import StateUpdate
from .zones import Zone

__version__ = "0.1.0"

__all__ = [
    "AppendOnly",
    "AuditAbortError",
    "AuditBlockError",
    "AuditRecipeError",
    "AuditStopError",
    "AuditViolationError",
    "BackendInfo",
    "BackendLoadError",
    "BatchError",
    "BackendNotFoundError",
    "Change",
    "Changes",
    "ConflictError",
    "ContextError",
    "ContractViolationError",
    "DepthLimitError",
    "ExecutorUnavailableError",
    "FluxError",
    "Immutable",
    "InvalidContractError",
    "Interrupt",
    "InvalidPathError",
    "Mutable",
    "NestedExecutionError",
    "OutboxMessage",
    "PauseExpiredError",
    "PendingRequest",
    "ProcessNotFoundError",
    "ProcessSpec",
    "ResumeTokenError",
    "SchemaViolationError",
    "Semantic",
    "Signal",
    "SignalEmpty",
    "SignalLagged",
    "SignalHub",
    "Stage",
    "StateUpdate",
    "StoreConflictError",
    "StoreCorruptError",
    "StoreError",
    "TheusEngine",
    "TheusError",
    "Transaction",
    "WorkerError",
    "WorkflowError",
    "WorkflowLimitError",
    "Zone",
    "backends",
    "interrupt",
    "open",
    "process",
]


def open(path: Any, run_id: str | None = None, **kwargs: Any) -> TheusEngine:
    """A durable engine (spec/21) on the SQLite file ``path`` (or a :class:`theus.stores.Store`):
    ``theus.open("app.db", run_id="r1", context={...})`` creates run ``r1`` or reopens it at its
    last stored version. The engine closes a store it opened from a path."""
    return TheusEngine(store=path, run_id=run_id, **kwargs)
