"""Provenance: the rust backend really runs the compiled extension (like CPython's C/Python
``heapq`` check), for the engine core, the snapshot, the transaction, ``ctx`` and the views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import theus
import theus_rust
from theus import TheusEngine, process
from theus_rust import _native


def test_native_module_is_compiled():
    assert Path(_native.__file__).suffix in (".so", ".pyd")


def test_backend_object():
    backend = theus_rust.backend
    assert backend.name == "rust"
    assert backend.priority == 100
    assert "native-execute" in backend.capabilities
    info = {b.name: b for b in theus.backends(refresh=True)}["rust"]
    assert info.error is None


def test_every_object_comes_from_the_extension():
    engine = TheusEngine(context={"domain": {"m": {"a": 1}, "l": [1, 2]}}, backend="rust")
    assert type(engine.core) is _native.Engine
    state = engine.state
    assert type(state) is _native.Snapshot
    assert type(state.domain) is _native.MapView
    assert type(state.domain.l) is _native.ListView
    assert isinstance(state, Mapping) and isinstance(state.domain, Mapping)
    assert isinstance(state.domain.l, Sequence)
    seen = {}

    @process(inputs=["domain.m", "domain.l"], outputs=[])
    def look(ctx):
        seen["ctx"] = type(ctx)
        seen["m"] = type(ctx.domain.m)
        seen["l"] = type(ctx.domain.l)

    engine.execute(look)
    assert seen == {"ctx": _native.Ctx, "m": _native.MapView, "l": _native.ListView}
    tx = engine.core.begin(None)
    try:
        assert type(tx) is _native.Tx
    finally:
        tx.close()


def test_execute_runs_natively_without_the_generic_runner(monkeypatch):
    # the facade calls core.execute for sync processes; the Python runner is never used
    import theus.engine as facade

    def refuse(*args, **kwargs):
        raise AssertionError("the generic runner ran")

    monkeypatch.setattr(facade, "run_sync", refuse)
    engine = TheusEngine(context={"domain": {"n": 0}}, backend="rust")

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def bump(ctx):
        ctx.domain.n = ctx.domain.n + 1

    for _ in range(3):
        engine.execute(bump)
    assert engine.state.domain.n == 3


def test_panic_free_errors_commit_nothing():
    engine = TheusEngine(context={"domain": {"n": 0}}, backend="rust")
    before = engine.state

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def bad(ctx):
        ctx.domain.n = 1
        ctx.domain["a.b"] = 2  # an invalid key: ContextError, nothing committed

    try:
        engine.execute(bad)
    except theus.ContextError:
        pass
    else:  # pragma: no cover
        raise AssertionError("expected ContextError")
    assert engine.state is before
