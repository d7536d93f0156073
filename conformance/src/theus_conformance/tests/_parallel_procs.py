"""Processes of ``test_parallel`` (spec/22): module-level, so a worker process imports them.

Each parallel process has an inline twin (the same body, ``parallel`` off), so a test can
compare what the two commit.
"""

from __future__ import annotations

import os
import pathlib
import signal
import time
from typing import Any

from theus import StateUpdate, process

_MIX = {
    "inputs": ["domain.n", "domain.cfg", "domain.items.*"],
    "outputs": ["domain.total", "domain.nested.x", "domain.log_k", "domain.seq", "domain.tmp",
                "domain.sig_done", "domain.summary"],
}  # fmt: skip


def _mix(ctx: Any, k: int) -> None:
    total = ctx.domain.n * k + ctx.domain.cfg["m"]
    total += sum(ctx.domain["items"][key] for key in ("a", "b"))
    ctx.domain.total = total
    ctx.domain.nested.x = {"deep": [k, total]}
    ctx.domain.log_k.append(k)
    ctx.domain.seq.append({"k": k})
    del ctx.domain.tmp
    ctx.domain.sig_done = {"k": k}
    ctx.outbox.add("mixed", {"k": k, "total": total})
    ctx.domain.summary = f"v{ctx.version}:{total}"


@process(**_MIX)
def mix_inline(ctx: Any, k: int) -> None:
    _mix(ctx, k)


@process(**_MIX, parallel=True)
def mix_parallel(ctx: Any, k: int) -> None:
    _mix(ctx, k)


def _returns(ctx: Any, how: str) -> Any:
    n = ctx.domain.n
    if how == "single":
        return n + 1
    if how == "tuple":
        return (n + 2, n + 3, None)
    if how == "dict":
        return {"b": n + 4}
    if how == "update":
        return StateUpdate(data={"domain.a": n + 5}, delete=["domain.gone"])
    return ctx.domain.cfg  # a view: the caller gets plain data back


@process(inputs=["domain.n", "domain.cfg"], outputs=["domain.a", "domain.b", "domain.gone"])
def returns_inline(ctx: Any, how: str) -> Any:
    return _returns(ctx, how)


@process(
    inputs=["domain.n", "domain.cfg"],
    outputs=["domain.a", "domain.b", "domain.gone"],
    parallel=True,
)
def returns_parallel(ctx: Any, how: str) -> Any:
    return _returns(ctx, how)


@process(inputs=["domain.n", "domain.cfg"], outputs=["domain.a"], parallel=True)
def single_parallel(ctx: Any, how: str) -> Any:
    return ctx.domain.n + 1 if how == "value" else ctx.domain.cfg


def _reads_outside(ctx: Any) -> Any:
    return ctx.domain.secret


@process(inputs=["domain.n"], outputs=["domain.a"])
def reads_outside_inline(ctx: Any) -> Any:
    return _reads_outside(ctx)


@process(inputs=["domain.n"], outputs=["domain.a"], parallel=True)
def reads_outside_parallel(ctx: Any) -> Any:
    return _reads_outside(ctx)


def _writes_outside(ctx: Any) -> None:
    ctx.domain.a = 1
    ctx.domain.secret = 2


@process(inputs=["domain.n"], outputs=["domain.a"])
def writes_outside_inline(ctx: Any) -> None:
    _writes_outside(ctx)


@process(inputs=["domain.n"], outputs=["domain.a"], parallel=True)
def writes_outside_parallel(ctx: Any) -> None:
    _writes_outside(ctx)


class Refused(ValueError):
    """An application error raised by a worker."""


@process(inputs=["domain.n"], outputs=["domain.a"], parallel=True)
def raises(ctx: Any, text: str) -> None:
    ctx.domain.a = 99
    raise Refused(text)


@process(inputs=["domain.n"], outputs=["domain.a"], parallel=True)
def killed(ctx: Any) -> None:
    ctx.domain.a = 99
    os.kill(os.getpid(), signal.SIGKILL)


@process(inputs=["domain.n"], outputs=["domain.a", "domain.pid"], parallel=True)
def where(ctx: Any) -> tuple[int, int]:
    """Maps ``a = n + 1`` and ``pid`` = the worker's pid."""
    return ctx.domain.n + 1, os.getpid()


@process(inputs=["domain.n"], outputs=["domain.total"], parallel=True)
def gated(ctx: Any, gate: str) -> None:
    """Record an attempt, then wait for ``gate`` (a directory) to hold ``open``; writes
    ``total = n * 10`` from the value it read."""
    folder = pathlib.Path(gate)
    n = ctx.domain.n
    with open(folder / "attempts", "a", encoding="utf-8") as f:
        f.write(f"{n}\n")
    deadline = time.monotonic() + 20
    while not (folder / "open").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never opened the gate")
        time.sleep(0.005)
    ctx.domain.total = n * 10


@process(inputs=["domain.n"], parallel=True)
def square(ctx: Any, x: int) -> int:
    if x < 0:
        raise Refused(f"negative: {x}")
    return x * x + ctx.domain.n


@process(outputs=["domain.out.*"], parallel=True)
def store(ctx: Any, x: int) -> None:
    if x < 0:
        raise Refused(f"negative: {x}")
    ctx.domain.out[f"x{x}"] = x * x


@process(inputs=["domain.n"], parallel=True)
def pair(ctx: Any, x: int, y: int) -> int:
    return x * 10 + y + ctx.domain.n


@process(inputs=["domain.n"], outputs=["domain.spun"], parallel=True)
def spin(ctx: Any, seconds: float) -> int:
    """Busy for ``seconds`` (no sleep: it holds its interpreter's GIL); maps the loop count
    to ``spun``."""
    end = time.monotonic() + seconds
    loops = 0
    while time.monotonic() < end:
        loops += 1
    return loops


@process(inputs=["domain.n"], outputs=["domain.n"], parallel=True)
def bump(ctx: Any) -> None:
    ctx.domain.n += 1


@process(inputs=["domain.lst"], outputs=["domain.lst.0"], parallel=True)
def into_list(ctx: Any) -> None:
    ctx.domain.lst[0] = 1


@process(outputs=["domain.lst.0"], parallel=True)
def into_list_only(ctx: Any) -> None:
    ctx.domain.lst[0] = 1


@process(inputs=["domain.n"], outputs=["domain.left"], parallel=True)
def left(ctx: Any, x: int) -> int:
    return ctx.domain.n * x


@process(inputs=["domain.n"], outputs=["domain.right"], parallel=True)
def right(ctx: Any, x: int) -> int:
    return ctx.domain.n + x


@process(outputs=["domain.out.*"], parallel=True)
def gated_store(ctx: Any, x: int, gate: str) -> None:
    """Like :func:`store`, after recording an attempt and waiting for ``gate`` to open."""
    folder = pathlib.Path(gate)
    with open(folder / "attempts", "a", encoding="utf-8") as f:
        f.write(f"{x}\n")
    deadline = time.monotonic() + 20
    while not (folder / "open").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never opened the gate")
        time.sleep(0.005)
    ctx.domain.out[f"x{x}"] = x * x


@process(outputs=["domain.sig_go"])
def signal_go(ctx: Any) -> None:
    ctx.domain.sig_go = {"go": 1}


@process(inputs=["domain.sig_go"], outputs=["domain.seen"], parallel=True)
def sees_signal(ctx: Any) -> Any:
    return ctx.domain.sig_go["go"]


def _pure_view(ctx: Any) -> Any:
    return sorted(ctx.domain.data.keys())


@process(inputs=["domain.data"], outputs=["domain.keys"], semantic="pure")
def pure_inline(ctx: Any) -> Any:
    return _pure_view(ctx)


@process(inputs=["domain.data"], outputs=["domain.keys"], semantic="pure", parallel=True)
def pure_parallel(ctx: Any) -> Any:
    return _pure_view(ctx)
