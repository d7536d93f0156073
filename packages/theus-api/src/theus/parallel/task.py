"""What crosses to a worker and back (spec/22): a :class:`Task` and its :class:`Outcome`.

Both are plain, picklable data: the function travels by reference (module and qualified name),
the inputs as plain dicts, lists and scalars (heavy values as they are: they pickle by name).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..paths import Path, Pattern
from ..update import Op

__all__ = ["FuncRef", "Outcome", "Task", "func_ref"]


@dataclass(frozen=True)
class FuncRef:
    """A module-level function by name: ``module`` and ``qualname``."""

    module: str
    qualname: str

    def resolve(self) -> Callable[..., Any]:
        """Import the module and return the function (``ImportError``/``AttributeError`` say
        which name is missing)."""
        try:
            obj: Any = importlib.import_module(self.module)
        except ImportError as exc:
            exc.add_note(
                f"the worker could not import the process's module {self.module!r}: it must be "
                "importable where the worker runs (on its sys.path / installed there)"
            )
            raise
        for part in self.qualname.split("."):
            obj = getattr(obj, part)
        return obj  # type: ignore[no-any-return]


def func_ref(fn: Callable[..., Any], process: str) -> FuncRef:
    """The reference of ``fn``; ``TypeError`` when a worker could not import it by that name
    (a lambda, a function defined inside another, a replaced module attribute)."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        raise TypeError(
            f"parallel process {process!r}: its function {qualname or fn!r} must be importable "
            "by a worker as module.name (a module-level def), not a lambda or a function "
            "defined inside another; use executor='threads' for such functions"
        )
    ref = FuncRef(module, qualname)
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not fn and getattr(found, "__wrapped__", None) is not fn:
        raise TypeError(
            f"parallel process {process!r}: {module}.{qualname} does not name its function "
            "(the module attribute is something else), so a worker could not import it"
        )
    return ref


@dataclass(frozen=True)
class Task:
    """One attempt of one parallel process, as a worker receives it."""

    #: the function: a :class:`FuncRef` (pickling executors) or the function itself (threads)
    target: FuncRef | Callable[..., Any]
    kwargs: dict[str, Any]
    name: str
    inputs: tuple[Pattern, ...]
    outputs: tuple[Pattern, ...]
    semantic: str
    #: the version the inputs were read at (``ctx.version`` in the worker)
    version: int
    #: the sparse context: every namespace, holding only the shipped paths
    context: dict[str, Any]
    #: signals of the base version covered by the contract: ``(path, value)``
    signals: tuple[tuple[Path, Any], ...] = ()
    strict_guards: bool = True
    #: the outcome must survive pickling (a process pool, Dask ...): checked in the worker
    pickled: bool = True
    #: unique per attempt: executors that cache by their arguments (Dask's ``pure=True``)
    #: never answer an attempt with another's outcome
    call: str = ""


@dataclass
class Outcome:
    """What a worker sends back: the attempt's delta, or the exception it raised."""

    #: the paths the process read (recorded reads of its transaction, spec/05): the engine
    #: records them on its own transaction, so conflicts are those of the inline process
    reads: tuple[Path, ...] = ()
    #: ``(kind, path, value)`` operations of :class:`theus.update.Update`: ``set`` (plain
    #: value; signal paths too), ``delete``, ``append``
    ops: tuple[Op, ...] = ()
    #: outbox messages, ``(topic, payload)``, in order
    outbox: tuple[tuple[str, Any], ...] = ()
    #: the process's return value (views converted to plain data)
    result: Any = None
    #: the exception the process (or the worker) raised; nothing is committed then
    error: BaseException | None = None
    #: the worker's traceback text of ``error``
    trace: str = ""
    #: worker facts for diagnostics (pid, interpreter)
    where: dict[str, Any] = field(default_factory=dict)
