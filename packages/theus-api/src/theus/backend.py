"""What a backend (or a fork) imports from ``theus``: the declared backend-facing interface
(spec/14). Everything here is stable for backends; anything else in ``theus`` that is not public
API may change without notice.

A backend implements :class:`Backend`, :class:`EngineCore`, :class:`TxCore` and
:class:`HubCore` (or returns :class:`LocalHub`); around every commit it calls the engine's
:class:`CommitPipeline` (spec/15) with :class:`Changes`; it reports errors with the classes of
:mod:`theus.errors` and the shared texts of :func:`arity_error` / :func:`wildcard_error`.
"""

from __future__ import annotations

from ._runner import apply_return, arity_error, run_async, run_sync, settle, wildcard_error
from .contracts import Contract, ProcessSpec, Semantic
from .errors import (
    ConflictError,
    ContextError,
    ContractViolationError,
    DepthLimitError,
    InvalidContractError,
    InvalidPathError,
    NestedExecutionError,
    SignalEmpty,
    SignalLagged,
    TheusError,
)
from .hub import LocalHub
from .local import Local
from .outbox import OutboxBuffer
from .paths import MAX_DEPTH, Path, Pattern, format_path, has_surrogate, parse_path, parse_pattern
from .pipeline import Change, Changes, CommitPipeline, OutboxMessage, Stage
from .protocols import Backend, EngineCore, EngineOptions, HubCore, Receiver, TxCore
from .retry import RetryPolicy
from .signals import Signal, SignalStage
from .update import Op, StateUpdate, Update
from .zones import ZONE_PREFIXES, Zone, zone_of, zone_of_key

__all__ = [
    "MAX_DEPTH",
    "ZONE_PREFIXES",
    "Backend",
    "Change",
    "Changes",
    "CommitPipeline",
    "ConflictError",
    "ContextError",
    "Contract",
    "ContractViolationError",
    "DepthLimitError",
    "EngineCore",
    "EngineOptions",
    "HubCore",
    "InvalidContractError",
    "InvalidPathError",
    "Local",
    "LocalHub",
    "NestedExecutionError",
    "Op",
    "OutboxBuffer",
    "OutboxMessage",
    "Path",
    "Pattern",
    "ProcessSpec",
    "Receiver",
    "RetryPolicy",
    "Semantic",
    "Signal",
    "SignalEmpty",
    "SignalLagged",
    "SignalStage",
    "Stage",
    "StateUpdate",
    "TheusError",
    "TxCore",
    "Update",
    "Zone",
    "apply_return",
    "arity_error",
    "format_path",
    "has_surrogate",
    "parse_path",
    "parse_pattern",
    "run_async",
    "run_sync",
    "settle",
    "wildcard_error",
    "zone_of",
    "zone_of_key",
]
