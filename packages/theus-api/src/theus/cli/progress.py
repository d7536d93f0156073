"""Progress of ``theus run``: a live display on a terminal, plain lines otherwise (spec/20 §3).

A :class:`Progress` is the run's ``on_event`` callback. Events may come from several threads
(parallel branches); every update happens under one lock.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import IO, Any

__all__ = ["Progress", "topic_of"]


def topic_of(event: Any) -> str:
    """``step_started`` for an event whose topic is ``flux:step_started`` (or of that class)."""
    topic = getattr(event, "topic", None)
    if isinstance(topic, str):
        return topic.rpartition(":")[2]
    name = type(event).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _where(loc: Any) -> str:
    if loc is None:
        return "?"
    return f"{loc.file}:{loc.line}:{loc.column}"


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


class Progress:
    """Counts the run's events and shows them (``mode`` ``live``, ``plain`` or ``none``)."""

    def __init__(self, mode: str, stream: IO[str], title: str) -> None:
        self.mode = mode
        self.stream = stream
        self.title = title
        self.lock = threading.Lock()
        self.committed = 0
        self.run_id: str | None = None
        self.current: str | None = None
        self.current_at = ""
        self.iterations: tuple[int, ...] = ()
        self.started = time.monotonic()
        self._live: Any = None
        self._spinner: Any = None
        self._last_refresh = 0.0

    # -- lifetime ---------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        self.started = time.monotonic()
        if self.mode == "live":
            from rich.console import Console
            from rich.live import Live
            from rich.spinner import Spinner

            console = Console(file=self.stream, force_terminal=True)
            self._spinner = Spinner("dots")
            self._live = Live(
                console=console,
                get_renderable=self._render,
                refresh_per_second=8,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start(refresh=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- events -----------------------------------------------------------------------------
    def __call__(self, event: Any) -> None:
        """Record one run event and show it."""
        topic = topic_of(event)
        with self.lock:
            run_id = getattr(event, "run_id", None)
            if run_id is not None and self.run_id is None:
                self.run_id = str(run_id)
            line = self._record(topic, event)
            if self.mode == "plain" and line is not None:
                self.stream.write(line + "\n")
                self.stream.flush()
            elif self._live is not None:
                now = time.monotonic()
                if now - self._last_refresh >= 0.05 or topic in ("run_started", "step_failed"):
                    self._last_refresh = now
                    self._live.refresh()

    def _record(self, topic: str, event: Any) -> str | None:
        process = getattr(event, "process", "?")
        if topic == "run_started":
            return f"start {self.run_id}"
        if topic == "step_started":
            self.current = str(process)
            self.current_at = _where(getattr(event, "loc", None))
            self.iterations = tuple(getattr(event, "iterations", ()) or ())
            its = f" iteration {'.'.join(map(str, self.iterations))}" if self.iterations else ""
            return f"step {process} {self.current_at}{its}"
        if topic == "step_committed":
            self.committed += 1
            version = getattr(event, "version", "?")
            duration = getattr(event, "duration", None)
            took = f" ({duration:.3f} s)" if isinstance(duration, int | float) else ""
            return f"committed {process} version {version}{took}"
        if topic == "paused":
            pending = getattr(event, "pending", None)
            into = getattr(pending, "into", "?")
            return f"paused {_where(getattr(event, 'loc', None))} into {into}"
        if topic == "step_failed":
            error = getattr(event, "error", "")
            return f"failed {process}: {_one_line(f'{type(error).__name__}: {error}')}"
        return None

    # -- the live display -------------------------------------------------------------------
    def _render(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        elapsed = time.monotonic() - self.started
        head = Text.assemble(("theus run ", "bold"), (self.title, "cyan"), f"  {elapsed:.1f} s")
        self._spinner.text = head
        lines: list[Any] = [self._spinner]
        lines.append(Text(f"  steps committed: {self.committed}"))
        if self.current is not None:
            lines.append(
                Text.assemble("  current: ", (self.current, "bold"), f"  {self.current_at}")
            )
        if self.iterations:
            lines.append(Text(f"  loop iteration: {'.'.join(map(str, self.iterations))}"))
        return Group(*lines)
