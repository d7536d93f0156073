"""The examples run, and say what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_checked_commits_example_runs():
    pytest.importorskip("pydantic")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "checked_commits.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("refused: audit stop: process 'withdraw' output 'domain.balance'")
    assert lines[1] == "refused: schema: 'domain.owner' expects str, got 42 (int)"
    assert lines[2] == "balance: 70 history: [-30]"
    assert lines[3] == "versions seen by the stage: [1]"
    assert lines[4] == "receipts delivered: [(1, 0, {'amount': 30})]"
