"""The rust core evaluates Flux conditions natively (spec/18 §2.6): which evaluations stay
native (``NativeExpression.covers``), which fall back to Python, and that the fallback reads the
same snapshot and gives the Python error text; commits on other threads never deadlock it."""

from __future__ import annotations

import threading

import pytest

from theus import FluxError, TheusEngine
from theus.flux import compile_expression, snapshot_scope

CONTEXT = {
    "domain": {
        "count": 3,
        "name": "abc",
        "items": [1, 2, 3],
        "nested": {"a": {"b": 1.5}},
        "big": 2**70,
        "heavy_blob": {"k": 1},
        "mixed": [1, {"a": 1}, frozenset({2})],
    },
    "global": {"enabled": True, "mode": "fast"},
}


@pytest.fixture
def engine():
    eng = TheusEngine(context=CONTEXT, backend="rust")
    with eng.transaction() as tx:
        tx.update(signal={"domain.sig_go": True, "domain.cmd_n": 4})
    yield eng
    eng.close()


def native(engine, text, inputs=()):
    compiled = engine.core.compile_expression(compile_expression(text, inputs=inputs))
    assert compiled is not None
    return compiled


NATIVE = [
    "domain.count < 10 and global.enabled == True and signal.get('cmd_stop') is None",
    "domain['count'] == 3.0",
    "signal.sig_go and cmd.cmd_n > 3",
    "signal['domain.sig_go'] is True",
    "global.mode in ('fast', 'slow')",
    "'b' in domain.name",
    "2 in domain.items",
    "1 in domain.mixed and domain.mixed[1].a == 1",
    "'count' in domain",
    "len(domain.items) + domain.count * 2 - 1 == 8",
    "domain.nested.a.b // 1 == 1.0",
    "max(domain.items) == 3 and min(1, 0.5) == 0.5",
    "int('12') + int(2.5) == 14",
    "str(domain.count) + '!' == '3!'",
    "domain.get('nope', 0) == 0",
    "(domain.count if domain.nested else 0) == 3",
    "domain.items[-1] == 3",
    "abs(-domain.count) == 3",
    "not domain.missing_key_guarded if False else True",
]

FALLBACK = [
    "domain.big > 1",  # an int beyond 64 bits
    "domain.heavy_blob.k == 1",  # a heavy leaf (a dict kept by reference)
    "str(domain.nested.a.b) == '1.5'",  # str() of a non-integral float
    "domain.count * 2 ** 62 > 0",  # an i64 overflow
    "domain.items == (1, 2, 3)",  # comparing a list of the state
    "5 in domain.mixed",  # a list holding a leaf not modelled (a frozenset)
]


@pytest.mark.parametrize("text", NATIVE)
def test_native_conditions_stay_native(engine, text):
    cond = native(engine, text)
    assert cond.covers() is True
    assert cond.test() is True
    assert cond.test() == compile_expression(text).test(snapshot_scope(engine.state))


@pytest.mark.parametrize("text", FALLBACK)
def test_fallbacks_give_the_python_result(engine, text):
    cond = native(engine, text)
    assert cond.covers() is False
    expression = compile_expression(text)
    assert cond.test() == expression.test(snapshot_scope(engine.state))
    assert cond.evaluate() == expression.evaluate(snapshot_scope(engine.state))


def test_errors_are_the_python_text(engine):
    for text in ("domain.nope > 1", "domain.name < 1", "domain.count / 0", "len(domain.count)"):
        cond = native(engine, text)
        with pytest.raises(FluxError) as info:
            cond.test()
        with pytest.raises(FluxError) as python:
            compile_expression(text).test(snapshot_scope(engine.state))
        assert str(info.value) == str(python.value)


def test_an_ir_it_does_not_take_is_none(engine):
    assert engine.core.compile_expression(compile_expression("domain.count < 2 ** 70")) is None
    assert engine.core.compile_expression(compile_expression("domain.count < 10")) is not None


def test_inputs_are_read_without_a_scope(engine):
    cond = native(engine, "domain.count < limit and who == 'ann'", inputs=("limit", "who"))
    assert cond.covers({"limit": 5, "who": "ann"}) is True
    assert cond.test({"limit": 5, "who": "ann"}) is True
    assert cond.test({"limit": 2, "who": "ann"}) is False
    assert cond.covers({"limit": 2**80, "who": "ann"}) is False
    assert cond.test({"limit": 2**80, "who": "ann"}) is True


def test_commits_on_other_threads_while_evaluating(engine):
    """Native and fallback evaluations interleave with commits without deadlock; each reads one
    consistent snapshot (count and its mirror written together)."""
    with engine.transaction() as tx:
        tx.update(data={"domain.count": 0, "domain.mirror": 0})
    same = native(engine, "domain.count == domain.mirror")
    slow = native(engine, "domain.count == domain.mirror and domain.big > 0")  # falls back
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set() and i < 2000:
            i += 1
            with engine.transaction() as tx:
                tx.update(data={"domain.count": i, "domain.mirror": i})

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(3000):
            assert same.test() is True
            assert slow.test() is True
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
