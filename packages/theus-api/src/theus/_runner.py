"""The generic process runner: one attempt loop shared by the sync and async front-ends.

A backend with capability ``native-execute`` runs sync processes itself and MUST behave exactly
like :func:`run_sync` (spec/14).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from .contracts import ProcessSpec
from .errors import ConflictError, ContractViolationError
from .protocols import EngineCore, TxCore
from .update import StateUpdate, Update

__all__ = ["apply_return", "backoff", "run_async", "run_sync", "settle"]

BACKOFF_BASE = 0.0005  # seconds: re-run k >= 2 sleeps uniform(0, BACKOFF_BASE * 2**(k-2))


def backoff(attempt: int, rng: random.Random) -> float:
    """The jittered sleep before re-run ``attempt`` (1-based); the first re-run is immediate.

    A sync process that lost usually lost because its thread was preempted mid-transaction;
    re-running at once, while the thread holds a fresh GIL slice, nearly always wins, whereas
    sleeping would hand the GIL away again.
    """
    if attempt <= 1:
        return 0.0
    return rng.uniform(0.0, BACKOFF_BASE * (1 << (attempt - 2)))


def apply_return(tx: TxCore, spec: ProcessSpec, result: Any) -> None:
    """Map a process's return value onto its outputs (spec/06)."""
    if isinstance(result, StateUpdate):
        tx.apply(result.to_update())
        return
    if result is None or tx.wrote or not spec.outputs:
        return
    outputs = spec.outputs
    if len(outputs) == 1:
        values: tuple[Any, ...] = (result,)
    elif not isinstance(result, tuple) or len(result) != len(outputs):
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        raise ContractViolationError(
            f"process {spec.name!r} has {len(outputs)} outputs "
            f"{[p.text for p in outputs]}, so it must return a tuple of {len(outputs)} "
            f"values (or a StateUpdate, or None); it returned {got}"
        )
    else:
        values = result
    for pattern in outputs:
        if pattern.has_wildcard:
            raise ContractViolationError(
                f"process {spec.name!r} returned a value, but output {pattern.text!r} has a "
                "wildcard and cannot receive one; return a StateUpdate naming the paths"
            )
    tx.apply(Update(tuple(("set", p.segments, v) for p, v in zip(outputs, values, strict=True))))


def settle(tx: TxCore, spec: ProcessSpec, result: Any, attempt: int) -> bool:
    """Map the return value and commit attempt ``attempt`` (0-based) of ``spec``.

    True when committed; False when it lost and may be re-run; ``ConflictError`` when it lost
    and re-runs are exhausted.
    """
    apply_return(tx, spec, result)
    try:
        tx.commit()
    except ConflictError as exc:
        if attempt >= spec.retries:
            raise ConflictError(
                f"process {spec.name!r} lost to concurrent commits {attempt + 1} times "
                f"(retries={spec.retries}): {exc}"
            ) from exc
        return False
    return True


def run_sync(
    core: EngineCore, handle: Any, spec: ProcessSpec, kwargs: dict[str, Any], rng: random.Random
) -> Any:
    """Run a sync process inline: attempt, map the return value, commit; re-run on conflict.

    The last re-run is exclusive (spec/05), so it cannot lose.
    """
    attempt = 0
    while True:
        tx = core.begin(handle, attempt > 0 and attempt == spec.retries)
        try:
            result = spec.func(tx.ctx, **kwargs)
            if settle(tx, spec, result, attempt):
                return result
        finally:
            tx.close()
        attempt += 1
        delay = backoff(attempt, rng)
        if delay:
            time.sleep(delay)


async def run_async(
    core: EngineCore,
    handle: Any,
    spec: ProcessSpec,
    kwargs: dict[str, Any],
    rng: random.Random,
    executor: Callable[[], Executor],
) -> Any:
    """Run any process from async code (spec/11): await async ones, offload ``cpu_heavy`` ones."""
    attempt = 0
    while True:
        tx = core.begin(handle)
        try:
            if spec.is_async:
                result = await spec.func(tx.ctx, **kwargs)
            elif spec.cpu_heavy:
                call = functools.partial(spec.func, tx.ctx, **kwargs)
                context = contextvars.copy_context()
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(executor(), context.run, call)
            else:
                result = spec.func(tx.ctx, **kwargs)
            if settle(tx, spec, result, attempt):
                return result
        finally:
            tx.close()
        attempt += 1
        await asyncio.sleep(backoff(attempt, rng))
