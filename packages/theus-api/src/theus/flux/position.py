"""Where a run is: the Flux machine's position as a plain value (spec/18-flux.md §5).

A position is a stack of frames, outermost first. A **frame** ``(block, next, iteration)``
says which block of its owner step is being run (the bottom frame's block is 0: the
workflow's top-level steps), the index of the next step in it, and for a ``while`` body the
1-based iteration (else 0). The owner of frame *k* > 0 is the step at ``next`` of frame *k-1*
(it is not advanced while its block runs). Inside a ``flux: parallel`` step the top entry is a
**fork**: one frame stack per branch, or ``None`` for a branch that has finished.

``Position.to_json()`` / ``Position.from_json()`` give and take plain JSON data::

    {"format": 1, "ops": 7, "seq": 12,
     "stack": [[0, 3, 0], [0, 1, 2], {"branches": [null, [[1, 0, 0]]]}]}

``Position.check(workflow)`` says whether it fits a program (the machine checks before it
resumes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import FluxError
from .model import IfStep, ParallelStep, ProcessStep, RunStep, Step, WhileStep, Workflow

__all__ = ["FORMAT", "Fork", "Frame", "Position"]

#: the version of the JSON form
FORMAT = 1


@dataclass(frozen=True, slots=True)
class Frame:
    """One level of a position: a block of the owner step, the next index, the iteration."""

    block: int
    next: int
    iteration: int = 0


@dataclass(frozen=True, slots=True)
class Fork:
    """Inside a parallel step: each branch's frame stack, ``None`` once the branch ended."""

    branches: tuple[tuple[Frame | Fork, ...] | None, ...]


Entry = Frame | Fork


@dataclass(frozen=True, slots=True)
class Position:
    """A run's resumable position: its frame stack, the operations counted, the next event
    number. ``stack == ()`` is a run that has ended."""

    stack: tuple[Entry, ...]
    ops: int = 0
    seq: int = 0

    @property
    def done(self) -> bool:
        """True once the run has finished its last step."""
        return not self.stack

    def to_json(self) -> dict[str, Any]:
        """The position as plain JSON-compatible data."""
        return {"format": FORMAT, "ops": self.ops, "seq": self.seq, "stack": _dump(self.stack)}

    @classmethod
    def from_json(cls, data: Any) -> Position:
        """The position ``data`` (from :meth:`to_json`) describes; ``FluxError`` if malformed."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise FluxError(f"a position must be a mapping with format {FORMAT}, not {data!r:.80}")
        ops, seq, stack = data.get("ops"), data.get("seq"), data.get("stack")
        if not isinstance(ops, int) or not isinstance(seq, int) or not isinstance(stack, list):
            raise FluxError("a position needs integer 'ops' and 'seq' >= 0 and a 'stack' list")
        if not _count(ops) or not _count(seq):
            raise FluxError("a position needs integer 'ops' and 'seq' >= 0 and a 'stack' list")
        return cls(_load(stack, 0), ops, seq)

    def check(self, workflow: Workflow) -> None:
        """Raise ``FluxError`` unless this position fits ``workflow``'s program."""
        _check(self.stack, {0: workflow.steps}, False, workflow.source)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _dump(stack: Sequence[Entry]) -> list[Any]:
    out: list[Any] = []
    for entry in stack:
        if isinstance(entry, Frame):
            out.append([entry.block, entry.next, entry.iteration])
        else:
            out.append({"branches": [None if b is None else _dump(b) for b in entry.branches]})
    return out


def _load(stack: list[Any], depth: int) -> tuple[Entry, ...]:
    if depth > 64:
        raise FluxError("a position nests deeper than any workflow can")
    out: list[Entry] = []
    for raw in stack:
        if isinstance(raw, list) and len(raw) == 3 and all(_count(v) for v in raw):
            out.append(Frame(raw[0], raw[1], raw[2]))
        elif (
            isinstance(raw, dict) and set(raw) == {"branches"} and isinstance(raw["branches"], list)
        ):
            branches: list[tuple[Entry, ...] | None] = []
            for b in raw["branches"]:
                if b is not None and not isinstance(b, list):
                    raise FluxError(f"a position's branch must be a list or null, not {b!r:.60}")
                branches.append(None if b is None else _load(b, depth + 1))
            out.append(Fork(tuple(branches)))
        else:
            raise FluxError(f"a position entry must be [block, next, iteration] or a fork, "
                            f"not {raw!r:.60}")  # fmt: skip
    return tuple(out)


def blocks_of(step: Step) -> tuple[tuple[Step, ...], ...]:
    """The blocks of a compound step, by block number (spec/18 §5.1); () for a process."""
    if isinstance(step, IfStep):
        return (step.then, step.else_)
    if isinstance(step, WhileStep):
        return (step.body,)
    if isinstance(step, RunStep):
        return (step.steps,)
    if isinstance(step, ParallelStep):
        return step.branches
    return ()


def _bad(source: str, why: str) -> FluxError:
    return FluxError(f"the position does not fit this workflow: {why}", source)


def _check(
    stack: tuple[Entry, ...], blocks: dict[int, tuple[Step, ...]], loop: bool, source: str
) -> None:
    """Walk the stack down the program: each frame names one of ``blocks`` (the blocks of its
    owner) and an index within it; a fork is last and sits on a parallel step. Bounded: a
    position nests at most as deep as the program (64 levels)."""
    owner: Step | None = None
    for depth, entry in enumerate(stack):
        last = depth == len(stack) - 1
        if isinstance(entry, Fork):
            if not isinstance(owner, ParallelStep) or not last:
                raise _bad(source, "a fork must be the last entry, on a parallel step")
            if len(entry.branches) != len(owner.branches):
                raise _bad(source, f"the parallel step has {len(owner.branches)} branches")
            for i, branch in enumerate(entry.branches):
                if branch is not None:
                    if not branch or not isinstance(branch[0], Frame) or branch[0].block != i:
                        raise _bad(source, f"branch {i}'s stack must start with block {i}")
                    _check(branch, {i: owner.branches[i]}, False, source)
            return
        block = blocks.get(entry.block)
        if block is None:
            raise _bad(source, f"block {entry.block} does not exist there")
        if entry.next > len(block):
            raise _bad(source, f"block {entry.block} has {len(block)} steps, not {entry.next}")
        if (entry.iteration > 0) != loop:
            raise _bad(source, "only a while body has an iteration number (from 1)")
        if last:
            return
        if entry.next >= len(block) or isinstance(block[entry.next], ProcessStep):
            raise _bad(source, "an inner frame must sit on a compound step")
        owner = block[entry.next]
        blocks = dict(enumerate(blocks_of(owner)))
        loop = isinstance(owner, WhileStep)
