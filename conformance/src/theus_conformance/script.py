"""Run a test scenario in a fresh interpreter, for what can crash or hang the one running the
suite (segmentation faults, signal handlers, deadlocks)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

__all__ = ["run_script"]


def run_script(code: str, backend: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (dedented) with ``sys.executable``; ``BACKEND`` is bound to the backend name.

    Returns the completed process (``returncode``, ``stdout``, ``stderr``). A run that does not
    finish within ``timeout`` seconds is killed and reported as return code ``-9`` with
    ``"TIMEOUT"`` in ``stderr``, so a hang fails the calling test instead of the suite.
    """
    source = f"BACKEND = {backend!r}\n" + textwrap.dedent(code)
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    try:
        return subprocess.run(
            [sys.executable, "-c", source],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return subprocess.CompletedProcess(exc.cmd, -9, out, err + "\nTIMEOUT")
