"""White-box checks of the reference core that the conformance suite cannot see."""

from __future__ import annotations

import threading

from theus import TheusEngine, process
from theus.update import make_update
from theus_reference._engine import snapshot_root


def _engine(**context: object) -> TheusEngine:
    return TheusEngine(context={"domain": dict(context)}, backend="reference")


def test_commit_shares_untouched_namespaces() -> None:
    engine = TheusEngine(
        context={"domain": {"x": 0}, "global": {"big": {str(i): i for i in range(1000)}}},
        backend="reference",
    )
    before = snapshot_root(engine.state)

    @process(outputs=["domain.x"])
    def write(ctx: object) -> None:
        ctx.domain.x = 1  # type: ignore[attr-defined]

    engine.execute(write)
    after = snapshot_root(engine.state)
    assert after is not before
    assert after.get("global") is before.get("global")


def test_exclusive_transaction_blocks_other_commits_until_closed() -> None:
    engine = _engine(x=0, y=0)
    core = engine.core
    exclusive = core.begin(None, exclusive=True)
    done = threading.Event()

    def other() -> None:
        with engine.transaction() as tx:
            tx.update(data={"domain.y": 2})  # disjoint: merges after the wait
        done.set()

    t = threading.Thread(target=other)
    t.start()
    assert not done.wait(0.2)  # the other commit waits for the exclusive transaction
    exclusive.apply(make_update(data={"domain.x": 1}))
    assert exclusive.commit().version == 1
    exclusive.close()
    t.join(5)
    assert done.is_set()
    assert engine.state.version == 2
    assert engine.state.domain.x == 1 and engine.state.domain.y == 2
