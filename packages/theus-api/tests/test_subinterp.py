"""SubinterpreterExecutor (theus.parallel.subinterp, spec/22): a pool of isolated
sub-interpreters. The pool tests need CPython >= 3.13; on older Pythons only the
"not available" behaviour is checked."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import _subinterp_funcs as funcs
import pytest

from theus.parallel import subinterp
from theus.parallel.subinterp import (
    SubinterpreterError,
    SubinterpreterExecutor,
    SubinterpreterImportError,
)

HERE = Path(__file__).parent
needs_subinterpreters = pytest.mark.skipif(
    not subinterp.available(), reason=f"no sub-interpreters: {subinterp.unavailable_reason()}"
)


def test_available_matches_the_python() -> None:
    if sys.version_info >= (3, 13):
        assert subinterp.available() is True
        assert subinterp.unavailable_reason() is None
    else:
        assert subinterp.available() is False
        reason = subinterp.unavailable_reason()
        assert reason is not None and "3.13" in reason
        with pytest.raises(SubinterpreterError, match="not available.*3.13"):
            SubinterpreterExecutor(1)


@pytest.fixture(scope="module")
def pool() -> Iterator[SubinterpreterExecutor]:
    if not subinterp.available():
        pytest.skip(f"no sub-interpreters: {subinterp.unavailable_reason()}")
    executor = SubinterpreterExecutor(2)
    yield executor
    executor.shutdown()


@needs_subinterpreters
def test_runs_in_another_interpreter_and_reuses_it(pool: SubinterpreterExecutor) -> None:
    import _interpreters  # type: ignore[import-not-found]

    main = int(_interpreters.get_current()[0])
    ids = {pool.submit(funcs.interpreter_id).result() for _ in range(8)}
    assert main not in ids
    assert 1 <= len(ids) <= 2  # two workers, each with one interpreter reused across calls
    assert pool.max_workers == 2


@needs_subinterpreters
def test_args_kwargs_and_result(pool: SubinterpreterExecutor) -> None:
    result = pool.submit(funcs.kwargs_echo, 1, "two", (3.0, None), key=[b"x"]).result()
    assert result == ((1, "two", (3.0, None)), {"key": [b"x"]})
    assert pool.submit(funcs.burn, 10).result() == funcs.burn(10)


@needs_subinterpreters
def test_an_exception_comes_back_as_itself_with_the_traceback(
    pool: SubinterpreterExecutor,
) -> None:
    with pytest.raises(funcs.Boom, match="it broke") as info:
        pool.submit(funcs.fail, "it broke").result()
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert notes.startswith(subinterp.NOTE_PREFIX)
    assert "_subinterp_funcs.py" in notes and "in fail" in notes


@needs_subinterpreters
def test_an_unpicklable_exception_keeps_its_text(pool: SubinterpreterExecutor) -> None:
    with pytest.raises(SubinterpreterError, match="Unpicklable: no way back") as info:
        pool.submit(funcs.fail_unpicklable).result()
    assert "in fail_unpicklable" in info.value.traceback_text


@needs_subinterpreters
def test_an_unpicklable_result_is_a_clear_error(pool: SubinterpreterExecutor) -> None:
    with pytest.raises(SubinterpreterError, match="result of .*unpicklable_result"):
        pool.submit(funcs.unpicklable_result).result()


@needs_subinterpreters
def test_unpicklable_arguments_fail_at_submit(pool: SubinterpreterExecutor) -> None:
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pool.submit(funcs.kwargs_echo, lambda: None)


@needs_subinterpreters
def test_a_callable_that_cannot_load_there_names_the_module(
    pool: SubinterpreterExecutor,
) -> None:
    # A function of __main__ of *this* process does not exist in the sub-interpreter's
    # __main__; an extension module that refuses sub-interpreters fails on import.
    with pytest.raises(SubinterpreterImportError, match="cannot load .* sub-interpreter") as err:
        pool.submit(_NotImportable()).result()
    assert "theus_no_such_module_for_tests" in str(err.value)
    assert "executor='processes'" in str(err.value)
    report = pool.submit(funcs.import_and_report, "theus", "theus_reference", "pydantic").result()
    assert report["theus"] == "ok" and report["theus_reference"] == "ok"
    assert "does not support loading in subinterpreters" in report["pydantic"]
    with pytest.raises(ImportError) as info:
        pool.submit(funcs.uses_numpy).result()
    if "subinterpreters" in str(info.value):  # numpy installed but refusing to load
        assert any("pure Python only" in n for n in info.value.__notes__)


class _NotImportable:
    """Pickles as a call of a module the sub-interpreter cannot import."""

    def __reduce__(self) -> tuple[object, ...]:
        return (importlib.import_module, ("theus_no_such_module_for_tests",))

    def __call__(self) -> None:  # pragma: no cover - never runs
        raise AssertionError


@needs_subinterpreters
def test_theus_imports_without_native_modules(pool: SubinterpreterExecutor) -> None:
    names = ("theus", "theus_reference", "theus.parallel.worker", "theus.heavy")
    loaded, modules = pool.submit(funcs.import_then_modules, *names).result()
    assert loaded == dict.fromkeys(names, "ok")
    assert "theus" in modules and "theus_reference" in modules
    assert not [m for m in modules if m.split(".")[0] in ("pydantic", "theus_rust", "numpy")]


@needs_subinterpreters
def test_each_sub_interpreter_has_its_own_gil(pool: SubinterpreterExecutor) -> None:
    # One call holds its GIL for a long C call (sum over a range never releases it) while the
    # other ticks in a Python loop. Under one shared GIL the ticker would stop for the whole
    # C call; with a GIL per interpreter it keeps ticking (gaps only from the OS scheduler,
    # which a loaded machine stretches to a few ms — far below the C call's length).
    n = 1 << 16
    while True:  # size the C call to >= 0.2 s on this machine
        begin, end = pool.submit(funcs.hold_gil, n).result()
        if end - begin >= 0.2:
            break
        n *= 2
    ticks = pool.submit(funcs.ticker, 1.5 * (end - begin) + 0.3)
    time.sleep(0.1)  # the ticker is running
    begin, end = pool.submit(funcs.hold_gil, n).result()
    stamps = ticks.result()
    assert stamps[0] < begin and end < stamps[-1], "the ticker did not span the C call"
    inside = [t for t in stamps if begin <= t <= end]
    gaps = [b - a for a, b in zip([begin, *inside], [*inside, end], strict=True)]
    assert max(gaps) < 0.5 * (end - begin), (
        f"the ticker stalled {max(gaps):.3f}s during a {end - begin:.3f}s GIL-holding call"
    )


@needs_subinterpreters
def test_shutdown_destroys_the_interpreters_and_refuses_work() -> None:
    import _interpreters

    before = set(_interpreters.list_all())
    executor = SubinterpreterExecutor(2)
    assert len(set(_interpreters.list_all()) - before) == 2
    futures = [executor.submit(funcs.burn, 100) for _ in range(4)]
    executor.shutdown(wait=True)
    assert [f.result() for f in futures] == [funcs.burn(100)] * 4
    assert set(_interpreters.list_all()) == before
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(funcs.burn, 1)
    executor.shutdown()  # idempotent


@needs_subinterpreters
def test_exit_with_a_live_pool_is_clean() -> None:
    # No explicit shutdown: the atexit hook destroys the interpreters; yaml loaded in the main
    # interpreter after the pool imported theus there must not crash the exit (CPython 3.13.0).
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, HERE)
        import _subinterp_funcs as funcs
        from theus.parallel.subinterp import SubinterpreterExecutor
        pool = SubinterpreterExecutor(2)
        print(pool.submit(funcs.import_and_report, "yaml", "theus.audit_recipe").result())
        import yaml
        print(pool.submit(funcs.burn, 1000).result())
        """
    ).replace("HERE", repr(str(HERE)))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert str(funcs.burn(1000)) in done.stdout
