"""A small multi-agent bank on Theus: contracts, atomic rollback, no lost updates, signals.

1. Rules set by a host transaction; accounts opened by a process.
2. `withdraw` refuses an overdraft by raising: the call commits nothing.
3. `payroll` pays two accounts, then fails: its partial writes are rolled back, the version and
   the very state object are unchanged.
4. `embezzle` writes outside its declared outputs: `ContractViolationError`, nothing committed.
5. 8 agent threads hammer deposits, withdrawals and `transfer`s (which publish
   `domain.sig_large_transfer` for big amounts). Afterwards every balance equals its opening
   balance plus exactly the amounts of the calls that succeeded, and one signal arrived per
   large transfer, in commit order. A `pure` `audit` process checks the total.

Run: python examples/bank.py [--backend reference|rust] [--threads 8] [--ops 300]
Exits 1 if any invariant fails.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from theus import ConflictError, ContractViolationError, SignalEmpty, TheusEngine, process

ACCOUNTS = ("alice", "bob", "carol", "dave", "erin", "frank")


class InsufficientFunds(Exception):
    """The business rule a process enforces by raising: the call then commits nothing."""


@process(inputs=["domain.accounts"], outputs=["domain.accounts"])
def open_account(ctx: Any, name: str, initial: int) -> None:
    if name in ctx.domain.accounts:
        raise ValueError(f"account {name!r} already exists")
    ctx.domain.accounts[name] = initial


@process(inputs=["domain.accounts.*"], outputs=["domain.accounts.*"], retries=10)
def deposit(ctx: Any, name: str, amount: int) -> None:
    ctx.domain.accounts[name] += amount


@process(
    inputs=["domain.accounts.*", "global.overdraft_limit"],
    outputs=["domain.accounts.*"],
    retries=10,
)
def withdraw(ctx: Any, name: str, amount: int) -> None:
    balance = ctx.domain.accounts[name]
    if balance - amount < -ctx.global_.overdraft_limit:
        raise InsufficientFunds(f"{name} has {balance}, cannot withdraw {amount}")
    ctx.domain.accounts[name] = balance - amount


@process(
    inputs=["domain.accounts.*", "global.large_transfer"],
    outputs=["domain.accounts.*", "domain.sig_large_transfer"],
    retries=10,
)
def transfer(ctx: Any, src: str, dst: str, amount: int) -> dict[str, Any]:
    accounts = ctx.domain.accounts
    if accounts[src] < amount:
        raise InsufficientFunds(f"{src} has {accounts[src]}, cannot send {amount}")
    accounts[src] -= amount
    accounts[dst] += amount
    large = amount >= ctx.global_.large_transfer
    # after in-place writes a returned dict keyed by outputs is applied; None leaves it alone
    return {"sig_large_transfer": (src, dst, amount) if large else None}


@process(inputs=["domain.accounts.*"], outputs=["domain.accounts.*"])
def payroll(ctx: Any, salaries: dict[str, int]) -> None:
    for name, amount in salaries.items():  # pays alice and bob, then fails on "mallory"
        ctx.domain.accounts[name] += amount


@process(inputs=["domain.accounts.alice"], outputs=["domain.accounts.alice"])
def embezzle(ctx: Any) -> None:
    ctx.domain.accounts.alice += 1_000
    ctx.domain.accounts.bob = 0  # bob's account is not in this contract's outputs


@process(inputs=["domain.accounts"], semantic="pure")
def audit(ctx: Any) -> dict[str, int]:
    balances = ctx.domain.accounts
    return {"accounts": len(balances), "total": sum(balances.values())}


def hammer(engine: TheusEngine, seed: int, ops: int) -> tuple[Counter[str], Counter[str]]:
    """One agent: random deposits, withdrawals and transfers; records what really happened."""
    rng = random.Random(seed)
    delta: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    for _ in range(ops):
        src, dst = rng.sample(ACCOUNTS, 2)
        amount = rng.randint(1, 500)
        kind = rng.choice(("transfer", "transfer", "deposit", "withdraw"))
        try:
            if kind == "deposit":
                engine.execute(deposit, name=src, amount=amount)
                delta[src] += amount
            elif kind == "withdraw":
                engine.execute(withdraw, name=src, amount=amount)
                delta[src] -= amount
            else:
                sent = engine.execute(transfer, src=src, dst=dst, amount=amount)
                delta[src] -= amount
                delta[dst] += amount
                stats["large"] += sent["sig_large_transfer"] is not None
            stats[kind] += 1
        except InsufficientFunds:
            stats["refused"] += 1
        except ConflictError:
            stats["conflict"] += 1  # re-runs exhausted: nothing was committed
    return delta, stats


def main() -> int:
    parser = argparse.ArgumentParser(description="Theus bank demo")
    parser.add_argument("--backend", default=None, help="backend name (default: best installed)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--ops", type=int, default=300, help="operations per thread")
    args = parser.parse_args()

    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'FAILED'}] {what}")
        if not ok:
            failures.append(what)

    engine = TheusEngine(context={"domain": {"accounts": {}}, "global": {}}, backend=args.backend)
    print(f"Theus bank demo — backend {engine.backend!r}\n")

    print("1. Rules by host transaction, accounts by process")
    with engine.transaction() as tx:
        tx.update(data={"global.overdraft_limit": 100, "global.large_transfer": 400})
    opening = dict.fromkeys(ACCOUNTS, 1_000)
    for name, initial in opening.items():
        engine.execute(open_account, name=name, initial=initial)
    check(engine.state.to_dict()["domain"]["accounts"] == opening, "six accounts, 1 000 each")
    print(f"  state version {engine.state.version}")

    print("2. Overdraft: withdraw raises, nothing commits")
    before = engine.state
    try:
        engine.execute(withdraw, name="carol", amount=5_000)
    except InsufficientFunds as exc:
        print(f"  refused: {exc}")
    check(engine.state is before, f"same snapshot, version still {engine.state.version}")

    print("3. Payroll fails half-way: partial writes are rolled back")
    try:
        engine.execute(payroll, salaries={"alice": 300, "bob": 300, "mallory": 300})
    except KeyError as exc:
        print(f"  payroll failed on unknown account {exc}")
    check(engine.state is before, f"version still {engine.state.version}")
    check(engine.state.domain.accounts["alice"] == 1_000, "alice was not paid half a payroll")

    print("4. Writing outside the contract")
    try:
        engine.execute(embezzle)
    except ContractViolationError as exc:
        print(f"  ContractViolationError: {exc}")
    check(engine.state is before, "nothing committed, alice's +1 000 discarded too")

    print(f"5. {args.threads} agents × {args.ops} operations, concurrently")
    receiver = engine.signals.subscribe()
    start_version = engine.state.version
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        agents = [pool.submit(hammer, engine, seed, args.ops) for seed in range(args.threads)]
    totals: Counter[str] = Counter()
    expected = Counter(opening)
    for delta, stats in (agent.result() for agent in agents):
        expected.update(delta)
        totals.update(stats)
    print("  " + ", ".join(f"{k}: {totals[k]}" for k in sorted(totals)))
    print(f"  versions {start_version} → {engine.state.version}")
    balances = engine.state.to_dict()["domain"]["accounts"]
    check(balances == dict(expected), "every balance = opening + committed amounts, exactly")
    committed = totals["deposit"] + totals["withdraw"] + totals["transfer"]
    check(engine.state.version - start_version == committed, f"{committed} commits, none lost")

    signals: list[Any] = []
    try:  # wait for the expected signals, then make sure no extra one is pending
        while len(signals) < totals["large"]:
            signals.append(receiver.recv(timeout=2.0))
        while True:
            signals.append(receiver.try_recv())
    except (TimeoutError, SignalEmpty):
        pass
    names = {signal.name for signal in signals}
    versions = [signal.version for signal in signals]
    ok = len(signals) == totals["large"] and names <= {"domain.sig_large_transfer"}
    check(ok, f"{len(signals)} large-transfer signals for {totals['large']} large transfers")
    check(versions == sorted(versions), "signals arrived in commit order")

    print("6. Pure audit")
    report = engine.execute(audit)
    print(f"  {report['accounts']} accounts, {report['total']:,} in total")
    check(report["total"] == sum(expected.values()), "audit total matches the ledger")
    engine.close()

    print("\nall invariants hold" if not failures else f"\n{len(failures)} invariant(s) FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
