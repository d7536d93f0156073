"""A nested flow on Flux: `flux: run` with `workflow: clean.yaml` inside a loop
(examples/flux/nested.yaml), driven one event at a time with `iter_workflow`, stopped half way
and resumed from its position (saved as JSON, as a process that restarts would).

Run: python examples/flux/nested.py [--backend reference|rust]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from theus import TheusEngine, process
from theus.flux import Position, StepCommitted

HERE = Path(__file__).resolve().parent


@process(outputs=["domain.batch", "domain.rows", "domain.cleaned"])
def open_batch(ctx: Any) -> None:
    ctx.domain.batch = 0
    ctx.domain.rows = [3, 1, 3, 2, 1, 5]
    ctx.domain.cleaned = []


@process(inputs=["domain.rows"], outputs=["domain.rows"])
def dedupe(ctx: Any) -> None:
    seen: list[int] = []
    for row in ctx.domain.rows:
        if row not in seen:
            seen.append(row)
    ctx.domain.rows = seen


@process(inputs=["domain.rows"], outputs=["domain.rows"])
def compact(ctx: Any) -> None:
    ctx.domain.rows = sorted(ctx.domain.rows)[:3]


@process(inputs=["domain.batch", "domain.rows", "domain.cleaned"],
         outputs=["domain.batch", "domain.rows", "domain.cleaned"])  # fmt: skip
def next_batch(ctx: Any) -> None:
    ctx.domain.cleaned.append(list(ctx.domain.rows))
    ctx.domain.batch += 1
    ctx.domain.rows = [ctx.domain.batch * 2, 7, 7, 1, 9]


@process(inputs=["domain.cleaned"], outputs=["domain.total"])
def close_batch(ctx: Any) -> None:
    ctx.domain.total = sum(len(rows) for rows in ctx.domain.cleaned)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="backend name (default: best installed)")
    args = parser.parse_args()
    engine = TheusEngine(context={"domain": {"batches": 3}, "global": {}}, backend=args.backend)
    for fn in (open_batch, dedupe, compact, next_batch, close_batch):
        engine.register(fn)
    workflow = HERE / "nested.yaml"
    it = engine.iter_workflow(workflow)
    done: list[str] = []
    for event in it:
        if isinstance(event, StepCommitted):
            done.append(event.process)
            if len(done) == 4:
                break
    it.close()
    saved = json.dumps(it.position.to_json())
    print(f"stopped after {done}; position {saved}")
    run = engine.execute_workflow(workflow, position=Position.from_json(json.loads(saved)))
    state = engine.state
    print(f"resumed: {' '.join(run.executed)}")
    print(f"cleaned batches {[list(b) for b in state.domain.cleaned]}, total {state.domain.total}")
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
