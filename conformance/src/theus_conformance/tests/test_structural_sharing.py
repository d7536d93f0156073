"""spec/05 "Structural sharing" (REQUIREMENTS §4.11), checked by behaviour only.

Cost is measured by the asv benchmarks, never here. What a test can see: old snapshots are
unaffected by later commits; untouched parts of a large state stay readable through views taken
before the commit; and untouched values are never copied, hashed or compared — a leaf that
refuses all three survives any number of commits elsewhere.
"""

from __future__ import annotations

import pytest

from theus import process

LARGE = 100_000


class Untouchable:
    """A value that fails loudly if the engine copies, compares, hashes or pickles it."""

    def __init__(self, tag):
        self.tag = tag

    def __eq__(self, other):
        raise AssertionError(f"untouched value {self.tag} was compared")

    def __hash__(self):
        raise AssertionError(f"untouched value {self.tag} was hashed")

    def __copy__(self):
        raise AssertionError(f"untouched value {self.tag} was copied")

    def __deepcopy__(self, memo):
        raise AssertionError(f"untouched value {self.tag} was deep-copied")

    def __reduce_ex__(self, protocol):
        raise AssertionError(f"untouched value {self.tag} was pickled")


def test_untouched_values_are_shared_not_copied_or_compared(make_engine):
    sentinels = {f"k{i}": Untouchable(i) for i in range(1000)}
    engine = make_engine({"domain": {"counter": 0, "bulk": sentinels}, "global": {"s": sentinels}})
    first = engine.state

    @process(inputs=["domain.counter"], outputs=["domain.counter"])
    def bump(ctx):
        ctx.domain.counter = ctx.domain.counter + 1

    for _ in range(20):
        engine.execute(bump)
    with engine.transaction() as tx:
        tx.update(data={"domain.bulk.added": "new"}, delete=["domain.bulk.k5"])
    state = engine.state
    assert state.version == 21
    assert state.get("domain.bulk.k4") is sentinels["k4"]
    assert state.get("domain.bulk.added") == "new"
    assert state.get("domain.bulk.k5", "gone") == "gone"
    assert first.get("domain.bulk.k5") is sentinels["k5"]
    assert state.global_.s["k999"] is sentinels["k999"]


def test_large_state_one_key_change(make_engine):
    domain = {f"key{i}": i for i in range(LARGE)}
    engine = make_engine({"domain": domain, "global": {"config": {"depth": {"x": [1, 2, 3]}}}})
    old = engine.state
    old_global = old.global_
    old_config = old.global_.config

    @process(inputs=["domain.key7"], outputs=["domain.key7"])
    def change_one(ctx):
        ctx.domain.key7 = ctx.domain.key7 * 1000

    for _ in range(3):
        engine.execute(change_one)
    new = engine.state
    assert new.version == 3
    assert new.domain.key7 == 7_000_000_000
    assert old.domain.key7 == 7
    assert len(new.domain) == LARGE and len(old.domain) == LARGE
    assert new.domain["key99999"] == 99_999
    # the untouched namespace, through views taken before the commits
    assert old_global.config.depth.x == [1, 2, 3]
    assert old_config == new.global_.config
    assert new.global_.config.depth.x.to_list() == [1, 2, 3]


@pytest.mark.parametrize("keys", [10, LARGE])
def test_delete_in_a_large_namespace(make_engine, keys):
    engine = make_engine({"domain": {f"k{i}": i for i in range(keys)}})
    old = engine.state
    with engine.transaction() as tx:
        tx.update(delete=["domain.k3"])
    assert "k3" not in engine.state.domain
    assert len(engine.state.domain) == keys - 1
    assert old.domain.k3 == 3 and len(old.domain) == keys


def test_many_versions_stay_readable(make_engine):
    engine = make_engine({"domain": {"n": 0, "hist": {}}})
    snapshots = [engine.state]
    for i in range(1, 200):
        with engine.transaction() as tx:
            tx.update(data={"domain.n": i, f"domain.hist.v{i}": i})
        snapshots.append(engine.state)
    for i, snapshot in enumerate(snapshots):
        assert snapshot.version == i
        assert snapshot.domain.n == i
        assert len(snapshot.domain.hist) == i
