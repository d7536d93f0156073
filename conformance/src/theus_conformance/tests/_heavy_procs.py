"""Processes for test_parallel_heavy.py and test_parallel_dask.py: workers import them by
module and name, so they live at module level here. Each reports facts about the process it
runs in as plain data."""

from __future__ import annotations

import os
from typing import Any

from theus import process


def rss_anon_kb() -> int:
    """This process's private anonymous resident memory: what a copy of the data would grow."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon in /proc/self/status")


def mapped_file(address: int) -> str | None:
    """The file this process maps at ``address`` (/proc/self/maps), if any."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            low, high = (int(x, 16) for x in fields[0].split("-"))
            if low <= address < high:
                return fields[5] if len(fields) > 5 else ""
    return None


@process(inputs=["domain.heavy_frame"], outputs=["domain.facts"], parallel=True)
def heavy_facts(ctx: Any) -> None:
    """Where the heavy array came from and how it is held here."""
    frame = ctx.domain.heavy_frame
    address = int(frame.__array_interface__["data"][0])
    total = float(frame.sum())
    try:
        frame.flags.writeable = True
        can_write = True
    except ValueError:
        can_write = False
    ctx.domain.facts = {
        "pid": os.getpid(),
        "type": type(frame).__name__,
        "segment": frame._theus_buffer.name,
        "mapped_file": mapped_file(address),
        "writeable": bool(frame.flags.writeable),
        "can_make_writeable": can_write,
        "sum": total,
        "rss_anon_kb": rss_anon_kb(),
    }


@process(inputs=["domain.heavy_frame"], outputs=["domain.facts"], parallel=True)
def heavy_view_facts(ctx: Any) -> None:
    """What a heavy array looks like where numpy cannot load (a sub-interpreter)."""
    frame = ctx.domain.heavy_frame
    ctx.domain.facts = {
        "type": type(frame).__name__,
        "readonly": getattr(frame, "readonly", None),
        "format": getattr(frame, "format", None),
        "shape": list(getattr(frame, "shape", ())),
        "values": frame.tolist(),
    }


@process(inputs=["domain.heavy_frame"], outputs=["domain.n"], parallel=True)
def write_heavy_in_place(ctx: Any) -> None:
    """Tries to write into the shared array (it is read-only in a worker)."""
    ctx.domain.heavy_frame[0] = 99.0
    ctx.domain.n = 1


@process(inputs=["domain.heavy_blob"], outputs=["domain.head"], parallel=True)
def heavy_blob_head(ctx: Any) -> None:
    """The first bytes of a heavy byte buffer, and whether it is read-only here."""
    view = memoryview(ctx.domain.heavy_blob)
    ctx.domain.head = [bytes(view[:4]).decode(), view.readonly, os.getpid()]


@process(inputs=[], outputs=["domain.pid"], parallel=True)
def worker_pid(ctx: Any) -> None:
    """The pid of the worker."""
    ctx.domain.pid = os.getpid()


# -- plain processes the Dask tests run both inline and on the cluster -------------------------


def _collatz(n: int) -> int:
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def _score_body(ctx: Any, start: int) -> dict[str, Any]:
    values = list(ctx.domain.numbers)
    steps = [_collatz(start + v) for v in values]
    ctx.domain.log_steps.append(sum(steps))
    if start == 1:  # the first call deletes it
        del ctx.domain.scratch
    ctx.domain.best = max(steps)
    return {"domain.count": ctx.domain.count + len(values)}


_SCORE = {
    "inputs": ["domain.numbers", "domain.count", "domain.scratch", "domain.log_steps"],
    "outputs": [
        "domain.best",
        "domain.count",
        "domain.scratch",
        "domain.log_steps",
    ],
}


@process(**_SCORE)
def score_inline(ctx: Any, start: int = 1) -> dict[str, Any]:
    """Collatz steps of the values: a set, a delete, a log append and a return mapping."""
    return _score_body(ctx, start)


@process(**_SCORE, parallel=True)
def score_parallel(ctx: Any, start: int = 1) -> dict[str, Any]:
    """The same as score_inline, on the engine's executor."""
    return _score_body(ctx, start)


@process(inputs=["domain.numbers"], outputs=["domain.best"], parallel=True)
def write_outside_contract(ctx: Any) -> None:
    """Writes a path it did not declare: a ContractViolationError, raised in the worker."""
    ctx.domain.count = 1


@process(inputs=["domain.numbers"], outputs=["domain.best"], parallel=True)
def square(ctx: Any, x: int) -> dict[str, Any]:
    """``x * x`` into domain.best, and where it ran."""
    return {"domain.best": x * x}


@process(inputs=["domain.heavy_frame"], outputs=["domain.heavy_copy"], parallel=True)
def pass_heavy_on(ctx: Any) -> None:
    """Stores the heavy array it received under another heavy key."""
    ctx.domain.heavy_copy = ctx.domain.heavy_frame


@process(inputs=["domain.heavy_frame"], outputs=["domain.n"], parallel=True)
def die_holding_heavy(ctx: Any) -> None:
    """Maps the heavy array, then the worker is killed (SIGKILL) mid-call."""
    import signal

    float(ctx.domain.heavy_frame.sum())
    os.kill(os.getpid(), signal.SIGKILL)
