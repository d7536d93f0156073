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
from collections.abc import Awaitable, Callable, Coroutine
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
    "in_place_error",
    "return_plan",
    "run_async",
    "run_sync",
    "settle",
    "wildcard_error",
]


def arity_error(spec: ProcessSpec, result: Any) -> ContractViolationError:
    """The error for a return value that does not fit ``spec``'s outputs (spec/06); shared by
    every backend's return mapping (the Rust loop calls it only when it raises)."""
    outputs = spec.outputs
    if isinstance(result, tuple | list):
        got = f"a {type(result).__name__} of {len(result)}"
    else:
        got = type(result).__name__
    return ContractViolationError(
        f"process {spec.name!r} has {len(outputs)} outputs "
        f"{[p.text for p in outputs]}, so it must return a tuple or list of "
        f"{len(outputs)} values, a dict keyed by its outputs (or a StateUpdate, or None); "
        f"it returned {got}"
    )


def wildcard_error(spec: ProcessSpec, pattern: Pattern) -> ContractViolationError:
    """The error for a value returned to an output with a wildcard (spec/06)."""
    return ContractViolationError(
        f"process {spec.name!r} returned a value, but output {pattern.text!r} has a "
        "wildcard and cannot receive one; return a StateUpdate naming the paths"
    )


def _keyed_values(spec: ProcessSpec, result: dict[Any, Any]) -> list[Any] | None:
    """The values of a dict keyed by output paths or leaves (Theus 3, spec/06 rule 4), one per
    output (``None``: not named); ``None`` when no key names an output. A dict that names
    some outputs and has other keys, or names one output twice, is refused."""
    outputs = spec.outputs
    names: dict[str, int] = {}
    ambiguous: set[str] = set()
    for i, pattern in enumerate(outputs):
        for name in {pattern.text, pattern.segments[-1]}:
            if name in names and names[name] != i:
                ambiguous.add(name)
            names.setdefault(name, i)
    if not any(isinstance(k, str) and k in names for k in result):
        return None
    values: list[Any] = [None] * len(outputs)
    named: dict[int, str] = {}
    for key, value in result.items():
        if not isinstance(key, str) or key not in names or key in ambiguous:
            raise ContractViolationError(
                f"process {spec.name!r} returned a dict keyed by its outputs "
                f"{[p.text for p in outputs]}, but key {key!r} "
                + ("names more than one output" if key in ambiguous else "names none of them")
                + "; return a tuple in output order, or a StateUpdate"
            )
        i = names[key]
        if i in named:
            raise ContractViolationError(
                f"process {spec.name!r} returned a dict naming output {outputs[i].text!r} "
                f"twice ({named[i]!r} and {key!r}); return a tuple in output order, "
                "or a StateUpdate"
            )
        named[i] = key
        values[i] = value
    return values


def in_place_error(spec: ProcessSpec, result: Any) -> ContractViolationError:
    """The error for a plain value returned to a single output after in-place writes (spec/06
    rule 3): Theus 3 wrote it over them; this engine does not guess."""
    return ContractViolationError(
        f"process {spec.name!r} wrote in place and also returned a "
        f"{type(result).__name__} for its output {spec.outputs[0].text!r}; after in-place "
        "writes only an exact mapping is applied (a dict keyed by the output, or a "
        "StateUpdate): return None to keep the in-place writes alone, or write only by "
        "returning"
    )


def return_plan(spec: ProcessSpec, result: Any, wrote: bool = False) -> list[tuple[int, Any]]:
    """The writes a plain return value maps to (spec/06): ``(output index, value)`` pairs in
    output order. ``None`` values (and outputs a keyed dict does not name) are left out: they
    leave their output as it is. ``wrote``: the attempt wrote in place, so only an exact
    mapping is accepted (a tuple or list for several outputs, a keyed dict). Shared by every
    backend's return mapping (the Rust loop calls it for everything but a plain value without
    in-place writes or a full tuple)."""
    outputs = spec.outputs
    values: list[Any] | tuple[Any, ...] | None = None
    if isinstance(result, dict):
        values = _keyed_values(spec, result)
    if values is None:
        if len(outputs) == 1:
            if wrote:
                raise in_place_error(spec, result)
            values = (result,)
        elif isinstance(result, tuple | list) and len(result) == len(outputs):
            values = result
        else:
            raise arity_error(spec, result)
    plan = [(i, v) for i, v in enumerate(values) if v is not None]
    for i, _ in plan:
        if outputs[i].has_wildcard:
            raise wildcard_error(spec, outputs[i])
    return plan


def apply_return(tx: TxCore, spec: ProcessSpec, result: Any) -> None:
    """Map a process's return value onto its outputs (spec/06), after its in-place writes."""
    if isinstance(result, StateUpdate):
        tx.apply(result.to_update())
        return
    if result is None or not spec.outputs:
        return
    outputs = spec.outputs
    plan = return_plan(spec, result, bool(tx.wrote))
    tx.apply(Update(tuple(("set", outputs[i].segments, v) for i, v in plan)))


def settle(tx: TxCore, spec: ProcessSpec, result: Any, attempt: int) -> int | None:
    """Map the return value and commit attempt ``attempt`` (0-based) of ``spec``.

    The version the commit made; None when it lost and may be re-run; ``ConflictError`` when
    it lost and re-runs are exhausted.
    """
    apply_return(tx, spec, result)
    try:
        snapshot = tx.commit()
    except ConflictError as exc:
        _lost(spec, attempt, exc)
        return None
    return int(snapshot.version)


def _lost(spec: ProcessSpec, attempt: int, exc: ConflictError) -> None:
    """Attempt ``attempt`` lost: return to re-run it; ``ConflictError`` when re-runs are
    exhausted."""
    if attempt >= spec.retries:
        raise ConflictError(
            f"process {spec.name!r} lost to concurrent commits {attempt + 1} times "
            f"(retries={spec.retries}): {exc}"
        ) from exc


async def _attempts(
    core: EngineCore,
    handle: Any,
    spec: ProcessSpec,
    invoke: Callable[[Any], Awaitable[Any]],
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random,
    exclusive: bool,
    remote: bool = False,
) -> tuple[Any, int]:
    """The attempt loop (spec/05), one for the sync and the async front-end: begin, run the
    process (``await invoke(ctx)``), map its return value, commit; on conflict re-run as the
    process's :class:`~theus.retry.RetryPolicy` says (``exclusive``: the last re-run of a sync
    process holds the commit order). Returns the process's return value and the version its
    commit made.

    ``remote`` (parallel processes, spec/22): ``invoke`` receives the transaction itself, runs
    the process on a worker and applies the worker's delta (return mapping included) to it; a
    :class:`theus.parallel.dispatch.Stale` it raises counts as a lost attempt."""
    policy = spec.retry_policy
    attempt = 0
    while True:
        tx = core.begin(handle, exclusive and policy.exclusive(attempt))
        try:
            if remote:
                from .parallel.dispatch import Stale

                try:
                    result = await invoke(tx)
                except Stale as exc:
                    _lost(spec, attempt, exc)
                    version = None
                else:
                    version = settle(tx, spec, None, attempt)
            else:
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

    return _drive(_attempts(core, handle, spec, invoke, _sleep_blocking, rng, True))


def _drive(loop: Coroutine[Any, Any, tuple[Any, int]]) -> tuple[Any, int]:
    """Run an attempt loop that never suspends (sync front-ends) to its result."""
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
