"""The examples run, and say what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _run_example(relative: str) -> list[str]:
    """Run ``examples/<relative>``; its stdout lines (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / relative)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _run_flux_example(name: str) -> list[str]:
    return _run_example(f"flux/{name}.py")


def test_checked_commits_example_runs():
    pytest.importorskip("pydantic")
    lines = _run_example("checked_commits.py")
    assert lines[0].startswith("refused: audit stop: process 'withdraw' output 'domain.balance'")
    assert lines[1] == "refused: schema: 'domain.owner' expects str, got 42 (int)"
    assert lines[2] == "balance: 70 history: [-30]"
    assert lines[3] == "versions seen by the stage: [1]"
    assert lines[4] == "receipts delivered: [(1, 0, {'amount': 30})]"


def test_flux_agent_loop_example_runs():
    lines = _run_flux_example("agent_loop")
    assert lines[0] == "agent loop: progress 10 in 5 turns; steps taken [4, 3, 1, 1, 1]"
    assert lines[1] == "judged in turns [1, 2, 3, 4, 5]; 17 steps, version 13"
    assert lines[2] == (
        "goal 100: stopped by the guard: the loop's condition is still true after max_iterations=8"
    )


def test_flux_branch_example_runs():
    assert _run_flux_example("branch") == [
        "alice: price -> ship => shipped (dry run: shipped)",
        "bob: price -> review -> ship => shipped (dry run: shipped)",
        "mallory: price -> review -> refund => refunded (dry run: refunded)",
    ]


def test_flux_nested_example_runs():
    lines = _run_flux_example("nested")
    assert lines[0] == (
        "stopped after ['open_batch', 'dedupe', 'compact', 'next_batch']; position "
        '{"format": 1, "ops": 8, "seq": 9, "stack": [[0, 1, 0], [0, 2, 1]]}'
    )
    assert lines[1] == "resumed: dedupe compact next_batch dedupe compact next_batch close_batch"
    assert lines[2] == "cleaned batches [[1, 2, 3], [1, 2, 7], [1, 4, 7]], total 9"


def test_flux_fanout_example_runs():
    lines = _run_flux_example("fanout")
    assert lines[0] == "branches: [['fetch'], ['fetch_prices'], ['fetch_weather', 'warn_frost']]"
    assert lines[1] == "digest: 2 headlines, 2 prices, -2 C, alerts ['frost'] (version 5)"
    assert lines[2].startswith("refused: <string>:3:15: steps[0].branches: branches 0 and 1 ")
    assert "process 'fetch_weather' (<string>:3:17) writes 'domain.weather'" in lines[2]


def test_parallel_example_runs():
    pytest.importorskip("theus_reference")  # the worker side runs on the reference backend
    lines = _run_example("parallel.py")
    assert lines[0].startswith("scored 4 documents in ")
    assert lines[1] == "scores: {'d0': 9829, 'd1': 7357, 'd2': 7372, 'd3': 7369}"
    assert lines[2] == "batch: 1 failed (KeyError('missing')), d1 committed"
    assert lines[3] == "version: 6"
