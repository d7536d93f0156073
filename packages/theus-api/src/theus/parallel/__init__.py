"""Parallel processes (spec/22): executors, the task a worker runs and what it sends back.

``@process(parallel=True)`` or ``@process(executor=...)`` runs a process on a worker; the engine
side is :mod:`theus.parallel.dispatch`, the worker side :func:`theus.parallel.worker.run_task`,
the ``"processes"`` executor :class:`theus.parallel.pool.ProcessPool`.
"""

from __future__ import annotations

from .executors import available_executors
from .pool import ProcessPool
from .task import FuncRef, Outcome, Task

__all__ = ["FuncRef", "Outcome", "ProcessPool", "Task", "available_executors"]
