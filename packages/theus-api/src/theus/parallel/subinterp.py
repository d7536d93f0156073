"""A ``concurrent.futures.Executor`` over a pool of isolated sub-interpreters (spec/22).

Each of the pool's threads owns one *isolated* sub-interpreter (PEP 684: its own GIL, its own
modules), created once and reused for every call the thread runs, so pure-Python callables run
on several cores at once. CPython ≥ 3.13 ships the private ``_interpreters`` and
``_interpqueues`` modules this executor is built on; :func:`available` says whether they are
present and :func:`unavailable_reason` why not.

A call ``submit(fn, *args, **kwargs)`` pickles ``(fn, args, kwargs)`` to bytes in the caller,
unpickles and runs them in a sub-interpreter, and pickles the result (or the exception) back.
So ``fn`` must be picklable *by reference* (a module-level function or a class importable by
its module and qualified name) and everything it touches must import in an isolated
sub-interpreter: pure-Python modules do, most extension modules do not (no PyO3 module such as
``theus_rust``, nor numpy or pydantic-core, can load there). A callable that cannot be loaded
there fails with :class:`SubinterpreterImportError` naming the module; an exception raised by
the callable comes back as that exception, with the sub-interpreter's traceback text attached
as a note (and kept in :attr:`SubinterpreterError.traceback_text` when the exception itself
cannot be pickled back).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import itertools
import os
import pickle
import queue
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from ..errors import TheusError

__all__ = [
    "SubinterpreterError",
    "SubinterpreterExecutor",
    "SubinterpreterImportError",
    "available",
    "unavailable_reason",
]

T = TypeVar("T")

NOTE_PREFIX = "Traceback in the sub-interpreter:\n"

# Runs once in every new sub-interpreter: the caller's import path, then the runner the worker
# thread calls for each task. The runner never raises: every outcome goes into the queue as
# bytes, (kind, payload...) pickled with the highest protocol.
_BOOT = """\
import sys
sys.path[:] = list(_theus_sys_path)
del _theus_sys_path

def _theus_run(qid, payload):
    import pickle, traceback, _interpqueues
    def put(outcome):
        _interpqueues.put(qid, pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL), 0, 1)
    try:
        fn, args, kwargs = pickle.loads(payload)
    except BaseException as exc:
        put(("load", type(exc).__name__, str(exc), getattr(exc, "name", None),
             traceback.format_exc()))
        return
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        text = traceback.format_exc()
        try:
            data = pickle.dumps(exc, pickle.HIGHEST_PROTOCOL)
        except BaseException:
            data = None
        put(("raise", data, type(exc).__module__, type(exc).__qualname__, str(exc), text))
        return
    try:
        data = pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:
        put(("result", type(exc).__name__, str(exc), traceback.format_exc()))
        return
    put(("ok", data))
"""

_HINT = (
    "isolated sub-interpreters run pure Python only: extension modules that do not support "
    "them (PyO3 modules such as theus_rust, numpy, pydantic-core) cannot be imported there; "
    "run this callable with executor='processes' instead"
)


class SubinterpreterError(TheusError, RuntimeError):
    """A call could not be run in, or its outcome not brought back from, a sub-interpreter.

    ``traceback_text`` holds the traceback formatted inside the sub-interpreter (or ``""``).
    """

    def __init__(self, message: str, traceback_text: str = "") -> None:
        super().__init__(message)
        self.traceback_text = traceback_text

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.traceback_text))


class SubinterpreterImportError(SubinterpreterError, ImportError):
    """The callable or one of its arguments could not be unpickled in the sub-interpreter,
    typically because a module it needs cannot be imported there."""


def _probe() -> tuple[Any, Any, str | None]:
    if sys.version_info < (3, 13):
        return (
            None,
            None,
            (f"sub-interpreters need Python >= 3.13 (this is {sys.version.split()[0]})"),
        )
    try:
        interp = importlib.import_module("_interpreters")
        queues = importlib.import_module("_interpqueues")
    except ImportError as exc:
        return None, None, f"this Python has no sub-interpreter support ({exc})"
    return interp, queues, None


_interpreters, _interpqueues, _REASON = _probe()


def available() -> bool:
    """Whether :class:`SubinterpreterExecutor` can run here (CPython ≥ 3.13 with
    ``_interpreters`` and ``_interpqueues``)."""
    return _REASON is None


def unavailable_reason() -> str | None:
    """Why :func:`available` is false, or ``None`` when it is true."""
    return _REASON


def _describe(fn: Any) -> str:
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}.{name}" if module else str(name)


def _raise_outcome(outcome: tuple[Any, ...], what: str) -> Any:
    """Turn a runner outcome into the result, or raise what it describes."""
    kind = outcome[0]
    if kind == "ok":
        result = pickle.loads(outcome[1])
        # A parallel process's own exception travels inside its Outcome (theus.parallel.task):
        # give an import failure there the same hint as one raised by a plain callable.
        error = getattr(result, "error", None)
        if isinstance(error, ImportError) and "subinterpreter" in str(error):
            from .task import Outcome

            if isinstance(result, Outcome):
                error.add_note(_HINT)
        return result
    if kind == "raise":
        _, data, module, qualname, message, text = outcome
        exc: BaseException | None = None
        if data is not None:
            try:
                exc = pickle.loads(data)
            except Exception:
                exc = None
        if not isinstance(exc, BaseException):
            raise SubinterpreterError(
                f"{what} raised {module}.{qualname}: {message} (the exception could not be "
                "pickled back to the caller; its traceback is in .traceback_text)",
                text,
            )
        exc.add_note(NOTE_PREFIX + text.rstrip())
        if isinstance(exc, ImportError) and "subinterpreter" in str(exc):
            exc.add_note(_HINT)
        raise exc
    if kind == "load":
        _, type_name, message, module, text = outcome
        where = f" (module {module!r})" if module else ""
        raise SubinterpreterImportError(
            f"cannot load {what} in an isolated sub-interpreter{where}: {type_name}: "
            f"{message}; {_HINT}",
            text,
        )
    if kind == "result":
        _, type_name, message, text = outcome
        raise SubinterpreterError(
            f"the result of {what} cannot be pickled back from the sub-interpreter: "
            f"{type_name}: {message}",
            text,
        )
    raise SubinterpreterError(f"unknown outcome {kind!r} from the sub-interpreter")


_STOP = object()


class _Worker:
    """One thread and the isolated sub-interpreter it owns."""

    def __init__(self, work: queue.SimpleQueue[Any], name: str) -> None:
        self.work = work
        self.ready = threading.Event()
        self.boot_error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        interp, queues = _interpreters, _interpqueues
        try:
            iid = interp.create("isolated")
        except BaseException as exc:
            self.boot_error = exc
            self.ready.set()
            return
        qid = None
        try:
            qid = queues.create(0, 0, 1)
            interp.set___main___attrs(iid, {"_theus_sys_path": tuple(sys.path)})
            failure = interp.exec(iid, _BOOT)
            if failure is not None:
                raise SubinterpreterError(
                    "a sub-interpreter failed to start", getattr(failure, "errdisplay", "")
                )
        except BaseException as exc:
            self.boot_error = exc
            self.ready.set()
            self._destroy(iid, qid)
            return
        self.ready.set()
        try:
            self._serve(iid, qid)
        finally:
            self._destroy(iid, qid)

    def _serve(self, iid: int, qid: int) -> None:
        interp, queues = _interpreters, _interpqueues
        while True:
            item = self.work.get()
            if item is _STOP:
                return
            future, payload, what = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                interp.set___main___attrs(iid, {"_theus_qid": qid, "_theus_task": payload})
                failure = interp.exec(iid, "_theus_run(_theus_qid, _theus_task)")
                if failure is not None or queues.get_count(qid) == 0:
                    display = getattr(failure, "errdisplay", "") if failure else ""
                    raise SubinterpreterError(
                        f"the sub-interpreter failed while running {what}", display
                    )
                data = queues.get(qid)[0]
                future.set_result(_raise_outcome(pickle.loads(data), what))
            except BaseException as exc:
                future.set_exception(exc)

    @staticmethod
    def _destroy(iid: int, qid: int | None) -> None:
        if qid is not None:
            with contextlib.suppress(Exception):  # already gone
                _interpqueues.destroy(qid)
        with contextlib.suppress(Exception):  # already gone
            _interpreters.destroy(iid)


_live: weakref.WeakSet[SubinterpreterExecutor] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    for executor in list(_live):
        executor.shutdown(wait=True, cancel_futures=True)


class SubinterpreterExecutor(Executor):
    """A reused pool of ``max_workers`` threads (default ``os.cpu_count()``), each running
    calls in its own isolated sub-interpreter.

    The interpreters are created when the executor is (10–20 ms each) and destroyed by
    :meth:`shutdown` (also at interpreter exit). Raises :class:`SubinterpreterError` when
    sub-interpreters are not :func:`available` here.

    ``preload`` names modules imported in the *main* interpreter before the pool starts
    (missing ones are ignored). CPython 3.13.0 corrupts its heap (``munmap_chunk(): invalid
    pointer`` at exit) when a single-phase-init extension module first fails to load in an
    isolated sub-interpreter and is then loaded by the main interpreter; PyYAML's ``_yaml`` is
    one Theus's own code can reach (PyYAML falls back to pure Python in the sub-interpreter),
    so it is preloaded by default.
    """

    _counter = itertools.count(1)

    def __init__(
        self, max_workers: int | None = None, *, preload: tuple[str, ...] = ("yaml",)
    ) -> None:
        if _REASON is not None:
            raise SubinterpreterError(f"SubinterpreterExecutor is not available: {_REASON}")
        for name in preload:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        if not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1:
            raise ValueError(f"max_workers must be a positive int, got {max_workers!r}")
        self._max_workers = max_workers
        self._lock = threading.Lock()
        self._closed = False
        self._work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        number = next(self._counter)
        self._workers = [
            _Worker(self._work, f"theus-subinterp-{number}-{i}") for i in range(max_workers)
        ]
        for worker in self._workers:
            worker.ready.wait()
        errors = [w.boot_error for w in self._workers if w.boot_error is not None]
        if errors:
            self.shutdown(wait=True)
            raise SubinterpreterError(
                f"could not start the sub-interpreter pool: {errors[0]!r}"
            ) from errors[0]
        _live.add(self)

    @property
    def max_workers(self) -> int:
        """The number of sub-interpreters (and threads) in the pool."""
        return self._max_workers

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in one of the pool's sub-interpreters.

        ``fn``, ``args`` and ``kwargs`` are pickled here (a ``pickle.PicklingError`` or
        ``TypeError`` for what cannot be pickled is raised at once); the future holds the
        unpickled result or the exception the call raised.
        """
        what = _describe(fn)
        payload = pickle.dumps((fn, args, kwargs), pickle.HIGHEST_PROTOCOL)
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a SubinterpreterExecutor after shutdown")
            self._work.put((future, payload, what))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting calls and destroy the sub-interpreters once the queued calls ran
        (``cancel_futures=True`` cancels the calls not started yet). With ``wait`` the call
        returns when every interpreter is destroyed."""
        with self._lock:
            if self._closed:
                already = True
            else:
                already = False
                self._closed = True
            if not already and cancel_futures:
                pending = []
                while True:
                    try:
                        pending.append(self._work.get_nowait())
                    except queue.Empty:
                        break
                for item in pending:
                    if item is not _STOP:
                        item[0].cancel()
            if not already:
                for _ in self._workers:
                    self._work.put(_STOP)
        if wait:
            for worker in self._workers:
                if worker.thread is not threading.current_thread():
                    worker.thread.join()
        _live.discard(self)
