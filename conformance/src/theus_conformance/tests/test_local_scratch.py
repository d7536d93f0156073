"""spec/09 — ``ctx.local``: scratch for one attempt of one call (REQUIREMENTS §4.8)."""

from __future__ import annotations

import pytest

from theus import process
from theus_conformance.support import in_thread


def test_local_is_mutable_unchecked_and_never_committed(make_engine):
    engine = make_engine({"domain": {"a": 1}})

    @process(inputs=["domain.a"])
    def scratch(ctx):
        assert "x" not in ctx.local
        ctx.local.x = [1]
        ctx.local["y"] = 2
        ctx.local.x.append(3)
        assert ctx.local.get("missing", "dflt") == "dflt"
        return ctx.local.x, ctx.local["y"], "y" in ctx.local, ctx.local.get("x")

    assert engine.execute(scratch) == ([1, 3], 2, True, [1, 3])
    assert engine.state.version == 0
    assert engine.state.to_dict() == {"domain": {"a": 1}, "global": {}}


def test_local_starts_empty_on_every_call(make_engine):
    engine = make_engine()
    seen = []

    @process
    def remember(ctx):
        seen.append("mark" in ctx.local)
        ctx.local.mark = True

    for _ in range(3):
        engine.execute(remember)
    assert seen == [False, False, False]


def test_local_is_not_shared_between_processes(make_engine):
    engine = make_engine()

    @process
    def writer(ctx):
        ctx.local.secret = 1

    @process
    def reader(ctx):
        return "secret" in ctx.local

    engine.execute(writer)
    assert engine.execute(reader) is False


@pytest.mark.requires("threads")
def test_rerun_gets_a_fresh_local(make_engine):
    engine = make_engine({"domain": {"n": 0}})
    seen = []

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def bump(ctx):
        seen.append(dict(ctx.local) if hasattr(ctx.local, "keys") else "attempt" in ctx.local)
        ctx.local.attempt = len(seen)
        value = ctx.domain.n
        if len(seen) == 1:
            in_thread(lambda: engine.compare_and_swap(engine.state.version, data={"domain.n": 10}))
        ctx.domain.n = value + 1

    engine.execute(bump)
    assert len(seen) == 2
    assert seen[1] in ({}, False)
    assert engine.state.domain.n == 11


def test_local_is_the_shared_local_class(make_engine):
    """spec/09: ``theus.local.Local`` is the class every backend uses for ``ctx.local``."""
    from theus.local import Local

    engine = make_engine()

    @process
    def kind(ctx):
        return isinstance(ctx.local, Local)

    assert engine.execute(kind) is True


def test_local_missing_attribute(make_engine):
    engine = make_engine()

    @process
    def missing(ctx):
        with pytest.raises(AttributeError):
            ctx.local.nothing
        with pytest.raises(KeyError):
            ctx.local["nothing"]
        return "checked"

    assert engine.execute(missing) == "checked"
