"""Checked and observed commits: a Type Shield schema, an audit recipe, the transactional outbox
and a pipeline stage of your own (spec/15, spec/16, spec/17).

Run: ``python examples/checked_commits.py`` (prints what happened; needs pydantic).
"""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import BaseModel, Field

from theus import (
    AppendOnly,
    AuditStopError,
    SchemaViolationError,
    Stage,
    TheusEngine,
    process,
)


class Bank(BaseModel):
    balance: int
    owner: str
    history: Annotated[list[int], AppendOnly] = Field(default_factory=list)


class Context(BaseModel):
    domain: Bank


RECIPE = {
    "audit": {"level": "S"},
    "process_recipes": {
        "withdraw": {
            "inputs": [{"field": "amount", "min": 1, "message": "amount must be positive"}],
            "outputs": [{"field": "domain.balance", "min": 0, "message": "no overdraft"}],
        }
    },
}


@process(inputs=["domain.balance", "domain.history"], outputs=["domain.balance", "domain.history"])
def withdraw(ctx, amount: int) -> None:
    ctx.domain.balance -= amount
    ctx.domain.history.append(-amount)
    ctx.outbox.add("receipts", {"amount": amount})  # released only if this commit lands


class Versions(Stage):
    """A stage of our own: remembers every landed version, in commit order."""

    name = "versions"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def after_commit(self, snapshot, changes) -> None:
        self.seen.append(snapshot.version)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # audit violations are logged on "theus"
    engine = TheusEngine(
        {"domain": {"balance": 100, "owner": "ana", "history": []}},
        schema=Context,
        audit_recipe=RECIPE,
    )
    versions = Versions()
    engine.pipeline.add(versions)
    receipts: list[tuple[int, int, dict[str, int]]] = []
    engine.outbox.subscribe(lambda m: receipts.append((m.version, m.index, m.payload)))

    engine.execute(withdraw, amount=30)
    try:
        engine.execute(withdraw, amount=500)  # the output rule stops it: nothing commits
    except AuditStopError as exc:
        print("refused:", exc)
    try:
        with engine.transaction() as tx:
            tx.update(data={"domain.owner": 42})  # the schema refuses it: nothing commits
    except SchemaViolationError as exc:
        print("refused:", exc)

    engine.outbox.flush(timeout=5)
    print(
        "balance:", engine.state.domain.balance, "history:", engine.state.domain.history.to_list()
    )
    print("versions seen by the stage:", versions.seen)
    print("receipts delivered:", receipts)
    engine.close()


if __name__ == "__main__":
    main()
