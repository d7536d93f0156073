"""Build, test, lint, benchmark and demo sessions for Theus.

    nox -s tests                  cargo test + clippy, unit tests, conformance on every backend
    nox -s conformance-reference  the conformance suite against the reference backend
    nox -s conformance-rust       the same against the Rust backend (built by maturin)
    nox -s lint                   ruff check, ruff format --check, mypy --strict (3 packages)
    nox -s demo                   examples/bank.py, then examples/flux/*.py (nox -s demo -- --help)
    nox -s bench                  asv benchmarks in the current session env, then a results table
    nox -s rust-core              cargo test + cargo clippy in packages/theus-rust
    nox -s dashboard              asv over the last N commits of main (nox -s dashboard -- 20),
                                  asv publish (offline HTML), prints the page's path
    nox -s bench-compare          asv continuous BASE HEAD (nox -s bench-compare -- main HEAD);
                                  fails on a regression beyond the factor (default 1.1);
                                  `-b REGEX` after HEAD runs only the matching benchmarks

Interpreters: 3.11 always; 3.12 and 3.13 only where a working one is found (a pyenv shim that
fails is not "found"), because nox on CI errors on missing interpreters. The Rust backend is
built (dev profile) and tested on 3.11 only unless THEUS_NOX_RUST_ALL_PYTHONS=1; the extra
interpreters run the pure-Python packages and the reference backend's conformance.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import nox
from nox.command import CommandFailed

ROOT = Path(__file__).resolve().parent
API = "./packages/theus-api"
REFERENCE = "./packages/theus-reference"
CONFORMANCE = "./conformance"
RUST = ROOT / "packages" / "theus-rust"
LINT_PATHS = ["packages", "conformance", "examples", "asv_bench", "noxfile.py"]
# mypy --strict: the API, the reference backend, the conformance package (its tests excluded:
# pytest test functions are not annotated).
MYPY_TARGETS = [
    "packages/theus-api/src/theus",
    "packages/theus-reference/src/theus_reference",
    "conformance/src/theus_conformance",
]
MYPY_EXCLUDE = "theus_conformance/tests/"
BASE_PYTHON = "3.11"
# Pinned so that `ruff format --check` gives the same answer on every machine.
LINT_REQUIREMENTS = ["ruff==0.17.6", "mypy==2.4.1"]
# The Type Shield (spec/16) needs pydantic; its tests and benchmarks run wherever tests do.
SCHEMA_REQUIREMENTS = ["pydantic>=2.5"]
# The `theus` command's libraries (theus-api dependencies; mypy needs them in the lint env) and
# the dashboard test's asv.
CLI_REQUIREMENTS = ["click>=8.1", "rich>=13"]
DASHBOARD_REQUIREMENTS = ["asv", "virtualenv"]
# PostgresStore (spec/21): its tests start a real PostgreSQL server themselves.
SCHEMA_REQUIREMENTS += ["psycopg[binary]>=3.1"]
# Parallel processes (spec/22): the theus-api[dask] extra (a real local Dask cluster the tests
# start themselves) and numpy for heavy-zone arrays.
PARALLEL_REQUIREMENTS = [f"{API}[dask]", "numpy"]

nox.options.sessions = ["lint", "tests"]
nox.options.error_on_external_run = True


# --------------------------------------------------------------------------- interpreters


def _works(python: str) -> bool:
    """True if `python -c pass` succeeds (a pyenv shim without that version fails)."""
    try:
        subprocess.run([python, "-c", "pass"], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"versions/(\d+)\.(\d+)\.(\d+)/", path)
    return tuple(int(part) for part in match.groups()) if match else (0,)


def _find_python(minor: str) -> str | None:
    """A working interpreter for `minor` ("3.12"): on PATH first, then pyenv's versions."""
    candidates = [shutil.which(f"python{minor}")]
    pattern = os.path.expanduser(f"~/.pyenv/versions/{minor}.*/bin/python{minor}")
    candidates += sorted(glob.glob(pattern), key=_version_key, reverse=True)
    for candidate in candidates:
        if candidate and _works(candidate):
            return candidate
    return None


@functools.cache
def _pythons() -> tuple[tuple[str, str], ...]:
    """(id, interpreter) for 3.11 and each newer CPython present on this machine."""
    found = [(BASE_PYTHON, BASE_PYTHON)]
    for minor in ("3.12", "3.13"):
        path = _find_python(minor)
        if path is not None:
            found.append((minor, path))
    return tuple(found)


PYTHON_PARAMS = [nox.param(path, id=ident) for ident, path in _pythons()]


# --------------------------------------------------------------------------- helpers


def _rust_missing() -> str | None:
    """Why the Rust backend cannot be built here, or None if it can."""
    pyproject = RUST / "pyproject.toml"
    if not pyproject.is_file():
        return f"{pyproject.relative_to(ROOT)} does not exist yet"
    maturin = tomllib.loads(pyproject.read_text()).get("tool", {}).get("maturin", {})
    manifest = RUST / maturin.get("manifest-path", "Cargo.toml")
    if not manifest.is_file():
        return f"its PyO3 crate {manifest.relative_to(ROOT)} (tool.maturin) does not exist yet"
    if shutil.which("cargo") is None:
        return "cargo is not on PATH (install Rust via rustup)"
    return None


def _rust_buildable(session: nox.Session) -> bool:
    """True if the Rust backend can be built; logs why not otherwise."""
    reason = _rust_missing()
    if reason is not None:
        session.log(f"Rust backend skipped: {reason}")
    return reason is None


def _base_python(session: nox.Session) -> str:
    """The session venv's base interpreter (stable across venvs: pyo3 does not rebuild)."""
    code = (
        "import os, sys; print(os.path.realpath(getattr(sys, '_base_executable', sys.executable)))"
    )
    out = session.run("python", "-c", code, silent=True)
    return str(out).strip().splitlines()[-1]


def _install_rust(session: nox.Session, profile: str) -> None:
    """Build packages/theus-rust with maturin (PEP 517) and install it, non-editable."""
    env = {
        # maturin's PEP 517 backend reads extra `maturin build` arguments from here.
        "MATURIN_PEP517_ARGS": f"--profile={profile}",
        # Build against the base interpreter, so cargo's cache survives new venvs.
        "MATURIN_PEP517_USE_BASE_PYTHON": "1",
        "PYO3_PYTHON": _base_python(session),
    }
    session.log(f"Building the Rust backend with maturin (cargo profile {profile!r})")
    session.install(str(RUST), env=env)


def _installed_backends(session: nox.Session) -> list[str]:
    """Names in the `theus.backends` entry-point group of the session's environment."""
    code = (
        "from importlib.metadata import entry_points\n"
        "print(' '.join(sorted({e.name for e in entry_points(group='theus.backends')})))"
    )
    out = session.run("python", "-c", code, silent=True)
    return str(out).split()


def _has_python_tests(tests_dir: Path) -> bool:
    if not tests_dir.is_dir():
        return False
    return any(tests_dir.rglob("test_*.py")) or any(tests_dir.rglob("*_test.py"))


def _run_collecting(
    session: nox.Session, failures: list[str], label: str, *args: str, **kwargs: Any
) -> None:
    """Run a command; record a failure instead of stopping, so every suite gets its turn."""
    try:
        session.run(*args, **kwargs)
    except CommandFailed:
        failures.append(label)


def _finish(session: nox.Session, failures: list[str]) -> None:
    """Fail the session (status "failed", not "aborted") naming every suite that failed."""
    if failures:
        session.warn(f"failed: {', '.join(failures)}")
        raise CommandFailed(f"failed: {', '.join(failures)}")


def _run_conformance(session: nox.Session, backend: str, failures: list[str]) -> None:
    session.log(f"Conformance suite against backend {backend!r}")
    _run_collecting(
        session,
        failures,
        f"conformance[{backend}]",
        "python",
        "-m",
        "theus_conformance",
        "--backend",
        backend,
        *session.posargs,
    )


# --------------------------------------------------------------------------- sessions


@nox.session(name="tests")
@nox.parametrize("python", PYTHON_PARAMS)
def tests(session: nox.Session) -> None:
    """cargo test + clippy (base Python), unit tests of every package, then the conformance
    suite against every backend."""
    on_base = session.python == BASE_PYTHON
    session.install(
        API,
        REFERENCE,
        CONFORMANCE,
        "pytest",
        "hypothesis",
        *SCHEMA_REQUIREMENTS,
        *PARALLEL_REQUIREMENTS,
    )
    try:  # the dashboard test publishes with asv; without it that test skips, saying so
        session.install("asv")
    except CommandFailed:
        session.warn("asv did not install: the dashboard test will be skipped")
    with_rust = (on_base or os.environ.get("THEUS_NOX_RUST_ALL_PYTHONS") == "1") and (
        _rust_buildable(session)
    )
    if with_rust:
        _install_rust(session, profile="dev")
    elif not on_base:
        session.log("Rust backend: built on 3.11 only (THEUS_NOX_RUST_ALL_PYTHONS=1 for all)")

    failures: list[str] = []
    if on_base and with_rust:
        _cargo_checks(session, failures)
        session.install(*[r for r in LINT_REQUIREMENTS if r.startswith("mypy")])
        session.log("Stub check: _native.pyi against the built extension (mypy.stubtest)")
        _run_collecting(
            session,
            failures,
            "stubtest",
            "python",
            "-m",
            "mypy.stubtest",
            "theus_rust._native",
            "--allowlist",
            str(RUST / "stubtest-allowlist.txt"),
        )
    package_dirs = sorted(p for p in (ROOT / "packages").iterdir() if p.is_dir())
    for package in [*package_dirs, ROOT / "conformance"]:
        if package == RUST and not with_rust:
            continue
        tests_dir = package / "tests"
        if not _has_python_tests(tests_dir):
            continue
        session.log(f"Unit tests: {package.relative_to(ROOT)}")
        _run_collecting(
            session,
            failures,
            f"unit[{package.name}]",
            "python",
            "-m",
            "pytest",
            "--rootdir",
            str(package),
            str(tests_dir),
        )

    backends = _installed_backends(session)
    if not backends:
        session.error("no backend registered in the 'theus.backends' entry-point group")
    for backend in backends:
        _run_conformance(session, backend, failures)

    _finish(session, failures)


@nox.session(name="conformance-reference", python=BASE_PYTHON)
def conformance_reference(session: nox.Session) -> None:
    """The conformance suite against the pure-Python reference backend."""
    session.install(API, REFERENCE, CONFORMANCE, *SCHEMA_REQUIREMENTS)
    failures: list[str] = []
    _run_conformance(session, "reference", failures)
    _finish(session, failures)


@nox.session(name="conformance-rust", python=BASE_PYTHON)
def conformance_rust(session: nox.Session) -> None:
    """The conformance suite against the Rust backend (maturin, dev profile)."""
    reason = _rust_missing()
    if reason is not None:
        session.skip(f"no Rust backend to test: {reason}")
    # The reference backend too: the differential tests compare the Rust backend against it.
    session.install(API, REFERENCE, CONFORMANCE, *SCHEMA_REQUIREMENTS)
    _install_rust(session, profile="dev")
    failures: list[str] = []
    _run_conformance(session, "rust", failures)
    _finish(session, failures)


@nox.session(python=BASE_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, mypy --strict on theus-api, the reference backend and
    the conformance package."""
    session.install(
        *LINT_REQUIREMENTS,
        "pytest",
        "hypothesis",
        *SCHEMA_REQUIREMENTS,
        *CLI_REQUIREMENTS,
        "numpy",  # theus.heavy types its numpy arrays (numpy ships its stubs)
    )
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)
    # Config in mypy.ini; --strict is repeated so the command line states the contract.
    session.run("mypy", "--strict", "--exclude", MYPY_EXCLUDE, *MYPY_TARGETS)


def _install_runtime(session: nox.Session) -> None:
    """theus-api + reference, and the Rust backend (release) if it builds here."""
    session.install(API, REFERENCE)
    if _rust_buildable(session):
        try:
            _install_rust(session, profile="release")
        except CommandFailed:
            session.warn("Rust backend failed to build: continuing with the reference backend")


@nox.session(python=BASE_PYTHON)
def demo(session: nox.Session) -> None:
    """The bank demo (examples/bank.py) on the best installed backend, then the Flux
    examples (examples/flux/agent_loop.py, branch.py, nested.py, fanout.py)."""
    _install_runtime(session)
    session.run("python", str(ROOT / "examples" / "bank.py"), *session.posargs)
    for name in ("agent_loop", "branch", "nested", "fanout"):
        session.run("python", str(ROOT / "examples" / "flux" / f"{name}.py"))


@nox.session(python=BASE_PYTHON)
def bench(session: nox.Session) -> None:
    """asv benchmarks against this session's environment, then a table of medians.

    `asv run --python=same` benchmarks the packages installed here (no asv-managed builds);
    `--set-commit-hash` makes asv keep the results, filed under the current HEAD commit
    (uncommitted changes are measured too). Extra arguments go to `asv run`, e.g.
    `nox -s bench -- --bench Execute`.
    """
    _install_runtime(session)
    session.install("asv", "virtualenv", *SCHEMA_REQUIREMENTS)
    session.chdir(ROOT / "asv_bench")
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    session.run("asv", "machine", "--yes")
    session.run(
        "asv",
        "run",
        "--python=same",
        f"--set-commit-hash={commit}",
        "--show-stderr",
        *session.posargs,
    )
    session.run("python", "report.py", "--commit", commit)


def _cargo_checks(session: nox.Session, failures: list[str]) -> None:
    """cargo test and cargo clippy (warnings are errors) over the Rust workspace."""
    env = {"PYO3_PYTHON": os.path.realpath(getattr(sys, "_base_executable", sys.executable))}
    manifest = str(RUST / "Cargo.toml")
    session.log("Rust workspace: cargo test, cargo clippy -D warnings")
    _run_collecting(
        session,
        failures,
        "cargo-test",
        "cargo",
        "test",
        "--manifest-path",
        manifest,
        external=True,
        env=env,
    )
    _run_collecting(
        session,
        failures,
        "cargo-clippy",
        "cargo",
        "clippy",
        "--manifest-path",
        manifest,
        "--all-targets",
        "--",
        "-D",
        "warnings",
        external=True,
        env=env,
    )


@nox.session(name="rust-core", python=False)
def rust_core(session: nox.Session) -> None:
    """cargo test and cargo clippy (warnings are errors) in packages/theus-rust."""
    if not (RUST / "Cargo.toml").is_file():
        session.skip("packages/theus-rust/Cargo.toml does not exist yet: nothing to test")
    if shutil.which("cargo") is None:
        session.skip("cargo is not on PATH (install Rust via rustup)")
    failures: list[str] = []
    _cargo_checks(session, failures)
    _finish(session, failures)


# --------------------------------------------------------------------------- dashboard

ASV_DIR = ROOT / "asv_bench"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def _commits_with_results(commits: list[str]) -> dict[str, int]:
    """commit -> how many benchmark results asv stored for it (0: it did not build or ran
    nothing), over every machine's results."""
    import json

    counts = dict.fromkeys(commits, 0)
    for path in (ASV_DIR / "results").glob("*/*.json"):
        if path.name in ("machine.json", "benchmarks.json"):
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        commit = data.get("commit_hash")
        if commit in counts:
            results = data.get("results", {})
            counts[commit] += sum(1 for r in results.values() if r and r[0] is not None)
    return counts


@nox.session(python=BASE_PYTHON)
def dashboard(session: nox.Session) -> None:
    """asv over the last N commits of main (`nox -s dashboard -- N [asv run args]`, default
    10), then `asv publish`; prints the HTML's path.

    asv builds each commit's wheels in its own virtualenvs (asv.conf.json). A commit whose
    packages do not build gets no results: it is skipped and listed. Results already stored
    for a commit are kept (`--skip-existing-successful`). The published page loads its
    scripts from Debian packages (offline.py), not from CDNs.
    """
    args = list(session.posargs)
    count = 10
    if args and args[0].isdigit():
        count = int(args.pop(0))
    if count < 1:
        session.error("N must be at least 1")
    session.install(*DASHBOARD_REQUIREMENTS)
    commits = _git("rev-list", "--first-parent", f"--max-count={count}", "main").split()
    session.chdir(ASV_DIR)
    hashfile = Path(session.create_tmp()) / "dashboard-commits.txt"
    hashfile.write_text("\n".join(commits) + "\n")
    session.run("asv", "machine", "--yes")
    # asv exits non-zero when a build or a benchmark failed; the commits are checked below.
    session.run(
        "asv",
        "run",
        "--skip-existing-successful",
        "--show-stderr",
        f"HASHFILE:{hashfile}",
        *args,
        success_codes=[0, 1, 2],
    )
    counts = _commits_with_results(commits)
    built = [c for c in commits if counts[c]]
    skipped = [c for c in commits if not counts[c]]
    for commit in skipped:
        subject = _git("log", "-1", "--format=%s", commit)
        session.warn(f"skipped {commit[:8]} (did not build, or no benchmark ran): {subject}")
    session.log(f"{len(built)} of {len(commits)} commits of main have results")
    session.run("asv", "publish")
    failures: list[str] = []
    _run_collecting(session, failures, "offline", "python", "offline.py", "html")
    if failures:
        session.warn("the dashboard loads its scripts from CDNs (see the message above)")
    if not built:
        session.error("no commit has results: nothing to show")
    session.log(f"dashboard: {ASV_DIR / 'html' / 'index.html'}")


# Benchmarks of code that is the same at every commit (plain Python, asyncio, pydantic, PyYAML,
# pickle: the same-run baselines of asv_bench/README.md). Between two commits they measure only
# the machine's noise, so the regression gate leaves them out unless `-b` chooses what to run.
COMMIT_INDEPENDENT = (
    r"Baseline\.",
    r"\.time_python_eval\b",
    r"\.time_pydantic_validate_assignment\b",
    r"\.time_yaml_load_",
    r"\.time_pickle_copy\b",
)
GATE_FILTER = "^(?!.*(?:" + "|".join(COMMIT_INDEPENDENT) + "))"


@nox.session(name="bench-compare", python=BASE_PYTHON)
def bench_compare(session: nox.Session) -> None:
    """`asv continuous` between two commits: `nox -s bench-compare -- BASE HEAD [--factor F]
    [-b REGEX] [asv args]`. Prints the table of changed benchmarks; fails (non-zero exit) when
    one got slower than F times (default 1.1). `-b`/`--bench REGEX` (asv's own option, passed
    through) restricts the run to the matching benchmarks, e.g. `-b 'Baseline|FluxCondition'`:
    asv still builds both commits, but benchmarks only those. Without `-b` every benchmark
    runs except the commit-independent baselines (`COMMIT_INDEPENDENT`): plain-Python code
    that only measures the machine's noise, which would fail the gate at random."""
    args = list(session.posargs)
    if len(args) < 2 or args[0].startswith("-") or args[1].startswith("-"):
        session.error("usage: nox -s bench-compare -- BASE HEAD [--factor F] [-b REGEX] [asv args]")
    base, head, rest = args[0], args[1], args[2:]
    if not any(a in ("-f", "--factor") or a.startswith("--factor=") for a in rest):
        rest = ["--factor", "1.1", *rest]
    if not any(a.startswith(("-b", "--bench")) for a in rest):
        session.log("the commit-independent baselines are left out (-b REGEX to choose)")
        rest = ["--bench", GATE_FILTER, *rest]
    session.install(*DASHBOARD_REQUIREMENTS)
    session.chdir(ASV_DIR)
    session.run("asv", "machine", "--yes")
    session.run("asv", "continuous", "--split", "--show-stderr", *rest, base, head)
