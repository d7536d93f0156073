"""The Flux machine: a workflow's control flow as an explicit, resumable state machine
(spec/18-flux.md §5–§7).

The run's state is a stack of frames (:mod:`theus.flux.position`), so it can stop between any
two steps and continue later, and it can be driven one event at a time. One coroutine,
:meth:`Machine._run`, holds the semantics for every driver:

- blocking and step-by-step runs drive it with ``send(None)`` and no event loop: an event is a
  value the coroutine yields (:class:`_Yield`), a process step a plain call;
- async runs await it on the caller's loop: events are delivered at once, process steps are
  awaited (``aexecute`` semantics);
- a ``flux: parallel`` step runs each branch's own stack concurrently (threads, or tasks in
  async runs); every commit goes through the engine's optimistic concurrency.

The machine drives the engine through a :class:`Host` (the facade provides it): run one
process step and return the version its commit made, read the latest snapshot.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, Protocol

from ..errors import FluxError, WorkflowError, WorkflowLimitError
from .events import (
    FluxEvent,
    RunCompleted,
    RunFailed,
    RunPaused,
    RunStarted,
    StepCommitted,
    StepFailed,
    StepStarted,
    WorkflowRun,
)
from .expr import Expression, snapshot_scope
from .model import (
    Expr,
    IfStep,
    Loc,
    ParallelStep,
    PauseStep,
    ProcessStep,
    RunStep,
    Step,
    WhileStep,
    Workflow,
)
from .pause import Interrupt, PendingRequest, new_token
from .position import Entry, Fork, Frame, Position, blocks_of

__all__ = ["Host", "Machine", "StepContext", "WorkflowIterator", "current_step"]

log = logging.getLogger("theus")

Draft = tuple[type[FluxEvent], Loc | None, tuple[Any, ...]]


class Host(Protocol):
    """What the machine needs from an engine (the facade, or a dry run's fork of it)."""

    def step(self, process: str, kwargs: dict[str, Any]) -> tuple[Any, int]:
        """Run one process step (``execute`` semantics); its return value and the version its
        commit made."""
        ...

    async def astep(self, process: str, kwargs: dict[str, Any]) -> tuple[Any, int]:
        """The same with ``aexecute`` semantics."""
        ...

    def pause(self, machine: Machine, request: PendingRequest) -> None:
        """Persist ``request`` with the run's position (a durable engine: one store
        transaction) unless a commit already stored it."""
        ...

    def finished(self, machine: Machine) -> None:
        """The run ended after its last step (a durable engine stores the end position)."""
        ...

    def find_pending(self, machine: Machine, address: tuple[int, ...],
                     iterations: tuple[int, ...]) -> PendingRequest | None:  # fmt: skip
        """The open request of this run at this step identity (a resumed position that
        stops at the same pause again), or None."""
        ...

    def snapshot(self) -> Any:
        """The latest committed snapshot."""
        ...

    def test(self, expression: Expression, inputs: Mapping[str, Any]) -> bool:
        """The condition's truth on the latest committed snapshot."""
        ...

    def publish(self, event: FluxEvent) -> None:
        """Publish an event on the engine's hub (a no-op for a dry run)."""
        ...

    def watched(self) -> bool:
        """True when something may receive events from the hub."""
        ...


class _Frame:
    """A live frame: the block's steps, which block of its owner, the next index, the
    iteration (while bodies, from 1)."""

    __slots__ = ("block", "iteration", "next", "steps")

    def __init__(self, steps: tuple[Step, ...], block: int, nxt: int = 0, iteration: int = 0):
        self.steps = steps
        self.block = block
        self.next = nxt
        self.iteration = iteration


class _Fork:
    """A live parallel step: each branch's stack (empty once the branch ended)."""

    __slots__ = ("stacks",)

    def __init__(self, stacks: list[list[_Frame | _Fork]]) -> None:
        self.stacks = stacks


_Live = _Frame | _Fork


def _freeze(stack: Sequence[_Live]) -> tuple[Entry, ...] | None:
    """The plain position of a live stack (``None`` when it is empty); the caller holds the
    machine's lock. Bounded: forks nest at most as deep as the program."""
    if not stack:
        return None
    out: list[Entry] = []
    for entry in stack:
        if isinstance(entry, _Frame):
            out.append(Frame(entry.block, entry.next, entry.iteration))
        else:
            out.append(Fork(tuple(_freeze(branch) for branch in entry.stacks)))
    return tuple(out)


def _thaw(stack: Sequence[Entry], steps: tuple[Step, ...], bottom_block: int) -> list[_Live]:
    """Live frames for a checked position (``Position.check`` ran first)."""
    live: list[_Live] = []
    blocks: tuple[tuple[Step, ...], ...] = ((),) * bottom_block + (steps,)
    for entry in stack:
        if isinstance(entry, Fork):
            owner = _owner(live)
            assert isinstance(owner, ParallelStep)
            live.append(
                _Fork(
                    [
                        [] if b is None else _thaw(b, owner.branches[i], i)
                        for i, b in enumerate(entry.branches)
                    ]
                )
            )
            break
        frame = _Frame(blocks[entry.block], entry.block, entry.next, entry.iteration)
        live.append(frame)
        if frame.next < len(frame.steps):
            blocks = blocks_of(frame.steps[frame.next])
    return live


def _owner(stack: Sequence[_Live]) -> Step:
    parent = stack[-1]
    assert isinstance(parent, _Frame)
    return parent.steps[parent.next]


class _Yield:
    """An event draft handed to a driver that runs the coroutine with ``send``."""

    __slots__ = ("draft",)

    def __init__(self, draft: Draft) -> None:
        self.draft = draft

    def __await__(self) -> Generator[Draft, None, None]:
        yield self.draft


class _Stopped(Exception):
    """The run was cancelled between two steps."""


class _Pause(Exception):
    """The run stopped at a pause (``request``)."""

    def __init__(self, request: PendingRequest) -> None:
        super().__init__(request.token)
        self.request = request


class StepContext:
    """The process step a workflow is running, for commit stages (durability): read it with
    ``theus.flux.machine.current_step.get()`` on the thread (or task) the step runs on — in a
    stage's ``before_commit``; ``after_commit`` may run on another committer's thread.

    Valid only while the step runs. :meth:`landed` records that the step's commit landed (the
    machine does it itself when the step returns; a durable stage may do it earlier, from
    ``after_commit``, so that the position it stores with the commit counts the step);
    :meth:`position` is the run's position (spec/18 §5.2)."""

    __slots__ = (
        "_at",
        "_frame",
        "_index",
        "_loc",
        "_machine",
        "_request",
        "answers",
        "interrupt",
        "process",
        "stored",
    )

    def __init__(
        self,
        machine: Machine,
        process: str,
        frame: _Frame | None,
        index: int,
        at: tuple[list[_Live], tuple[int, ...], tuple[int, ...], Any],
    ) -> None:
        self._machine = machine
        self.process = process
        self._frame = frame
        self._index = index
        self._at = at
        self._loc: Loc | None = None
        self._request: PendingRequest | None = None
        #: the Interrupt ``interrupt()`` made during this step, or None
        self.interrupt: Interrupt | None = None
        #: the resume token whose answer this commit writes (``engine.resume``), or None
        self.answers: str | None = None
        #: set by a durable stage once the step's commit and position were stored
        self.stored = False

    def reset(self, process: str, frame: _Frame | None, index: int, loc: Loc | None) -> None:
        """Point the context at the next step (the machine reuses one per stack)."""
        self.process = process
        self._frame = frame
        self._index = index
        self._loc = loc
        self._request = None
        self.interrupt = None
        self.answers = None
        self.stored = False

    def pause_request(self) -> PendingRequest | None:
        """The pending request this step's ``interrupt()`` makes (built once: the durable
        stage stores it with the step's commit, the machine pauses on it), or None: no
        interrupt, or a step inside a parallel branch (where pausing is refused)."""
        made = self.interrupt
        if made is None or self._at[3] is not None or self._loc is None:
            return None
        if self._request is None:
            self._request = self._machine.request(
                made.prompt, made.into, made.timeout, self._loc, self.address,
                self.iterations, "interrupt",
            )  # fmt: skip
        return self._request

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self._machine.run_id

    @property
    def address(self) -> tuple[int, ...]:
        """The step's program address (spec/18 §5.1)."""
        stack, prefix, _, fork = self._at
        with self._machine.lock:
            return _address(stack, prefix, fork is not None)

    @property
    def iterations(self) -> tuple[int, ...]:
        """The iterations of the enclosing ``while`` loops, outermost first."""
        stack, _, outer, _ = self._at
        with self._machine.lock:
            return outer + _iterations(stack)

    def landed(self) -> None:
        """Count the step as done in the run's position (idempotent)."""
        frame = self._frame
        if frame is not None:
            with self._machine.lock:
                frame.next = self._index + 1

    def position(self) -> Position:
        """The run's position now."""
        return self._machine.position()


#: the step being run on this thread or task, or None (see :class:`StepContext`)
current_step: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "theus_flux_current_step", default=None
)


class Machine:
    """One run of one workflow; create it, then drive it with :meth:`events` (blocking or
    step by step) or :meth:`arun` (async)."""

    def __init__(
        self,
        host: Host,
        workflow: Workflow,
        *,
        run_id: str,
        inputs: Mapping[str, Any],
        max_ops: int,
        position: Position | None = None,
        on_event: Sequence[Callable[[FluxEvent], Any]] = (),
        dry_run: bool = False,
    ) -> None:
        self.host = host
        self.workflow = workflow
        self.run_id = run_id
        self.inputs = dict(inputs)
        self.max_ops = max_ops
        self.on_event = tuple(on_event)
        self.dry_run = dry_run
        self.resumed = position is not None
        if position is None:
            position = Position((Frame(0, 0),))
        position.check(workflow)
        self.stack: list[_Live] = _thaw(position.stack, workflow.steps, 0)
        self.ops = position.ops
        self.seq = position.seq
        self.executed: list[str] = []
        self.lock = threading.Lock()
        self.cancelled = False
        self.always = bool(self.on_event)
        self.started = time.perf_counter()
        self.result: WorkflowRun | None = None
        self.error: BaseException | None = None
        self._async = False

    # -- position ------------------------------------------------------------------------
    def position(self) -> Position:
        """Where the run is: every step whose commit landed and was recorded (spec/18 §5.2).
        Thread-safe: every change of the frames is made under the machine's lock."""
        with self.lock:
            return Position(_freeze(self.stack) or (), self.ops, self.seq)

    # -- counting and checks -------------------------------------------------------------
    def _count(self, step: Step, executed: list[str], iteration: int = 0) -> None:
        """Count one operation (entering ``step``, or its loop's ``iteration``)."""
        with self.lock:
            self.ops += 1
            if self.ops <= self.max_ops:
                return
        raise self._over(step, executed, iteration)

    def _over(self, step: Step, executed: list[str], iteration: int = 0) -> WorkflowLimitError:
        """The error of a count that exceeded ``max_ops``."""
        loc = step.loc
        if isinstance(step, ProcessStep):
            what = f"process {step.process!r}"
        else:
            kind = type(step).__name__.removesuffix("Step").lower()
            what = f"`flux: {kind}`" + (f" iteration {iteration}" if iteration else "")
        return WorkflowLimitError(
            f"{loc}: {loc.key_path}: the run exceeded max_ops={self.max_ops} at {what}",
            loc.file,
            loc.line,
            loc.column,
            None,
            tuple(executed),
        )

    def _test(self, expression: Expression) -> bool:
        return self.host.test(expression, self.inputs)

    def _kwargs(self, step: ProcessStep) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        scope: Mapping[str, Any] | None = None
        for key, value in step.with_.items():
            if isinstance(value, Expr):
                if scope is None:
                    scope = snapshot_scope(self.host.snapshot(), self.inputs)
                value = value.expression.evaluate(scope)
            kwargs[key] = value
        return kwargs

    def _observed(self) -> bool:
        return self.always or self.host.watched()

    async def _emit(self, draft: Draft) -> None:
        """Deliver at once (async runs); blocking runs replace this with :class:`_Yield`."""
        self._deliver(self._build(draft))

    def _build(self, draft: Draft) -> FluxEvent:
        cls, loc, fields = draft
        seq = self.seq
        self.seq = seq + 1
        return cls(self.run_id, seq, loc, *fields)

    def _deliver(self, event: FluxEvent) -> None:
        for callback in self.on_event:
            try:
                callback(event)
            except Exception:
                log.exception("an on_event callback of run %s raised; the run goes on", self.run_id)
        self.host.publish(event)

    # -- the machine ---------------------------------------------------------------------
    async def _run(
        self,
        stack: list[_Live],
        executed: list[str],
        prefix: tuple[int, ...],
        outer: tuple[int, ...],
        fork: tuple[_Fork, int] | None,
    ) -> None:
        """Run ``stack`` until it is empty. ``prefix``/``outer``: the address and the loop
        iterations above it (a parallel branch's); ``fork``: the branch's fork and index."""
        emit: Callable[[Draft], Any] = self._emit if self._async else _Yield
        lock = self.lock
        host = self.host
        watched = host.watched
        run_step = host.step
        asynchronous = self._async
        always = self.always
        branch = fork is not None
        # one context per stack, updated for each step (valid only while its step runs)
        context = StepContext(self, "", None, 0, (stack, prefix, outer, fork))
        while stack:
            if self.cancelled:
                raise _Stopped
            top = stack[-1]
            if isinstance(top, _Fork):
                await self._parallel(stack, executed, prefix, outer, branch)
                continue
            steps = top.steps
            index = top.next
            if index >= len(steps):
                if len(stack) > 1:
                    parent = stack[-2]
                    assert isinstance(parent, _Frame)
                    owner = parent.steps[parent.next]
                    if isinstance(owner, WhileStep) and self._again(owner, top, executed):
                        continue
                with lock:
                    stack.pop()
                    if stack:
                        parent = stack[-1]
                        assert isinstance(parent, _Frame)
                        parent.next += 1
                continue
            step = steps[index]
            if isinstance(step, ProcessStep):
                process = step.process
                with lock:
                    self.ops += 1
                    over = self.ops > self.max_ops
                if over:
                    raise self._over(step, executed)
                kwargs = self._kwargs(step) if step.with_ else {}
                observed = always or watched()
                if observed:
                    loc = step.loc
                    fields = (process, _address(stack, prefix, branch), outer + _iterations(stack))
                    await emit((StepStarted, loc, fields))
                    began = time.perf_counter()
                context.reset(process, top, index, step.loc)
                token = current_step.set(context)
                try:
                    if asynchronous:
                        value, version = await host.astep(process, kwargs)
                    else:
                        value, version = run_step(process, kwargs)
                except Exception as exc:
                    loc = step.loc
                    if observed:
                        failed = (*fields, exc, time.perf_counter() - began)
                        await emit((StepFailed, loc, failed))
                    raise WorkflowError(
                        f"{loc}: {loc.key_path}: process {process!r} failed: "
                        f"{type(exc).__name__}: {exc}",
                        loc.file,
                        loc.line,
                        loc.column,
                        process,
                        tuple(executed),
                    ) from exc
                finally:
                    current_step.reset(token)
                top.next = index + 1  # one store: atomic for a reader holding the lock
                executed.append(process)
                if observed:
                    done = (*fields, version, time.perf_counter() - began)
                    await emit((StepCommitted, loc, done))
                if isinstance(value, Interrupt) or context.interrupt is not None:
                    self._interrupted(context, value, step, executed, branch)
            elif isinstance(step, PauseStep):
                self._count(step, executed)
                address = _address(stack, prefix, branch)
                iterations = outer + _iterations(stack)
                request = host.find_pending(self, address, iterations)
                if request is None:
                    request = self.request(step.prompt, step.into, step.timeout, step.loc,
                                           address, iterations, "pause")  # fmt: skip
                    host.pause(self, request)
                raise _Pause(request)
            elif isinstance(step, IfStep):
                self._count(step, executed)
                frame = (
                    _Frame(step.then, 0) if self._test(step.condition) else _Frame(step.else_, 1)
                )
                with lock:
                    stack.append(frame)
            elif isinstance(step, WhileStep):
                self._count(step, executed)
                if self._test(step.condition):
                    self._count(step, executed, 1)
                    with lock:
                        stack.append(_Frame(step.body, 0, 0, 1))
                else:
                    with lock:
                        top.next = index + 1
            elif isinstance(step, RunStep):
                self._count(step, executed)
                with lock:
                    stack.append(_Frame(step.steps, 0))
            else:
                self._count(step, executed)
                branches: list[list[_Live]] = [[_Frame(b, i)] for i, b in enumerate(step.branches)]
                with lock:
                    stack.append(_Fork(branches))

    def request(
        self,
        prompt: Any,
        into: str,
        timeout: float | None,
        loc: Loc,
        address: tuple[int, ...],
        iterations: tuple[int, ...],
        kind: str,
    ) -> PendingRequest:
        """A new pending request of this run (a fresh random token)."""
        created = time.time()
        deadline = None if timeout is None else created + timeout
        return PendingRequest(self.run_id, new_token(), prompt, into, loc, created, deadline,
                              address, iterations, kind, self.workflow.source)  # fmt: skip

    def _interrupted(
        self,
        context: StepContext,
        value: Any,
        step: ProcessStep,
        executed: list[str],
        branch: bool,
    ) -> None:
        """After a process step whose process returned ``interrupt()``: pause the run."""
        loc = step.loc
        if branch:
            raise WorkflowError(
                f"{loc}: {loc.key_path}: process {step.process!r} returned interrupt() inside "
                "a `flux: parallel` branch; a run pauses only outside parallel steps (its "
                "commit stays)",
                loc.file,
                loc.line,
                loc.column,
                step.process,
                tuple(executed),
            )
        if context.interrupt is None or (
            isinstance(value, Interrupt) and value is not context.interrupt
        ):
            context.interrupt = value  # made on another thread (an async process)
            context._request = None
        request = context.pause_request()
        assert request is not None
        self.host.pause(self, request)  # stores it unless the step's commit did
        raise _Pause(request)

    def _again(self, loop: WhileStep, body: _Frame, executed: list[str]) -> bool:
        """At the end of a loop body: start the next iteration if the condition holds."""
        if not self._test(loop.condition):
            return False
        loc = loop.loc
        if loop.max_iterations is not None and body.iteration >= loop.max_iterations:
            raise WorkflowLimitError(
                f"{loc}: {loc.key_path}: the loop's condition is still true after "
                f"max_iterations={loop.max_iterations}",
                loc.file,
                loc.line,
                loc.column,
                None,
                tuple(executed),
            )
        with self.lock:
            self.ops += 1
            over = self.ops > self.max_ops
            if not over:
                body.iteration += 1
                body.next = 0
        if over:
            raise self._over(loop, executed, body.iteration + 1)
        return True

    async def _parallel(
        self,
        stack: list[_Live],
        executed: list[str],
        prefix: tuple[int, ...],
        outer: tuple[int, ...],
        branch: bool,
    ) -> None:
        """Run the fork on top of ``stack`` to its end, then step past the parallel step."""
        fork = stack[-1]
        assert isinstance(fork, _Fork)
        parent = stack[-2]
        assert isinstance(parent, _Frame)
        here = _address(stack[:-1], prefix, branch)
        iterations = outer + _iterations(stack[:-1])
        results: list[list[str]] = [[] for _ in fork.stacks]
        errors: list[BaseException | None] = [None] * len(fork.stacks)
        branches = [
            self._run(s, results[i], here, iterations, (fork, i)) for i, s in enumerate(fork.stacks)
        ]
        if self._async:
            outcome = await asyncio.gather(*branches, return_exceptions=True)
            for i, value in enumerate(outcome):
                if isinstance(value, BaseException):
                    errors[i] = value
        else:
            await self._threads(branches, fork, errors)
        for done in results:
            executed.extend(done)
        for exc in errors:
            if exc is not None:
                raise exc
        with self.lock:
            stack.pop()
            parent.next += 1

    async def _threads(
        self, branches: list[Any], fork: _Fork, errors: list[BaseException | None]
    ) -> None:
        """Drive each branch coroutine on its own thread; forward their events, in the order
        they arrive, to this coroutine's driver."""
        inbox: queue.SimpleQueue[tuple[int, Draft | None]] = queue.SimpleQueue()

        def drive(i: int) -> None:
            coro = branches[i]
            try:
                while True:
                    inbox.put((i, coro.send(None)))
            except StopIteration:
                pass
            except BaseException as exc:  # re-raised by the driving thread, in branch order
                errors[i] = exc
            finally:
                inbox.put((i, None))

        threads = [
            threading.Thread(target=drive, args=(i,), name=f"theus-flux-{self.run_id}-{i}")
            for i in range(len(branches))
        ]
        for thread in threads:
            thread.start()
        remaining = len(threads)
        try:
            while remaining:
                _, draft = inbox.get()
                if draft is None:
                    remaining -= 1
                else:
                    await _Yield(draft)
        finally:
            if remaining:  # the driver stopped the run: branches stop at their next step
                self.cancelled = True
            for thread in threads:
                thread.join()

    # -- drivers -------------------------------------------------------------------------
    def _outcome(
        self, run_error: BaseException | None, paused: PendingRequest | None = None
    ) -> Draft:
        if run_error is None:
            snapshot = self.host.snapshot()
            self.result = WorkflowRun(
                tuple(self.executed),
                snapshot.version,
                time.perf_counter() - self.started,
                self.ops,
                self.run_id,
                self.dry_run,
                snapshot,
                "completed" if paused is None else "paused",
                paused,
            )
            if paused is not None:
                return (RunPaused, paused.loc, (paused, self.result))
            return (RunCompleted, None, (self.result,))
        self.error = run_error
        file = getattr(run_error, "file", None)
        loc = None
        if isinstance(file, str):
            line, column = getattr(run_error, "line", None), getattr(run_error, "column", None)
            loc = Loc(file, line or 0, column or 0, getattr(run_error, "key_path", None) or "")
        return (RunFailed, loc, (run_error,))

    def _start(self) -> Draft:
        workflow = self.workflow
        fields = (workflow.name, workflow.source, dict(self.inputs), self.resumed, self.dry_run)
        return (RunStarted, None, fields)

    def events(self) -> Generator[FluxEvent, None, None]:
        """Drive the run, yielding each event as it happens (blocking; no event loop). After
        ``RunFailed`` the next ``next()`` raises the run's error. Closing the iterator stops
        the run between steps."""
        observed = self._observed()
        if observed:
            event = self._build(self._start())
            self._deliver(event)
            yield event
        coro = self._run(self.stack, self.executed, (), (), None)
        failure: BaseException | None = None
        paused: PendingRequest | None = None
        try:
            while True:
                event = self._build(coro.send(None))
                self._deliver(event)
                yield event
        except StopIteration:
            pass
        except (WorkflowError, FluxError) as exc:
            failure = exc
        except _Pause as stop:
            paused = stop.request
        except _Stopped:
            return
        finally:
            coro.close()
        if failure is None and paused is None:
            self.host.finished(self)
        outcome = self._outcome(failure, paused)
        if self._observed():
            event = self._build(outcome)
            self._deliver(event)
            yield event
        if failure is not None:
            raise failure

    async def arun(self) -> WorkflowRun:
        """Run to the end on the running event loop (process steps awaited)."""
        self._async = True
        if self._observed():
            self._deliver(self._build(self._start()))
        paused: PendingRequest | None = None
        try:
            await self._run(self.stack, self.executed, (), (), None)
        except (WorkflowError, FluxError) as exc:
            outcome = self._outcome(exc)
            if self._observed():
                self._deliver(self._build(outcome))
            raise
        except _Pause as stop:
            paused = stop.request
        if paused is None:
            self.host.finished(self)
        outcome = self._outcome(None, paused)
        if self._observed():
            self._deliver(self._build(outcome))
        assert self.result is not None
        return self.result


def _iterations(stack: Sequence[_Live]) -> tuple[int, ...]:
    """The iterations of the while bodies on ``stack``, outermost first."""
    return tuple(f.iteration for f in stack if isinstance(f, _Frame) and f.iteration)


def _address(stack: Sequence[_Live], prefix: tuple[int, ...], branch: bool) -> tuple[int, ...]:
    """The program address of the step the top frame points at (spec/18 §5.1)."""
    parts = list(prefix)
    for k, entry in enumerate(stack):
        if not isinstance(entry, _Frame):  # pragma: no cover - a fork is never below a frame
            break
        if k == 0 and not branch:
            parts.append(entry.next)
        else:
            parts += (entry.block, entry.next)
    return tuple(parts)


class WorkflowIterator(Iterator[FluxEvent]):
    """``engine.iter_workflow(...)``: one event per ``next()``; the run advances only when
    asked. ``position`` is where it is, ``run`` the result once it completed; ``close()``
    stops it between steps (nothing half-committed)."""

    def __init__(self, machine: Machine, fork: Any = None) -> None:
        self._machine = machine
        self._events = machine.events()
        self._fork = fork

    def __iter__(self) -> WorkflowIterator:
        return self

    def __next__(self) -> FluxEvent:
        try:
            return next(self._events)
        except BaseException:
            self._finish()
            raise

    def _finish(self) -> None:
        fork, self._fork = self._fork, None
        if fork is not None:
            fork.close()

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self._machine.run_id

    @property
    def position(self) -> Position:
        """The run's current position (resume with ``position=``)."""
        return self._machine.position()

    @property
    def run(self) -> WorkflowRun | None:
        """The result, once ``RunCompleted`` was yielded."""
        return self._machine.result

    def cancel(self) -> None:
        """Ask the run to stop before its next step (thread-safe; the driving thread sees it
        at the next step boundary)."""
        self._machine.cancelled = True

    def close(self) -> None:
        """Stop the run before its next step; the position stays readable."""
        self._machine.cancelled = True
        try:
            self._events.close()
        finally:
            self._finish()
