"""Executor names to executors (spec/22): ``"processes"``, ``"threads"``, ``"subinterpreters"``.

``"subinterpreters"`` is :class:`theus.parallel.subinterp.SubinterpreterExecutor` when that
module is present and its ``available()`` says this interpreter can run it; otherwise asking
for it raises :class:`ExecutorUnavailableError` naming what is available. Nothing ever falls
back to another executor silently.
"""

from __future__ import annotations

import importlib
import sys
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from ..errors import ExecutorUnavailableError

__all__ = ["available_executors", "check_available", "make_executor"]


def _subinterp() -> tuple[Any, str]:
    """The sub-interpreter module, or None and why it cannot be used."""
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info < (3, 13):
        return None, f"sub-interpreters need Python >= 3.13 (this is {version})"
    try:
        module = importlib.import_module("theus.parallel.subinterp")
    except ImportError as exc:
        return None, f"theus.parallel.subinterp cannot be imported ({exc})"
    try:
        ok = module.available()
    except Exception as exc:  # a broken probe is "not available", with the reason
        return None, f"theus.parallel.subinterp.available() failed: {exc!r}"
    if not ok:
        return None, f"sub-interpreters need Python >= 3.13 with _interpreters (this is {version})"
    return module, ""


def available_executors() -> tuple[str, ...]:
    """The executor names this interpreter can run."""
    names = ["processes", "threads"]
    if _subinterp()[0] is not None:
        names.append("subinterpreters")
    return tuple(names)


def check_available(name: str, where: str) -> None:
    """``ExecutorUnavailableError`` if executor ``name`` cannot run here."""
    if name == "subinterpreters":
        module, why = _subinterp()
        if module is None:
            raise ExecutorUnavailableError(
                f"{where}: executor 'subinterpreters' is not available: {why}; available "
                f"here: {list(available_executors())} or any concurrent.futures.Executor"
            )


def make_executor(name: str, label: str) -> tuple[Executor, bool]:
    """A new executor for ``name`` and whether its calls are pickled (all but threads)."""
    if name == "threads":
        return ThreadPoolExecutor(thread_name_prefix=f"{label}-parallel"), False
    if name == "processes":
        from .pool import ProcessPool

        return ProcessPool(), True
    check_available(name, label)
    module = _subinterp()[0]
    return module.SubinterpreterExecutor(), True
