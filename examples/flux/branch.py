"""A branch on Flux: `if`/`else`, nested (examples/flux/branch.yaml), run as a dry run first.

Small orders ship at once; big ones are reviewed, then shipped or refunded. The first run of
each order is a `dry_run=True`: the would-be result is computed on a fork and nothing is
committed; the real run then commits.

Run: python examples/flux/branch.py [--backend reference|rust]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from theus import TheusEngine, process

HERE = Path(__file__).resolve().parent


@process(inputs=["domain.order"], outputs=["domain.order.amount"])
def price(ctx: Any) -> None:
    ctx.domain.order.amount = ctx.domain.order.qty * ctx.domain.order.unit


@process(inputs=["domain.order"], outputs=["domain.order.approved"])
def review(ctx: Any) -> None:
    ctx.domain.order.approved = ctx.domain.order.customer != "mallory"


@process(outputs=["domain.order.status"])
def ship(ctx: Any) -> None:
    ctx.domain.order.status = "shipped"


@process(outputs=["domain.order.status"])
def refund(ctx: Any) -> None:
    ctx.domain.order.status = "refunded"


ORDERS = [
    {"customer": "alice", "qty": 2, "unit": 10},
    {"customer": "bob", "qty": 30, "unit": 10},
    {"customer": "mallory", "qty": 50, "unit": 10},
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="backend name (default: best installed)")
    args = parser.parse_args()
    workflow = HERE / "branch.yaml"
    for order in ORDERS:
        engine = TheusEngine(context={"domain": {"order": dict(order)}, "global": {}},
                             backend=args.backend)  # fmt: skip
        for fn in (price, review, ship, refund):
            engine.register(fn)
        dry = engine.execute_workflow(workflow, dry_run=True)
        assert engine.state.version == 0, "a dry run commits nothing"
        run = engine.execute_workflow(workflow)
        status = engine.state.domain.order.status
        would = dry.state.domain.order.status
        print(f"{order['customer']}: {' -> '.join(run.executed)} => {status} (dry run: {would})")
        engine.close()
        if status != would:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
