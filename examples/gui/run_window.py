"""A desktop window (Tkinter) that runs a Flux workflow in the background and shows its
progress live: every step with its status, a progress bar, the current step, the elapsed time,
a Cancel button and the final summary.

The run is ``engine.start_workflow(...)`` (a background thread); the window polls
``handle.events(timeout=0)`` from Tk's ``after()`` timer, so the Tk thread never waits for the
run. Cancel is ``handle.cancel()``: the running step finishes and commits, no later step starts.
Each process of ``batches.yaml`` sleeps ``--delay`` seconds so that the progress is visible.

Run: python examples/gui/run_window.py [--backend reference|rust] [--batches N] [--delay S]

For tests and screenshots: ``--status PATH`` writes the window's state as JSON after every
change (what the window shows, once Tk drew it), ``--exit-after S`` closes the window S seconds
after the run ended, ``--cancel-after N`` presses Cancel once N steps committed. The exit code
is 0 when the run completed or was cancelled, 1 when it failed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import tkinter as tk
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from tkinter import ttk
from typing import Any

from theus import TheusEngine, process
from theus.flux import (
    FluxEvent,
    IfStep,
    Loc,
    ParallelStep,
    ProcessStep,
    RunFailed,
    RunHandle,
    RunStep,
    Step,
    StepCommitted,
    StepFailed,
    StepStarted,
    WhileStep,
    Workflow,
    WorkflowRun,
    load_workflow,
)

HERE = Path(__file__).resolve().parent
WORKFLOW = HERE / "batches.yaml"
#: the window's size: the test's X screen is made exactly this big
WIDTH, HEIGHT = 640, 520
#: how often the window looks for new events (milliseconds)
POLL_MS = 50
#: row colours by status
COLOURS = {
    "pending": ("#7a7a7a", "#ffffff"),
    "running": ("#000000", "#bcd7ff"),
    "done": ("#000000", "#c9efc9"),
    "failed": ("#000000", "#f5b8b8"),
    "not run": ("#a0a0a0", "#eeeeee"),
}


def make_engine(delay: float, backend: str | None = None) -> TheusEngine:
    """An engine with the state and the processes of ``batches.yaml``; every process sleeps
    ``delay`` seconds (a stand-in for real work) before it writes."""

    @process(outputs=["domain.stored", "domain.rejected", "domain.rows"])
    def load(ctx: Any) -> None:
        time.sleep(delay)
        ctx.domain.stored = 0
        ctx.domain.rejected = 0
        ctx.domain.rows = []

    @process(inputs=["domain.stored"], outputs=["domain.raw"])
    def fetch(ctx: Any) -> None:
        time.sleep(delay)
        batch = ctx.domain.stored
        ctx.domain.raw = [f" row {batch}.{i} " for i in range(3)]

    @process(inputs=["domain.raw"], outputs=["domain.cleaned"])
    def clean(ctx: Any) -> None:
        time.sleep(delay)
        ctx.domain.cleaned = [row.strip() for row in ctx.domain.raw]

    @process(inputs=["domain.raw"], outputs=["domain.tags"])
    def tag(ctx: Any) -> None:
        time.sleep(delay)
        ctx.domain.tags = [f"len={len(row.strip())}" for row in ctx.domain.raw]

    @process(
        inputs=["domain.cleaned", "domain.tags", "domain.stored", "domain.rows"],
        outputs=["domain.stored", "domain.rows"],
    )
    def store(ctx: Any) -> None:
        time.sleep(delay)
        pairs = [f"{row} [{t}]" for row, t in zip(ctx.domain.cleaned, ctx.domain.tags, strict=True)]
        ctx.domain.rows = [*ctx.domain.rows, *pairs]
        ctx.domain.stored = ctx.domain.stored + 1

    @process(inputs=["domain.rows"], outputs=["domain.report"])
    def publish(ctx: Any) -> None:
        time.sleep(delay)
        ctx.domain.report = f"published {len(ctx.domain.rows)} rows"

    @process(inputs=["domain.rejected"], outputs=["domain.report"])
    def review(ctx: Any) -> None:
        time.sleep(delay)
        ctx.domain.report = f"{ctx.domain.rejected} rejected rows to review"

    state = {
        "domain": {
            "stored": 0,
            "rejected": 0,
            "raw": [],
            "cleaned": [],
            "tags": [],
            "rows": [],
            "report": "",
        }
    }
    engine = TheusEngine(context=state, backend=backend)
    for fn in (load, fetch, clean, tag, store, publish, review):
        engine.register(fn)
    return engine


def expected_steps(steps: Sequence[Step], iterations: int) -> int:
    """How many process steps a run of ``steps`` takes when every ``while`` loops
    ``iterations`` times (``batches.yaml`` loops once per batch) and each ``if`` takes its
    longer branch: the progress bar's length."""
    total = 0
    for step in steps:
        if isinstance(step, ProcessStep):
            total += 1
        elif isinstance(step, WhileStep):
            total += iterations * expected_steps(step.body, iterations)
        elif isinstance(step, IfStep):
            total += max(expected_steps(step.then, iterations),
                         expected_steps(step.else_, iterations))  # fmt: skip
        elif isinstance(step, ParallelStep):
            total += sum(expected_steps(branch, iterations) for branch in step.branches)
        elif isinstance(step, RunStep):
            total += expected_steps(step.steps, iterations)
    return total


@dataclass
class StepRow:
    """One process step of the workflow as the window shows it."""

    process: str
    loc: Loc
    iid: str
    status: str = "pending"
    runs: int = 0
    seconds: float = 0.0
    #: the row of the innermost ``while`` around it (its iteration is shown there), or ""
    loop_iid: str = ""


class RunWindow:
    """The window: builds the widgets for ``workflow``, starts the run, follows its events."""

    def __init__(
        self,
        root: tk.Tk,
        engine: TheusEngine,
        workflow: Workflow,
        inputs: dict[str, Any],
        *,
        status_path: Path | None = None,
        exit_after: float | None = None,
        cancel_after: int | None = None,
    ) -> None:
        self.root = root
        self.engine = engine
        self.workflow = workflow
        self.inputs = inputs
        self.status_path = status_path
        self.exit_after = exit_after
        self.cancel_after = cancel_after
        self.name = workflow.name or WORKFLOW.name
        self.expected = expected_steps(workflow.steps, int(inputs["batches"]))
        self.rows: dict[Loc, StepRow] = {}
        self.committed = 0
        self.current = ""
        self.state = "starting"
        self.summary = ""
        self.version: int | None = None
        self.error: BaseException | None = None
        self.handle: RunHandle | None = None
        self.started = 0.0
        self.elapsed = 0.0
        self._build()

    # -- widgets ---------------------------------------------------------------------------
    def _build(self) -> None:
        root = self.root
        root.geometry(f"{WIDTH}x{HEIGHT}+0+0")
        root.minsize(480, 360)
        root.protocol("WM_DELETE_WINDOW", self.close)
        frame = ttk.Frame(root, padding=10)
        frame.pack(fill="both", expand=True)
        ttk.Label(frame, text=self.name, font=("DejaVu Sans", 12, "bold")).pack(anchor="w")
        if self.workflow.description:
            ttk.Label(frame, text=self.workflow.description).pack(anchor="w")

        columns = ("status", "runs", "time")
        self.tree = ttk.Treeview(frame, columns=columns, height=12, selectmode="none")
        self.tree.heading("#0", text="step", anchor="w")
        self.tree.heading("status", text="status", anchor="w")
        self.tree.heading("runs", text="runs", anchor="w")
        self.tree.heading("time", text="last", anchor="w")
        self.tree.column("#0", width=300)
        self.tree.column("status", width=110)
        self.tree.column("runs", width=90)
        self.tree.column("time", width=80)
        for status, (fg, bg) in COLOURS.items():
            self.tree.tag_configure(status, foreground=fg, background=bg)
        self._add_steps("", self.workflow.steps, "")
        self.tree.pack(fill="both", expand=True, pady=(8, 8))

        self.progress = ttk.Progressbar(frame, maximum=max(self.expected, 1), mode="determinate")
        self.progress.pack(fill="x")
        info = ttk.Frame(frame)
        info.pack(fill="x", pady=(6, 0))
        self.count_label = ttk.Label(info, text="")
        self.count_label.pack(side="left")
        self.elapsed_label = ttk.Label(info, text="")
        self.elapsed_label.pack(side="right")
        self.current_label = ttk.Label(frame, text="current step: -")
        self.current_label.pack(anchor="w")
        self.summary_label = ttk.Label(frame, text="", font=("DejaVu Sans", 10, "bold"))
        self.summary_label.pack(anchor="w", pady=(4, 0))
        buttons = ttk.Frame(frame)
        buttons.pack(fill="x", pady=(6, 0))
        self.close_button = ttk.Button(buttons, text="Close", command=self.close)
        self.close_button.pack(side="right")
        self.cancel_button = ttk.Button(buttons, text="Cancel", command=self.cancel)
        self.cancel_button.pack(side="right", padx=(0, 6))

    def _add_steps(self, parent: str, steps: Sequence[Step], loop_iid: str) -> None:
        """One tree row per step: process steps get a status, control steps hold theirs."""
        for step in steps:
            if isinstance(step, ProcessStep):
                iid = self.tree.insert(parent, "end", text=step.process, open=True,
                                       values=("pending", "", ""), tags=("pending",))  # fmt: skip
                self.rows[step.loc] = StepRow(step.process, step.loc, iid, loop_iid=loop_iid)
            elif isinstance(step, WhileStep):
                text = f"while {step.condition.text}"
                iid = self.tree.insert(parent, "end", text=text, open=True, values=("", "", ""))
                self._add_steps(iid, step.body, iid)
            elif isinstance(step, IfStep):
                text = f"if {step.condition.text}"
                iid = self.tree.insert(parent, "end", text=text, open=True, values=("", "", ""))
                then = self.tree.insert(iid, "end", text="then", open=True)
                self._add_steps(then, step.then, loop_iid)
                if step.else_:
                    other = self.tree.insert(iid, "end", text="else", open=True)
                    self._add_steps(other, step.else_, loop_iid)
            elif isinstance(step, ParallelStep):
                iid = self.tree.insert(parent, "end", text="parallel", open=True)
                for number, branch in enumerate(step.branches, 1):
                    arm = iid  # a one-step branch goes straight under "parallel"
                    if len(branch) > 1:
                        arm = self.tree.insert(iid, "end", text=f"branch {number}", open=True)
                    self._add_steps(arm, branch, loop_iid)
            elif isinstance(step, RunStep):
                text = f"run {step.workflow}" if step.workflow else "run"
                iid = self.tree.insert(parent, "end", text=text, open=True)
                self._add_steps(iid, step.steps, loop_iid)

    # -- the run ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the run on its background thread and the polling timer."""
        self.started = time.monotonic()
        self.handle = self.engine.start_workflow(self.workflow, inputs=self.inputs)
        self.state = "running"
        self._refresh()
        self.root.after(POLL_MS, self._poll)

    def _poll(self) -> None:
        """Take the events that arrived (never waiting), show them, and come back later."""
        assert self.handle is not None
        events = self.handle.events(timeout=0)
        ended = False
        for _ in range(1000):  # a bounded batch: the window stays responsive
            try:
                event = next(events)
            except StopIteration:
                ended = True
                break
            except TimeoutError:  # nothing more for now
                break
            self._apply(event)
        self.elapsed = time.monotonic() - self.started
        if ended:
            self._finish()
            return
        self._refresh()
        if self.cancel_after is not None and self.committed >= self.cancel_after:
            self.cancel_after = None
            self.cancel_button.invoke()  # exactly what a click does
        self.root.after(POLL_MS, self._poll)

    def _apply(self, event: FluxEvent) -> None:
        """One event into the rows and counters (steps are matched by their location)."""
        row = self.rows.get(event.loc) if event.loc is not None else None
        if isinstance(event, StepStarted) and row is not None:
            row.status = "running"
            self.current = event.process
            if event.iterations:
                self.current += f" (iteration {event.iterations[-1]})"
                if row.loop_iid:
                    self.tree.set(row.loop_iid, "runs", f"iteration {event.iterations[-1]}")
        elif isinstance(event, StepCommitted) and row is not None:
            row.status = "done"
            row.runs += 1
            row.seconds = event.duration
            self.committed += 1
            self.version = event.version
        elif isinstance(event, StepFailed) and row is not None:
            row.status = "failed"
            row.seconds = event.duration
        elif isinstance(event, RunFailed):
            self.error = event.error
        if row is not None:
            runs = f"×{row.runs}" if row.runs else ""
            last = f"{row.seconds:.2f} s" if row.seconds else ""
            self.tree.item(row.iid, values=(row.status, runs, last), tags=(row.status,))

    def _finish(self) -> None:
        """The run ended: its result (or error, or cancel) becomes the summary."""
        assert self.handle is not None
        run: WorkflowRun | None = None
        try:
            run = self.handle.result(timeout=0)
        except Exception as exc:
            self.error = exc
        if self.error is not None:
            self.state = "failed"
            self.summary = f"Failed: {type(self.error).__name__}: {self.error}"
        elif run is None:
            self.state = "cancelled"
            self.summary = f"Cancelled after {self.committed} steps (version {self.version})"
        else:
            self.state = "completed"
            report = self.engine.state.domain.report
            self.summary = (f"Completed: {len(run.executed)} steps, version {run.version}, "
                            f"{run.duration:.2f} s; {report}")  # fmt: skip
            self.progress.configure(value=self.progress.cget("maximum"))
        for row in self.rows.values():
            if row.status in ("pending", "running"):
                row.status = "not run"
                self.tree.item(row.iid, values=(row.status, "", ""), tags=(row.status,))
        self.current = ""
        self.cancel_button.state(["disabled"])
        self._refresh()
        if self.exit_after is not None:
            self.root.after(int(self.exit_after * 1000), self.root.destroy)

    def cancel(self) -> None:
        """The Cancel button: stop before the next step."""
        if self.handle is not None and not self.handle.done:
            self.handle.cancel()
            self.state = "cancelling"
            self.cancel_button.state(["disabled"])
            self._refresh()

    def close(self) -> None:
        """The Close button or the window manager's close: cancel a running run, close."""
        self.cancel()
        self.root.destroy()

    # -- display ---------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Labels, bar and title from the current state; then the status file, once Tk drew
        what it says."""
        if self.state != "completed":
            self.progress.configure(value=min(self.committed, self.expected))
        self.count_label.configure(text=f"{self.committed} / {self.expected} steps")
        self.elapsed_label.configure(text=f"elapsed {self.elapsed:.1f} s")
        self.current_label.configure(text=f"current step: {self.current or '-'}")
        self.summary_label.configure(text=self.summary)
        self.root.title(f"{self.name}: {self.state} ({self.committed}/{self.expected})")
        self.root.update_idletasks()
        if self.status_path is not None:
            self._write_status(self.status_path)

    def _write_status(self, path: Path) -> None:
        """What the window shows, as JSON, replaced in one rename."""
        status = {
            "state": self.state,
            "title": self.root.title(),
            "committed": self.committed,
            "expected": self.expected,
            "progress": float(self.progress.cget("value")),
            "current": self.current,
            "elapsed": round(self.elapsed, 3),
            "summary": self.summary,
            "version": self.version,
            "steps": [
                {"process": r.process, "line": r.loc.line, "status": r.status, "runs": r.runs}
                for r in self.rows.values()
            ],
        }
        part = path.with_name(path.name + ".part")
        part.write_text(json.dumps(status, indent=1))
        os.replace(part, path)  # a reader never sees half a file


def main(argv: Sequence[str] | None = None) -> int:
    """Open the window, run the workflow, return 0 (completed or cancelled) or 1 (failed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", default=None, help="backend name (default: best installed)")
    parser.add_argument("--batches", type=int, default=3, help="batches to process (default 3)")
    parser.add_argument("--delay", type=float, default=0.5,
                        help="seconds each process sleeps (default 0.5)")  # fmt: skip
    parser.add_argument("--status", type=Path, default=None,
                        help="write the window's state as JSON to this file")  # fmt: skip
    parser.add_argument("--exit-after", type=float, default=None, metavar="S",
                        help="close the window S seconds after the run ended")  # fmt: skip
    parser.add_argument("--cancel-after", type=int, default=None, metavar="N",
                        help="press Cancel once N steps committed")  # fmt: skip
    args = parser.parse_args(argv)
    if args.batches < 1 or args.delay < 0:
        parser.error("--batches must be at least 1 and --delay not negative")
    engine = make_engine(args.delay, args.backend)
    try:
        root = tk.Tk(className="theus-run")
        window = RunWindow(root, engine, load_workflow(WORKFLOW), {"batches": args.batches},
                           status_path=args.status, exit_after=args.exit_after,
                           cancel_after=args.cancel_after)  # fmt: skip
        window.start()
        root.mainloop()
        if window.handle is not None and not window.handle.done:
            # closed while running: cancel() was called; let the running step commit
            window.handle.result(timeout=60)
    finally:
        engine.close()
    return 1 if window.state == "failed" else 0


if __name__ == "__main__":
    raise SystemExit(main())
