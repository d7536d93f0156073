"""Heavy-zone buffers in named shared memory (theus.heavy, spec/22 "Heavy zone")."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
import weakref
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import _heavy_funcs as funcs
import pytest

from theus import TheusEngine
from theus import heavy as heavy_module
from theus.heavy import HeavyBuffer, HeavyZone, HeavyZoneError, segment_path
from theus.parallel import subinterp

np = pytest.importorskip("numpy", reason="heavy arrays need numpy")
HERE = Path(__file__).parent
MB = 2**20


def ours() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob(f"theus-{os.getpid()}-*")}


@pytest.fixture(scope="module")
def worker() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@pytest.fixture
def engine() -> Iterator[TheusEngine]:
    eng = TheusEngine({"domain": {"n": 0}}, backend="reference")
    yield eng
    eng.close()


def test_alloc_is_a_writable_zeroed_array_in_a_named_segment(engine: TheusEngine) -> None:
    array = engine.heavy.alloc((3, 4), "int32")
    assert isinstance(array, np.ndarray) and array.shape == (3, 4)
    assert array.dtype == np.int32 and array.flags.writeable
    assert not array.any()
    name = array._theus_buffer.name
    assert name.startswith(f"theus-{os.getpid()}-") and os.path.exists(segment_path(name))
    assert os.path.getsize(segment_path(name)) == 48
    array[1, 2] = 9
    assert int(array.sum()) == 9
    assert engine.heavy.alloc(5).dtype == np.float64  # default dtype


def test_alloc_bytes_is_a_writable_buffer(engine: TheusEngine) -> None:
    buf = engine.heavy.alloc_bytes(16)
    assert isinstance(buf, HeavyBuffer) and len(buf) == 16
    view = memoryview(buf)
    assert not view.readonly and bytes(view) == b"\0" * 16
    buf[0:3] = b"abc"
    assert bytes(buf[:3]) == b"abc"
    assert "owner" in repr(buf)


def test_pickles_by_name_not_by_value(engine: TheusEngine) -> None:
    array = engine.heavy.alloc(10 * MB // 8)
    buf = engine.heavy.alloc_bytes(10 * MB)
    assert len(pickle.dumps(array)) < 1000
    assert len(pickle.dumps(buf)) < 1000
    # Unpickled in the owning process: the very same memory, still writable.
    back = pickle.loads(pickle.dumps(array))
    assert np.shares_memory(back, array) and back.flags.writeable
    back[0] = 4.0
    assert array[0] == 4.0
    assert pickle.loads(pickle.dumps(buf)) is buf


def test_a_view_pickles_by_name_with_its_offset_and_strides(engine: TheusEngine) -> None:
    array = engine.heavy.alloc((6, 8), "int16")
    array[:] = np.arange(48, dtype=np.int16).reshape(6, 8)
    view = array[1::2, ::-3]
    back = pickle.loads(pickle.dumps(view))
    assert np.shares_memory(back, array)
    assert back.tolist() == view.tolist()


def test_arithmetic_results_are_ordinary_arrays(engine: TheusEngine) -> None:
    array = engine.heavy.alloc(1000)
    result = array + 1
    assert result._theus_buffer is None  # does not hold the segment alive
    payload = pickle.dumps(result)
    assert len(payload) > 8000  # an ordinary, copied array
    assert pickle.loads(payload).tolist() == [1.0] * 1000


def test_a_worker_process_maps_the_segment_read_only(
    engine: TheusEngine, worker: ProcessPoolExecutor
) -> None:
    array = engine.heavy.alloc(100 * MB // 8)
    array[:] = 2.0
    name = array._theus_buffer.name
    report = worker.submit(funcs.inspect_array, pickle.dumps(array)).result()
    assert report["type"] == "HeavyArray" and report["segment"] == name
    assert report["mapped_file"] == segment_path(name)  # data lies in a mapping of that file
    assert report["writeable"] is False and report["writeable_error"]
    assert report["sum"] == 2.0 * array.size and report["first"] == [2.0] * 4
    # Reading all 100 MB there grew its private memory by (much) less than a copy would.
    assert report["rss_anon_growth_kb"] < 4 * 1024, report
    # Sent as an ordinary argument it arrives the same way.
    buf = engine.heavy.alloc_bytes(64)
    buf[:4] = b"heav"
    got = worker.submit(funcs.inspect_buffer, buf).result()
    assert got == {
        "type": "HeavyBuffer",
        "name": buf.name,
        "readonly": True,
        "head": b"heav",
        "mapped_file": segment_path(buf.name),
    }


def test_what_a_worker_sends_back_is_the_owners_buffer(
    engine: TheusEngine, worker: ProcessPoolExecutor
) -> None:
    buf = engine.heavy.alloc_bytes(8)
    assert worker.submit(funcs.identity, buf).result() is buf
    array = engine.heavy.alloc(4)
    back = worker.submit(funcs.identity, array).result()
    assert np.shares_memory(back, array) and back.flags.writeable


@pytest.mark.skipif(
    not subinterp.available(), reason=f"no sub-interpreters: {subinterp.unavailable_reason()}"
)
def test_in_a_sub_interpreter_an_array_is_a_read_only_memoryview(engine: TheusEngine) -> None:
    array = engine.heavy.alloc((2, 3), "int64")
    array[:] = [[1, 2, 3], [4, 5, 6]]
    pool = subinterp.SubinterpreterExecutor(1)
    try:
        got = pool.submit(funcs.describe_view, array).result()
        flat = pool.submit(funcs.describe_view, array[:, :2]).result()
    finally:
        pool.shutdown()
    assert got == {
        "type": "memoryview",
        "readonly": True,
        "format": "q",
        "shape": (2, 3),
        "values": [[1, 2, 3], [4, 5, 6]],
    }
    # Not C-contiguous: the flat bytes it spans.
    assert flat["type"] == "memoryview" and flat["readonly"] and flat["format"] == "B"
    assert len(flat["values"]) == 5 * 8  # from [0, 0] to the end of [1, 1]


def test_released_when_no_version_holds_it(engine: TheusEngine) -> None:
    array = engine.heavy.alloc(1000)
    name = array._theus_buffer.name
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": array}})
    snapshot = engine.state
    assert snapshot.get("domain.heavy_frame") is array  # by reference (spec/03)
    del array
    gc.collect()
    assert os.path.exists(segment_path(name))  # the state still holds it
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": None}})
    assert os.path.exists(segment_path(name))  # the old snapshot still holds it
    del snapshot
    gc.collect()
    assert not os.path.exists(segment_path(name))


def test_stale_segments_of_a_killed_owner_are_removed_at_the_next_alloc() -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import _heavy_funcs
        _heavy_funcs.alloc_and_die(4096)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    name = done.stdout.strip()
    assert os.path.exists(segment_path(name))  # the killed process could not unlink it
    buf = HeavyZone().alloc_bytes(1)
    assert not os.path.exists(segment_path(name))
    del buf


def test_a_segment_that_is_gone_is_a_clear_error(worker: ProcessPoolExecutor) -> None:
    buf = HeavyZone().alloc_bytes(8)
    payload = pickle.dumps(buf)
    name = buf.name
    del buf
    gc.collect()
    with pytest.raises(HeavyZoneError, match=f"{name}.* is gone"):
        worker.submit(pickle.loads, payload).result()


def test_without_numpy_alloc_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heavy_module, "_numpy", False)
    monkeypatch.setattr(heavy_module, "_array_class", None)
    with pytest.raises(HeavyZoneError, match="needs numpy.*alloc_bytes"):
        HeavyZone().alloc(4)
    buf = HeavyZone().alloc_bytes(4)
    assert len(buf) == 4


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda z: z.alloc_bytes(0), ValueError, "n >= 1"),
        (lambda z: z.alloc_bytes(-1), ValueError, ">= 0"),
        (lambda z: z.alloc_bytes(1.5), TypeError, "expected an int"),
        (lambda z: z.alloc((2, -1)), ValueError, ">= 0"),
        (lambda z: z.alloc(3, object), TypeError, "Python objects"),
        (lambda z: z.alloc(3, "no-such-dtype"), TypeError, "not a numpy dtype"),
    ],
)
def test_bad_input(call: Any, error: type[Exception], match: str) -> None:
    before = ours()
    with pytest.raises(error, match=match):
        call(HeavyZone())
    assert ours() == before


def test_a_zero_size_array_works(engine: TheusEngine) -> None:
    array = engine.heavy.alloc((0, 3))
    assert array.shape == (0, 3)
    assert pickle.loads(pickle.dumps(array)).shape == (0, 3)


def test_the_zone_is_bound_to_its_engine(engine: TheusEngine) -> None:
    assert isinstance(engine.heavy, HeavyZone)
    assert repr(engine) in repr(engine.heavy)


def test_a_forked_child_does_not_unlink_its_parents_segment(engine: TheusEngine) -> None:
    buf = engine.heavy.alloc_bytes(8)
    path = segment_path(buf.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: drop its copy of the buffer, run the exit finalizers
        try:
            del buf
            gc.collect()
            weakref.finalize._exitfunc()  # what a normal exit of the child would run
            code = 0 if os.path.exists(path) else 1
        finally:
            os._exit(locals().get("code", 2))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.path.exists(segment_path(buf.name))
