"""Engine micro-benchmarks, parametrized by backend.

Timing method. This asv_runner isolates every timed call of a benchmark that has a `setup` hook
(it re-runs `setup` between calls, asv#966), so such a benchmark times single cold calls. These
benchmarks therefore have no `setup`: each builds its engine on its first call, which falls in
asv's warmup (every class sets an explicit `number`, so no estimation call is timed either), and
keeps it in a module cache keyed by the parameters. A sample is `number` back-to-back calls
(about 5-50 ms); the cache lookup (~0.1 µs) is included in every number. `params` lists only the
backends installed in the benchmarking environment.

What is measured (REQUIREMENTS §5):
- `Execute`: `engine.execute` of a trivial process that reads one key and writes one key.
- `GuardedRead`: one guarded read `ctx.domain.x` inside a process. Two processes run the same
  1000-iteration loop: one does `ctx.domain.x` each time, the other reads a local variable.
  Per read = (reads_1000 - reads_0) / 1000; `report.py` prints it.
- `CommitScale`: the `Execute` process and a one-key host transaction on a `domain` of 10 vs
  100 000 keys; structural sharing means the ratio should stay near 1 (target <= x2).
- `LogAppend`: `execute` appending one item to a `log_` list of 10 vs 100 000 items.
- `HostTransaction`: `engine.transaction()` with 1 and 100 writes.
- `Baseline`: plain Python, copy a 10-key dict and set one key; every other number is also
  reported as a multiple of this one, measured in the same run.
- `ReadBaseline`: plain Python, the `GuardedRead` loop outside any engine: 1000 reads of
  `d["x"]` from a dict against 1000 reads of a local; per dict read = (dict - local) / 1000,
  the same-run peer of the guarded read.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from typing import Any

from theus import TheusEngine, backends, process

BACKENDS = tuple(
    name
    for name in ("reference", "rust")
    if any(info.name == name and info.error is None for info in backends())
)
N_READS = 1000
_ENGINES: dict[tuple[Any, ...], TheusEngine] = {}


def engine_for(key: tuple[Any, ...], domain: Callable[[], Mapping[str, Any]]) -> TheusEngine:
    """The cached engine for `key` = (benchmark, backend, ...); built on first use."""
    engine = _ENGINES.get(key)
    if engine is None:
        engine = TheusEngine(context={"domain": dict(domain()), "global": {}}, backend=key[1])
        for fn in (read_one_write_one, reads_1000, reads_0, log_one):
            engine.register(fn)
        # Building a large state leaves young objects for the cyclic GC; collect them now.
        gc.collect()
        engine = _ENGINES[key] = engine
    return engine


@process(inputs=["domain.x"], outputs=["domain.y"])
def read_one_write_one(ctx: Any) -> None:
    ctx.domain.y = ctx.domain.x + 1


@process(inputs=["domain.x"], outputs=[])
def reads_1000(ctx: Any) -> None:
    for _ in range(N_READS):
        value = ctx.domain.x
    del value


@process(inputs=["domain.x"], outputs=[])
def reads_0(ctx: Any) -> None:
    local = 1
    for _ in range(N_READS):
        value = local
    del value


def _small() -> dict[str, Any]:
    return {"x": 1, "y": 0}


class Execute:
    """`engine.execute` of a process reading one key and writing one key."""

    number = 2000
    params = BACKENDS
    param_names = ("backend",)

    def time_execute_read1_write1(self, backend: str) -> None:
        engine_for(("execute", backend), _small).execute(read_one_write_one)


class GuardedRead:
    """1000 guarded reads in one process, against the same loop reading a local."""

    number = 20
    params = BACKENDS
    param_names = ("backend",)

    def time_reads_1000(self, backend: str) -> None:
        engine_for(("reads", backend), _small).execute(reads_1000)

    def time_reads_0(self, backend: str) -> None:
        engine_for(("reads", backend), _small).execute(reads_0)


def _domain_of(keys: int) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        domain: dict[str, Any] = {f"k{i}": i for i in range(keys - 2)}
        domain.update(x=1, y=0)
        return domain

    return build


class CommitScale:
    """A one-key change on a small and a large state: cost must follow the change, not the state."""

    number = 1000
    params = (BACKENDS, (10, 100_000))
    param_names = ("backend", "keys")
    timeout = 120.0

    def time_execute_write_one(self, backend: str, keys: int) -> None:
        engine_for(("scale", backend, keys), _domain_of(keys)).execute(read_one_write_one)

    def time_transaction_write_one(self, backend: str, keys: int) -> None:
        with engine_for(("scale", backend, keys), _domain_of(keys)).transaction() as tx:
            tx.update(data={"domain.y": 1})


@process(outputs=["domain.log_events"])
def log_one(ctx: Any) -> None:
    ctx.domain.log_events.append(1)


class LogAppend:
    """`execute` appending one item to a `log_` list of 10 vs 100 000 items (structural sharing
    of lists: the cost must follow the change, not the list)."""

    number = 1000
    params = (BACKENDS, (10, 100_000))
    param_names = ("backend", "items")
    timeout = 120.0

    def time_append_one(self, backend: str, items: int) -> None:
        engine = engine_for(("log", backend, items), lambda: {"log_events": list(range(items))})
        engine.execute(log_one)


class HostTransaction:
    """`engine.transaction()` with 1 and 100 writes into a 100-key domain."""

    number = 100
    params = (BACKENDS, (1, 100))
    param_names = ("backend", "writes")

    def time_transaction(self, backend: str, writes: int) -> None:
        engine = engine_for(("host", backend), lambda: {f"k{i}": 0 for i in range(100)})
        with engine.transaction() as tx:
            tx.update(data=_WRITES[writes])


_WRITES = {n: {f"domain.k{i}": 1 for i in range(n)} for n in (1, 100)}


_BASELINE_STATE = {f"k{i}": i for i in range(10)}


class Baseline:
    """Plain Python: copy a 10-key dict and set one key (the unit the ratios are given in)."""

    number = 100_000

    def time_dict_copy_set_one(self) -> None:
        new = dict(_BASELINE_STATE)
        new["k0"] = -1


_READ_STATE = {"x": 1, "y": 0}


def _dict_reads(d: dict[str, Any]) -> None:
    for _ in range(N_READS):
        value = d["x"]
    del value


def _local_reads(d: dict[str, Any]) -> None:
    local = 1
    for _ in range(N_READS):
        value = local
    del value


class ReadBaseline:
    """Plain Python: the `GuardedRead` loops on a dict and on a local, no engine."""

    number = 20

    def time_dict_reads_1000(self) -> None:
        _dict_reads(_READ_STATE)

    def time_local_reads_1000(self) -> None:
        _local_reads(_READ_STATE)
