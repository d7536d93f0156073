"""Heavy-zone buffers and parallel workers (spec/22, "Heavy zone"): a heavy array in named
shared memory reaches a ``processes`` worker by name — mapped there, read-only, never copied —
and its segment is released once no version references it. Needs numpy."""

from __future__ import annotations

import gc
import os
import pickle

import pytest

from theus import WorkerError
from theus.heavy import segment_path, segments_of
from theus.parallel import subinterp
from theus.parallel.pool import ProcessPool
from theus_conformance.tests import _heavy_procs as procs

np = pytest.importorskip("numpy", reason="heavy arrays are numpy arrays")
MB = 2**20


@pytest.fixture(scope="module")
def one_worker():
    """A one-process pool, so that consecutive calls land on the same worker process."""
    pool = ProcessPool(1)
    yield pool
    pool.shutdown(wait=True)


def _heavy_engine(make_engine, executor, array, **extra):
    engine = make_engine({"domain": {"n": 0, "facts": None, **extra}}, executor=executor)
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": array}})
    return engine


def _maps(pid, name):
    with open(f"/proc/{pid}/maps") as maps:
        return name in maps.read()


def test_a_heavy_array_reaches_a_process_worker_without_a_copy(make_engine, one_worker):
    engine = make_engine({"domain": {"n": 0, "facts": None}}, executor=one_worker)
    small = engine.heavy.alloc(16)
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": small}})
    engine.execute(procs.heavy_facts)  # the worker imports numpy and theus.heavy here
    baseline = engine.state.domain.facts.to_dict()

    big = engine.heavy.alloc(100 * MB // 8)
    big[:] = 1.5
    name = big._theus_buffer.name
    assert len(pickle.dumps(big)) < 1000  # what is sent is the name, not the data
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": big}})
    engine.execute(procs.heavy_facts)
    facts = engine.state.domain.facts.to_dict()

    assert facts["pid"] == baseline["pid"] != os.getpid()
    assert facts["type"] == "HeavyArray" and facts["segment"] == name
    # The worker's data pointer lies inside its mapping of the segment's file.
    assert facts["mapped_file"] == segment_path(name)
    assert facts["writeable"] is False and facts["can_make_writeable"] is False
    assert facts["sum"] == 1.5 * big.size
    # Reading all 100 MB in the worker added far less private memory than one copy (100 MB).
    grown_mb = (facts["rss_anon_kb"] - baseline["rss_anon_kb"]) / 1024
    assert grown_mb < 8, f"the worker's private memory grew by {grown_mb:.1f} MB"
    # The caller's array is the one in the state, untouched (by reference, spec/03).
    assert engine.state.get("domain.heavy_frame") is big


def test_the_segment_is_released_after_the_last_reference(make_engine, one_worker):
    array = np.zeros(0)  # replaced below; keeps the name `array` bound for `del`
    engine = make_engine({"domain": {"n": 0, "facts": None, "pid": None}}, executor=one_worker)
    array = engine.heavy.alloc(4 * MB // 8)
    name = array._theus_buffer.name
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": array}})
    engine.execute(procs.heavy_facts)
    worker = engine.state.domain.facts["pid"]
    del array
    gc.collect()
    assert os.path.exists(segment_path(name))  # the current version holds it
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": None}})
    gc.collect()
    assert not os.path.exists(segment_path(name))  # no version holds it: unlinked at once
    # Nothing of the finished call keeps it mapped in the worker (no garbage collection needed).
    engine.execute(procs.worker_pid)
    assert engine.state.domain.pid == worker
    assert not _maps(worker, name), "the worker still maps the segment after its call"


def test_a_worker_cannot_write_into_a_heavy_array(make_engine, one_worker):
    array = np.zeros(0)
    engine = make_engine({"domain": {"n": 0}}, executor=one_worker)
    array = engine.heavy.alloc(8)
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": array}})
    version = engine.state.version
    with pytest.raises(ValueError, match="read-only"):
        engine.execute(procs.write_heavy_in_place)
    assert engine.state.version == version and engine.state.domain.n == 0
    assert not array.any()


def test_a_heavy_byte_buffer_reaches_a_worker_read_only(make_engine, one_worker):
    engine = make_engine({"domain": {"head": None}}, executor=one_worker)
    blob = engine.heavy.alloc_bytes(1 * MB)
    blob[:4] = b"abcd"
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_blob": blob}})
    engine.execute(procs.heavy_blob_head)
    head, readonly, pid = engine.state.domain.head.to_list()
    assert (head, readonly) == ("abcd", True) and pid != os.getpid()


@pytest.mark.skipif(
    not subinterp.available(), reason=f"no sub-interpreters: {subinterp.unavailable_reason()}"
)
def test_in_a_sub_interpreter_a_heavy_array_is_a_read_only_memoryview(make_engine):
    engine = make_engine({"domain": {"facts": None}}, executor="subinterpreters")
    array = engine.heavy.alloc((2, 2), "float64")
    array[:] = [[1.0, 2.0], [3.0, 4.0]]
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": array}})
    engine.execute(procs.heavy_view_facts)
    assert engine.state.domain.facts.to_dict() == {
        "type": "memoryview",
        "readonly": True,
        "format": "d",
        "shape": [2, 2],
        "values": [[1.0, 2.0], [3.0, 4.0]],
    }


def test_a_heavy_value_a_worker_writes_back_is_the_callers_mapping(make_engine, one_worker):
    engine = make_engine({"domain": {}}, executor=one_worker)
    array = engine.heavy.alloc(4)
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": array}})
    engine.execute(procs.pass_heavy_on)
    copy = engine.state.get("domain.heavy_copy")
    assert np.shares_memory(copy, array) and copy.flags.writeable
    array[0] = 5.0
    assert copy[0] == 5.0


def test_a_worker_killed_while_mapping_a_segment_leaks_nothing(make_engine, one_worker):
    array = np.zeros(0)
    engine = make_engine({"domain": {"n": 0}}, executor=one_worker)
    array = engine.heavy.alloc(MB // 8)
    name = array._theus_buffer.name
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": array}})
    with pytest.raises(WorkerError, match="die_holding_heavy"):
        engine.execute(procs.die_holding_heavy)
    assert engine.state.domain.n == 0
    assert os.path.exists(segment_path(name))  # the caller still holds it; the worker owned none
    engine.execute(procs.worker_pid)  # the replacement worker
    del array
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": None}})
    gc.collect()
    assert not os.path.exists(segment_path(name))
    assert [n for n in segments_of() if n == name] == []
