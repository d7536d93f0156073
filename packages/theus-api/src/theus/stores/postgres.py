"""``PostgresStore``: the server store (spec/21-durability.md §5), psycopg 3.

The same tables and SQL as :class:`theus.stores.SqliteStore` (texts are stored as ``TEXT``,
byte for byte); one connection per store object guarded by a lock; every write is one
transaction whose conditional ``UPDATE runs ... WHERE head = version - 1`` takes the run's row
lock, so two writers on one run are serialised and exactly one stores a version.
``pip install theus-api[postgres]`` installs psycopg.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import StoreError
from . import codec
from .sqlite import _SqlStore

__all__ = ["PostgresStore"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS theus_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, start BIGINT NOT NULL, "
    "head BIGINT NOT NULL, created DOUBLE PRECISION NOT NULL, parent_run TEXT, "
    "parent_version BIGINT, snap_version BIGINT NOT NULL, snap_bytes BIGINT NOT NULL, "
    "delta_bytes BIGINT NOT NULL, delta_count BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS versions (run_id TEXT NOT NULL, version BIGINT NOT NULL, "
    "time DOUBLE PRECISION NOT NULL, process TEXT, paths TEXT NOT NULL, delta TEXT NOT NULL, "
    "PRIMARY KEY (run_id, version))",
    "CREATE TABLE IF NOT EXISTS snapshots (run_id TEXT NOT NULL, version BIGINT NOT NULL, "
    "state TEXT NOT NULL, PRIMARY KEY (run_id, version))",
    "CREATE TABLE IF NOT EXISTS outbox (run_id TEXT NOT NULL, version BIGINT NOT NULL, "
    "idx BIGINT NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL, "
    "PRIMARY KEY (run_id, version, idx))",
    "CREATE TABLE IF NOT EXISTS positions (run_id TEXT NOT NULL, version BIGINT NOT NULL, "
    "position TEXT NOT NULL, PRIMARY KEY (run_id, version))",
    "CREATE TABLE IF NOT EXISTS outbox_marks (run_id TEXT PRIMARY KEY, version BIGINT NOT NULL, "
    "idx BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pending (run_id TEXT NOT NULL, token TEXT NOT NULL, "
    "request TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, deadline DOUBLE PRECISION, "
    "answered BIGINT, PRIMARY KEY (run_id, token))",
)


class PostgresStore(_SqlStore):
    """A :class:`theus.stores.Store` in a PostgreSQL database (``dsn``: a libpq connection
    string or URL). ``snapshot_every`` is ``K`` of the snapshot rule (spec/21 §3)."""

    _placeholder = "%s"
    _lock_run = " FOR UPDATE OF runs"

    def __init__(self, dsn: str, *, snapshot_every: int = 100) -> None:
        if not isinstance(dsn, str):
            raise TypeError(f"PostgresStore(dsn=...) must be a str, not {type(dsn).__name__}")
        if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int):
            raise TypeError(
                f"PostgresStore(snapshot_every=...) must be an int, not {snapshot_every!r}"
            )
        if snapshot_every < 1:
            raise ValueError(
                f"PostgresStore(snapshot_every=...) must be >= 1, not {snapshot_every}"
            )
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError(
                "PostgresStore needs psycopg 3: pip install 'theus-api[postgres]'"
            ) from exc
        self._psycopg: Any = psycopg
        self._duplicate = (psycopg.errors.UniqueViolation,)
        self.snapshot_every = snapshot_every
        self.path = _redact(dsn)
        self._lock = threading.RLock()
        try:
            conn = psycopg.connect(dsn, autocommit=True)
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(4242424242)")  # one DDL at a time
                for statement in _SCHEMA:
                    conn.execute(statement)
                row = conn.execute("SELECT value FROM theus_meta WHERE key = 'format'").fetchone()
                if row is None:
                    conn.execute(
                        "INSERT INTO theus_meta (key, value) VALUES ('format', %s)",
                        (str(codec.FORMAT),),
                    )
            if row is not None and row[0] != str(codec.FORMAT):
                conn.close()
                raise StoreError(
                    f"{self.path!r} holds durable format {row[0]}; this Theus reads format "
                    f"{codec.FORMAT}"
                )
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the PostgreSQL store {self.path!r}: {exc}") from exc
        self._conn = conn

    def __repr__(self) -> str:
        return f"<PostgresStore {self.path!r}>"

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"the store {self.path!r} is closed")
            try:
                yield conn
            except self._psycopg.Error as exc:
                raise StoreError(f"PostgreSQL store {self.path!r}: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with self._read() as conn, conn.transaction():
            yield conn

    def vacuum(self) -> None:
        """``VACUUM`` the store's tables."""
        with self._read() as conn:
            for table in ("versions", "snapshots", "outbox", "positions", "runs"):
                conn.execute(f"VACUUM {table}")

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _redact(dsn: str) -> str:
    """The DSN without its password (for messages)."""
    out = []
    for part in dsn.split():
        out.append("password=***" if part.startswith("password=") else part)
    text = " ".join(out)
    if "://" in text and "@" in text:
        scheme, rest = text.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        text = f"{scheme}://{cred.split(':', 1)[0]}@{host}"
    return text
