"""Every exception Theus raises (spec/12-errors.md).

All classes derive from :class:`TheusError`; several also derive from the built-in exception a
Python programmer would reach for (``ValueError``, ``PermissionError``, ``KeyError``, ...), so
existing ``except`` clauses keep working.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from typing import Any

__all__ = [
    "BackendLoadError",
    "BackendNotFoundError",
    "ConflictError",
    "ContextError",
    "ContractViolationError",
    "DepthLimitError",
    "FluxError",
    "InvalidContractError",
    "InvalidPathError",
    "NestedExecutionError",
    "ProcessNotFoundError",
    "SchemaViolationError",
    "AuditAbortError",
    "AuditBlockError",
    "AuditRecipeError",
    "AuditStopError",
    "AuditViolationError",
    "SignalEmpty",
    "SignalLagged",
    "TheusError",
    "WorkflowError",
    "WorkflowLimitError",
    "StoreError",
    "StoreConflictError",
    "StoreCorruptError",
    "WorkerError",
    "BatchError",
    "ExecutorUnavailableError",
    "ResumeTokenError",
    "PauseExpiredError",
]


class TheusError(Exception):
    """Base class of every Theus error."""


class ContextError(TheusError):
    """A snapshot or read-only view was mutated, or the context was used outside its lifetime."""


class DepthLimitError(ContextError, ValueError):
    """A value would sit deeper than ``MAX_DEPTH`` (256) path segments, or contains itself
    (spec/01)."""


class InvalidPathError(TheusError, ValueError):
    """A dotted path is malformed (spec/02)."""


class InvalidContractError(TheusError, ValueError):
    """A process contract is malformed or cannot match anything (spec/04)."""


class ContractViolationError(TheusError, PermissionError):
    """A process read or wrote outside its contract, or broke a zone rule (spec/03, spec/04)."""


class ConflictError(TheusError):
    """Optimistic concurrency lost: re-runs exhausted, or a host transaction/CAS lost (spec/05)."""


class NestedExecutionError(TheusError, RuntimeError):
    """The engine was called from inside one of its own running processes (spec/10)."""


class ProcessNotFoundError(TheusError, KeyError, ValueError):
    """``execute("name")`` named a process that is not registered (also a ``ValueError``:
    what Theus 3 raised, spec/19)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class BackendNotFoundError(TheusError, LookupError):
    """The requested backend is not installed, or none is (spec/13)."""


class BackendLoadError(TheusError, ImportError):
    """A backend's entry point failed to import or is not a backend (spec/13)."""


class SignalEmpty(TheusError, queue.Empty):
    """``Receiver.try_recv()`` found no pending message."""


class SignalLagged(TheusError):
    """A ``lag`` receiver fell behind: ``missed`` messages were dropped since the last report
    (spec/08). The next receive continues from the oldest message retained."""

    def __init__(self, missed: int) -> None:
        super().__init__(f"the receiver fell behind and missed {missed} message(s)")
        self.missed = missed

    def __reduce__(self) -> tuple[type[SignalLagged], tuple[int]]:
        return (type(self), (self.missed,))


class SchemaViolationError(TheusError, ValueError):
    """A commit would write a value its engine's schema refuses (Type Shield, spec/16).

    ``path`` (dotted), ``expected`` (the annotation or rule, as text) and ``value`` (plain
    data) name the first offending write; ``errors`` is pydantic's error list (``[]`` for a
    rule of the schema itself). Nothing was committed, published or released.
    """

    def __init__(
        self,
        message: str,
        path: str = "",
        expected: str = "",
        value: object = None,
        errors: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.value = value
        self.errors: list[dict[str, Any]] = list(errors or [])

    def __reduce__(self) -> Any:
        return (
            type(self),
            (str(self), self.path, self.expected, self.value, self.errors),
        )


class AuditViolationError(TheusError):
    """An audit recipe's rule stopped a call (spec/17); nothing was committed.

    ``violation`` is the record (``theus.audit.AuditViolation``) that decided, ``violations``
    every violation of the call. Raised as one of :class:`AuditStopError`,
    :class:`AuditAbortError`, :class:`AuditBlockError`.
    """

    def __init__(
        self, message: str, violation: object = None, violations: tuple[object, ...] = ()
    ) -> None:
        super().__init__(message)
        self.violation = violation
        self.violations = tuple(violations)

    def __reduce__(
        self,
    ) -> tuple[type[AuditViolationError], tuple[str, object, tuple[object, ...]]]:
        return (type(self), (str(self), self.violation, self.violations))


class AuditStopError(AuditViolationError):
    """A rule of level ``S`` (Stop) was violated (spec/17)."""


class AuditAbortError(AuditViolationError):
    """A rule of level ``A`` (Abort) was violated (spec/17)."""


class AuditBlockError(AuditViolationError):
    """A rule of level ``B`` (Block) was violated more than ``threshold_max`` times (spec/17)."""


class AuditRecipeError(TheusError, ValueError):
    """An audit recipe is malformed (spec/17); raised when the engine is built.

    The message starts with ``FILE:LINE:COLUMN:`` (a file) or ``audit recipe:`` (a mapping),
    then the key path (``process_recipes.transfer.outputs[0].min``) and the problem. ``file``,
    ``line``, ``column`` (1-based; ``None`` when unknown), ``key_path`` and ``problem`` carry
    the parts.
    """

    def __init__(
        self,
        problem: str,
        key_path: str = "<recipe>",
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        if file is not None:
            where = file if line is None else f"{file}:{line}:{column}"
        else:
            where = "audit recipe"
        super().__init__(f"{where}: {key_path}: {problem}")
        self.problem = problem
        self.key_path = key_path
        self.file = file
        self.line = line
        self.column = column

    def __reduce__(
        self,
    ) -> tuple[type[AuditRecipeError], tuple[str, str, str | None, int | None, int | None]]:
        return (type(self), (self.problem, self.key_path, self.file, self.line, self.column))


class FluxError(TheusError, ValueError):
    """A Flux workflow or condition is malformed, or a condition could not be evaluated
    (spec/18-flux.md).

    The message starts with ``FILE:LINE:COLUMN:`` (``FILE`` alone when the position is unknown),
    then the key path in the workflow (``steps[2].condition``) when there is one, then the
    problem. ``file``, ``line``, ``column`` (1-based; ``None`` when unknown), ``key_path``,
    ``expression`` (the condition's text, or ``None``) and ``problem`` carry the parts.
    """

    def __init__(
        self,
        problem: str,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key_path: str | None = None,
        expression: str | None = None,
    ) -> None:
        where = file if file is not None else "<workflow>"
        if line is not None:
            where = f"{where}:{line}:{column if column is not None else 1}"
        parts = [where]
        if key_path:
            parts.append(key_path)
        parts.append(problem)
        super().__init__(": ".join(parts))
        self.problem = problem
        self.file = file
        self.line = line
        self.column = column
        self.key_path = key_path
        self.expression = expression

    def __reduce__(self) -> Any:
        return (
            type(self),
            (self.problem, self.file, self.line, self.column, self.key_path, self.expression),
        )


class WorkflowError(TheusError, RuntimeError):
    """A step of a running Flux workflow failed (spec/18-flux.md); earlier steps stay committed.

    The message names the step's ``FILE:LINE:COLUMN``, the process and the cause (chained as
    ``__cause__``). ``file``, ``line``, ``column``, ``process`` and ``executed`` (the names of
    the processes that committed before the failure, in order) carry the parts.
    """

    def __init__(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        process: str | None = None,
        executed: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.column = column
        self.process = process
        self.executed = tuple(executed)

    def __reduce__(self) -> Any:
        return (
            type(self),
            (str(self), self.file, self.line, self.column, self.process, self.executed),
        )


class WorkflowLimitError(WorkflowError):
    """A run exceeded ``max_ops`` or a loop its ``max_iterations`` (spec/18-flux.md)."""


class StoreError(TheusError):
    """A durable store could not do what was asked: a missing or pruned run or version, a
    closed store, a write that failed (spec/21)."""


class StoreConflictError(StoreError):
    """Another writer committed to the same run first (spec/21: one writer per run wins)."""


class StoreCorruptError(StoreError, ValueError):
    """A stored row is not in the durable format (tampered, truncated or foreign); the message
    names the run and the version (spec/21)."""


class WorkerError(TheusError, RuntimeError):
    """The worker running a parallel process died (killed, segfault, ``os._exit``) or could not
    be reached (spec/22): that call failed and committed nothing; the pool replaced the worker.

    ``pid`` and ``exitcode`` (negative: the signal number) name the dead worker when known.
    """

    def __init__(self, message: str, pid: int | None = None, exitcode: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.exitcode = exitcode

    def __reduce__(self) -> Any:
        return (type(self), (str(self), self.pid, self.exitcode))


class ExecutorUnavailableError(TheusError, LookupError):
    """The executor asked for cannot run in this interpreter (spec/22): the message names what
    is available. Theus never falls back to another executor silently."""


class BatchError(TheusError, ExceptionGroup):
    """Some items of ``execute_many``/``map`` failed (spec/22); raised after every item ran.

    An ``ExceptionGroup`` of the failed items' exceptions (each with a note naming its index and
    process); ``results`` holds every item's outcome in order: the return value of a
    successful item (its commit stands), the exception of a failed one; ``failed`` the indices
    of the failed items.
    """

    results: list[Any]
    failed: tuple[int, ...]

    def __new__(
        cls, message: str, exceptions: Sequence[Exception], results: list[Any] | None = None,
        failed: Sequence[int] = (),
    ) -> BatchError:  # fmt: skip
        self = super().__new__(cls, message, exceptions)
        self.results = list(results or [])
        self.failed = tuple(failed)
        return self

    def __init__(
        self, message: str, exceptions: Sequence[Exception], results: list[Any] | None = None,
        failed: Sequence[int] = (),
    ) -> None:  # fmt: skip
        super().__init__(message, exceptions)

    def derive(self, excs: Sequence[Exception]) -> BatchError:  # type: ignore[override]
        return BatchError(self.message, excs, self.results, self.failed)

    def __reduce__(self) -> Any:
        return (type(self), (self.message, list(self.exceptions), self.results, self.failed))


class ResumeTokenError(TheusError, LookupError):
    """``engine.resume(run_id, token, value)`` named no open pending request: an unknown or
    stale token, or a run that is not paused there (spec/21 §9)."""


class PauseExpiredError(ResumeTokenError):
    """The pending request's ``timeout:`` passed before it was answered (spec/21 §9)."""
