"""The real ``theus`` executable in a subprocess (spec/20): exit codes, output, files written;
the live progress display under a pseudo-terminal."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
DATA = HERE / "cli_data"
ROOT = HERE.parents[2]
EXAMPLE = ROOT / "examples" / "flux"
THEUS = Path(sys.executable).parent / ("theus.exe" if os.name == "nt" else "theus")
LOC = re.compile(r"^theus: error: [^:\s]+\.yaml:\d+:\d+: ")

pytestmark = pytest.mark.skipif(
    not THEUS.is_file(), reason=f"the theus console script is not installed at {THEUS}"
)


def _has_rust() -> bool:
    from theus import backends

    return any(info.name == "rust" and info.error is None for info in backends())


def theus(*args: str, cwd: Path = DATA, env: dict[str, str] | None = None, timeout: float = 120):
    environ = {**os.environ, "NO_COLOR": "1", **(env or {})}
    environ.pop("THEUS_BACKEND", None)
    return subprocess.run(
        [str(THEUS), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
        check=False,
    )


# --------------------------------------------------------------------------- help


@pytest.mark.parametrize(
    "command",
    [[], ["run"], ["check"], ["graph"], ["backends"], ["conformance"], ["pending"], ["resume"]],
)
def test_help_has_examples(command):
    done = theus(*command, "--help")
    assert done.returncode == 0, done.stderr
    assert "Examples:" in done.stdout
    assert done.stdout.startswith("Usage: theus")


def test_help_lists_only_the_built_commands():
    out = theus("--help").stdout
    commands = out.split("Commands:")[1].split("Examples:")[0]
    names = [line.split()[0] for line in commands.strip().splitlines()]
    assert names == [
        "backends", "check", "conformance", "graph", "history", "pending", "resume", "run", "show"
    ]  # fmt: skip
    assert "Exit codes: 0 ok, 1" in out and "4 the run paused" in out


def test_python_dash_m_theus_is_the_same_program():
    done = subprocess.run(
        [sys.executable, "-m", "theus", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout == theus("--help").stdout


def test_version():
    done = theus("--version")
    assert done.returncode == 0 and done.stdout.startswith("theus, version ")


def test_unknown_command_and_option_are_usage_errors():
    assert theus("frobnicate").returncode == 2
    done = theus("check", "--nope", "flows/ok.yaml")
    assert done.returncode == 2 and "No such option" in done.stderr


# --------------------------------------------------------------------------- check


def test_check_valid_files():
    done = theus("check", "flows/ok.yaml", "flows/fails.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ok: flows/ok.yaml (6 steps, 4 processes)",
        "ok: flows/fails.yaml (3 steps, 3 processes)",
    ]
    assert done.stderr == ""


def test_check_reports_every_invalid_file_on_one_line_each():
    done = theus("check", "flows/bad_syntax.yaml", "flows/ok.yaml", "flows/missing.yaml")
    assert done.returncode == 1
    errors = done.stderr.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith("theus: error: flows/bad_syntax.yaml:4:")
    assert "steps[1].condition" in errors[0]
    assert errors[1].startswith("theus: error: flows/missing.yaml:")
    assert "cannot read the workflow" in errors[1]
    assert done.stdout == "ok: flows/ok.yaml (6 steps, 4 processes)\n"
    assert "Traceback" not in done.stderr


def test_check_with_processes_finds_unknown_names_and_overlaps():
    done = theus("check", "flows/unknown.yaml", "flows/overlap.yaml", "--processes", "procs")
    assert done.returncode == 1
    unknown, overlap = done.stderr.splitlines()
    assert LOC.match(unknown) and "flows/unknown.yaml:3:5" in unknown
    assert "'nosuch'" in unknown and "inc" in unknown
    assert LOC.match(overlap) and "flows/overlap.yaml:" in overlap
    assert "inc" in overlap and "boom" in overlap
    # without the module, the same files are valid
    assert theus("check", "flows/unknown.yaml", "flows/overlap.yaml").returncode == 0


def test_check_with_context_checks_root_names(tmp_path):
    flow = tmp_path / "ns.yaml"
    flow.write_text("steps:\n  - flux: if\n    condition: nowhere.x\n    then: [inc]\n")
    assert theus("check", str(flow), "--processes", "procs").returncode == 0
    done = theus("check", str(flow), "--context", "procs:make_engine")
    assert done.returncode == 1
    assert f"{flow}:3:16" in done.stderr and "nowhere" in done.stderr
    done = theus("check", str(flow), "--state", "state.json", "--processes", "procs")
    assert done.returncode == 1 and "nowhere" in done.stderr


# --------------------------------------------------------------------------- graph


def test_graph_to_stdout_is_the_mermaid_text():
    done = theus("graph", "flows/ok.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("flowchart TB\n")
    assert 'n1{"while"}' in done.stdout and 'n1 -->|"domain.count #lt; limit"| n2' in done.stdout


@pytest.mark.parametrize("kind", ["flow", "state"])
def test_graph_writes_dot_and_mermaid_files(tmp_path, kind):
    for suffix, head in ((".dot", "digraph workflow {"), (".mmd", "flowchart ")):
        out = tmp_path / f"ok{suffix}"
        done = theus(
            "graph", "flows/ok.yaml", "-o", str(out), "--kind", kind, "--processes", "procs"
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"wrote {out} ({'dot' if suffix == '.dot' else 'mermaid'}, {kind})\n"
        assert out.read_text().startswith(head)


def test_graph_matches_the_golden_example():
    done = theus("graph", "examples/flux/review.yaml", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (HERE / "golden" / "review.flow.mmd").read_text()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_graph_renders_svg_and_png(tmp_path):
    svg, png = tmp_path / "w.svg", tmp_path / "w.png"
    assert theus("graph", "flows/all.yaml", "-o", str(svg)).returncode == 0
    assert "<svg" in svg.read_text() and "run common.yaml" in svg.read_text()
    assert theus("graph", "flows/all.yaml", "-o", str(png)).returncode == 0
    assert png.read_bytes().startswith(b"\x89PNG")


def test_graph_without_dot_says_so(tmp_path):
    bare = tmp_path / "bin"
    bare.mkdir()
    done = theus("graph", "flows/ok.yaml", "-o", str(tmp_path / "w.svg"), env={"PATH": str(bare)})
    assert done.returncode == 3
    assert done.stderr == (
        "theus: error: Graphviz `dot` is not installed (Debian: apt-get install graphviz); "
        "write .mmd or .dot instead\n"
    )
    assert not (tmp_path / "w.svg").exists()


def test_graph_usage_and_load_errors(tmp_path):
    done = theus("graph", "flows/ok.yaml", "-o", str(tmp_path / "w.pdf"))
    assert done.returncode == 2 and "unknown suffix '.pdf'" in done.stderr
    done = theus("graph", "flows/ok.yaml", "--kind", "state")
    assert done.returncode == 2 and "--kind state needs the contracts" in done.stderr
    done = theus("graph", "flows/bad_syntax.yaml")
    assert done.returncode == 1 and LOC.match(done.stderr) and len(done.stderr.splitlines()) == 1
    done = theus("graph", "flows/ok.yaml", "-o", str(tmp_path / "no" / "such" / "w.dot"))
    assert done.returncode == 3 and "cannot write" in done.stderr


# --------------------------------------------------------------------------- backends


def test_backends_table_and_json():
    done = theus("backends")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    ref = next(line for line in lines if line.startswith("reference "))
    assert "priority 10 " in ref and "threads" in ref and "theus_reference" in ref
    rows = json.loads(theus("backends", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["reference"]["priority"] == 10
    assert by_name["reference"]["error"] is None
    assert Path(by_name["reference"]["location"]).name == "theus_reference"
    assert [r["priority"] for r in rows] == sorted((r["priority"] for r in rows), reverse=True)


# --------------------------------------------------------------------------- conformance


def test_conformance_passes_pytest_arguments_and_exit_code():
    pytest.importorskip("theus_conformance")
    done = theus(
        "conformance", "--backend", "reference", "-q", "-k", "test_paths", "-p", "no:cacheprovider",
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(r"\d+ passed", done.stdout)
    bad = theus("conformance", "--backend", "no-such-backend", "-q", "-k", "test_paths")
    assert bad.returncode != 0
    assert theus("conformance").returncode == 2  # --backend is required


# --------------------------------------------------------------------------- setup errors


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--context", "nosuchmodule:x"],
            "cannot import module 'nosuchmodule': ModuleNotFoundError",
        ),
        (["--context", "procs:nothing"], "module 'procs' has no attribute 'nothing'"),
        (
            ["--context", "procs:NOT_AN_ENGINE"],
            "expected a TheusEngine or a zero-argument callable",
        ),
        (["--context", "procs:bad_factory"], "the factory raised RuntimeError: no database"),
        (["--context", "procs"], "--context must be MODULE:ATTR"),
        (
            ["--state", "nosuch.json", "--processes", "procs"],
            "cannot read the state file nosuch.json",
        ),
        (["--state", "broken.json", "--processes", "procs"], "broken.json:2:12: not valid JSON"),
        (["--state", "procs.py", "--processes", "procs"], "must end in .json, .yaml or .yml"),
        pytest.param(
            ["--context", "procs:reference_engine", "--backend", "rust"],
            "the engine uses backend 'reference', not 'rust'",
            marks=pytest.mark.skipif(
                not _has_rust(), reason="needs the rust backend (not built for this Python)"
            ),
        ),
        (["--context", "procs:ENGINE", "--backend", "no-such"], "BackendNotFoundError"),
        (["--state", "state.json", "--processes", "procs", "--backend", "no-such"], "no-such"),
    ],
)
def test_setup_errors_exit_3_on_one_line(args, message):
    done = theus("run", "flows/ok.yaml", *args)
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("theus: error: ")
    assert message in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--context", "procs:ENGINE", "--input", "novalue"], "expected KEY=VALUE"),
        (["--context", "procs:ENGINE", "--input", "a=1", "--input", "a=2"], "given twice"),
        (["--context", "procs:ENGINE", "--state", "state.json"], "not both"),
        ([], "theus run needs --context"),
        (["--context", "procs:ENGINE", "--max-ops", "0"], "--max-ops"),
    ],
)
def test_usage_errors_exit_2(args, message):
    done = theus("run", "flows/ok.yaml", *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_debug_shows_the_traceback():
    plain = theus("run", "flows/ok.yaml", "--context", "procs:bad_factory")
    debug = theus("--debug", "run", "flows/ok.yaml", "--context", "procs:bad_factory")
    assert "Traceback" not in plain.stderr
    assert debug.returncode == plain.returncode == 3
    assert "Traceback (most recent call last)" in debug.stderr
    assert "RuntimeError: no database" in debug.stderr
    assert debug.stderr.splitlines()[-1] == plain.stderr.strip()


# --------------------------------------------------------------------------- run


def test_run_with_context_prints_plain_progress_and_a_summary():
    done = theus("run", "flows/ok.yaml", "--context", "procs:make_engine", "--input", "limit=2")
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip()
    assert re.fullmatch(r"done: 5 steps, version 5, \d+\.\d{3} s \(run [0-9a-f]+\)", summary)
    lines = done.stderr.splitlines()
    run_id = summary.split("(run ")[1].rstrip(")")
    assert lines[0] == f"start {run_id}"
    assert lines[1] == "step inc flows/ok.yaml:7:10 iteration 1"
    assert re.fullmatch(r"committed inc version 1 \(\d+\.\d{3} s\)", lines[2])
    assert lines[3] == "step inc flows/ok.yaml:7:10 iteration 2"
    assert "\x1b" not in done.stderr
    assert sum(1 for line in lines if line.startswith("committed ")) == 5


def test_run_with_state_and_processes_on_each_backend():
    for backend in ("reference", "rust"):
        listed = json.loads(theus("backends", "--json").stdout)
        if not any(r["name"] == backend and r["error"] is None for r in listed):
            continue
        done = theus(
            "run", "flows/ok.yaml", "--state", "state.json", "--processes", "procs",
            "--backend", backend, "--progress", "none",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("done: 6 steps, version 6, ")
        assert done.stderr == ""


def test_run_failure_names_the_location_and_exits_1():
    done = theus("run", "flows/fails.yaml", "--context", "procs:make_engine")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert "failed boom: ValueError: boom at count 1" in lines
    error = next(line for line in lines if line.startswith("theus: error: "))
    assert error == (
        "theus: error: flows/fails.yaml:3:5: steps[1]: process 'boom' failed: "
        "ValueError: boom at count 1"
    )
    assert re.fullmatch(r"failed after 1 step \(run [0-9a-f]+\)", lines[-1])
    assert done.stdout == ""
    assert "Traceback" not in done.stderr


def test_run_load_error_exits_1_before_running():
    done = theus("run", "flows/unknown.yaml", "--context", "procs:make_engine")
    assert done.returncode == 1
    assert LOC.match(done.stderr.splitlines()[0])
    assert done.stderr.splitlines()[-1] == "failed after 0 steps"


def test_run_dry_run_commits_nothing(tmp_path):
    done = theus(
        "run", "flows/ok.yaml", "--context", "procs:make_engine", "--dry-run", "--progress", "none"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("done: 6 steps, version 6, ")


def test_run_max_ops_limit():
    done = theus("run", "flows/ok.yaml", "--context", "procs:make_engine", "--max-ops", "2")
    assert done.returncode == 1
    assert "flows/ok.yaml:" in done.stderr and "max_ops" in done.stderr


def test_run_the_bundled_example():
    done = theus(
        "run", "examples/flux/review.yaml", "--context", "examples.flux.review:make_engine",
        cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("done: 15 steps, version 15, ")


def _pty_run(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``theus`` with stdin/stdout/stderr on a pseudo-terminal; (exit code, output)."""
    import pty
    import select

    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    env.pop("NO_COLOR", None)
    env.pop("THEUS_BACKEND", None)
    proc = subprocess.Popen(
        [str(THEUS), *args], cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_run_on_a_terminal_shows_the_live_display():
    code, out = _pty_run(
        ["run", "flows/ok.yaml", "--context", "procs:make_engine", "--input", "limit=4"], DATA
    )
    assert code == 0, out
    assert "\x1b[" in out  # redrawn in place: terminal control sequences
    assert "theus run" in out and "flows/ok.yaml" in out
    assert "steps committed:" in out
    assert re.search(r"done: 7 steps, version 7, \d+\.\d{3} s", out)
    assert "committed inc version" not in out  # no plain lines on a terminal


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_run_on_a_terminal_with_plain_progress_has_no_control_sequences():
    code, out = _pty_run(
        ["run", "flows/ok.yaml", "--context", "procs:make_engine", "--progress", "plain"], DATA
    )
    assert code == 0, out
    assert "\x1b" not in out
    assert "committed total version 6" in out


# --------------------------------------------------------------------------- history / show


def _stored_run(tmp_path: Path) -> Path:
    import theus
    from theus import process

    path = tmp_path / "app.db"
    engine = theus.open(path, run_id="r1", context={"domain": {"n": 0}}, backend="reference")

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def inc(ctx: Any) -> None:
        ctx.domain.n += 1

    engine.execute(inc)
    engine.execute(inc)
    with engine.transaction() as tx:
        tx.update(data={"domain.n": 10})
    engine.close()
    return path


def test_history_lists_the_stored_commits_newest_first(tmp_path):
    store = str(_stored_run(tmp_path))
    done = theus("history", "--store", store)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["3", "2", "1"]
    assert "(host)" in lines[0] and " inc " in lines[1] and lines[1].endswith("domain.n")
    data = json.loads(theus("history", "--store", store, "--run", "r1", "--limit", "2",
                            "--json").stdout)  # fmt: skip
    assert data["run_id"] == "r1" and [v["version"] for v in data["versions"]] == [3, 2]
    assert data["versions"][1]["process"] == "inc"


def test_show_prints_a_stored_version(tmp_path):
    store = str(_stored_run(tmp_path))
    done = theus("show", "2", "--store", store)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"]["domain"] == {"n": 2}
    assert json.loads(theus("show", "3", "--store", store).stdout)["state"]["domain"] == {"n": 10}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "9"], 1, "run 'r1' has no version 9"),
        (["history", "--run", "nope"], 1, "has no run 'nope' (runs: r1)"),
    ],
)
def test_store_command_errors(tmp_path, args, code, message):
    store = str(_stored_run(tmp_path))
    done = theus(*args, "--store", store)
    assert done.returncode == code
    assert done.stderr.startswith("theus: error: ") and message in done.stderr
    missing = theus("history", "--store", str(tmp_path / "none.db"))
    assert missing.returncode == 3 and "no store at" in missing.stderr


# --------------------------------------------------------------------------- durable runs


def _pending(store: str) -> list[dict[str, Any]]:
    done = theus("pending", "--store", store, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_durable_run_pauses_lists_pending_and_resumes(tmp_path):
    store = str(tmp_path / "app.db")
    flow = "flows/approve.yaml"
    src = ["--context", "procs:make_engine"]
    done = theus("run", flow, *src, "--store", store, "--run-id", "r1", "--progress", "plain")
    assert done.returncode == 4, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "paused: 3 steps, version 3 (run r1) at flows/approve.yaml:7:5, the answer goes to "
        "domain.answer"
    )
    token = lines[1].removeprefix("token: ")
    assert lines[2] == 'prompt: {"question": "ship it?"}'
    assert lines[3].startswith("deadline: ") and lines[4].startswith("answer: theus resume r1")
    assert "paused flows/approve.yaml:7:5 into domain.answer" in done.stderr

    [request] = _pending(store)
    assert request["run_id"] == "r1" and request["token"] == token
    assert request["location"] == "flows/approve.yaml:7:5" and request["kind"] == "pause"
    assert request["prompt"] == {"question": "ship it?"} and request["deadline"] is not None
    text = theus("pending", "--store", store).stdout.splitlines()
    assert len(text) == 1 and text[0].startswith(f"r1  {token}  flows/approve.yaml:7:5  into")

    # the picture of the stored run: done, paused, not reached, loop iterations
    pic = theus("graph", flow, "--run", "r1", "--store", store)
    assert pic.returncode == 0, pic.stderr
    assert 'n2{"while (2 iterations)"}' in pic.stdout
    assert "class flux_start,n1,n2,n3 done" in pic.stdout
    assert "class n4 paused" in pic.stdout and "class n5,flux_end not_reached" in pic.stdout

    # without a token: the run waits on its answer, nothing runs
    again = theus("resume", "r1", "--store", store, *src)
    assert again.returncode == 4 and f"token: {token}" in again.stdout

    bad = theus("resume", "r1", "--store", store, *src, "--token", "nope", "--value", "1")
    assert bad.returncode == 1
    assert bad.stderr.startswith("theus: error: run 'r1' has no pending request with this token")

    answered = theus("resume", "r1", "--store", store, *src, "--token", token, "--value", '"yes"')
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.startswith("done: 1 step, version 5, ")
    assert _pending(store) == []
    shown = json.loads(theus("show", "5", "--store", store).stdout)["state"]["domain"]
    assert (shown["answer"], shown["count"], shown["total"]) == ("yes", 3, 30)
    twice = theus("resume", "r1", "--store", store, *src, "--token", token, "--value", '"no"')
    assert twice.returncode == 0 and twice.stdout.startswith("answered already: nothing ran")
    final = theus("graph", flow, "--run", "r1", "--store", store).stdout
    assert "class flux_start,n1,n2,n3,n4,n5,flux_end done" in final

    exists = theus("run", flow, *src, "--store", store, "--run-id", "r1")
    assert exists.returncode == 1 and "already has a run 'r1'" in exists.stderr


def test_resume_continues_a_stopped_run_from_its_stored_position(tmp_path, monkeypatch):
    import theus as api

    monkeypatch.syspath_prepend(str(DATA))
    from procs import STATE, inc, left, right, total  # type: ignore[import-not-found]

    store = tmp_path / "app.db"
    flow = str(DATA / "flows" / "ok.yaml")
    engine = api.open(store, run_id="r2", context=STATE)
    for fn in (inc, total, left, right):
        engine.register(fn)
    iterator = engine.iter_workflow(flow, run_id="r2")
    for event in iterator:
        if event.topic == "flux:step_committed":
            break  # one step stored, then the process "dies"
    iterator.close()
    version = engine.state.version
    engine.close()
    done = theus("resume", "r2", "--store", str(store), "--context", "procs:make_engine")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("done: ")
    steps = int(done.stdout.split()[1])
    history = json.loads(theus("history", "--store", str(store), "--json").stdout)
    assert history["versions"][0]["version"] == version + steps


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["resume", "r1", "--store", "missing.db", "--context", "procs:make_engine"], 3,
         "no store at missing.db"),
        (["resume", "zz", "--store", "STORE", "--context", "procs:make_engine"], 1,
         "has no run 'zz' (runs: r1)"),
        (["resume", "r1", "--store", "STORE", "--context", "procs:make_engine", "--token", "t"],
         2, "--token and --value go together"),
        (["resume", "r1", "--store", "STORE", "--context", "procs:make_engine", "--token", "t",
          "--value", "{bad"], 2, "not JSON"),
        (["resume", "r1", "--store", "STORE", "--context", "procs:make_engine"], 1,
         "has no stored workflow position"),
        (["pending", "--store", "missing.db"], 3, "no store at missing.db"),
        (["graph", "flows/ok.yaml", "--run", "r1"], 2, "--run and --store go together"),
        (["graph", "flows/ok.yaml", "--run", "zz", "--store", "STORE"], 1, "has no run 'zz'"),
        (["run", "flows/ok.yaml", "--context", "procs:make_engine", "--run-id", "x"], 2,
         "--run-id needs --store"),
    ],
)  # fmt: skip
def test_durable_command_errors(tmp_path, args, code, message):
    store = str(_stored_run(tmp_path))
    args = [store if a == "STORE" else a for a in args]
    done = theus(*args)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert message in done.stderr
    assert "Traceback" not in done.stderr
