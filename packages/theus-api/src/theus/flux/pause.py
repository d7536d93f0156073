"""Human in the loop (spec/18 §8, spec/21 §9): ``flux: pause`` steps, ``interrupt()`` and the
pending requests a paused run waits on.

A paused run stops between two processes. Its :class:`PendingRequest` holds what the human
is shown (``prompt``), where the answer goes (``into``), where the run stopped and an
unguessable ``token``; ``engine.resume(run_id, token, value)`` writes the answer and continues
the run from its position.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..paths import format_path, parse_path
from ..update import StateUpdate
from .model import Loc

__all__ = ["Interrupt", "PendingRequest", "check_into", "check_timeout", "interrupt", "new_token"]


def new_token() -> str:
    """A random, unguessable resume token (128 bits, URL-safe text)."""
    return secrets.token_urlsafe(16)


def check_into(into: object, what: str) -> str:
    """``into`` as a dotted state path (``TypeError``/``InvalidPathError`` otherwise)."""
    if not isinstance(into, str):
        raise TypeError(f"{what}: into= must be a dotted state path (a str), not {into!r}")
    return format_path(parse_path(into))


def check_timeout(timeout: object, what: str) -> float | None:
    """``timeout`` as positive finite seconds, or None."""
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise TypeError(f"{what}: timeout= must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


@dataclass(frozen=True)
class Interrupt(StateUpdate):
    """What :func:`interrupt` returns: a process returns it as its whole return value to pause
    its workflow run after its commit (its in-place writes land; the Interrupt writes
    nothing itself)."""

    prompt: Any = None
    into: str = ""
    timeout: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "into", check_into(self.into, "interrupt()"))
        object.__setattr__(self, "timeout", check_timeout(self.timeout, "interrupt()"))


def interrupt(prompt: Any, *, into: str, timeout: float | None = None) -> Interrupt:
    """Pause the workflow run after this process: ``return interrupt({"question": ...},
    into="domain.answer")``. ``prompt`` is shown to the human (durable engines: a value of
    the durable format, spec/21 §2); the answer given to ``engine.resume`` is written at
    ``into``; ``timeout`` (seconds) is how long the answer may take. Outside a workflow step
    the returned value is an empty ``StateUpdate`` and pauses nothing."""
    made = Interrupt(prompt=prompt, into=into, timeout=timeout)
    from .machine import current_step

    step = current_step.get()
    if step is not None:
        step.interrupt = made
    return made


@dataclass(frozen=True)
class PendingRequest:
    """A paused run's open question (``engine.pending()``)."""

    #: the workflow run's id (``WorkflowRun.run_id``)
    run_id: str
    #: the resume token: give it to ``engine.resume(run_id, token, value)``
    token: str
    #: what the human is shown
    prompt: Any
    #: the dotted state path the answer is written to
    into: str
    #: the ``flux: pause`` step, or the process step that returned ``interrupt()``
    loc: Loc
    #: seconds since the epoch when the run paused
    created: float
    #: seconds since the epoch after which the request cannot be answered, or None
    deadline: float | None = None
    #: the step's program address and enclosing loop iterations (spec/18 §5.1)
    address: tuple[int, ...] = ()
    iterations: tuple[int, ...] = ()
    #: ``"pause"`` (a ``flux: pause`` step) or ``"interrupt"`` (a process returned one)
    kind: str = "pause"
    #: the workflow's source (its file, or ``<string>``): what ``engine.resume`` loads when it
    #: is not given the workflow
    workflow: str = ""
    #: the durable run it is stored in (``engine.run_id``), or None for an in-memory engine
    store_run: str | None = field(default=None, compare=False)

    @property
    def location(self) -> str:
        """``FILE:LINE:COLUMN`` of the step."""
        return str(self.loc)

    def expired(self, now: float) -> bool:
        """True once ``now`` is past the deadline."""
        return self.deadline is not None and now > self.deadline

    def to_json(self) -> dict[str, Any]:
        """The stored form (plain values of the durable format)."""
        loc = self.loc
        return {
            "format": 1,
            "run": self.run_id,
            "token": self.token,
            "prompt": self.prompt,
            "into": self.into,
            "loc": [loc.file, loc.line, loc.column, loc.key_path],
            "created": self.created,
            "deadline": self.deadline,
            "address": list(self.address),
            "iterations": list(self.iterations),
            "kind": self.kind,
            "workflow": self.workflow,
        }

    @classmethod
    def from_json(cls, data: object, store_run: str | None = None) -> PendingRequest:
        """Read :meth:`to_json` back (``ValueError`` for a malformed value)."""
        try:
            if not isinstance(data, Mapping) or data.get("format") != 1:
                raise ValueError("not a pending request of format 1")
            file, line, column, key_path = data["loc"]
            deadline = data["deadline"]
            ints = [*data["address"], *data["iterations"], line, column]
            if not all(type(i) is int for i in ints):
                raise ValueError("malformed address")
            texts = (data["run"], data["token"], data["into"], data["kind"], file, key_path,
                     data["workflow"])  # fmt: skip
            if not all(type(t) is str for t in texts):
                raise ValueError("malformed fields")
            created = data["created"]
            if type(created) is not float or (deadline is not None and type(deadline) is not float):
                raise ValueError("malformed times")
            return cls(
                data["run"],
                data["token"],
                data["prompt"],
                data["into"],
                Loc(file, line, column, key_path),
                created,
                deadline,
                tuple(data["address"]),
                tuple(data["iterations"]),
                data["kind"],
                data["workflow"],
                store_run,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed pending request: {exc}") from None
