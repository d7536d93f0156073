"""``theus history`` and ``theus show``: reading a durable run's store (spec/20 §2, spec/21).

Both open the SQLite store read-side only: a run that does not exist is an error listing the
runs there, never created.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import click

__all__ = ["register"]

_EXIT_FAILED = 1
_EXIT_SETUP = 3


class StoredError(Exception):
    """A store or run that cannot be read; ``code`` is the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _engine(store_path: str, run_id: str | None) -> Any:
    from ..engine import TheusEngine
    from ..stores import SqliteStore

    path = Path(store_path)
    if not path.is_file():
        raise StoredError(f"no store at {store_path}", _EXIT_SETUP)
    store = SqliteStore(path)
    runs = sorted(r.run_id for r in store.runs())
    if run_id is None:
        if len(runs) != 1:
            store.close()
            listed = ", ".join(runs) or "none"
            raise StoredError(f"{store_path} holds {len(runs)} runs ({listed}); pass --run", 2)
        run_id = runs[0]
    elif run_id not in runs:
        store.close()
        raise StoredError(
            f"{store_path} has no run {run_id!r} (runs: {', '.join(runs) or 'none'})",
            _EXIT_FAILED,
        )
    return TheusEngine(store=store, run_id=run_id)


def _plain(value: Any) -> Any:
    return str(value)


def register(cli: click.Group, fail: Any) -> None:
    """Add the store commands to ``cli``; ``fail(message, code)`` reports an error."""

    @cli.command(
        epilog="""\b
Examples:
  theus history --store app.db
  theus history --store app.db --run r1 --limit 5 --json"""
    )
    @click.option("--store", "store_path", required=True, metavar="PATH", help="SQLite store.")
    @click.option("--run", "run_id", metavar="RUN_ID", help="The run (if the store has several).")
    @click.option("--limit", type=click.IntRange(min=1), help="At most this many versions.")
    @click.option("--json", "as_json", is_flag=True, help="One JSON document instead of lines.")
    def history(store_path: str, run_id: str | None, limit: int | None, as_json: bool) -> None:
        """List a durable run's stored commits, newest first: version, time, process, paths."""
        try:
            engine = _engine(store_path, run_id)
        except StoredError as exc:
            fail(str(exc), exc.code)
        try:
            entries = engine.history(limit=limit)
            rows = [{"version": e.version, "time": e.time, "process": e.process,
                     "paths": list(e.paths)} for e in entries]  # fmt: skip
            if as_json:
                click.echo(json.dumps({"run_id": engine.run_id, "versions": rows}, indent=2))
                return
            for row in rows:
                when = datetime.datetime.fromtimestamp(row["time"], datetime.UTC)
                who = row["process"] or "(host)"
                paths = ", ".join(row["paths"]) or "-"
                click.echo(f"{row['version']:>6}  {when:%Y-%m-%d %H:%M:%S}  {who:<20} {paths}")
        finally:
            engine.close()

    @cli.command(
        epilog="""\b
Examples:
  theus show 3 --store app.db
  theus show 3 --store app.db --run r1"""
    )
    @click.argument("version", type=click.IntRange(min=0))
    @click.option("--store", "store_path", required=True, metavar="PATH", help="SQLite store.")
    @click.option("--run", "run_id", metavar="RUN_ID", help="The run (if the store has several).")
    def show(version: int, store_path: str, run_id: str | None) -> None:
        """Print the state of a stored VERSION of a durable run as JSON."""
        try:
            engine = _engine(store_path, run_id)
        except StoredError as exc:
            fail(str(exc), exc.code)
        try:
            snapshot = engine.at(version)
            state = {"run_id": engine.run_id, "version": version, "state": snapshot.to_dict()}
            click.echo(json.dumps(state, indent=2, sort_keys=True, default=_plain))
        finally:
            engine.close()
