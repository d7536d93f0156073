"""Engine micro-benchmarks, parametrized by backend.

Each class builds its engine once in `setup` (asv calls it before every repeat, outside the
timed region). A backend that is not installed raises `NotImplementedError` in `setup`, asv's
convention for "skip": it shows up as n/a, never as a fake number.

What is measured (REQUIREMENTS §5):
- `Execute`: `engine.execute` of a trivial process that reads one key and writes one key.
- `GuardedRead`: one guarded read `ctx.domain.x` inside a process. A single read is far below
  timer resolution, so two processes run the same 1000-iteration loop: one does `ctx.domain.x`
  each time, the other reads a local variable. Per read = (reads_1000 − reads_0) / 1000; the
  subtraction removes the `execute` overhead and the loop itself. `report.py` prints it.
- `CommitScale`: the `Execute` process and a one-key host transaction on a `domain` of 10 vs
  100 000 keys; structural sharing means the ratio should stay near 1 (target ≤ ×2).
- `HostTransaction`: `engine.transaction()` with 1 and 100 writes.
- `Baseline`: plain Python, copy a 10-key dict and set one key; every other number is also
  reported as a multiple of this one, measured in the same run.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from typing import Any

from theus import BackendLoadError, BackendNotFoundError, TheusEngine, process

BACKENDS = ("reference", "rust")
N_READS = 1000


def make_engine(backend: str, domain: Mapping[str, Any]) -> TheusEngine:
    """An engine on `backend`, or NotImplementedError (asv: skip) if it is not installed."""
    try:
        engine = TheusEngine(context={"domain": dict(domain), "global": {}}, backend=backend)
    except (BackendNotFoundError, BackendLoadError) as exc:
        raise NotImplementedError(f"backend {backend!r} is not available: {exc}") from exc
    # Building a 100 000-key state leaves a debt of young objects that the cyclic GC would
    # collect inside the first timed sample; pay it here so samples time the commit only.
    gc.collect()
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


class _EngineBench:
    """Closes the engine after each repeat (teardown also runs when setup skipped)."""

    engine: TheusEngine | None = None

    def teardown(self, *params: object) -> None:
        if self.engine is not None:
            self.engine.close()


class Execute(_EngineBench):
    """`engine.execute` of a process reading one key and writing one key."""

    params = BACKENDS
    param_names = ("backend",)

    def setup(self, backend: str) -> None:
        self.engine = make_engine(backend, {"x": 1, "y": 0})
        self.engine.execute(read_one_write_one)  # registers and compiles the contract

    def time_execute_read1_write1(self, backend: str) -> None:
        self.engine.execute(read_one_write_one)


class GuardedRead(_EngineBench):
    """1000 guarded reads in one process, against the same loop reading a local."""

    params = BACKENDS
    param_names = ("backend",)

    def setup(self, backend: str) -> None:
        self.engine = make_engine(backend, {"x": 1})
        self.engine.execute(reads_1000)
        self.engine.execute(reads_0)

    def time_reads_1000(self, backend: str) -> None:
        self.engine.execute(reads_1000)

    def time_reads_0(self, backend: str) -> None:
        self.engine.execute(reads_0)


class CommitScale(_EngineBench):
    """A one-key change on a small and a large state: cost must follow the change, not the state."""

    params = (BACKENDS, (10, 100_000))
    param_names = ("backend", "keys")
    timeout = 120.0

    def setup(self, backend: str, keys: int) -> None:
        domain: dict[str, Any] = {f"k{i}": i for i in range(keys - 2)}
        domain.update(x=1, y=0)
        self.engine = make_engine(backend, domain)
        self.engine.execute(read_one_write_one)
        self.data = {"domain.y": 1}

    def time_execute_write_one(self, backend: str, keys: int) -> None:
        self.engine.execute(read_one_write_one)

    def time_transaction_write_one(self, backend: str, keys: int) -> None:
        with self.engine.transaction() as tx:
            tx.update(data=self.data)


class HostTransaction(_EngineBench):
    """`engine.transaction()` with 1 and 100 writes into a 100-key domain."""

    params = (BACKENDS, (1, 100))
    param_names = ("backend", "writes")

    def setup(self, backend: str, writes: int) -> None:
        self.engine = make_engine(backend, {f"k{i}": 0 for i in range(100)})
        self.data = {f"domain.k{i}": 1 for i in range(writes)}

    def time_transaction(self, backend: str, writes: int) -> None:
        with self.engine.transaction() as tx:
            tx.update(data=self.data)


class Baseline:
    """Plain Python: copy a 10-key dict and set one key (the unit the ratios are given in)."""

    def setup(self) -> None:
        self.state = {f"k{i}": i for i in range(10)}

    def time_dict_copy_set_one(self) -> None:
        new = dict(self.state)
        new["k0"] = -1
