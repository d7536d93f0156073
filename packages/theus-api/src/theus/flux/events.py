"""What a running workflow reports (spec/18-flux.md §7): its events and its result.

Events are plain slotted dataclasses (cheap to build: a run may make two per step); treat
them as read-only — every consumer of a run sees the same objects.

Every event carries the run's id, a per-run sequence number (0, 1, 2 ... in delivery order,
continued across a resume) and the location of the step it is about. Events are delivered to
the ``on_event=`` callbacks on the thread that drives the run, are yielded by
``engine.iter_workflow``, and are published on the engine's hub under their ``topic``
(``flux:step_committed`` ...; a receiver takes them all with ``topics=["flux:*"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .model import Loc

if TYPE_CHECKING:
    from .pause import PendingRequest

__all__ = [
    "FluxEvent",
    "RunCompleted",
    "RunFailed",
    "RunPaused",
    "RunStarted",
    "StepCommitted",
    "StepFailed",
    "StepStarted",
    "WorkflowRun",
]


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    """The result of a run that completed, or paused (``status == "paused"``: ``pending`` is
    the request it waits on; answer it with ``engine.resume(run_id, token, value)``)."""

    #: the processes that committed, in order (a parallel step: branch 0's, then branch 1's ...)
    executed: tuple[str, ...]
    #: the engine's version when the run ended (a dry run: the fork's)
    version: int
    #: wall-clock seconds of this call
    duration: float
    #: operations counted against ``max_ops`` (across a resume: in total)
    ops: int
    #: the run's id (given, or made when the run started)
    run_id: str = ""
    #: True for ``dry_run=True``: nothing was committed to the engine
    dry_run: bool = False
    #: the snapshot the run ended on (a dry run: the would-be state)
    state: Any = field(default=None, repr=False, compare=False)
    #: ``"completed"``, ``"paused"`` (waiting on ``pending``), or ``"answered"`` (a repeated
    #: ``engine.resume`` of a token another engine answered: nothing ran, spec/21 §9)
    status: str = "completed"
    #: the open request of a paused run, else None
    pending: PendingRequest | None = None

    @property
    def paused(self) -> bool:
        """True when the run stopped at a pause and waits for an answer."""
        return self.status == "paused"


@dataclass(slots=True)
class FluxEvent:
    """Fields every event has."""

    #: the run it belongs to
    run_id: str
    #: its place in the run's event sequence, from 0
    seq: int
    #: the step (or, for run events, the workflow document) it is about; None when unknown
    loc: Loc | None

    topic: ClassVar[str] = "flux:event"


@dataclass(slots=True)
class RunStarted(FluxEvent):
    """The run started (or resumed: ``resumed`` is True)."""

    #: the workflow's ``name:``, or None
    name: str | None = None
    #: the file (or ``<string>``) the workflow came from
    source: str = ""
    #: the inputs the run reads, defaults applied
    inputs: Mapping[str, Any] = field(default_factory=dict)
    resumed: bool = False
    dry_run: bool = False

    topic: ClassVar[str] = "flux:run_started"


@dataclass(slots=True)
class StepStarted(FluxEvent):
    """A process step is about to run."""

    process: str = ""
    #: the step's place in the program (spec/18 §5.1)
    address: tuple[int, ...] = ()
    #: the 1-based iteration of each enclosing ``while``, outermost first
    iterations: tuple[int, ...] = ()

    topic: ClassVar[str] = "flux:step_started"


@dataclass(slots=True)
class StepCommitted(FluxEvent):
    """A process step committed."""

    process: str = ""
    address: tuple[int, ...] = ()
    iterations: tuple[int, ...] = ()
    #: the version its commit made
    version: int = 0
    #: seconds the step took (its retries included)
    duration: float = 0.0

    topic: ClassVar[str] = "flux:step_committed"


@dataclass(slots=True)
class StepFailed(FluxEvent):
    """A process step raised; nothing of it landed and the run stops."""

    process: str = ""
    address: tuple[int, ...] = ()
    iterations: tuple[int, ...] = ()
    #: what the process (or its commit) raised
    error: BaseException | None = field(default=None, compare=False)
    duration: float = 0.0

    topic: ClassVar[str] = "flux:step_failed"


@dataclass(slots=True)
class RunCompleted(FluxEvent):
    """The run ended after its last step."""

    run: WorkflowRun | None = None

    topic: ClassVar[str] = "flux:run_completed"


@dataclass(slots=True)
class RunPaused(FluxEvent):
    """The run stopped at a ``flux: pause`` step or after a process returned ``interrupt()``;
    ``pending`` is the request it waits on; ``run`` the paused ``WorkflowRun``."""

    pending: PendingRequest | None = None
    run: WorkflowRun | None = None

    topic: ClassVar[str] = "flux:paused"


@dataclass(slots=True)
class RunFailed(FluxEvent):
    """The run stopped on an error (a failed step, a condition, a limit)."""

    error: BaseException | None = field(default=None, compare=False)

    topic: ClassVar[str] = "flux:run_failed"
