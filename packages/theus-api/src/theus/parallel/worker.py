"""The worker side of a parallel process (spec/22): :func:`run_task`.

It rebuilds a small engine of the pure-Python reference backend over the task's sparse context
(only the shipped paths), runs the process with an ordinary ``ctx`` — the inline read and write
API, the same contract checks and messages — and returns the attempt's delta instead of
committing it. Nothing here needs a compiled module: it also runs in a sub-interpreter.
"""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Mapping
from typing import Any

from .._runner import apply_return
from ..contracts import ProcessSpec, Semantic
from ..hub import LocalHub
from ..pipeline import CommitPipeline
from ..protocols import EngineOptions
from ..update import Op
from .task import FuncRef, Outcome, Task

__all__ = ["run_task"]


def run_task(task: Task) -> Outcome:
    """Run one attempt of ``task``'s process and return its :class:`Outcome`.

    Never raises for what the process does: its exception (contract violations included) comes
    back in ``Outcome.error`` with the worker's traceback text, and nothing of the attempt is
    kept. With ``task.pickled``, an outcome that cannot be pickled is replaced by an error
    saying which part could not be sent back.
    """
    try:
        outcome = _run(task)
    except BaseException as exc:  # the process's own exception: the caller re-raises it
        outcome = Outcome(error=exc, trace=traceback.format_exc())
    outcome.where = {"pid": os.getpid()}
    if task.pickled:
        outcome = _sendable(task, outcome)
    return outcome


def _run(task: Task) -> Outcome:
    try:
        from theus_reference._engine import ReferenceEngine, make_snapshot
        from theus_reference._transaction import Transaction
    except ImportError as exc:
        raise ImportError(
            f"parallel process {task.name!r}: its worker runs it on the pure-Python reference "
            f"backend, which is not installed where the worker runs ({exc}); "
            "pip install theus-reference (or theus-api[reference]) there"
        ) from exc

    target = task.target
    func = target.resolve() if isinstance(target, FuncRef) else target
    spec = ProcessSpec(
        name=task.name,
        func=func,
        inputs=task.inputs,
        outputs=task.outputs,
        semantic=Semantic(task.semantic),
        retries=0,
    )
    options = EngineOptions(
        strict_guards=task.strict_guards,
        strict_cas=False,
        hub=LocalHub(1),
        pipeline=CommitPipeline([]),
        version=task.version,
    )
    engine = ReferenceEngine(task.context, options)
    root = ReferenceEngine.parts(engine.snapshot())[0]
    base = make_snapshot(task.version, root, task.signals)
    tx = Transaction(engine, engine.compile(spec), base)
    try:
        result = func(tx.ctx, **task.kwargs)
        apply_return(tx, spec, result)
        return Outcome(
            reads=tuple(sorted(tx.reads)),
            ops=_delta(tx),
            outbox=tuple((m.topic, m.payload) for m in tx.outbox.messages),
            result=_plain_result(result),
        )
    finally:
        tx.close()
        engine.close()  # nothing of the call (heavy mappings included) outlives it


def _delta(tx: Any) -> tuple[Op, ...]:
    """The attempt's writes as update operations: per minimal written path a ``set`` of its
    plain value or a ``delete``; a list only appended to gives ``append`` operations; then the
    signals."""
    from theus_reference._changes import minimal
    from theus_reference._pmap import MISSING
    from theus_reference._tree import get_in, thaw

    ops: list[Op] = []
    for path in sorted(minimal(tx.writes)):
        value = get_in(tx.root, path)
        if value is MISSING:
            if get_in(tx.base_root, path) is not MISSING:
                ops.append(("delete", path, None))
            continue
        start = tx.appends.get(path)
        if start is None:
            ops.append(("set", path, thaw(value)))
        else:
            ops.extend(("append", path, thaw(item)) for item in value.items[start:])
    ops.extend(("set", path, thaw(value)) for path, value in tx.signals.items())
    return tuple(ops)


def _plain_result(result: Any) -> Any:
    """The return value with the views it holds (at the top, or in a top-level tuple, list or
    dict) copied to plain data: a view cannot outlive its transaction nor leave the worker."""
    from ..schema import _plain

    if isinstance(result, tuple | list):
        return type(result)(_plain(v) for v in result)
    if type(result) is dict:
        return {k: _plain(v) for k, v in result.items()}
    return _plain(result) if isinstance(result, Mapping) or hasattr(result, "to_list") else result


_PARTS = (
    ("result", "its return value"),
    ("ops", "a value it wrote"),
    ("outbox", "an outbox payload"),
    ("error", "the exception it raised"),
)


def _sendable(task: Task, outcome: Outcome) -> Outcome:
    """``outcome``, or an error naming the part of it that cannot be pickled."""
    try:
        pickle.dumps(outcome)
        return outcome
    except Exception as exc:
        problem = exc
    part = "its exception" if outcome.error is not None else "its return value or writes"
    for name, what in _PARTS:
        try:
            pickle.dumps(getattr(outcome, name))
        except Exception:
            part = what
            break
    error = TypeError(
        f"parallel process {task.name!r}: {part} cannot be sent back from the worker "
        f"({type(problem).__name__}: {problem})"
        + (f"; the process raised {outcome.error!r}" if outcome.error is not None else "")
    )
    return Outcome(error=error, trace=outcome.trace, where=outcome.where)
