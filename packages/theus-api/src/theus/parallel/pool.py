"""``ProcessPool``: the ``"processes"`` executor (spec/22).

A small pool of our own rather than ``ProcessPoolExecutor``, whose whole pool breaks when one
worker dies: here a worker that dies (SIGKILL, a segfault, ``os._exit``) fails exactly the call
it was running with :class:`theus.errors.WorkerError` and is replaced; other calls go on.

Each worker is a process started with ``forkserver`` (``spawn`` where there is none; never
``fork``: the parent may run native threads), connected by one pipe, and served by one
dispatcher thread in the parent that hands it the next queued call, waits for its answer or its
death, and restarts it after a death. Workers start on first use, are reused across calls and
are stopped by :meth:`ProcessPool.shutdown` (the owning engine's ``close()``) or at interpreter
exit, and always joined: no zombies.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import traceback
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future
from multiprocessing.connection import Connection, wait
from typing import Any

from ..errors import WorkerError

__all__ = ["ProcessPool", "start_method"]

_STOP = b"stop"
_JOIN_TIMEOUT = 5.0


def start_method() -> str:
    """``forkserver`` where the platform has it, else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def _worker_main(conn: Connection) -> None:
    """A worker process: run pickled ``(fn, args, kwargs)`` calls until told to stop."""
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent went away
        if data == _STOP:
            return
        fn: Any = None
        args: Any = ()
        kwargs: Any = {}
        try:
            fn, args, kwargs = pickle.loads(data)
            reply: tuple[Any, ...] = ("ok", fn(*args, **kwargs))
        except BaseException as exc:
            reply = ("err", exc, traceback.format_exc())
        try:
            payload = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            text = reply[2] if reply[0] == "err" else ""
            payload = pickle.dumps(
                ("err", TypeError(f"the worker's answer cannot be pickled: {exc!r}"), text)
            )
        try:
            conn.send_bytes(payload)
        except (BrokenPipeError, OSError):
            return
        # Drop the call before waiting for the next one: its arguments may map heavy buffers.
        del fn, args, kwargs, reply, payload, data


class _Worker:
    """One worker process and its pipe (started on first use)."""

    def __init__(self, context: Any, name: str) -> None:
        self.context = context
        self.name = name
        self.process: Any = None
        self.conn: Connection | None = None

    def ensure(self) -> None:
        if self.process is not None and self.process.is_alive():
            return
        self.reap()
        parent, child = self.context.Pipe(duplex=True)
        process = self.context.Process(
            target=_worker_main, args=(child,), name=self.name, daemon=True
        )
        process.start()
        child.close()
        self.process, self.conn = process, parent

    def reap(self) -> tuple[int | None, int | None]:
        """Close the pipe and join the process (killing it if it does not stop); its pid and
        exit code."""
        process, conn = self.process, self.conn
        self.process = self.conn = None
        if conn is not None:
            conn.close()
        if process is None:
            return None, None
        process.join(_JOIN_TIMEOUT)
        if process.is_alive():
            process.kill()
            process.join()
        pid, code = process.pid, process.exitcode
        process.close()
        return pid, code

    def stop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.send_bytes(_STOP)
        self.reap()


def _describe(pid: int | None, code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker process {pid} was killed by {name} (exit code {code})"
    return f"worker process {pid} exited with code {code}"


def _serve(jobs: queue.SimpleQueue[Any], worker: _Worker) -> None:
    """The dispatcher thread of one worker: next call in, answer (or death) out."""
    try:
        while True:
            job = jobs.get()
            if job is None:
                return
            future, data = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                worker.ensure()
                conn = worker.conn
                assert conn is not None and worker.process is not None
                conn.send_bytes(data)
                ready = wait([conn, worker.process.sentinel])
                if conn in ready:
                    try:
                        reply = pickle.loads(conn.recv_bytes())
                    except EOFError:
                        reply = None
                else:
                    reply = None
            except (OSError, EOFError):
                reply = None
            except BaseException as exc:  # e.g. the worker could not start
                future.set_exception(exc)
                continue
            if reply is None:
                pid, code = worker.reap()
                future.set_exception(
                    WorkerError(
                        f"{_describe(pid, code)} while running this call; the call failed "
                        "and the pool started a new worker",
                        pid,
                        code,
                    )
                )
            elif reply[0] == "ok":
                future.set_result(reply[1])
            else:
                error: BaseException = reply[1]
                error.__cause__ = RemoteTraceback(reply[2])
                future.set_exception(error)
    finally:
        worker.stop()


class RemoteTraceback(Exception):
    """The traceback text of an exception raised in a worker (set as its ``__cause__``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


def _shutdown(jobs: queue.SimpleQueue[Any], threads: list[threading.Thread], wait_: bool) -> None:
    for _ in threads:
        jobs.put(None)
    if wait_:
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join()


class ProcessPool(Executor):
    """A ``concurrent.futures.Executor`` of ``max_workers`` worker processes (default
    ``os.cpu_count()``); ``submit(fn, *args, **kwargs)`` pickles the call to a worker."""

    def __init__(self, max_workers: int | None = None, *, mp_context: Any = None) -> None:
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(
                f"ProcessPool(max_workers=...) must be an int >= 1, not {max_workers!r}"
            )
        if mp_context is None:
            mp_context = multiprocessing.get_context(start_method())
        elif mp_context.get_start_method() == "fork":
            raise ValueError(
                "ProcessPool refuses the 'fork' start method (unsafe once native threads run); "
                "use 'forkserver' or 'spawn'"
            )
        self.max_workers = max_workers
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._threads: list[threading.Thread] = []
        for i in range(max_workers):
            worker = _Worker(mp_context, f"theus-worker-{i}")
            thread = threading.Thread(
                target=_serve,
                args=(self._jobs, worker),
                name=f"theus-pool-{i}",
                daemon=True,
            )
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()
        self._finalizer = weakref.finalize(self, _shutdown, self._jobs, self._threads, True)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue ``fn(*args, **kwargs)`` for the next idle worker (all three are pickled now:
        an unpicklable call fails here, in the caller)."""
        data = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a ProcessPool after shutdown()")
            self._jobs.put((future, data))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers once the queued calls ran (``cancel_futures``: cancel those not
        started); ``wait``: return only when every worker process has been joined."""
        with self._lock:
            first = not self._closed
            self._closed = True
        if first and cancel_futures:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
        if wait:
            self._finalizer()  # stop every worker and join its thread (once)
        elif first:
            _shutdown(self._jobs, self._threads, False)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<theus ProcessPool {self.max_workers} workers, {state}>"
