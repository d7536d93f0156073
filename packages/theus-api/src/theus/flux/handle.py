"""``engine.start_workflow``: a workflow run on a background thread (spec/18 §6)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from .events import FluxEvent, WorkflowRun
from .machine import WorkflowIterator
from .position import Position

__all__ = ["RunHandle"]

_END = object()


class RunHandle:
    """A run driven by its own thread. ``events()`` yields its events (thread-safe; each
    event once, to whichever consumer takes it), ``cancel()`` stops it between steps (nothing
    half-committed), ``result(timeout)`` waits for the :class:`WorkflowRun` or raises the
    run's error (``TimeoutError`` when ``timeout`` passes first)."""

    def __init__(self, iterator: WorkflowIterator) -> None:
        self._iterator = iterator
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._drive, name=f"theus-flux-{iterator.run_id}", daemon=True
        )
        self._thread.start()

    def _drive(self) -> None:
        try:
            for event in self._iterator:
                self._queue.put(event)
        except BaseException as exc:  # handed to result()
            self._error = exc
        finally:
            self._done.set()
            self._queue.put(_END)

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self._iterator.run_id

    @property
    def position(self) -> Position:
        """Where the run is (exact once it stopped)."""
        return self._iterator.position

    @property
    def done(self) -> bool:
        """True once the run ended (completed, failed or cancelled)."""
        return self._done.is_set()

    def events(self, timeout: float | None = None) -> Iterator[FluxEvent]:
        """The run's events as they happen, until it ends (``timeout``: the longest wait for
        one event; ``TimeoutError`` after it)."""
        while True:
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no event from run {self.run_id} for {timeout} s") from None
            if item is _END:
                self._queue.put(_END)  # other consumers end too
                return
            assert isinstance(item, FluxEvent)
            yield item

    def cancel(self) -> None:
        """Stop the run before its next step (a running step finishes and commits)."""
        self._iterator.cancel()

    def result(self, timeout: float | None = None) -> WorkflowRun | None:
        """The run's result once it ended; its error re-raised if it failed; None if it was
        cancelled."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"run {self.run_id} did not end within {timeout} s")
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._iterator.run
