"""Helpers shared by the conformance tests (importable by third parties' own tests too)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest

__all__ = [
    "DEADLOCK_TIMEOUT",
    "REFERENCE",
    "drain",
    "in_thread",
    "require_reference",
    "run_machine",
    "run_threads",
    "run_with_timeout",
    "tree_with",
]

REFERENCE = "reference"

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


def require_reference(backend: str) -> None:
    """Skip a differential test that compares ``backend`` with the reference backend when there
    is nothing to compare: ``backend`` is the reference, or the reference is not installed."""
    import theus

    if backend == REFERENCE:
        pytest.skip("the backend under test is the reference backend: nothing to compare with")
    available = {i.name: i for i in theus.backends()}
    if REFERENCE not in available or available[REFERENCE].error is not None:
        pytest.skip(
            "the reference backend is not installed (pip install theus-reference): "
            "no differential test"
        )


def run_machine(machine: type, max_examples: int, steps: int, **attributes: Any) -> None:
    """Run a Hypothesis ``RuleBasedStateMachine`` subclass as a test, with the suite's settings
    (no deadline, no example database); ``attributes`` are set on a subclass made for the run
    (e.g. ``backend=...``)."""
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test

    run = type(f"{machine.__name__}Run", (machine,), attributes)
    run_state_machine_as_test(
        run,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
