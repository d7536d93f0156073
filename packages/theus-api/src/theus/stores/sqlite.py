"""``SqliteStore``: the embedded default store (spec/21-durability.md §5), stdlib ``sqlite3``.

WAL journal, ``synchronous=NORMAL`` (survives a crash of the application; the last commits may
be lost on a power cut), ``busy_timeout``, one writer at a time (``BEGIN IMMEDIATE``), one
connection per store object guarded by a lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import StoreConflictError, StoreCorruptError, StoreError
from . import codec
from .base import Chain, OutboxRow, PendingRow, RunRecord, VersionRecord

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS theus_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, start INTEGER NOT NULL, head INTEGER NOT NULL,
    created REAL NOT NULL, parent_run TEXT, parent_version INTEGER,
    snap_version INTEGER NOT NULL, snap_bytes INTEGER NOT NULL,
    delta_bytes INTEGER NOT NULL, delta_count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    run_id TEXT NOT NULL, version INTEGER NOT NULL, time REAL NOT NULL, process TEXT,
    paths TEXT NOT NULL, delta TEXT NOT NULL, PRIMARY KEY (run_id, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (run_id, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    run_id TEXT NOT NULL, version INTEGER NOT NULL, idx INTEGER NOT NULL, topic TEXT NOT NULL,
    payload TEXT NOT NULL, PRIMARY KEY (run_id, version, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS positions (
    run_id TEXT NOT NULL, version INTEGER NOT NULL, position TEXT NOT NULL,
    PRIMARY KEY (run_id, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox_marks (
    run_id TEXT PRIMARY KEY, version INTEGER NOT NULL, idx INTEGER NOT NULL);

CREATE TABLE IF NOT EXISTS pending (
    run_id TEXT NOT NULL, token TEXT NOT NULL, request TEXT NOT NULL, created REAL NOT NULL,
    deadline REAL, answered INTEGER, PRIMARY KEY (run_id, token)) WITHOUT ROWID;
"""

_RUN_COLUMNS = (
    "run_id, start, head, created, parent_run, parent_version, snap_version, snap_bytes, "
    "delta_bytes, delta_count"
)
# A run's head and its delta totals since the newest full snapshot are derived from the version
# rows (a commit writes one row and touches no other table: spec/21 §5); the ``runs`` columns of
# those names are not maintained.
_HEAD = "COALESCE((SELECT MAX(v.version) FROM versions v WHERE v.run_id = runs.run_id), runs.start)"
_SINCE = "FROM versions v WHERE v.run_id = runs.run_id AND v.version > runs.snap_version"
_RUN_SELECT = (
    f"SELECT run_id, start, {_HEAD}, created, parent_run, parent_version, snap_version, "
    f"snap_bytes, (SELECT COALESCE(SUM(length(v.delta)), 0) {_SINCE}), "
    f"(SELECT COUNT(*) {_SINCE}) FROM runs"
)
# The version row of a commit, stored only when the run's head is the version before it.
_APPEND = (
    "INSERT INTO versions (run_id, version, time, process, paths, delta) "
    "SELECT ?, ?, ?, ?, ?, ? FROM runs WHERE run_id = ? AND "
    f"{_HEAD} = ?"
)


def _run(row: Any) -> RunRecord:
    return RunRecord(
        run_id=row[0],
        start=row[1],
        head=row[2],
        created=row[3],
        parent_run=row[4],
        parent_version=row[5],
        snapshot_version=row[6],
        snapshot_bytes=row[7],
        delta_bytes=row[8],
        delta_count=row[9],
    )


def _paths(text: str, run_id: str, version: int) -> tuple[str, ...]:
    data = codec.decode(text, f"run {run_id!r} version {version}")
    if type(data) is not list or not all(type(p) is str for p in data):
        raise StoreCorruptError(f"run {run_id!r} version {version}: malformed changed paths")
    return tuple(data)


class _SqlStore:
    """The SQL shared by :class:`SqliteStore` and ``PostgresStore``: subclasses open the
    connection and provide ``_read`` / ``_write`` / ``_snapshot_read`` and the placeholder."""

    path: str
    snapshot_every: int
    _lock: threading.RLock
    _conn: Any
    _placeholder = "?"
    #: appended to the statements that read a run's row to write to it: a server store locks
    #: the row there (`` FOR UPDATE``), so a commit and a position write of one run are
    #: serialised; SQLite's ``BEGIN IMMEDIATE`` serialises every write already
    _lock_run = ""
    #: the driver's error for a duplicate key (a concurrent writer stored the version first)
    _duplicate: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)

    def _q(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        if self._placeholder != "?":
            sql = sql.replace("?", self._placeholder)
        return conn.execute(sql, params)

    def _q_many(self, conn: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if self._placeholder != "?":
            sql = sql.replace("?", self._placeholder)
        conn.cursor().executemany(sql, rows)

    def _read(self) -> Any:
        raise NotImplementedError

    def _write(self) -> Any:
        raise NotImplementedError

    def _snapshot_read(self) -> Any:
        return self._write()

    def _need_run(self, conn: Any, run_id: str, lock: bool = False) -> RunRecord:
        sql = f"{_RUN_SELECT} WHERE run_id = ?" + (self._lock_run if lock else "")
        row = self._q(conn, sql, (run_id,))
        found = row.fetchone()
        if found is None:
            raise StoreError(f"the store {self.path!r} has no run {run_id!r}")
        return _run(found)

    # -- runs ----------------------------------------------------------------------------
    def create_run(self, run: RunRecord, snapshot: str) -> None:
        """See :meth:`theus.stores.Store.create_run`."""
        with self._write() as conn:
            if self._q(conn, "SELECT 1 FROM runs WHERE run_id = ?", (run.run_id,)).fetchone():
                raise StoreConflictError(
                    f"the store {self.path!r} already has a run {run.run_id!r}"
                )
            self._q(
                conn,
                f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0)",
                (
                    run.run_id,
                    run.start,
                    run.start,
                    run.created,
                    run.parent_run,
                    run.parent_version,
                    run.start,
                    len(snapshot),
                ),
            )
            self._q(
                conn,
                "INSERT INTO snapshots (run_id, version, state) VALUES (?, ?, ?)",
                (run.run_id, run.start, snapshot),
            )

    def get_run(self, run_id: str) -> RunRecord | None:
        """See :meth:`theus.stores.Store.get_run`."""
        with self._read() as conn:
            row = self._q(conn, f"{_RUN_SELECT} WHERE run_id = ?", (run_id,))
            found = row.fetchone()
        return None if found is None else _run(found)

    def runs(self) -> list[RunRecord]:
        """See :meth:`theus.stores.Store.runs`."""
        with self._read() as conn:
            rows = self._q(conn, f"{_RUN_SELECT} ORDER BY created, run_id")
            return [_run(r) for r in rows.fetchall()]

    def head(self, run_id: str) -> int:
        """See :meth:`theus.stores.Store.head`."""
        with self._read() as conn:
            found = self._q(
                conn, f"SELECT {_HEAD} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        if found is None:
            raise StoreError(f"the store {self.path!r} has no run {run_id!r}")
        return int(found[0])

    # -- commits -------------------------------------------------------------------------
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
        """See :meth:`theus.stores.Store.append`: one ``BEGIN IMMEDIATE`` transaction."""
        with self._write() as conn:
            self._insert(conn, run_id, record, snapshot, outbox, position)
            self._pending_rows(conn, run_id, record.version, pending, answered)

    def put_position(
        self,
        run_id: str,
        version: int,
        position: str,
        *,
        pending: PendingRow | None = None,
        answered: str | None = None,
    ) -> None:
        """See :meth:`theus.stores.Store.put_position`."""
        with self._write() as conn:
            head = self._need_run(conn, run_id, lock=True).head
            if head != version:
                raise StoreConflictError(
                    f"run {run_id!r}: a position at version {version} cannot be stored: the "
                    f"stored head is {head} (another writer committed to this run)"
                )
            self._q(
                conn,
                "INSERT INTO positions (run_id, version, position) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, version) DO UPDATE SET position = excluded.position",
                (run_id, version, position),
            )
            self._pending_rows(conn, run_id, version, pending, answered)

    def _pending_rows(
        self,
        conn: Any,
        run_id: str,
        version: int,
        pending: PendingRow | None,
        answered: str | None,
    ) -> None:
        if answered is not None:
            cur = self._q(
                conn,
                "UPDATE pending SET answered = ? WHERE run_id = ? AND token = ? "
                "AND answered IS NULL",
                (version, run_id, answered),
            )
            if cur.rowcount != 1:
                raise StoreConflictError(
                    f"run {run_id!r}: the pending request was already answered (or is unknown); "
                    "another resumer answered it first"
                )
        if pending is not None:
            self._q(
                conn,
                "INSERT INTO pending (run_id, token, request, created, deadline, answered) "
                "VALUES (?, ?, ?, ?, ?, NULL)",
                (run_id, pending.token, pending.request, pending.created, pending.deadline),
            )

    def pending(self, run_id: str | None = None) -> list[PendingRow]:
        """See :meth:`theus.stores.Store.pending`."""
        sql = (
            "SELECT run_id, token, request, created, deadline, answered FROM pending "
            "WHERE answered IS NULL"
        )
        params: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " AND run_id = ?"
            params = (run_id,)
        with self._read() as conn:
            rows = self._q(conn, sql + " ORDER BY created, run_id, token", params).fetchall()
        return [PendingRow(*row) for row in rows]

    def get_pending(self, run_id: str, token: str) -> PendingRow | None:
        """See :meth:`theus.stores.Store.get_pending`."""
        with self._read() as conn:
            row = self._q(
                conn,
                "SELECT run_id, token, request, created, deadline, answered FROM pending "
                "WHERE run_id = ? AND token = ?",
                (run_id, token),
            ).fetchone()
        return None if row is None else PendingRow(*row)

    def _insert(
        self,
        conn: Any,
        run_id: str,
        record: VersionRecord,
        snapshot: str | None,
        outbox: Sequence[OutboxRow],
        position: str | None,
    ) -> None:
        version = record.version
        paths = codec.encode(list(record.paths), zoned=False)
        row = (run_id, version, record.time, record.process, paths, record.delta)
        try:
            stored = self._q(conn, _APPEND + self._lock_run, (*row, run_id, version - 1)).rowcount
        except self._duplicate:  # a concurrent writer stored it first (the transaction is lost)
            raise StoreConflictError(
                f"run {run_id!r}: version {version} was stored by another writer at the same "
                "time (another writer committed to this run)"
            ) from None
        if stored != 1:
            head = self._need_run(conn, run_id).head
            raise StoreConflictError(
                f"run {run_id!r}: version {version} cannot follow the stored version {head} "
                "(another writer committed to this run)"
            )
        if snapshot is not None:
            self._q(
                conn,
                "UPDATE runs SET snap_version = ?, snap_bytes = ? WHERE run_id = ?",
                (version, len(snapshot), run_id),
            )
            self._q(
                conn,
                "INSERT INTO snapshots (run_id, version, state) VALUES (?, ?, ?)",
                (run_id, version, snapshot),
            )
        if outbox:
            self._q_many(
                conn,
                "INSERT INTO outbox (run_id, version, idx, topic, payload) VALUES (?, ?, ?, ?, ?)",
                [(run_id, version, m.index, m.topic, m.payload) for m in outbox],
            )
        if position is not None:
            self._q(
                conn,
                "INSERT INTO positions (run_id, version, position) VALUES (?, ?, ?)",
                (run_id, version, position),
            )

    # -- reading -------------------------------------------------------------------------
    def versions(
        self, run_id: str, limit: int | None = None, before: int | None = None
    ) -> list[VersionRecord]:
        """See :meth:`theus.stores.Store.versions`."""
        with self._read() as conn:
            self._need_run(conn, run_id)
            rows = self._q(
                conn,
                "SELECT version, time, process, paths, delta FROM versions WHERE run_id = ? "
                "AND version < ? ORDER BY version DESC" + ("" if limit is None else " LIMIT ?"),
                (run_id, 2**62 if before is None else before) + (() if limit is None else (limit,)),
            ).fetchall()
        return [VersionRecord(v, t, p, _paths(paths, run_id, v), d) for v, t, p, paths, d in rows]

    def chain(self, run_id: str, version: int) -> Chain:
        """See :meth:`theus.stores.Store.chain`."""
        with self._snapshot_read() as conn:
            run = self._need_run(conn, run_id)
            if not run.start <= version <= run.head:
                raise StoreError(
                    f"run {run_id!r} has no version {version} (stored: {run.start}..{run.head})"
                )
            snap = self._q(
                conn,
                "SELECT version, state FROM snapshots WHERE run_id = ? AND version <= ? "
                "ORDER BY version DESC LIMIT 1",
                (run_id, version),
            ).fetchone()
            if snap is None:
                raise StoreError(
                    f"run {run_id!r} version {version}: no full snapshot at or "
                    "below it is stored (pruned?)"
                )
            deltas = self._q(
                conn,
                "SELECT version, delta FROM versions WHERE run_id = ? AND version > ? "
                "AND version <= ? ORDER BY version",
                (run_id, snap[0], version),
            ).fetchall()
        if [v for v, _ in deltas] != list(range(snap[0] + 1, version + 1)):
            raise StoreCorruptError(
                f"run {run_id!r} version {version}: the stored versions between the snapshot "
                f"{snap[0]} and it are incomplete"
            )
        return Chain(version, snap[0], snap[1], tuple((v, d) for v, d in deltas))

    def outbox(self, run_id: str, after: int | None = None) -> list[OutboxRow]:
        """See :meth:`theus.stores.Store.outbox`."""
        with self._read() as conn:
            rows = self._q(
                conn,
                "SELECT version, idx, topic, payload FROM outbox WHERE run_id = ? AND version > ? "
                "ORDER BY version, idx",
                (run_id, -1 if after is None else after),
            ).fetchall()
        return [OutboxRow(run_id, v, i, t, p) for v, i, t, p in rows]

    def position(self, run_id: str) -> tuple[int, str] | None:
        """See :meth:`theus.stores.Store.position`."""
        with self._read() as conn:
            row = self._q(
                conn,
                "SELECT version, position FROM positions WHERE run_id = ? "
                "ORDER BY version DESC LIMIT 1",
                (run_id,),
            ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def delivered(self, run_id: str) -> tuple[int, int] | None:
        """See :meth:`theus.stores.Store.delivered`."""
        with self._read() as conn:
            row = self._q(
                conn, "SELECT version, idx FROM outbox_marks WHERE run_id = ?", (run_id,)
            ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def set_delivered(self, run_id: str, version: int, index: int) -> None:
        """See :meth:`theus.stores.Store.set_delivered`."""
        with self._write() as conn:
            self._q(conn, "DELETE FROM outbox_marks WHERE run_id = ?", (run_id,))
            self._q(
                conn,
                "INSERT INTO outbox_marks (run_id, version, idx) VALUES (?, ?, ?)",
                (run_id, version, index),
            )

    def positions(self, run_id: str) -> list[tuple[int, str]]:
        """See :meth:`theus.stores.Store.positions`."""
        with self._read() as conn:
            rows = self._q(
                conn,
                "SELECT version, position FROM positions WHERE run_id = ? ORDER BY version",
                (run_id,),
            ).fetchall()
        return [(int(v), str(p)) for v, p in rows]

    # -- retention -----------------------------------------------------------------------
    def prune(self, run_id: str, keep_last: int) -> int:
        """See :meth:`theus.stores.Store.prune`. A full snapshot is written at the oldest kept
        version when none is stored there, so every kept version stays readable."""
        if isinstance(keep_last, bool) or not isinstance(keep_last, int):
            raise TypeError(f"prune(keep_last=...) must be an int, not {keep_last!r}")
        if keep_last < 1:
            raise ValueError(f"prune(keep_last=...) must be >= 1, not {keep_last}")
        with self._write() as conn:
            run = self._need_run(conn, run_id)
            oldest = run.head - keep_last + 1
            if oldest <= run.start:
                return 0
            has = self._q(
                conn, "SELECT 1 FROM snapshots WHERE run_id = ? AND version = ?", (run_id, oldest)
            ).fetchone()
            if has is None:
                state = rebuild(self._chain_locked(conn, run_id, oldest), run_id)
                self._q(
                    conn,
                    "INSERT INTO snapshots (run_id, version, state) VALUES (?, ?, ?)",
                    (run_id, oldest, codec.encode(state, zoned=False)),
                )
            deleted = self._q(
                conn, "DELETE FROM versions WHERE run_id = ? AND version < ?", (run_id, oldest)
            ).rowcount
            for table in ("snapshots", "outbox"):
                self._q(
                    conn, f"DELETE FROM {table} WHERE run_id = ? AND version < ?", (run_id, oldest)
                )
            self._q(
                conn,
                "DELETE FROM positions WHERE run_id = ? AND version < ? AND version < "
                "(SELECT MAX(version) FROM positions WHERE run_id = ?)",
                (run_id, oldest, run_id),
            )
            snap = self._q(
                conn,
                "SELECT version, length(state) FROM snapshots WHERE run_id = ? "
                "ORDER BY version DESC LIMIT 1",
                (run_id,),
            ).fetchone()
            self._q(
                conn,
                "UPDATE runs SET start = ?, snap_version = ?, snap_bytes = ? WHERE run_id = ?",
                (oldest, snap[0], snap[1], run_id),
            )
        return int(deleted)

    def _chain_locked(self, conn: Any, run_id: str, version: int) -> Chain:
        snap = self._q(
            conn,
            "SELECT version, state FROM snapshots WHERE run_id = ? AND version <= ? "
            "ORDER BY version DESC LIMIT 1",
            (run_id, version),
        ).fetchone()
        if snap is None:
            raise StoreError(f"run {run_id!r} version {version}: no full snapshot below it")
        deltas = self._q(
            conn,
            "SELECT version, delta FROM versions WHERE run_id = ? AND version > ? "
            "AND version <= ? ORDER BY version",
            (run_id, snap[0], version),
        ).fetchall()
        return Chain(version, snap[0], snap[1], tuple((v, d) for v, d in deltas))


class SqliteStore(_SqlStore):
    """A :class:`theus.stores.Store` in one SQLite file (created when missing).

    ``timeout`` is SQLite's ``busy_timeout`` in seconds: how long a write waits for another
    connection's write transaction to end before failing with :class:`StoreError`.
    ``snapshot_every`` is ``K`` of the snapshot rule (spec/21 §3).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 5.0, snapshot_every: int = 100
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise TypeError(f"SqliteStore(timeout=...) must be a number >= 0, not {timeout!r}")
        if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int):
            raise TypeError(
                f"SqliteStore(snapshot_every=...) must be an int, not {snapshot_every!r}"
            )
        if snapshot_every < 1:
            raise ValueError(f"SqliteStore(snapshot_every=...) must be >= 1, not {snapshot_every}")
        self.snapshot_every = snapshot_every
        self.path = os.fspath(path)
        self._lock = threading.RLock()
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=timeout
            )
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            row = conn.execute("SELECT value FROM theus_meta WHERE key = 'format'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO theus_meta (key, value) VALUES ('format', ?)", (str(codec.FORMAT),)
                )
            elif row[0] != str(codec.FORMAT):
                conn.execute("ROLLBACK")
                raise StoreError(
                    f"{self.path!r} holds durable format {row[0]}; this Theus reads format "
                    f"{codec.FORMAT}"
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store {self.path!r}: {exc}") from exc
        self._conn: sqlite3.Connection | None = conn

    def __repr__(self) -> str:
        return f"<SqliteStore {self.path!r}>"

    # -- plumbing (SQLite) ------------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"the store {self.path!r} is closed")
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._read() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _snapshot_read(self) -> Iterator[sqlite3.Connection]:
        with self._read() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def vacuum(self) -> None:
        """``VACUUM`` the file (and checkpoint the WAL)."""
        with self._read() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rebuild(chain: Chain, run_id: str) -> Any:
    """The plain state tree of ``chain.version``: its snapshot with its deltas applied."""
    tree = codec.decode(chain.snapshot, f"run {run_id!r} snapshot {chain.snapshot_version}")
    if type(tree) is not dict:
        raise StoreCorruptError(
            f"run {run_id!r} snapshot {chain.snapshot_version}: the state is not a map"
        )
    for version, delta in chain.deltas:
        where = f"run {run_id!r} version {version}"
        codec.apply_delta(tree, codec.decode(delta, where), where)
    return tree
