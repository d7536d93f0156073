"""A parallel fan-out on Flux: `flux: parallel` with three branches (examples/flux/fanout.yaml).

Each branch runs on its own thread and commits through the engine's optimistic concurrency;
their processes declare disjoint outputs, which loading checks (an overlap is refused before
anything runs, as shown last).

Run: python examples/flux/fanout.py [--backend reference|rust]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from theus import FluxError, TheusEngine, process
from theus.flux import StepCommitted

HERE = Path(__file__).resolve().parent


@process(outputs=["domain.news"])
def fetch(ctx: Any, source: str) -> None:
    time.sleep(0.01)  # a slow source
    ctx.domain.news = [f"{source}: headline {i}" for i in range(2)]


@process(outputs=["domain.prices"])
def fetch_prices(ctx: Any) -> None:
    ctx.domain.prices = {"apples": 3, "pears": 4}


@process(outputs=["domain.weather"])
def fetch_weather(ctx: Any) -> None:
    ctx.domain.weather = {"temp": -2}


@process(outputs=["domain.alerts"])
def warn_frost(ctx: Any) -> None:
    ctx.domain.alerts = ["frost"]


@process(
    inputs=["domain.news", "domain.prices", "domain.weather", "domain.alerts"],
    outputs=["domain.digest"],
)
def merge(ctx: Any) -> None:
    ctx.domain.digest = (
        f"{len(ctx.domain.news)} headlines, {len(ctx.domain.prices)} prices, "
        f"{ctx.domain.weather['temp']} C, alerts {list(ctx.domain.alerts)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="backend name (default: best installed)")
    args = parser.parse_args()
    engine = TheusEngine(context={"domain": {"alerts": []}, "global": {}}, backend=args.backend)
    for fn in (fetch, fetch_prices, fetch_weather, warn_frost, merge):
        engine.register(fn)
    branches: dict[int, list[str]] = {}

    def on_event(event: Any) -> None:
        if isinstance(event, StepCommitted) and len(event.address) > 1:
            branches.setdefault(event.address[1], []).append(event.process)

    run = engine.execute_workflow(HERE / "fanout.yaml", on_event=on_event)
    print(f"branches: {[branches[b] for b in sorted(branches)]}")
    print(f"digest: {engine.state.domain.digest} (version {run.version})")
    overlap = "steps:\n  - flux: parallel\n    branches: [[fetch_weather], [fetch_weather]]\n"
    try:
        engine.execute_workflow(overlap)
    except FluxError as exc:
        print(f"refused: {exc}")
    else:
        return 1
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
