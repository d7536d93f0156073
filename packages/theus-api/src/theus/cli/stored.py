"""``theus history``, ``theus show`` and ``theus pending``: reading a durable run's store
(spec/20 §2, spec/21); the store helpers of ``theus run --store``, ``theus resume`` and
``theus graph --run``.

The reading commands never create anything: a run that does not exist is an error listing the
runs there.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import click

__all__ = [
    "StoredError",
    "durable_engine",
    "open_store",
    "register",
    "run_events",
    "workflow_of",
]

_EXIT_FAILED = 1
_EXIT_SETUP = 3


class StoredError(Exception):
    """A store or run that cannot be read; ``code`` is the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def open_store(store_path: str, *, create: bool) -> Any:
    """The SQLite store at ``store_path`` (``StoredError`` exit 3 when it cannot be opened, or
    is missing and ``create`` is false)."""
    from ..errors import StoreError
    from ..stores import SqliteStore

    if not create and not Path(store_path).is_file():
        raise StoredError(f"no store at {store_path}", _EXIT_SETUP)
    try:
        return SqliteStore(store_path)
    except StoreError as exc:
        raise StoredError(str(exc), _EXIT_SETUP) from exc


def durable_engine(engine: Any, store: Any, run_id: str) -> Any:
    """A durable copy of the SOURCE engine on run ``run_id`` of ``store`` (the SOURCE engine
    is closed): a new run from its state, or the stored run reopened."""
    from ..flux.run import durable_copy

    try:
        return durable_copy(engine, store, run_id)
    finally:
        engine.close()


def workflow_of(store: Any, run_id: str) -> str:
    """The workflow file the run's newest stored position belongs to."""
    from ..stores import codec

    stored = store.position(run_id)
    if stored is None:
        raise StoredError(f"run {run_id!r} has no stored workflow position", _EXIT_FAILED)
    data = codec.decode(stored[1], f"run {run_id!r} position {stored[0]}")
    source = data.get("workflow") if type(data) is dict else None
    if type(source) is not str or source.startswith("<") or not Path(source).is_file():
        raise StoredError(
            f"run {run_id!r}: the workflow file of its position ({source!r}) cannot be read; "
            "pass --workflow FILE",
            _EXIT_FAILED,
        )
    return source


def run_events(store_path: str, run_id: str) -> list[Any]:
    """The stored run's events for a picture overlay (``theus graph --run``)."""
    from ..durable import stored_events

    store = open_store(store_path, create=False)
    try:
        runs = sorted(r.run_id for r in store.runs())
        if run_id not in runs:
            raise StoredError(
                f"{store_path} has no run {run_id!r} (runs: {', '.join(runs) or 'none'})",
                _EXIT_FAILED,
            )
        return stored_events(store, run_id)
    finally:
        store.close()


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

    @cli.command(
        epilog="""\b
Examples:
  theus pending --store app.db
  theus pending --store app.db --run r1 --json

One line per open request: run, token, step location, the path the answer goes to, created,
deadline (UTC) and the prompt as JSON. Answer one with
theus resume RUN_ID --store PATH SOURCE --token TOKEN --value JSON."""
    )
    @click.option("--store", "store_path", required=True, metavar="PATH", help="SQLite store.")
    @click.option("--run", "run_id", metavar="RUN_ID", help="Only this run's requests.")
    @click.option("--json", "as_json", is_flag=True, help="One JSON document instead of lines.")
    def pending(store_path: str, run_id: str | None, as_json: bool) -> None:
        """List the pending requests of paused runs in a store (oldest first)."""
        from ..pausing import decode_row

        try:
            store = open_store(store_path, create=False)
        except StoredError as exc:
            fail(str(exc), exc.code)
        try:
            requests = [decode_row(row, row.run_id) for row in store.pending(run_id)]
        finally:
            store.close()
        rows = [
            {
                "run_id": r.store_run,
                "workflow_run": r.run_id,
                "token": r.token,
                "location": r.location,
                "into": r.into,
                "kind": r.kind,
                "created": r.created,
                "deadline": r.deadline,
                "prompt": r.prompt,
            }
            for r in requests
        ]
        if as_json:
            click.echo(json.dumps(rows, indent=2, default=_plain))
            return
        for row in rows:
            created = _when(row["created"])
            deadline = "-" if row["deadline"] is None else _when(row["deadline"])
            prompt = json.dumps(row["prompt"], default=_plain, sort_keys=True)
            click.echo(
                f"{row['run_id']}  {row['token']}  {row['location']}  into {row['into']}  "
                f"created {created}  deadline {deadline}  prompt {prompt}"
            )


def _when(seconds: float) -> str:
    return f"{datetime.datetime.fromtimestamp(seconds, datetime.UTC):%Y-%m-%dT%H:%M:%SZ}"
