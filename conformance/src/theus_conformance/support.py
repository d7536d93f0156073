"""Helpers shared by the conformance tests (importable by third parties' own tests too)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest

__all__ = ["run_with_timeout", "in_thread", "run_threads", "drain", "tree_with", "DEADLOCK_TIMEOUT"]

# generous: these only guard against hangs; no test asserts on timing
DEADLOCK_TIMEOUT = 20.0


def run_with_timeout(fn: Callable[[], Any], timeout: float = DEADLOCK_TIMEOUT) -> Any:
    """Run ``fn()`` on a daemon thread; return its result or re-raise its exception.

    Fails the test (instead of hanging the run) when ``fn`` does not finish in ``timeout``
    seconds — the symptom of a deadlock.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="theus-conformance-timeout")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"did not finish within {timeout} s: deadlock or hang", pytrace=False)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def in_thread(fn: Callable[[], Any], timeout: float = DEADLOCK_TIMEOUT) -> Any:
    """Run ``fn`` to completion on another thread (another execution context) and return its
    result; used to land a commit while a transaction is open on the calling thread."""
    return run_with_timeout(fn, timeout)


def run_threads(n: int, target: Callable[[int], Any]) -> None:
    """Run ``target(i)`` on ``n`` threads started together (a barrier); re-raise the first
    error; fail the test when a thread has not finished after 120 s (a deadlock)."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def wrapped(i: int) -> None:
        try:
            barrier.wait(DEADLOCK_TIMEOUT)
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if any(t.is_alive() for t in threads):
        pytest.fail("threads did not finish: deadlock?", pytrace=False)
    if errors:
        raise errors[0]


def drain(receiver: Any) -> list[Any]:
    """Every message pending on a receiver, without blocking."""
    from theus import SignalEmpty

    out = []
    while True:
        try:
            out.append(receiver.try_recv())
        except SignalEmpty:
            return out


def tree_with(paths: Iterable[str], leaf: Any = 0) -> dict[str, Any]:
    """A context (plain nested dicts) in which every given dotted path exists.

    Intermediate nodes are dicts; a path's last segment gets ``leaf`` unless a longer path
    passes through it.
    """
    root: dict[str, Any] = {"domain": {}, "global": {}}
    for path in paths:
        segments = path.split(".")
        node = root
        for i, seg in enumerate(segments):
            last = i == len(segments) - 1
            if last:
                node.setdefault(seg, leaf)
            else:
                child = node.get(seg)
                if not isinstance(child, dict):
                    child = {}
                    node[seg] = child
                node = child
    return root
