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
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, cast

from .contracts import ProcessSpec
from .errors import ConflictError, ContractViolationError
from .paths import Pattern
from .protocols import EngineCore, TxCore
from .update import StateUpdate, Update

__all__ = [
    "apply_return",
    "arity_error",
    "run_async",
    "run_sync",
    "settle",
    "wildcard_error",
]


def arity_error(spec: ProcessSpec, result: Any) -> ContractViolationError:
    """The error for a return value that does not fit ``spec``'s outputs (spec/06); shared by
    every backend's return mapping (the Rust loop calls it only when it raises)."""
    outputs = spec.outputs
    got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
    return ContractViolationError(
        f"process {spec.name!r} has {len(outputs)} outputs "
        f"{[p.text for p in outputs]}, so it must return a tuple of {len(outputs)} "
        f"values (or a StateUpdate, or None); it returned {got}"
    )


def wildcard_error(spec: ProcessSpec, pattern: Pattern) -> ContractViolationError:
    """The error for a value returned to an output with a wildcard (spec/06)."""
    return ContractViolationError(
        f"process {spec.name!r} returned a value, but output {pattern.text!r} has a "
        "wildcard and cannot receive one; return a StateUpdate naming the paths"
    )


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
        raise arity_error(spec, result)
    else:
        values = result
    for pattern in outputs:
        if pattern.has_wildcard:
            raise wildcard_error(spec, pattern)
    tx.apply(Update(tuple(("set", p.segments, v) for p, v in zip(outputs, values, strict=True))))


def settle(tx: TxCore, spec: ProcessSpec, result: Any, attempt: int) -> int | None:
    """Map the return value and commit attempt ``attempt`` (0-based) of ``spec``.

    The version the commit made; None when it lost and may be re-run; ``ConflictError`` when
    it lost and re-runs are exhausted.
    """
    apply_return(tx, spec, result)
    try:
        snapshot = tx.commit()
    except ConflictError as exc:
        if attempt >= spec.retries:
            raise ConflictError(
                f"process {spec.name!r} lost to concurrent commits {attempt + 1} times "
                f"(retries={spec.retries}): {exc}"
            ) from exc
        return None
    return int(snapshot.version)


async def _attempts(
    core: EngineCore,
    handle: Any,
    spec: ProcessSpec,
    invoke: Callable[[Any], Awaitable[Any]],
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random,
    exclusive: bool,
) -> tuple[Any, int]:
    """The attempt loop (spec/05), one for the sync and the async front-end: begin, run the
    process (``await invoke(ctx)``), map its return value, commit; on conflict re-run as the
    process's :class:`~theus.retry.RetryPolicy` says (``exclusive``: the last re-run of a sync
    process holds the commit order). Returns the process's return value and the version its
    commit made."""
    policy = spec.retry_policy
    attempt = 0
    while True:
        tx = core.begin(handle, exclusive and policy.exclusive(attempt))
        try:
            result = await invoke(tx.ctx)
            version = settle(tx, spec, result, attempt)
            if version is not None:
                return result, version
        finally:
            tx.close()
        attempt += 1
        await sleep(policy.delay(attempt, rng))


async def _sleep_blocking(delay: float) -> None:
    if delay:
        time.sleep(delay)


def run_sync(
    core: EngineCore, handle: Any, spec: ProcessSpec, kwargs: dict[str, Any], rng: random.Random
) -> tuple[Any, int]:
    """Run a sync process inline: :func:`_attempts` driven without an event loop (nothing in
    it awaits anything that suspends), so the process runs on the caller's thread. Returns
    its return value and the version its commit made."""
    func = spec.func

    async def invoke(ctx: Any) -> Any:
        return func(ctx, **kwargs)

    loop = _attempts(core, handle, spec, invoke, _sleep_blocking, rng, True)
    try:
        loop.send(None)
    except StopIteration as done:
        return cast(tuple[Any, int], done.value)
    loop.close()  # pragma: no cover - nothing above suspends
    raise RuntimeError("the sync attempt loop suspended")  # pragma: no cover


async def run_async(
    core: EngineCore,
    handle: Any,
    spec: ProcessSpec,
    kwargs: dict[str, Any],
    rng: random.Random,
    executor: Callable[[], Executor],
) -> tuple[Any, int]:
    """Run any process from async code (spec/11): await async ones, offload ``cpu_heavy`` ones.
    Returns its return value and the version its commit made."""
    func = spec.func

    async def invoke(ctx: Any) -> Any:
        if spec.is_async:
            return await func(ctx, **kwargs)
        if spec.cpu_heavy:
            call = functools.partial(func, ctx, **kwargs)
            context = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor(), context.run, call)
        return func(ctx, **kwargs)

    return await _attempts(core, handle, spec, invoke, asyncio.sleep, rng, False)
