"""The ``theus`` commands (click), their errors and exit codes (spec/20-cli-and-pictures.md)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from ..flux.picture import Kind
from . import stored as _stored
from .source import SetupError, Source, engine_specs, load_processes, load_state, make_engine

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PAUSED",
    "EXIT_SETUP",
    "EXIT_USAGE",
    "main",
]

EXIT_OK = 0
#: the workflow failed, ``check`` found an invalid file, the conformance suite failed
EXIT_FAILED = 1
#: unknown option, missing argument, bad ``--input``
EXIT_USAGE = 2
#: the context, state, processes, backend or Graphviz cannot be had; a file cannot be written
EXIT_SETUP = 3
#: the run paused at a ``flux: pause`` or an ``interrupt()`` and waits for an answer
EXIT_PAUSED = 4
EXIT_INTERRUPTED = 130

_FORMATS = {".mmd": "mermaid", ".mermaid": "mermaid", ".dot": "dot", ".gv": "dot", ".svg": "svg",
            ".png": "png"}  # fmt: skip


@dataclass
class _Options:
    debug: bool = False


class _Failed(Exception):
    """A command failed with ``code`` after reporting what went wrong."""

    def __init__(self, message: str | None, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _one_line(text: object) -> str:
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _error(message: object) -> None:
    click.echo(f"theus: error: {_one_line(message)}", err=True)


def _fail(message: object, code: int) -> NoReturn:
    raise _Failed(_one_line(message), code)


# --------------------------------------------------------------------------- shared options

_SOURCE_HELP = """\b
SOURCE (where the processes come from), one of:
  --context MODULE:ATTR        a TheusEngine, or a zero-argument callable returning one
  --state FILE --processes MODULE   initial state (.json/.yaml) + the module(s) of @process
                               functions"""


def _source_options(fn: Any) -> Any:
    fn = click.option(
        "--processes",
        "processes",
        multiple=True,
        metavar="MODULE",
        help="Import MODULE and use every @process function defined in it (repeatable).",
    )(fn)
    fn = click.option(
        "--state",
        metavar="FILE",
        help="Initial state, a .json or .yaml file of namespaces (with --processes).",
    )(fn)
    fn = click.option(
        "--context",
        metavar="MODULE:ATTR",
        help="A TheusEngine with its processes registered, or a zero-argument factory.",
    )(fn)
    return fn


def _source(
    context: str | None, state: str | None, processes: Sequence[str], backend: str | None
) -> Source:
    if context is not None and (state is not None or processes):
        raise click.UsageError("give either --context or --state/--processes, not both")
    return Source(context, state, tuple(processes), backend)


def _parse_inputs(pairs: Sequence[str]) -> dict[str, Any]:
    yaml: Any = importlib.import_module("yaml")

    inputs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise click.BadParameter(f"expected KEY=VALUE, not {pair!r}", param_hint="--input")
        if key in inputs:
            raise click.BadParameter(f"input {key!r} given twice", param_hint="--input")
        try:
            inputs[key] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            inputs[key] = text
    return inputs


# --------------------------------------------------------------------------- the group


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
Examples:
  theus run flow.yaml --context myapp.engine:make_engine --input limit=3
  theus run flow.yaml --state state.json --processes myapp.procs
  theus check flows/*.yaml --processes myapp.procs
  theus graph flow.yaml -o flow.svg
  theus backends
  theus conformance --backend rust -q
  theus history --store app.db; theus show 3 --store app.db
  theus run flow.yaml --context app:engine --store app.db --run-id r1
  theus pending --store app.db
  theus resume r1 --store app.db --context app:engine --token TOKEN --value '"yes"'
  theus graph flow.yaml --run r1 --store app.db -o r1.svg

Exit codes: 0 ok, 1 the workflow failed or check found errors, 2 usage error,
3 setup failed (context, state, processes, backend, Graphviz, store), 4 the run paused
and waits for an answer (theus pending, theus resume --token), 130 interrupted.""",
)
@click.option("--debug", is_flag=True, help="Print the traceback of an error too.")
@click.version_option(package_name="theus-api", prog_name="theus")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Run, check and draw Theus Flux workflows; read durable runs; list backends; run the
    conformance suite."""
    ctx.ensure_object(_Options).debug = debug


# --------------------------------------------------------------------------- run


def _progress_option(fn: Any) -> Any:
    return click.option(
        "--progress",
        type=click.Choice(["auto", "live", "plain", "none"]),
        default="auto",
        show_default=True,
        help="auto: a live display on a terminal, plain lines otherwise.",
    )(fn)


@cli.command(
    epilog="""\b
Examples:
  theus run review.yaml --context examples.flux.review:make_engine
  theus run review.yaml --state state.json --processes examples.flux.review --input target=2
  theus run review.yaml --context app:engine --backend reference --progress plain
  theus run review.yaml --context app:engine --store app.db --run-id r1

With --store the run is durable (a SQLite file, created when missing): every commit is
stored; a crashed run continues with theus resume RUN_ID. A run that pauses (flux: pause,
interrupt()) prints its token and prompt and exits 4; answer with theus resume --token.

"""
    + _SOURCE_HELP
)
@click.argument("workflow", type=click.Path(dir_okay=False))
@_source_options
@click.option("--backend", metavar="NAME", help="The backend (rust, reference, ...).")
@click.option(
    "--input", "inputs", multiple=True, metavar="KEY=VALUE",
    help="A workflow input; VALUE is read as YAML (3 is an int). Repeatable.",
)  # fmt: skip
@click.option("--max-ops", type=click.IntRange(min=1), help="The run's operation budget.")
@click.option("--dry-run", is_flag=True, help="Walk the workflow without committing anything.")
@click.option("--store", "store_path", metavar="PATH", help="Run durably in this SQLite store.")
@click.option("--run-id", metavar="ID", help="The durable run's id (default: a new random id).")
@_progress_option
def run(
    workflow: str,
    context: str | None,
    state: str | None,
    processes: tuple[str, ...],
    backend: str | None,
    inputs: tuple[str, ...],
    max_ops: int | None,
    dry_run: bool,
    store_path: str | None,
    run_id: str | None,
    progress: str,
) -> None:
    """Run WORKFLOW on an engine, with progress, and print a summary."""
    if context is None and state is None:
        raise click.UsageError(
            "theus run needs --context MODULE:ATTR or --state FILE --processes MODULE"
        )
    if run_id is not None and store_path is None:
        raise click.UsageError("--run-id needs --store PATH")
    if dry_run and store_path is not None:
        raise click.UsageError("--dry-run commits nothing: it cannot be given with --store")
    values = _parse_inputs(inputs)
    source = _source(context, state, processes, backend)
    engine = make_engine(source)
    store = None
    if store_path is not None:
        from .stored import durable_engine, open_store

        rid = run_id or uuid.uuid4().hex
        try:
            store = open_store(store_path, create=True)
            if store.get_run(rid) is not None:
                _fail(
                    f"{store_path} already has a run {rid!r}: continue it with "
                    f"theus resume {rid} --store {store_path}",
                    EXIT_FAILED,
                )
            engine = durable_engine(engine, store, rid)
        except BaseException:
            engine.close()
            if store is not None:
                store.close()
            raise
        run_id = rid
    _drive(
        engine,
        store,
        progress,
        workflow,
        lambda reporter: engine.execute_workflow(
            workflow, inputs=values, max_ops=max_ops, on_event=reporter, dry_run=dry_run,
            run_id=run_id,
        ),
        store_path,
    )  # fmt: skip


def _drive(
    engine: Any,
    store: Any,
    progress: str,
    title: str,
    call: Any,
    store_path: str | None,
) -> None:
    """Run ``call(reporter)`` with progress, print the outcome, close the engine and store."""
    from ..errors import TheusError
    from .progress import Progress

    stream = sys.stderr
    mode = progress
    if mode == "auto":
        mode = "live" if stream.isatty() else "plain"
    reporter = Progress(mode, stream, title)
    try:
        with reporter:
            result = call(reporter)
    except TheusError as exc:
        _error(exc)
        where = f" (run {reporter.run_id})" if reporter.run_id else ""
        n = reporter.committed
        click.echo(f"failed after {n} step{'s' if n != 1 else ''}{where}", err=True)
        raise _Failed(None, EXIT_FAILED) from exc
    finally:
        engine.close()
        if store is not None:
            store.close()
    steps = len(result.executed)
    if result.paused:
        request = result.pending
        click.echo(
            f"paused: {steps} step{'s' if steps != 1 else ''}, version {result.version} "
            f"(run {result.run_id}) at {request.location}, the answer goes to {request.into}"
        )
        click.echo(f"token: {request.token}")
        click.echo(f"prompt: {json.dumps(request.prompt, default=str, sort_keys=True)}")
        if request.deadline is not None:
            click.echo(f"deadline: {_utc(request.deadline)}")
        if store_path is not None:
            click.echo(
                f"answer: theus resume {engine.run_id} --store {store_path} SOURCE "
                f"--token {request.token} --value JSON"
            )
        raise _Failed(None, EXIT_PAUSED)
    if result.status == "answered":
        click.echo(f"answered already: nothing ran (run {result.run_id}, version {result.version})")
        return
    click.echo(
        f"done: {steps} step{'s' if steps != 1 else ''}, version {result.version}, "
        f"{result.duration:.3f} s (run {result.run_id})"
    )


def _utc(when: float) -> str:
    import datetime

    return f"{datetime.datetime.fromtimestamp(when, datetime.UTC):%Y-%m-%dT%H:%M:%SZ}"


# --------------------------------------------------------------------------- resume


@cli.command(
    epilog="""
Examples:
  theus resume r1 --store app.db --context app:engine
  theus resume r1 --store app.db --context app:engine --token TOKEN --value '"yes"'
  theus resume r1 --store app.db --state state.json --processes app.procs --token T --value 3

Without --token: continue a crashed or stopped run from its stored position (committed
steps do not run again). With --token and --value (JSON): answer the run's pending request
(theus pending lists them) and continue. The workflow is the one the run used (its file),
unless --workflow is given. Exit 4 when the run pauses again.

"""
    + _SOURCE_HELP
)
@click.argument("run_id", metavar="RUN_ID")
@click.option("--store", "store_path", required=True, metavar="PATH", help="The SQLite store.")
@_source_options
@click.option("--backend", metavar="NAME", help="The backend (rust, reference, ...).")
@click.option("--workflow", metavar="FILE", help="The workflow file (default: the run's own).")
@click.option("--token", metavar="TOKEN", help="Answer the pending request with this token.")
@click.option("--value", metavar="JSON", help="The answer, as JSON (with --token).")
@click.option("--max-ops", type=click.IntRange(min=1), help="The run's operation budget.")
@_progress_option
def resume(
    run_id: str,
    store_path: str,
    context: str | None,
    state: str | None,
    processes: tuple[str, ...],
    backend: str | None,
    workflow: str | None,
    token: str | None,
    value: str | None,
    max_ops: int | None,
    progress: str,
) -> None:
    """Continue durable run RUN_ID, or answer its pending request (--token, --value)."""
    from .stored import StoredError, durable_engine, open_store, workflow_of

    if context is None and state is None:
        raise click.UsageError(
            "theus resume needs --context MODULE:ATTR or --state FILE --processes MODULE"
        )
    if (token is None) != (value is None):
        raise click.UsageError("--token and --value go together")
    answer: Any = None
    if value is not None:
        try:
            answer = json.loads(value)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc.msg}", param_hint="--value") from None
    try:
        store = open_store(store_path, create=False)
    except StoredError as exc:
        _fail(exc, exc.code)
    try:
        runs = sorted(r.run_id for r in store.runs())
        if run_id not in runs:
            _fail(f"{store_path} has no run {run_id!r} (runs: {', '.join(runs) or 'none'})",
                  EXIT_FAILED)  # fmt: skip
        engine = make_engine(_source(context, state, processes, backend))
        engine = durable_engine(engine, store, run_id)
    except BaseException:
        store.close()
        raise
    if token is not None:
        row = store.get_pending(run_id, token)
        from ..pausing import decode_row

        workflow_run = run_id if row is None else decode_row(row, run_id).run_id
        _drive(engine, store, progress, workflow or run_id,
               lambda reporter: engine.resume(workflow_run, token, answer, workflow=workflow,
                                              on_event=reporter, max_ops=max_ops),
               store_path)  # fmt: skip
        return
    try:
        source_file = workflow or workflow_of(store, run_id)
    except StoredError as exc:
        engine.close()
        store.close()
        _fail(exc, exc.code)
    _drive(engine, store, progress, source_file,
           lambda reporter: engine.resume_workflow(source_file, on_event=reporter,
                                                   max_ops=max_ops),
           store_path)  # fmt: skip


# --------------------------------------------------------------------------- check


def _specs_and_namespaces(source: Source) -> tuple[Any, Any]:
    """(processes, namespaces) for loading: from an engine, a state file and/or modules."""
    if source.context is not None:
        engine = make_engine(source)
        try:
            return engine_specs(engine), tuple(engine.state.keys())
        finally:
            engine.close()
    specs = load_processes(source.processes) if source.processes else None
    namespaces = tuple(load_state(source.state)) if source.state is not None else None
    return specs, namespaces


@cli.command(
    epilog="""\b
Examples:
  theus check review.yaml
  theus check flows/*.yaml --processes examples.flux.review
  theus check review.yaml --context examples.flux.review:make_engine

Without SOURCE only the language is checked; with --processes also the process names and
the parallel write overlaps; with --context or --state also the conditions' root names.

"""
    + _SOURCE_HELP
)
@click.argument("workflows", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_source_options
def check(
    workflows: tuple[str, ...], context: str | None, state: str | None, processes: tuple[str, ...]
) -> None:
    """Load and validate WORKFLOW files without running them; exit 1 if any is invalid."""
    from ..errors import TheusError
    from ..flux import iter_steps, load_workflow

    specs, namespaces = _specs_and_namespaces(_source(context, state, processes, None))
    bad = 0
    for path in workflows:
        try:
            wf = load_workflow(path, processes=specs, namespaces=namespaces)
        except TheusError as exc:
            _error(exc)
            bad += 1
            continue
        steps = sum(1 for _ in iter_steps(wf.steps))
        procs = len(wf.process_names())
        click.echo(f"ok: {path} ({steps} steps, {procs} processes)")
    if bad:
        raise _Failed(None, EXIT_FAILED)


# --------------------------------------------------------------------------- graph


@cli.command(
    epilog="""\b
Examples:
  theus graph review.yaml                      Mermaid text on standard output
  theus graph review.yaml -o review.svg        SVG through Graphviz dot
  theus graph review.yaml -o state.mmd --kind state --processes examples.flux.review
  theus graph review.yaml --run r1 --store app.db -o r1.svg   a durable run's progress

Formats by suffix: .mmd Mermaid, .dot DOT, .svg/.png rendered by a local Graphviz `dot`
(Debian: apt-get install graphviz). --kind state needs the processes' contracts (SOURCE).
With --run and --store the picture colours each step by the stored run: done, paused, not
reached (a failed step stores nothing), and labels loops with their iteration counts.

"""
    + _SOURCE_HELP
)
@click.argument("workflow", type=click.Path(dir_okay=False))
@click.option("-o", "--output", metavar="OUT", help="Write here (.mmd, .dot, .svg, .png).")
@click.option(
    "--kind",
    type=click.Choice(["flow", "state"]),
    default="flow",
    show_default=True,
    help="flow: the control flow; state: which process reads and writes which paths.",
)
@click.option("--run", "run_id", metavar="RUN_ID", help="Colour by this durable run (--store).")
@click.option("--store", "store_path", metavar="PATH", help="The SQLite store of --run.")
@_source_options
def graph(
    workflow: str,
    output: str | None,
    kind: Kind,
    run_id: str | None,
    store_path: str | None,
    context: str | None,
    state: str | None,
    processes: tuple[str, ...],
) -> None:
    """Draw WORKFLOW as Mermaid, DOT, SVG or PNG."""
    from ..errors import TheusError
    from ..flux import load_workflow
    from ..flux.picture import render, to_dot, to_mermaid

    fmt = "mermaid"
    if output is not None:
        suffix = Path(output).suffix.lower()
        if suffix not in _FORMATS:
            raise click.BadParameter(
                f"unknown suffix {suffix or '(none)'!r}: use .mmd, .dot, .svg or .png",
                param_hint="-o",
            )
        fmt = _FORMATS[suffix]
    source = _source(context, state, processes, None)
    if kind == "state" and source.context is None and not source.processes:
        raise click.UsageError("--kind state needs the contracts: --processes MODULE or --context")
    specs, namespaces = _specs_and_namespaces(source)
    if (run_id is None) != (store_path is None):
        raise click.UsageError("--run and --store go together")
    try:
        wf = load_workflow(workflow, processes=specs, namespaces=namespaces)
    except TheusError as exc:
        _fail(exc, EXIT_FAILED)
    events = None
    if run_id is not None and store_path is not None:
        from .stored import StoredError, run_events

        try:
            events = run_events(store_path, run_id)
        except StoredError as exc:
            _fail(exc, exc.code)
        except TheusError as exc:
            _fail(exc, EXIT_FAILED)
    data: bytes
    if fmt == "mermaid":
        data = to_mermaid(wf, kind, run=events).encode()
    else:
        dot = to_dot(wf, kind, run=events)
        if fmt == "dot":
            data = dot.encode()
        else:
            try:
                data = render(dot, fmt)  # type: ignore[arg-type]
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                _fail(exc, EXIT_SETUP)
    if output is None:
        click.echo(data.decode(), nl=False)
        return
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}", EXIT_SETUP)
    click.echo(f"wrote {output} ({fmt}, {kind})")


# --------------------------------------------------------------------------- backends


def _location(name: str) -> str:
    from importlib.metadata import entry_points

    for ep in entry_points(group="theus.backends"):
        if ep.name != name:
            continue
        top = ep.module.partition(".")[0]
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            return "?"
        if spec.submodule_search_locations:
            return str(next(iter(spec.submodule_search_locations)))
        return str(spec.origin)
    return "?"


@cli.command(
    epilog="""\b
Examples:
  theus backends
  theus backends --json"""
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def backends(as_json: bool) -> None:
    """List the installed backends: name, version, priority, capabilities, where installed."""
    from .._discovery import backends as discover

    infos = discover(refresh=True)
    rows: list[dict[str, Any]] = [
        {
            "name": i.name,
            "version": i.version,
            "priority": i.priority,
            "capabilities": sorted(i.capabilities),
            "location": _location(i.name),
            "error": i.error,
        }
        for i in infos
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("no Theus backend is installed (pip install theus-reference)")
    else:
        for row in rows:
            caps = ", ".join(row["capabilities"]) or "none"
            status = f"  BROKEN: {_one_line(row['error'])}" if row["error"] else ""
            click.echo(
                f"{row['name']:<12} {row['version']:<10} priority {row['priority']:<4} "
                f"[{caps}]  {row['location']}{status}"
            )
    if not rows:
        raise _Failed(None, EXIT_SETUP)


# --------------------------------------------------------------------------- conformance


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    epilog="""\b
Examples:
  theus conformance --backend reference -q
  theus conformance --backend rust -x -k flux

Arguments after the options go to pytest (as for python -m theus_conformance).""",
)
@click.option("--backend", required=True, metavar="NAME", help="The backend to test.")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def conformance(backend: str, pytest_args: tuple[str, ...]) -> None:
    """Run the conformance suite against a backend (exit code: the suite's)."""
    if importlib.util.find_spec("theus_conformance") is None:
        _fail("the conformance suite is not installed (pip install theus-conformance)", EXIT_SETUP)
    cmd = [sys.executable, "-m", "theus_conformance", "--backend", backend, *pytest_args]
    code = subprocess.call(cmd)
    if code != 0:
        raise _Failed(None, code)


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``theus`` command with ``argv`` (default ``sys.argv[1:]``); return the exit
    code (spec/20 §2)."""
    options = _Options()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = cli.main(args, prog_name="theus", obj=options, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        return EXIT_USAGE
    except click.ClickException as exc:
        _error(exc.format_message())
        return exc.exit_code
    except click.Abort:
        click.echo("theus: interrupted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("theus: interrupted", err=True)
        return EXIT_INTERRUPTED
    except _Failed as exc:
        if options.debug and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__)
        if exc.message is not None:
            _error(exc.message)
        return exc.code
    except SetupError as exc:
        if options.debug:
            traceback.print_exc()
        _error(exc)
        return EXIT_SETUP
    except Exception as exc:
        from ..errors import TheusError

        if options.debug:
            traceback.print_exc()
        if isinstance(exc, TheusError):
            _error(exc)
            return EXIT_FAILED
        _error(f"{type(exc).__name__}: {exc} (theus --debug ... shows the traceback)")
        return EXIT_FAILED
    return code if isinstance(code, int) else EXIT_OK


_stored.register(cli, _fail)
