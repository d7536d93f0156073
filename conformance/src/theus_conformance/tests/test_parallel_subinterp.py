"""Parallel processes on ``executor="subinterpreters"`` (spec/22 §2, §10): a pool of isolated
sub-interpreters, Python >= 3.13. Results identical to inline, contract violations and
exceptions from the sub-interpreter, batches, and a process that needs a module that cannot
load there. Skipped, saying why, where sub-interpreters are not available."""

from __future__ import annotations

import pytest

from theus import BatchError, ContractViolationError, process
from theus.parallel import subinterp
from theus_conformance.tests import _heavy_procs as procs

pytestmark = pytest.mark.skipif(
    not subinterp.available(), reason=f"no sub-interpreters: {subinterp.unavailable_reason()}"
)


def _context():
    return {
        "domain": {
            "numbers": [3, 6, 7, 9, 27],
            "count": 2,
            "scratch": {"tmp": 1},
            "log_steps": [0],
            "best": None,
        }
    }


@pytest.fixture(scope="module")
def pool():
    executor = subinterp.SubinterpreterExecutor(2)
    yield executor
    executor.shutdown()


def test_by_name_the_engine_makes_a_sub_interpreter_pool(make_engine):
    engine = make_engine(_context(), executor="subinterpreters")
    engine.execute(procs.score_parallel, start=1)
    assert engine.state.domain.best == max(procs._collatz(1 + v) for v in [3, 6, 7, 9, 27])


def test_results_are_identical_to_inline(make_engine, pool):
    inline = make_engine(_context())
    remote = make_engine(_context(), executor=pool)
    for start in (1, 5, 11):
        assert remote.execute(procs.score_parallel, start=start) == inline.execute(
            procs.score_inline, start=start
        )
    assert remote.state.domain.to_dict() == inline.state.domain.to_dict()
    assert remote.state.version == inline.state.version


def test_a_contract_violation_in_a_sub_interpreter(make_engine, pool):
    engine = make_engine(_context(), executor=pool)
    version = engine.state.version
    with pytest.raises(ContractViolationError, match="domain.count"):
        engine.execute(procs.write_outside_contract)
    assert engine.state.version == version


def test_execute_many_in_sub_interpreters(make_engine, pool):
    engine = make_engine(_context(), executor=pool)
    calls = [(procs.square, {"x": 7}), (procs.write_outside_contract, {}), (procs.square, {"x": 8})]
    with pytest.raises(BatchError) as info:
        engine.execute_many(calls)
    assert info.value.failed == (1,)
    assert info.value.results[0] == {"domain.best": 49}
    assert info.value.results[2] == {"domain.best": 64}
    assert engine.state.version == 2


@process(inputs=[], outputs=["domain.best"], parallel=True)
def needs_numpy(ctx):
    import numpy

    ctx.domain.best = int(numpy.int64(1))


def test_a_process_that_needs_a_native_module_fails_clearly(make_engine, pool):
    pytest.importorskip("numpy", reason="the check needs numpy installed (it cannot load there)")
    engine = make_engine(_context(), executor=pool)
    with pytest.raises(ImportError, match="subinterpreters") as info:
        engine.execute(needs_numpy)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "executor='processes'" in notes
    assert engine.state.version == 0
