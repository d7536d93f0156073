"""The :class:`Store` protocol and its records (spec/21-durability.md §4).

A store persists text it is given (JSON of the durable format, :mod:`theus.stores.codec`) and
metadata; it never interprets values except to rebuild a state in :meth:`Store.prune`. Every
method is thread-safe; one store may serve several engines (one per run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Chain", "OutboxRow", "PendingRow", "RunRecord", "Store", "VersionRecord"]


@dataclass(frozen=True)
class RunRecord:
    """One run: where it started, its newest stored version (``head``) and the numbers the
    snapshot policy needs (spec/21 §3)."""

    run_id: str
    #: the version the run started at (its first full snapshot)
    start: int
    #: the newest stored version
    head: int
    created: float
    parent_run: str | None = None
    parent_version: int | None = None
    #: the newest full snapshot's version, its size in bytes, and the size and number of the
    #: deltas stored after it
    snapshot_version: int = 0
    snapshot_bytes: int = 0
    delta_bytes: int = 0
    delta_count: int = 0


@dataclass(frozen=True)
class VersionRecord:
    """One stored commit: ``paths`` are the dotted changed paths (tree changes, then signals),
    ``process`` the process name or None for a host transaction, ``delta`` the JSON text of
    its operations (spec/21 §3)."""

    version: int
    time: float
    process: str | None
    paths: tuple[str, ...]
    delta: str


@dataclass(frozen=True)
class OutboxRow:
    """An outbox message as stored: keyed ``(run_id, version, index)``; ``payload`` JSON."""

    run_id: str
    version: int
    index: int
    topic: str
    payload: str


@dataclass(frozen=True)
class PendingRow:
    """A paused workflow's pending request as stored (spec/21 §9): keyed ``(run_id, token)``;
    ``request`` is its JSON text; ``answered`` the version of the commit that wrote its
    answer, or None while it is open."""

    run_id: str
    token: str
    request: str
    created: float
    deadline: float | None = None
    answered: int | None = None


@dataclass(frozen=True)
class Chain:
    """What rebuilding version ``version`` needs: the nearest full snapshot at or below it
    (``snapshot_version``, ``snapshot`` JSON text) and the deltas after it, oldest first."""

    version: int
    snapshot_version: int
    snapshot: str
    deltas: tuple[tuple[int, str], ...]


@runtime_checkable
class Store(Protocol):
    """Persistence of durable runs (spec/21 §4). ``theus.stores.SqliteStore`` is the default;
    a third-party store implements these methods and runs ``theus_conformance.stores``."""

    def create_run(self, run: RunRecord, snapshot: str) -> None:
        """Create ``run`` with ``snapshot`` as the full state of version ``run.start``.
        :class:`theus.errors.StoreConflictError` if the run id exists."""
        ...

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""
        ...

    def runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        ...

    def append(
        self,
        run_id: str,
        record: VersionRecord,
        *,
        snapshot: str | None = None,
        outbox: Sequence[OutboxRow] = (),
        position: str | None = None,
        pending: PendingRow | None = None,
        answered: str | None = None,
    ) -> None:
        """Store one commit in ONE transaction: the version row, the full snapshot when given,
        the outbox rows, the workflow position when given, a new pending request when given,
        and marks the open request with token ``answered`` answered by this version. Raises
        :class:`theus.errors.StoreConflictError` (and stores nothing) unless the run's head is
        ``record.version - 1`` and the ``answered`` request is open; after an exception
        nothing of it is stored."""
        ...

    def put_position(
        self,
        run_id: str,
        version: int,
        position: str,
        *,
        pending: PendingRow | None = None,
        answered: str | None = None,
    ) -> None:
        """Store a workflow position without a commit (a step that wrote nothing, a pause) as
        the run's newest position at its head ``version``, with ``pending`` / ``answered`` as
        for :meth:`append`, in ONE transaction; :class:`theus.errors.StoreConflictError`
        (nothing stored) unless the head is ``version`` and the ``answered`` request is
        open."""
        ...

    def pending(self, run_id: str | None = None) -> list[PendingRow]:
        """The open (unanswered) pending requests, of ``run_id`` or of every run, oldest
        first."""
        ...

    def get_pending(self, run_id: str, token: str) -> PendingRow | None:
        """The request ``token`` of ``run_id`` (answered or not), or None."""
        ...

    def head(self, run_id: str) -> int:
        """The run's newest version (:class:`theus.errors.StoreError` for an unknown run)."""
        ...

    def versions(
        self, run_id: str, limit: int | None = None, before: int | None = None
    ) -> list[VersionRecord]:
        """Stored commits, newest first, those below ``before`` when given, at most
        ``limit``. The run's start version has no record."""
        ...

    def chain(self, run_id: str, version: int) -> Chain:
        """What rebuilding ``version`` needs; :class:`theus.errors.StoreError` when the run
        or version is unknown or pruned."""
        ...

    def outbox(self, run_id: str, after: int | None = None) -> list[OutboxRow]:
        """The run's stored outbox rows, in ``(version, index)`` order (versions above
        ``after`` when given)."""
        ...

    def position(self, run_id: str) -> tuple[int, str] | None:
        """The newest stored workflow position of the run with its version, or None."""
        ...

    def delivered(self, run_id: str) -> tuple[int, int] | None:
        """The run's delivery mark ``(version, index)``: every outbox row before it was
        delivered (spec/21 §3, outbox after a reopen); None when none was stored."""
        ...

    def set_delivered(self, run_id: str, version: int, index: int) -> None:
        """Store the run's delivery mark (replacing the previous one)."""
        ...

    def positions(self, run_id: str) -> list[tuple[int, str]]:
        """Every stored workflow position of the run with its version, oldest first (what
        ``theus graph --run`` draws)."""
        ...

    def prune(self, run_id: str, keep_last: int) -> int:
        """Keep the newest ``keep_last`` versions (>= 1) readable and delete the rest; return
        how many version rows were deleted."""
        ...

    def vacuum(self) -> None:
        """Give the space of deleted rows back (may be slow)."""
        ...

    def close(self) -> None:
        """Close the store; later calls raise :class:`theus.errors.StoreError`. Idempotent."""
        ...
