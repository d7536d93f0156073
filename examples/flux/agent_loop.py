"""An agent loop on Flux: `while` + `max_iterations` + a stop signal (agent_loop.yaml).

Each turn the agent thinks, acts with an effort computed from the state (`with: {expr: ...}`)
and a judge raises `domain.sig_done` once the goal is reached; the loop's condition reads
that signal. A goal that cannot be reached in 8 turns ends in `WorkflowLimitError`.

Run: python examples/flux/agent_loop.py [--backend reference|rust]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from theus import TheusEngine, WorkflowLimitError, process
from theus.flux import StepCommitted

HERE = Path(__file__).resolve().parent


@process(outputs=["domain.progress", "domain.turns", "domain.log"])
def reset(ctx: Any) -> None:
    ctx.domain.progress = 0
    ctx.domain.turns = 0
    ctx.domain.log = []


@process(inputs=["domain.turns"], outputs=["domain.turns"])
def think(ctx: Any) -> None:
    ctx.domain.turns += 1


@process(inputs=["domain.progress", "domain.log"], outputs=["domain.progress", "domain.log"])
def act(ctx: Any, effort: int) -> None:
    step = min(max(effort // 2, 1), 4)  # the agent can do at most 4 units a turn
    ctx.domain.progress += step
    ctx.domain.log.append(step)


@process(inputs=["domain.progress"], outputs=["domain.sig_done"])
def judge(ctx: Any, goal: int) -> None:
    if ctx.domain.progress >= goal:
        ctx.domain.sig_done = True


@process(inputs=["domain.progress", "domain.turns"], outputs=["domain.summary"])
def report(ctx: Any) -> None:
    ctx.domain.summary = f"progress {ctx.domain.progress} in {ctx.domain.turns} turns"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="backend name (default: best installed)")
    args = parser.parse_args()
    engine = TheusEngine(context={"domain": {}, "global": {}}, backend=args.backend)
    for fn in (reset, think, act, judge, report):
        engine.register(fn)
    workflow = HERE / "agent_loop.yaml"
    turns: list[int] = []

    def on_event(event: Any) -> None:
        if isinstance(event, StepCommitted) and event.process == "judge":
            turns.append(event.iterations[0])

    run = engine.execute_workflow(workflow, on_event=on_event)
    state = engine.state
    print(f"agent loop: {state.domain.summary}; steps taken {list(state.domain.log)}")
    print(f"judged in turns {turns}; {len(run.executed)} steps, version {run.version}")
    try:
        engine.execute_workflow(workflow, inputs={"goal": 100})
    except WorkflowLimitError as exc:
        print(f"goal 100: stopped by the guard: {str(exc).split(': ', 2)[2]}")
    else:
        print("goal 100: the guard did not stop the loop")
        return 1
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
