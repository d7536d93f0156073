"""``theus.parallel.ProcessPool`` on its own (spec/22 §2): a dead worker fails its call only."""

from __future__ import annotations

import multiprocessing
import operator
import os
import pickle
import signal
import time
from collections.abc import Iterator

import pytest

from theus.errors import WorkerError
from theus.parallel import ProcessPool
from theus.parallel.pool import RemoteTraceback


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPool]:
    executor = ProcessPool(1)
    yield executor
    executor.shutdown()


def test_calls_run_in_a_reused_worker(pool: ProcessPool) -> None:
    first = pool.submit(os.getpid).result()
    assert first != os.getpid()
    assert pool.submit(os.getpid).result() == first
    assert pool.submit(operator.mul, 6, 7).result() == 42


def test_an_exception_carries_the_worker_traceback(pool: ProcessPool) -> None:
    with pytest.raises(ZeroDivisionError) as info:
        pool.submit(operator.truediv, 1, 0).result()
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "ZeroDivisionError" in info.value.__cause__.text


@pytest.mark.parametrize(("call", "code", "named"), [
    ((os._exit, 3), 3, "exited with code 3"),
    ((signal.raise_signal, signal.SIGKILL), -9, "killed by SIGKILL"),
])  # fmt: skip
def test_a_dead_worker_fails_its_call_and_is_replaced(
    pool: ProcessPool, call: tuple[object, ...], code: int, named: str
) -> None:
    before = pool.submit(os.getpid).result()
    with pytest.raises(WorkerError, match=named) as info:
        pool.submit(*call).result()  # type: ignore[arg-type]
    assert info.value.exitcode == code and info.value.pid == before
    assert pool.submit(os.getpid).result() not in (before, os.getpid())
    error = pickle.loads(pickle.dumps(info.value))
    assert (error.pid, error.exitcode, str(error)) == (before, code, str(info.value))


def test_an_unpicklable_call_fails_in_the_caller(pool: ProcessPool) -> None:
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pool.submit(lambda: 1)


def test_fork_is_refused_and_sizes_are_checked() -> None:
    if "fork" in multiprocessing.get_all_start_methods():
        with pytest.raises(ValueError, match="refuses the 'fork' start method"):
            ProcessPool(1, mp_context=multiprocessing.get_context("fork"))
    with pytest.raises(ValueError, match="max_workers"):
        ProcessPool(0)


def test_shutdown_joins_every_worker_and_cancels_queued_calls() -> None:
    executor = ProcessPool(1)
    pid = executor.submit(os.getpid).result()
    running = executor.submit(time.sleep, 0.3)
    queued = executor.submit(os.getpid)
    time.sleep(0.05)
    executor.shutdown(wait=True, cancel_futures=True)
    assert running.result() is None and queued.cancelled()
    assert pid not in {p.pid for p in multiprocessing.active_children()}
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # joined: not even a zombie
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(os.getpid)
    executor.shutdown()  # idempotent


def test_the_worker_module_needs_no_compiled_module() -> None:
    """A sub-interpreter cannot load PyO3 modules, numpy or pydantic-core (REQUIREMENTS §8):
    importing the worker side must not pull any of them in."""
    import subprocess
    import sys

    code = (
        "import sys, theus.parallel.worker, theus_reference._transaction\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('theus_rust', 'pydantic', 'pydantic_core', 'numpy'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
