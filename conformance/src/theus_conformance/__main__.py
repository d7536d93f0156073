"""``python -m theus_conformance --backend NAME [pytest args...]``

Runs the whole shipped conformance suite (``pytest --pyargs theus_conformance.tests``) against
the named backend(s) and exits with pytest's code. A run in which no test passed (nothing
collected, or everything skipped) is a failure: a conformance run must prove something.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import pytest

_NO_TEST_PASSED = 5  # pytest's ExitCode.NO_TESTS_COLLECTED


class _PassCounter:
    def __init__(self) -> None:
        self.passed = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and report.passed:
            self.passed += 1


def _list_backends() -> int:
    import theus

    infos = theus.backends(refresh=True)
    if not infos:
        print("no Theus backend installed (pip install theus-reference)")
        return 1
    for info in infos:
        caps = ", ".join(sorted(info.capabilities)) or "none"
        state = "ok" if info.error is None else f"FAILS TO LOAD: {info.error}"
        print(f"{info.name:<16} {info.version:<10} priority {info.priority:<5} [{caps}] {state}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m theus_conformance",
        description="Run the Theus conformance suite against a backend. Arguments not listed "
        "here are passed to pytest (e.g. -x, -k EXPR, -q).",
    )
    parser.add_argument(
        "--backend",
        metavar="NAMES",
        help="comma-separated backend names, or module:attr of an unpublished backend "
        "(default: every installed backend that loads)",
    )
    parser.add_argument(
        "--list-backends", action="store_true", help="list installed backends and exit"
    )
    args, pytest_args = parser.parse_known_args(argv)
    if args.list_backends:
        return _list_backends()

    # this package is necessarily imported before pytest starts; its plugin module is not
    # affected, but pytest warns that the package itself cannot be assertion-rewritten
    cmd = [
        "--pyargs",
        "theus_conformance.tests",
        "-W",
        "ignore:Module already imported so cannot be rewritten",
    ]
    if args.backend:
        cmd.append(f"--theus-backend={args.backend}")
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        cmd += ["-p", "theus_conformance.plugin"]
    cmd += pytest_args
    counter = _PassCounter()
    code = int(pytest.main(cmd, plugins=[counter]))
    if code == 0 and counter.passed == 0:
        print(
            "theus_conformance: no test passed (all skipped or deselected): failing the run",
            file=sys.stderr,
        )
        return _NO_TEST_PASSED
    return code


if __name__ == "__main__":
    raise SystemExit(main())
