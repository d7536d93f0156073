"""The store conformance module (spec/21-durability.md §4): tests any :class:`theus.stores.Store`.

A store is described by a **factory** ``factory(directory: pathlib.Path) -> StoreUnderTest``
named as ``module:attr`` (``--theus-store``; default :func:`sqlite_store`). The factory MUST
be deterministic for a directory: every :attr:`StoreUnderTest.open` handle made for one
directory — in this process or in a subprocess calling the factory again — sees the same
storage. Run it with ``python -m theus_conformance.stores --store module:factory``.
"""

from __future__ import annotations

import importlib
import pathlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PostgresUnavailable",
    "StoreUnderTest",
    "postgres_store",
    "resolve_factory",
    "sqlite_store",
    "start_postgres",
]


@dataclass(frozen=True)
class StoreUnderTest:
    """A store as the conformance module sees it."""

    name: str
    #: a new handle on the directory's storage (each call a separate connection)
    open: Callable[[], Any]
    #: ``tamper(run_id, version, text)`` overwrites the stored delta text of a version (for
    #: the tampered-row tests); None skips them
    tamper: Callable[[str, int, str], None] | None = None
    #: ``kill_inside(store, version)`` makes the store's write of ``version`` kill the process
    #: with SIGKILL inside its transaction (before it commits); None skips that test
    kill_inside: Callable[[Any, int], None] | None = None


def sqlite_store(directory: pathlib.Path) -> StoreUnderTest:
    """The factory of :class:`theus.stores.SqliteStore` (a file in ``directory``)."""
    from theus.stores import SqliteStore

    path = pathlib.Path(directory) / "theus-store.db"

    def tamper(run_id: str, version: int, text: str) -> None:
        conn = sqlite3.connect(path)
        try:
            conn.execute(
                "UPDATE versions SET delta = ? WHERE run_id = ? AND version = ?",
                (text, run_id, version),
            )
            conn.execute(
                "UPDATE snapshots SET state = ? WHERE run_id = ? AND version = ?",
                (text, run_id, version),
            )
            conn.commit()
        finally:
            conn.close()

    def kill_inside(store: Any, version: int) -> None:
        import os
        import signal

        original = store._insert

        def insert(conn: Any, run_id: str, record: Any, *rest: Any) -> None:
            original(conn, run_id, record, *rest)
            if record.version == version:
                os.kill(os.getpid(), signal.SIGKILL)

        store._insert = insert

    return StoreUnderTest("sqlite", lambda: SqliteStore(path), tamper, kill_inside)


def resolve_factory(spec: str) -> Callable[[pathlib.Path], StoreUnderTest]:
    """The factory named ``module:attr``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"a store factory is named 'module:attr', not {spec!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec!r} is not callable")
    return obj  # type: ignore[no-any-return]


# -- PostgreSQL: a real server started by the tests themselves (loopback, a temp directory) --

_PG_ENV = "THEUS_TEST_PG_DSN"  # set once a server runs; subprocesses (crash tests) reuse it
_PG_BINARIES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/local/pgsql/bin")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries (or psycopg) on this machine: the tests skip."""


def _pg_bin(name: str) -> str:
    import shutil

    for directory in _PG_BINARIES:
        candidate = pathlib.Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise PostgresUnavailable(f"no PostgreSQL server binary {name!r} on this machine")
    return found


def start_postgres() -> str:
    """Start a throw-away PostgreSQL server on 127.0.0.1 (as the ``postgres`` user when run
    as root: the server refuses root) and return its DSN; stopped when this process exits.
    Reuses the server of ``$THEUS_TEST_PG_DSN`` when set."""
    import atexit
    import os
    import socket
    import subprocess
    import tempfile

    dsn = os.environ.get(_PG_ENV)
    if dsn:
        return dsn
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise PostgresUnavailable(
            "psycopg is not installed (pip install 'psycopg[binary]')"
        ) from exc
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    data = pathlib.Path(tempfile.mkdtemp(prefix="theus-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(
        [*prefix, initdb, "-D", str(data / "db"), "-A", "trust", "-U", "theus", "--no-sync"], **run
    )  # type: ignore[call-overload]
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *prefix,
            pg_ctl,
            "-D",
            str(data / "db"),
            "-o",
            options,
            "-w",
            "-l",
            str(data / "db" / "log.txt"),
            "start",
        ],
        **run,
    )  # type: ignore[call-overload]

    def stop() -> None:
        subprocess.run([*prefix, pg_ctl, "-D", str(data / "db"), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)  # fmt: skip

    atexit.register(stop)
    dsn = f"host=127.0.0.1 port={port} user=theus dbname=postgres"
    os.environ[_PG_ENV] = dsn
    return dsn


def postgres_store(directory: pathlib.Path) -> StoreUnderTest:
    """The factory of :class:`theus.stores.PostgresStore`: one database per directory on the
    server :func:`start_postgres` runs."""
    import hashlib

    server = start_postgres()  # PostgresUnavailable (a skip) without psycopg or a server

    import psycopg

    from theus.stores import PostgresStore

    name = "t" + hashlib.sha1(str(pathlib.Path(directory).resolve()).encode()).hexdigest()[:20]
    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    dsn = server.replace("dbname=postgres", f"dbname={name}")

    def tamper(run_id: str, version: int, text: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "UPDATE versions SET delta = %s WHERE run_id = %s AND version = %s",
                (text, run_id, version),
            )
            conn.execute(
                "UPDATE snapshots SET state = %s WHERE run_id = %s AND version = %s",
                (text, run_id, version),
            )

    def kill_inside(store: Any, version: int) -> None:
        import os
        import signal

        original = store._insert

        def insert(conn: Any, run_id: str, record: Any, *rest: Any) -> None:
            original(conn, run_id, record, *rest)
            if record.version == version:
                os.kill(os.getpid(), signal.SIGKILL)

        store._insert = insert

    return StoreUnderTest("postgres", lambda: PostgresStore(dsn), tamper, kill_inside)
