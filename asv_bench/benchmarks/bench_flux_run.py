"""Flux run benchmarks (spec/18 §4–§6), parametrized by backend, with a same-run baseline.

Timing method: as in bench_engine.py (no `setup` hooks; each engine is built on first use,
which falls in asv's warmup, and kept in a module cache; every class sets an explicit
`number`), except that the timer is `time.process_time` (CPU time of this process; the runs
are single-threaded): on a shared machine wall-clock samples of 10-200 ms calls vary 2-3x with
the other jobs, CPU time much less, and the baseline and the workflows are measured alike.
The workflows are loaded on first use too and then come from the engine's workflow cache, as
they do for any repeated run; no `on_event` callback and no hub receiver, so no event is
built.

`FluxRun`, parameter `backend`:
- `time_python_loop_1000`: the baseline — a Python `for` loop calling `engine.execute(tick)`
  1 000 times (`tick`: reads and writes one int);
- `time_linear_1000`: `engine.execute_workflow` of a workflow of 1 000 `- tick` steps. Per-step
  overhead of the machine = (linear_1000 - python_loop_1000) / 1000; target for rust: <= 5 µs;
- `time_while_1000`: a `flux: while` with the condition `domain.n < stop` (`stop` an input set
  1 000 above the current count) and the body `[tick]`: 1 000 iterations of condition + one
  step. Per-iteration overhead = (while_1000 - python_loop_1000) / 1000; target for rust:
  <= 5 µs.

Loading and validating a 1 000-step file is `FluxLoad.time_parse_1000_steps` in
bench_flux_expr.py (target <= 50 ms).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from theus import TheusEngine, backends, process

BACKENDS = tuple(
    name
    for name in ("reference", "rust")
    if any(info.name == name and info.error is None for info in backends())
)
N = 1000
LINEAR = "steps:\n" + "  - tick\n" * N
WHILE = (
    "inputs: {stop: 0}\n"
    "steps:\n"
    "  - flux: while\n"
    "    condition: domain.n < stop\n"
    f"    max_iterations: {N}\n"
    "    do: [tick]\n"
)
_ENGINES: dict[str, TheusEngine] = {}


@process(inputs=["domain.n"], outputs=["domain.n"])
def tick(ctx: Any) -> None:
    ctx.domain.n += 1


def engine_for(backend: str) -> TheusEngine:
    """The cached engine of ``backend``, its workflows loaded once."""
    engine = _ENGINES.get(backend)
    if engine is None:
        engine = TheusEngine(context={"domain": {"n": 0}, "global": {}}, backend=backend)
        engine.register(tick)
        engine.execute_workflow("steps: [tick]\n")
        gc.collect()
        _ENGINES[backend] = engine
    return engine


class FluxRun:
    """1 000 steps: from a Python loop, as a linear workflow, as a `while` loop."""

    number = 1
    repeat = (5, 20, 30.0)
    timer = time.process_time
    params = BACKENDS
    param_names = ("backend",)
    timeout = 300.0

    def time_python_loop_1000(self, backend: str) -> None:
        engine = engine_for(backend)
        execute = engine.execute
        for _ in range(N):
            execute(tick)

    def time_linear_1000(self, backend: str) -> None:
        engine_for(backend).execute_workflow(LINEAR)

    def time_while_1000(self, backend: str) -> None:
        engine = engine_for(backend)
        engine.execute_workflow(WHILE, inputs={"stop": engine.state.domain.n + N})
