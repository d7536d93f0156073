"""The native attempt loop maps return values itself and reads the re-run policy as data
(issue 7): no call back into theus._runner's private helpers on the plain path."""

from __future__ import annotations

import pytest

import theus._runner as runner
from theus import ContractViolationError, StateUpdate, TheusEngine, process
from theus.retry import RetryPolicy


@pytest.fixture
def no_python_mapping(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the native loop called theus._runner.apply_return")

    monkeypatch.setattr(runner, "apply_return", refuse)
    monkeypatch.setattr(runner, "settle", refuse)


@process(inputs=["domain.x"], outputs=["domain.x"])
def one(ctx):
    return ctx.domain.x + 1


@process(outputs=["domain.a", "domain.b"])
def two(ctx):
    return 1, [2, 3]


@process(outputs=["domain.a"])
def update(ctx):
    return StateUpdate(data={"domain.a": 9})


@process(outputs=["domain.*"])
def wild(ctx):
    return 1


def test_plain_returns_are_mapped_natively(no_python_mapping):
    engine = TheusEngine({"domain": {"x": 1, "a": 0, "b": 0}}, backend="rust")
    assert engine.execute(one) == 2 and engine.state.domain.x == 2
    assert engine.execute(two) == (1, [2, 3])
    assert engine.state.domain.a == 1 and engine.state.domain.b.to_list() == [2, 3]
    engine.execute(update)
    assert engine.state.domain.a == 9


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (two, r"has 2 outputs \['domain.a', 'domain.b'\], so it must return a tuple or list of 2"),
        (wild, r"output 'domain\.\*' has a wildcard"),
    ],
)
def test_native_mapping_errors_are_the_shared_texts(fn, message):
    engine = TheusEngine({"domain": {"a": 0, "b": 0}}, backend="rust")
    if fn is two:

        @process(outputs=["domain.a", "domain.b"], name="two")
        def bad(ctx):
            return 1

        fn = bad
    with pytest.raises(ContractViolationError, match=message):
        engine.execute(fn)
    assert engine.state.version == 0


def test_the_retry_policy_is_read_from_the_spec():
    assert one.__theus_process__.retry_policy == RetryPolicy(retries=3)
    policy = RetryPolicy(retries=5, backoff_base=0.25)
    assert policy.delay(1, __import__("random").Random(1)) == 0.0
    assert 0.0 <= policy.delay(3, __import__("random").Random(1)) <= 0.5
    assert policy.exclusive(5) and not policy.exclusive(4) and not policy.exclusive(0)
