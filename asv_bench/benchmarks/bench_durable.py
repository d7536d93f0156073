"""Durability benchmarks (spec/21), parametrized by backend.

Timing method: as in bench_engine.py (no `setup` hooks; each engine is built on its first call,
which falls in asv's warmup, and kept in a module cache keyed by the parameters; every class
sets an explicit `number`). Stores live in a temporary directory made at import.

`DurableCommit` (one class, so one run gives the overhead):
- `time_commit_plain`: a host transaction writing one key of a 10-key state, no store;
- `time_commit_sqlite`: the same on a durable engine over `SqliteStore` (WAL,
  `synchronous=NORMAL`); overhead = sqlite - plain (target <= 150 µs).

`DurableGrowth.track_growth_bytes`: how much a SQLite store grows (after `vacuum`) when 1 000
commits each change one key of a ~10 MB state (target < 2 MB).

The same-run peers (no Theus):
- `DurableBaseline.time_sqlite_row`: stdlib `sqlite3` with the store's settings (WAL,
  `synchronous=NORMAL`): one `INSERT OR REPLACE` of a small row and its commit, the raw cost a
  durable commit builds on;
- `DurableGrowthBaseline.track_full_snapshot_bytes`: the size of one JSON dump of the growth
  benchmark's ~10 MB state, what a store keeping a full snapshot per step (as LangGraph's
  checkpointers do) adds per commit; 1 000 such commits grow it by 1 000 times this.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from typing import Any

from theus import TheusEngine, backends
from theus.stores import SqliteStore

BACKENDS = tuple(
    name
    for name in ("reference", "rust")
    if any(info.name == name and info.error is None for info in backends())
)
_DIR = tempfile.mkdtemp(prefix="theus-asv-durable-")
_ENGINES: dict[tuple[Any, ...], TheusEngine] = {}
_SQLITE: list[sqlite3.Connection] = []


def _big_state() -> dict[str, Any]:
    """The growth benchmark's ~10 MB state: 100 000 keys of 100-character strings."""
    return {"domain": {"big": {f"k{i}": "x" * 100 for i in range(100_000)}}}


def _engine(backend: str, durable: bool) -> TheusEngine:
    key = (backend, durable)
    engine = _ENGINES.get(key)
    if engine is None:
        context = {"domain": {f"k{i}": i for i in range(10)}}
        if durable:
            store = SqliteStore(os.path.join(_DIR, f"commit-{backend}.db"))
            engine = TheusEngine(context, backend=backend, store=store, run_id="bench")
        else:
            engine = TheusEngine(context, backend=backend)
        _ENGINES[key] = engine
    return engine


class DurableCommit:
    """One one-key host transaction, without and with a SQLite store."""

    params = (BACKENDS,)
    param_names = ("backend",)
    number = 200

    def time_commit_plain(self, backend: str) -> None:
        with _engine(backend, False).transaction() as tx:
            tx.update(data={"domain.k1": 1})

    def time_commit_sqlite(self, backend: str) -> None:
        with _engine(backend, True).transaction() as tx:
            tx.update(data={"domain.k1": 1})


class DurableGrowth:
    """Store growth of 1 000 one-key commits on a ~10 MB state."""

    params = (BACKENDS,)
    param_names = ("backend",)
    number = 1
    repeat = 1
    unit = "bytes"

    def track_growth_bytes(self, backend: str) -> float:
        path = os.path.join(_DIR, f"growth-{backend}-{len(os.listdir(_DIR))}.db")
        store = SqliteStore(path)
        engine = TheusEngine(_big_state(), backend=backend, store=store, run_id="g")
        store.vacuum()
        before = os.path.getsize(path)
        for i in range(1000):
            with engine.transaction() as tx:
                tx.update(data={f"domain.big.k{i}": "y"})
        store.vacuum()
        after = os.path.getsize(path)
        engine.close()
        store.close()
        return float(after - before)


def _sqlite() -> sqlite3.Connection:
    if not _SQLITE:
        db = sqlite3.connect(os.path.join(_DIR, "baseline.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        _SQLITE.append(db)
    return _SQLITE[0]


class DurableBaseline:
    """Raw SQLite with the store's settings: one small row and its commit (no Theus)."""

    number = 200

    def time_sqlite_row(self) -> None:
        db = _sqlite()
        db.execute("BEGIN")
        db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", ("domain.k1", "1"))
        db.execute("COMMIT")


class DurableGrowthBaseline:
    """The size of one full JSON snapshot of the growth benchmark's state (no Theus)."""

    number = 1
    repeat = 1
    unit = "bytes"

    def track_full_snapshot_bytes(self) -> float:
        return float(len(json.dumps(_big_state()).encode()))
