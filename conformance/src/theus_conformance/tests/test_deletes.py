"""spec/07 — removing keys and list items (REQUIREMENTS §4.6)."""

from __future__ import annotations

import pytest

from theus import ContractViolationError, StateUpdate, process


def _context():
    return {"domain": {"k": 1, "keep": 2, "m": {"x": 1, "y": 2}, "l": [10, 20, 30]}}


def _del_attr(d):
    del d.k


def _del_item(d):
    del d["k"]


def _del_index(d):
    del d.l[1]


DELETES = {
    "del-attr": (_del_attr, lambda e: e.pop("k")),
    "del-item": (_del_item, lambda e: e.pop("k")),
    "pop": (lambda d: d.pop("k"), lambda e: e.pop("k")),
    "pop-default-missing": (lambda d: d.pop("zz", None), lambda e: None),
    "clear": (lambda d: d.m.clear(), lambda e: e["m"].clear()),
    "list-del": (_del_index, lambda e: e["l"].pop(1)),
    "list-pop": (lambda d: d.l.pop(), lambda e: e["l"].pop()),
    "list-pop-index": (lambda d: d.l.pop(0), lambda e: e["l"].pop(0)),
    "list-remove": (lambda d: d.l.remove(20), lambda e: e["l"].remove(20)),
    "list-clear": (lambda d: d.l.clear(), lambda e: e["l"].clear()),
}


@pytest.mark.parametrize("op", sorted(DELETES))
def test_delete_in_a_process(make_engine, op):
    action, model = DELETES[op]
    engine = make_engine(_context())
    old = engine.state

    returned = []

    @process(inputs=["domain"], outputs=["domain"])
    def remove(ctx):
        returned.append(action(ctx.domain))  # (a value returned after in-place writes raises)

    engine.execute(remove)
    result = returned[-1]
    expected = _context()["domain"]
    model_result = model(expected)
    if "pop" in op:
        assert result == model_result
    assert engine.state.domain == expected
    assert old.domain == _context()["domain"]  # older snapshots still have it
    if op in ("del-attr", "del-item", "pop"):
        assert "k" not in engine.state.domain
        assert "k" in old.domain


def test_popitem_returns_the_removed_pair(make_engine):
    engine = make_engine({"domain": {"m": {"only": 1}}})

    returned = []

    @process(outputs=["domain.m"])
    def take(ctx):
        returned.append(ctx.domain.m.popitem())

    engine.execute(take)
    assert tuple(returned[0]) == ("only", 1)
    assert engine.state.domain.m == {}


def test_delete_in_host_transaction_and_state_update(make_engine):
    engine = make_engine(_context())
    with engine.transaction() as tx:
        tx.update(delete=["domain.k", "domain.m.x", "domain.l.0"])
    assert engine.state.domain == {"keep": 2, "m": {"y": 2}, "l": [20, 30]}

    @process(outputs=["domain.keep"])
    def drop_keep(ctx):
        return StateUpdate(delete=["domain.keep"])

    engine.execute(drop_keep)
    assert "keep" not in engine.state.domain
    assert engine.state.version == 2


def test_delete_then_recreate_in_one_transaction(make_engine):
    engine = make_engine(_context())

    @process(outputs=["domain.k"])
    def recreate(ctx):
        del ctx.domain.k
        ctx.domain.k = "new"

    engine.execute(recreate)
    assert engine.state.domain.k == "new"


def test_deleting_a_missing_key(make_engine):
    engine = make_engine(_context())

    @process(outputs=["domain"])
    def del_missing_item(ctx):
        del ctx.domain["ghost"]

    @process(outputs=["domain"])
    def del_missing_attr(ctx):
        del ctx.domain.ghost

    @process(outputs=["domain"])
    def pop_missing(ctx):
        return ctx.domain.pop("ghost")

    popped = []

    @process(outputs=["domain"])
    def pop_missing_default(ctx):
        popped.append(ctx.domain.pop("ghost", "dflt"))

    with pytest.raises(KeyError):
        engine.execute(del_missing_item)
    with pytest.raises(AttributeError):
        engine.execute(del_missing_attr)
    with pytest.raises(KeyError):
        engine.execute(pop_missing)
    engine.execute(pop_missing_default)
    assert popped == ["dflt"]
    with pytest.raises(KeyError, match="domain.ghost"):
        with engine.transaction() as tx:
            tx.update(delete=["domain.ghost"])
    assert engine.state.domain == _context()["domain"]


def test_delete_outside_outputs_is_a_violation(make_engine):
    engine = make_engine(_context())

    @process(inputs=["domain"], outputs=["domain.keep"])
    def delete_k(ctx):
        del ctx.domain.k

    with pytest.raises(ContractViolationError, match="domain.k"):
        engine.execute(delete_k)
    assert engine.state.domain.k == 1


def test_delete_of_a_namespace_child_tree(make_engine):
    engine = make_engine({"domain": {"tree": {"a": {"b": {"c": 1}}}, "x": 1}})
    with engine.transaction() as tx:
        tx.update(delete=["domain.tree"])
    assert engine.state.domain == {"x": 1}
    assert engine.state.get("domain.tree.a.b.c", "absent") == "absent"


def test_item_delete_by_path_is_a_write_of_the_list(make_engine):
    """spec/04: deleting a list item shifts indices, so it writes the list's path."""
    engine = make_engine({"domain": {"items": [1, 2, 3]}})

    @process(outputs=["domain.items.*"])
    def by_item_pattern(ctx):
        return StateUpdate(delete=["domain.items.0"])

    before = engine.state
    with pytest.raises(ContractViolationError):
        engine.execute(by_item_pattern)
    assert engine.state is before

    @process(outputs=["domain.items"])
    def by_list_pattern(ctx):
        return StateUpdate(delete=["domain.items.0"])

    engine.execute(by_list_pattern)
    assert engine.state.domain["items"] == [2, 3]


def test_deleting_an_impossible_key_is_a_key_error(make_engine):
    """spec/01: a key that cannot exist reads as missing; deleting it raises KeyError."""
    engine = make_engine({"domain": {"m": {"a": 1}}})

    @process(outputs=["domain.m"])
    def delete_int_key(ctx):
        del ctx.domain.m[0]

    with pytest.raises(KeyError):
        engine.execute(delete_int_key)
    assert engine.state.domain.m == {"a": 1}
