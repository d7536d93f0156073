"""Parallel processes on a real local Dask cluster (spec/22, "Executors"): a
``distributed.LocalCluster`` of 2 worker processes on 127.0.0.1, started by this module, whose
``Client.get_executor()`` is the engine's executor. Results must be identical to inline runs on
both backends. Skipped (saying so) only when dask[distributed] is not installed."""

from __future__ import annotations

import operator
import os

import pytest

from theus import BatchError, ContractViolationError
from theus.heavy import segment_path
from theus_conformance.dask_cluster import dask_executor  # noqa: F401  (the fixture)
from theus_conformance.tests import _heavy_procs as procs


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


def _plain(engine):
    return engine.state.domain.to_dict()


def test_the_cluster_runs_calls_in_other_processes(dask_executor):  # noqa: F811
    assert dask_executor.submit(operator.add, 2, 3).result() == 5
    pids = {f.result() for f in [dask_executor.submit(os.getpid) for _ in range(8)]}
    assert os.getpid() not in pids


def test_results_are_identical_to_inline(make_engine, dask_executor):  # noqa: F811
    inline = make_engine(_context())
    remote = make_engine(_context(), executor=dask_executor)
    for start in (1, 5, 11):
        expected = inline.execute(procs.score_inline, start=start)
        got = remote.execute(procs.score_parallel, start=start)
        assert got == expected
    assert _plain(remote) == _plain(inline)
    assert remote.state.version == inline.state.version
    assert "scratch" not in _plain(remote)  # the delete came back from the worker


def test_a_contract_violation_in_a_dask_worker(make_engine, dask_executor):  # noqa: F811
    engine = make_engine(_context(), executor=dask_executor)
    before = _plain(engine), engine.state.version
    with pytest.raises(ContractViolationError, match="domain.count"):
        engine.execute(procs.write_outside_contract)
    assert (_plain(engine), engine.state.version) == before


def test_execute_many_on_the_cluster(make_engine, dask_executor):  # noqa: F811
    engine = make_engine(_context(), executor=dask_executor)
    calls = [(procs.square, {"x": x}) for x in range(6)]
    engine.execute_many(calls)
    assert engine.state.version == 6
    assert engine.state.domain.best in {x * x for x in range(6)}
    # One failing item: the others still commit, results come back in order.
    calls = [(procs.square, {"x": 7}), (procs.write_outside_contract, {}), (procs.square, {"x": 8})]
    with pytest.raises(BatchError) as info:
        engine.execute_many(calls)
    assert info.value.failed == (1,)
    assert isinstance(info.value.results[1], ContractViolationError)
    assert engine.state.version == 8


def test_a_heavy_array_reaches_a_dask_worker_by_name(make_engine, dask_executor):  # noqa: F811
    np = pytest.importorskip("numpy", reason="heavy arrays are numpy arrays")
    engine = make_engine({"domain": {"facts": None}}, executor=dask_executor)
    array = engine.heavy.alloc(1000)
    array[:] = np.arange(1000)
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": array}})
    engine.execute(procs.heavy_facts)
    facts = engine.state.domain.facts.to_dict()
    assert facts["pid"] != os.getpid()
    assert facts["segment"] == array._theus_buffer.name
    assert facts["mapped_file"] == segment_path(facts["segment"])
    assert facts["writeable"] is False and facts["sum"] == float(array.sum())
