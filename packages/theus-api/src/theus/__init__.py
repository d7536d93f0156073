"""Theus: a process-oriented, versioned, transactional state engine for Python agents.

The public surface (REQUIREMENTS §3)::

    from theus import TheusEngine, process, StateUpdate, SignalHub

The semantics are specified in the repository's ``spec/``; a backend (``theus-reference``,
``theus-rust``, or a fork) implements them. Importing ``theus`` prints nothing, writes nothing
and loads no backend; the first engine selects one (spec/13).
"""

from __future__ import annotations

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
    ConflictError,
    ContextError,
    ContractViolationError,
    DepthLimitError,
    FluxError,
    InvalidContractError,
    InvalidPathError,
    NestedExecutionError,
    ProcessNotFoundError,
    SchemaViolationError,
    SignalEmpty,
    SignalLagged,
    TheusError,
    WorkflowError,
    WorkflowLimitError,
)
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
    "BackendNotFoundError",
    "Change",
    "Changes",
    "ConflictError",
    "ContextError",
    "ContractViolationError",
    "DepthLimitError",
    "FluxError",
    "Immutable",
    "InvalidContractError",
    "InvalidPathError",
    "Mutable",
    "NestedExecutionError",
    "OutboxMessage",
    "ProcessNotFoundError",
    "ProcessSpec",
    "SchemaViolationError",
    "Semantic",
    "Signal",
    "SignalEmpty",
    "SignalLagged",
    "SignalHub",
    "Stage",
    "StateUpdate",
    "TheusEngine",
    "TheusError",
    "Transaction",
    "WorkflowError",
    "WorkflowLimitError",
    "Zone",
    "backends",
    "process",
]
