"""spec/01 — the context tree, values, snapshots, versions, immutability (REQUIREMENTS §4.1)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import pytest

from theus import ContextError, TheusEngine, process


@dataclasses.dataclass
class Point:
    x: int
    y: int


def base_context():
    return {
        "domain": {"a": 1, "cfg": {"depth": {"leaf": "v"}}, "l": [3, 1, 2], "s": "text"},
        "global": {"g": 2},
    }


# ---------------------------------------------------------------------------------------------
# the context tree


def test_none_context_has_empty_domain_and_global(engine):
    state = engine.state
    assert state.version == 0
    assert state.domain == {}
    assert state.global_ == {}
    assert state["global"] == {}
    assert state.to_dict() == {"domain": {}, "global": {}}


def test_absent_namespace_starts_empty(make_engine):
    engine = make_engine({"domain": {"a": 1}})
    assert engine.state.global_ == {}
    engine = make_engine({"global": {"a": 1}})
    assert engine.state.domain == {}
    assert engine.state.global_.a == 1


def test_other_namespaces_are_kept(make_engine):
    engine = make_engine({"extra": {"k": 1}})
    assert engine.state["extra"] == {"k": 1}
    assert engine.state.get("extra.k") == 1
    assert engine.state.to_dict() == {"domain": {}, "global": {}, "extra": {"k": 1}}


@pytest.mark.parametrize("context", [5, "domain", [("domain", {})], object()])
def test_context_must_be_a_mapping(backend, context):
    with pytest.raises(TypeError, match="context"):
        TheusEngine(context=context, backend=backend)


@pytest.mark.parametrize("ns", ["domain", "global", "extra"])
def test_namespace_must_be_a_mapping(backend, ns):
    with pytest.raises(TypeError, match=ns):
        TheusEngine(context={ns: [1, 2]}, backend=backend)


@pytest.mark.parametrize(
    "bad_key, shown",
    [("a.b", "a.b"), ("", "domain"), ("*", "*"), ("**", "**")],
)
def test_invalid_key_at_construction(backend, bad_key, shown):
    with pytest.raises(ContextError) as info:
        TheusEngine(context={"domain": {"ok": {bad_key: 1}}}, backend=backend)
    assert shown in str(info.value)
    assert "domain" in str(info.value)


def test_non_str_key_at_construction(backend):
    with pytest.raises(ContextError, match="domain"):
        TheusEngine(context={"domain": {1: "x"}}, backend=backend)


@pytest.mark.parametrize("bad_key", ["a.b", "", "*", "**", 7])
def test_invalid_key_in_a_write(make_engine, bad_key):
    engine = make_engine({"domain": {"x": 0}})
    before = engine.state
    with pytest.raises(ContextError, match="domain"):
        with engine.transaction() as tx:
            tx.update(data={"domain.x": {"ok": {bad_key: 1}}})
    assert engine.state is before


# ---------------------------------------------------------------------------------------------
# values


def test_containers_are_copied_at_construction(make_engine):
    inner = [1]
    ctx = {"domain": {"d": {"a": inner}}}
    engine = make_engine(ctx)
    inner.append(2)
    ctx["domain"]["d"]["b"] = 3
    ctx["domain"]["new"] = 1
    assert engine.state.domain.d == {"a": [1]}
    assert "new" not in engine.state.domain


def test_containers_are_copied_at_write(make_engine):
    engine = make_engine()
    value = {"a": [1], "b": {"c": 2}}
    with engine.transaction() as tx:
        tx.update(data={"domain.v": value})
    value["a"].append(2)
    value["b"]["c"] = 99
    value["z"] = 0
    assert engine.state.domain.v == {"a": [1], "b": {"c": 2}}


def test_stored_containers_are_read_only_views(make_engine):
    engine = make_engine({"domain": {"m": {"k": [1, {"x": 2}]}}})
    m = engine.state.domain.m
    assert isinstance(m, Mapping) and not isinstance(m, dict)
    lst = m["k"]
    assert isinstance(lst, Sequence) and not isinstance(lst, list)
    assert isinstance(lst[1], Mapping) and not isinstance(lst[1], dict)


def test_set_is_stored_as_frozenset(make_engine):
    engine = make_engine({"domain": {"s": {1, 2}}})
    assert engine.state.domain.s == frozenset({1, 2})
    assert isinstance(engine.state.domain.s, frozenset)


def test_other_values_are_stored_by_reference(make_engine):
    point = Point(1, 2)
    tup = (1, [2])
    engine = make_engine({"domain": {"p": point, "t": tup}})
    assert engine.state.domain.p is point
    assert engine.state.get("domain.t") is tup


# ---------------------------------------------------------------------------------------------
# snapshots and versions


def test_every_commit_is_previous_plus_one(make_engine):
    engine = make_engine({"domain": {"n": 0}})
    for i in range(1, 6):
        with engine.transaction() as tx:
            tx.update(data={"domain.n": i})
        assert engine.state.version == i
        assert isinstance(engine.state.version, int)


def test_versions_are_per_engine(make_engine):
    e1, e2 = make_engine(), make_engine()
    with e1.transaction() as tx:
        tx.update(data={"domain.x": 1})
    with e1.transaction() as tx:
        tx.update(data={"domain.x": 2})
    assert e1.state.version == 2
    assert e2.state.version == 0


def test_old_snapshot_keeps_its_values(make_engine):
    engine = make_engine(base_context())
    old = engine.state
    old_domain = old.domain
    old_cfg = old.domain.cfg
    with engine.transaction() as tx:
        tx.update(data={"domain.a": 100, "domain.cfg.depth": {"leaf": "w"}, "global.g": 3})
    assert engine.state is not old
    assert old.version == 0
    assert old.domain.a == 1 and old_domain.a == 1
    assert old_cfg.depth.leaf == "v"
    assert old.get("global.g") == 2
    assert old.to_dict() == base_context()
    assert engine.state.domain.a == 100
    assert engine.state.get("domain.cfg.depth.leaf") == "w"


def test_reading_forms(make_engine):
    engine = make_engine(base_context())
    state = engine.state
    assert state.domain.a == 1
    assert state.domain["a"] == 1
    assert state["domain"]["cfg"]["depth"]["leaf"] == "v"
    assert state.domain.cfg.depth.leaf == "v"
    assert state.global_.g == 2
    assert state["global"].g == 2
    assert state.get("domain.cfg.depth.leaf") == "v"
    assert state.get("domain.l.1") == 1
    assert state.get("domain.missing") is None
    assert state.get("domain.missing.deeper", "dflt") == "dflt"
    assert state.get("domain.l.9", "dflt") == "dflt"
    assert state.get("domain.a.b", "dflt") == "dflt"
    assert state.get("nons.x", "dflt") == "dflt"


def test_views_compare_equal_to_plain_containers(make_engine):
    engine = make_engine(base_context())
    state = engine.state
    assert state.domain == base_context()["domain"]
    assert state.domain.l == [3, 1, 2]
    assert state.domain.cfg != {"depth": {"leaf": "other"}}
    assert len(state.domain) == 4
    assert sorted(state.domain) == ["a", "cfg", "l", "s"]
    assert "a" in state.domain and "zz" not in state.domain
    assert list(state.domain.l) == [3, 1, 2]
    assert state.domain.l[-1] == 2
    assert state.domain.l[0:2] == [3, 1]


def test_to_dict_and_to_list_are_deep_plain_mutable_copies(make_engine):
    engine = make_engine(base_context())
    whole = engine.state.to_dict()
    assert whole == base_context()
    assert type(whole) is dict and type(whole["domain"]["cfg"]) is dict
    assert type(whole["domain"]["l"]) is list
    whole["domain"]["cfg"]["depth"]["leaf"] = "changed"
    whole["domain"]["l"].append(4)
    d = engine.state.domain.cfg.to_dict()
    assert type(d) is dict and type(d["depth"]) is dict
    d["depth"]["leaf"] = "changed"
    lst = engine.state.domain.l.to_list()
    assert type(lst) is list
    lst.append(9)
    assert engine.state.to_dict() == base_context()


def test_methods_win_over_keys(make_engine):
    names = ["items", "keys", "values", "get", "update", "pop", "copy", "to_dict"]
    engine = make_engine({"domain": {name: f"key-{name}" for name in names}})
    view = engine.state.domain
    for name in names:
        assert view[name] == f"key-{name}"
        assert callable(getattr(view, name))
    assert sorted(view.keys()) == sorted(names)


def test_missing_key_errors(make_engine):
    engine = make_engine(base_context())
    with pytest.raises(AttributeError):
        engine.state.domain.nope
    with pytest.raises(KeyError):
        engine.state.domain["nope"]
    with pytest.raises(IndexError):
        engine.state.domain.l[10]


# ---------------------------------------------------------------------------------------------
# immutability (REQUIREMENTS §4.1)


def _set_attr(v):
    v.a = 5


def _set_item(v):
    v["a"] = 5


def _del_attr(v):
    del v.a


def _del_item(v):
    del v["a"]


def _iadd(v):
    v += [9]


MAP_MUTATIONS = {
    "setattr": _set_attr,
    "setitem": _set_item,
    "delattr": _del_attr,
    "delitem": _del_item,
    "update": lambda v: v.update({"a": 5}),
    "pop": lambda v: v.pop("a"),
    "popitem": lambda v: v.popitem(),
    "clear": lambda v: v.clear(),
    "setdefault": lambda v: v.setdefault("new", 1),
}

LIST_MUTATIONS = {
    "append": lambda v: v.append(9),
    "extend": lambda v: v.extend([9]),
    "insert": lambda v: v.insert(0, 9),
    "pop": lambda v: v.pop(),
    "remove": lambda v: v.remove(3),
    "clear": lambda v: v.clear(),
    "sort": lambda v: v.sort(),
    "reverse": lambda v: v.reverse(),
    "setitem": lambda v: v.__setitem__(0, 9),
    "delitem": lambda v: v.__delitem__(0),
    "iadd": _iadd,
}


def _assert_mutation_refused(engine, attempt, target, path):
    before = engine.state
    before_dict = before.to_dict()
    with pytest.raises(ContextError) as info:
        attempt(target)
    message = str(info.value)
    assert path in message, f"the message must name the path {path!r}: {message!r}"
    assert "process" in message or "transaction" in message, (
        f"the message must say how to write instead: {message!r}"
    )
    assert engine.state is before
    assert engine.state.to_dict() == before_dict
    assert engine.state.version == 0


@pytest.mark.parametrize("op", sorted(MAP_MUTATIONS))
def test_map_view_is_immutable(make_engine, op):
    engine = make_engine({"domain": {"cfg": {"a": 1}}})
    _assert_mutation_refused(engine, MAP_MUTATIONS[op], engine.state.domain.cfg, "domain.cfg")


@pytest.mark.parametrize("op", sorted(MAP_MUTATIONS))
def test_namespace_view_is_immutable(make_engine, op):
    engine = make_engine({"domain": {"a": 1}})
    _assert_mutation_refused(engine, MAP_MUTATIONS[op], engine.state.domain, "domain")


@pytest.mark.parametrize("op", sorted(LIST_MUTATIONS))
def test_list_view_is_immutable(make_engine, op):
    engine = make_engine({"domain": {"l": [3, 1, 2]}})
    _assert_mutation_refused(engine, LIST_MUTATIONS[op], engine.state.domain.l, "domain.l")


def test_snapshot_itself_is_immutable(make_engine):
    engine = make_engine({"domain": {"a": 1}})
    state = engine.state

    def set_ns(s):
        s["domain"] = {}

    def set_attr(s):
        s.domain = {}

    def del_ns(s):
        del s["domain"]

    for attempt in (set_ns, set_attr, del_ns):
        _assert_mutation_refused(engine, attempt, state, "domain")


def test_nested_write_through_attribute_chain_is_refused(make_engine):
    engine = make_engine({"domain": {"cfg": {"depth": {"leaf": 1}}}})

    def attempt(state):
        state.domain.cfg.depth.leaf = 2

    _assert_mutation_refused(engine, attempt, engine.state, "domain.cfg.depth")


def test_map_views_iterate_in_code_point_order(make_engine):
    keys = ["zeta", "Alpha", "beta", "_u", "é", "10", "9", "a b"]
    engine = make_engine({"domain": {k: i for i, k in enumerate(keys)}})
    expected = sorted(keys)
    view = engine.state.domain
    assert list(view) == expected
    assert list(view.keys()) == expected
    assert [k for k, _ in view.items()] == expected
    assert list(view.values()) == [keys.index(k) for k in expected]
    assert list(view.to_dict()) == expected
    assert list(engine.state.to_dict()["domain"]) == expected
    with engine.transaction() as tx:
        tx.update(data={"domain.0first": 1, "domain.nested": {"b": 1, "a": 2}})
    assert list(engine.state.domain) == sorted([*keys, "0first", "nested"])
    assert list(engine.state.domain.nested) == ["a", "b"]


@pytest.mark.parametrize("ns, value", [("domain", 5), ("global", [1, 2]), ("extra", None)])
def test_a_namespace_cannot_be_replaced_by_a_non_mapping(make_engine, ns, value):
    """spec/01: assigning a whole namespace requires a mapping (TypeError otherwise)."""
    engine = make_engine({"extra": {"k": 1}})
    before = engine.state
    with pytest.raises(TypeError, match=ns):
        with engine.transaction() as tx:
            tx.update(data={ns: value})

    @process(outputs=[ns])
    def assign_namespace(ctx):
        ctx[ns] = value

    with pytest.raises(TypeError):
        engine.execute(assign_namespace)
    assert engine.state is before


def test_assigning_a_namespace_replaces_its_content(make_engine):
    engine = make_engine({"domain": {"old": 1}, "global": {"g": 1}})

    @process(outputs=["domain"])
    def replace_domain(ctx):
        ctx.domain = {"new": 2}

    engine.execute(replace_domain)
    assert engine.state.domain == {"new": 2}
    with engine.transaction() as tx:
        tx.update(data={"global": {"h": 3}})  # the nested form merges (spec/05)
    assert engine.state.to_dict() == {"domain": {"new": 2}, "global": {"g": 1, "h": 3}}
    with engine.transaction() as tx:
        tx.update(replace={"global": {"h": 4}})  # replace= replaces
    assert engine.state.to_dict() == {"domain": {"new": 2}, "global": {"h": 4}}


def test_namespaces_are_fixed(make_engine):
    """spec/01: a write cannot create or delete a namespace (ContextError)."""
    engine = make_engine({"extra": {"k": 1}})
    before = engine.state
    for update in ({"data": {"newns": {"x": 1}}}, {"delete": ["extra"]}, {"delete": ["domain"]}):
        with pytest.raises(ContextError):
            with engine.transaction() as tx:
                tx.update(**update)
    with pytest.raises(ContextError):
        engine.compare_and_swap(0, data={"newns": {}})
    assert engine.state is before
    assert sorted(engine.state.to_dict()) == ["domain", "extra", "global"]
