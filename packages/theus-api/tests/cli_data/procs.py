"""Processes and engines for the `theus` command's tests (imported with this directory as
the working directory)."""

from __future__ import annotations

from theus import TheusEngine, process


@process(inputs=["domain.count"], outputs=["domain.count"])
def inc(ctx):
    ctx.domain.count += 1


@process(inputs=["domain.count"], outputs=["domain.total"])
def total(ctx):
    ctx.domain.total = ctx.domain.count * 10


@process(inputs=["domain.count"], outputs=["domain.count"])
def boom(ctx):
    raise ValueError(f"boom at count {ctx.domain.count}")


@process(inputs=[], outputs=["domain.left"])
def left(ctx):
    ctx.domain.left = 1


@process(inputs=[], outputs=["domain.right"])
def right(ctx):
    ctx.domain.right = 2


STATE = {"domain": {"count": 0, "total": 0, "left": 0, "right": 0, "answer": None}}
NOT_AN_ENGINE = 42


def make_engine() -> TheusEngine:
    engine = TheusEngine(context=STATE)
    for fn in (inc, total, boom, left, right):
        engine.register(fn)
    return engine


def reference_engine() -> TheusEngine:
    engine = TheusEngine(context=STATE, backend="reference")
    engine.register(inc)
    return engine


def bad_factory() -> TheusEngine:
    raise RuntimeError("no database")


ENGINE = make_engine()
