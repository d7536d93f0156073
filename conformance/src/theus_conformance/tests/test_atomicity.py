"""REQUIREMENTS §4.3 / spec/05, spec/12 — an error commits nothing, publishes nothing, and
leaves ``engine.state`` the very object it was before the call."""

from __future__ import annotations

import pytest

from theus import ContractViolationError, StateUpdate, process
from theus_conformance.support import drain


class Boom(RuntimeError):
    pass


def _context():
    return {"domain": {"a": 1, "l": [1], "m": {"k": 1}, "log_e": ["x"]}, "global": {"g": 0}}


def _assert_untouched(engine, before, rx):
    assert engine.state is before
    assert engine.state.to_dict() == _context()
    assert drain(rx) == []


def test_exception_after_in_place_writes(make_engine):
    engine = make_engine(_context())
    rx = engine.signals.subscribe()
    before = engine.state
    error = Boom("late failure")
    heavy = object()

    @process(outputs=["domain", "global.g"])
    def write_then_fail(ctx):
        ctx.domain.a = 2
        ctx.domain.l.append(2)
        ctx.domain.m.k = 5
        del ctx.domain.m.k
        ctx.domain.log_e.append("y")
        ctx.domain.heavy_h = heavy
        ctx.domain.sig_s = "should not be published"
        ctx.global_.g = 1
        raise error

    with pytest.raises(Boom) as info:
        engine.execute(write_then_fail)
    assert info.value is error  # propagated unchanged
    _assert_untouched(engine, before, rx)


def test_contract_violation_after_writes(make_engine):
    engine = make_engine(_context())
    rx = engine.signals.subscribe()
    before = engine.state

    @process(outputs=["domain.a", "domain.sig_s"])
    def overreach(ctx):
        ctx.domain.a = 2
        ctx.domain.sig_s = 1
        ctx.global_.g = 1

    with pytest.raises(ContractViolationError):
        engine.execute(overreach)
    _assert_untouched(engine, before, rx)


def test_return_mapping_failure_commits_nothing(make_engine):
    engine = make_engine(_context())
    rx = engine.signals.subscribe()
    before = engine.state

    @process(outputs=["domain.a", "domain.sig_s"])
    def wrong_arity(ctx):
        return (1, 2, 3)

    with pytest.raises(ContractViolationError):
        engine.execute(wrong_arity)

    @process(outputs=["domain.a", "domain.sig_s"])
    def bad_update(ctx):
        return StateUpdate(data={"domain.a": 2, "global.g": 9}, signal={"domain.sig_s": 1})

    with pytest.raises(ContractViolationError):
        engine.execute(bad_update)
    _assert_untouched(engine, before, rx)


def test_failed_delete_commits_nothing(make_engine):
    engine = make_engine(_context())
    rx = engine.signals.subscribe()
    before = engine.state
    with pytest.raises(KeyError, match="domain.nope"):
        with engine.transaction() as tx:
            tx.update(data={"domain.a": 2}, signal={"domain.sig_s": 1})
            tx.update(delete=["domain.nope"])
    with pytest.raises(KeyError):
        engine.compare_and_swap(0, data={"domain.a": 2}, delete=["domain.nope"])
    _assert_untouched(engine, before, rx)


def test_state_objects_from_before_stay_valid_after_failures(make_engine):
    engine = make_engine(_context())
    view = engine.state.domain.m

    @process(outputs=["domain.m"])
    def fail(ctx):
        ctx.domain.m.k = 3
        raise Boom()

    for _ in range(3):
        with pytest.raises(Boom):
            engine.execute(fail)
    assert view.k == 1
    assert engine.state.version == 0

    @process(outputs=["domain.m"])
    def succeed(ctx):
        ctx.domain.m.k = 3

    engine.execute(succeed)
    assert engine.state.version == 1 and engine.state.domain.m.k == 3
    assert view.k == 1
