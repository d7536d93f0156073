"""Edge inputs that once split the backends (issue 6, class 10; spec/01, 02, 03, 04, 07)."""

from __future__ import annotations

import itertools

import pytest

from theus import (
    ContextError,
    ContractViolationError,
    InvalidContractError,
    InvalidPathError,
    StateUpdate,
    process,
)

HUGE = [10**30, -(10**30), 2**63, -(2**63) - 1, 2**64]
_NAMES = itertools.count()


def _run(engine, action, **kw):
    @process(inputs=["domain"], outputs=["domain"], name=f"edge_{next(_NAMES)}", **kw)
    def act(ctx):
        action(ctx)

    return engine.execute(act)


def _host(engine, **kw):
    with engine.transaction() as tx:
        tx.update(**kw)


# -- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("retries", [0, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70, 10**30])
def test_retries_of_any_size(make_engine, retries):
    engine = make_engine({"domain": {"n": 0}})

    def bump(ctx):
        ctx.domain.n += 1

    _run(engine, bump, retries=retries)
    assert engine.state.domain.n == 1


@pytest.mark.parametrize("retries", [-1, -(2**64), -(10**30)])
def test_negative_retries_are_refused(retries):
    with pytest.raises(InvalidContractError):

        @process(inputs=[], outputs=[], retries=retries)
        def nothing(ctx):
            pass


# -- list indices of any size --------------------------------------------------------------------


def _ctx():
    return {"domain": {"lst": [1, 2, 3]}}


@pytest.mark.parametrize("index", HUGE)
def test_huge_index_read(make_engine, index):
    engine = make_engine(_ctx())
    with pytest.raises(IndexError):
        engine.state.domain.lst[index]
    with pytest.raises(IndexError):
        _run(engine, lambda ctx: ctx.domain.lst[index])


LIST_WRITES = {
    "setitem": lambda i: lambda ctx: ctx.domain.lst.__setitem__(i, 9),
    "delitem": lambda i: lambda ctx: ctx.domain.lst.__delitem__(i),
    "pop": lambda i: lambda ctx: ctx.domain.lst.pop(i),
}


@pytest.mark.parametrize("op", sorted(LIST_WRITES))
@pytest.mark.parametrize("index", HUGE)
def test_huge_index_writes_are_index_errors(make_engine, op, index):
    engine = make_engine(_ctx())
    with pytest.raises(IndexError):
        _run(engine, LIST_WRITES[op](index))
    assert engine.state.version == 0
    assert engine.state.domain.lst == [1, 2, 3]


@pytest.mark.parametrize("index", HUGE)
def test_huge_index_on_a_snapshot_view_is_still_read_only(make_engine, index):
    engine = make_engine(_ctx())
    with pytest.raises((ContextError, IndexError)):
        engine.state.domain.lst[index] = 1


@pytest.mark.parametrize("index", [*HUGE, 0, 3, -1, -3, -4, 99])
def test_insert_clamps_like_a_list(make_engine, index):
    engine = make_engine(_ctx())
    _run(engine, lambda ctx: ctx.domain.lst.insert(index, 9))
    expected = [1, 2, 3]
    expected.insert(max(-10, min(index, 10)), 9)  # a plain list overflows on huge indices
    assert engine.state.domain.lst == expected


def test_huge_int_values_are_stored(make_engine):
    values = [10**30, -(10**30), 2**64, 2**1000]
    engine = make_engine({"domain": {"big": values[0]}})
    _host(engine, data={"domain.lst": values})
    assert engine.state.domain.big == 10**30
    assert engine.state.domain.lst == values
    assert engine.state.to_dict()["domain"]["lst"] == values


# -- keys and path segments: valid Unicode ------------------------------------------------------

SURROGATES = ["\ud800", "\udfff", "a\udc80b", "\ud83d"]


@pytest.mark.parametrize("key", SURROGATES)
def test_lone_surrogate_keys_in_values(make_engine, key):
    with pytest.raises(ContextError):
        make_engine({"domain": {key: 1}})
    with pytest.raises(ContextError):
        make_engine({"domain": {"m": [{"x": {key: 1}}]}})
    engine = make_engine({"domain": {}})
    with pytest.raises(ContextError):
        _host(engine, data={"domain.m": {key: 1}})

    def assign(ctx):
        ctx.domain[key] = 1

    def nested(ctx):
        ctx.domain.m = {"ok": {key: 1}}

    for action in (assign, nested):
        with pytest.raises(ContextError):
            _run(engine, action)
    assert engine.state.version == 0


@pytest.mark.parametrize("key", SURROGATES)
def test_lone_surrogate_segments_in_paths(make_engine, key):
    engine = make_engine({"domain": {"m": {}}})
    path = f"domain.m.{key}"
    with pytest.raises(InvalidPathError):
        engine.state.get(path)
    with pytest.raises(InvalidPathError):
        _host(engine, data={path: 1})
    with pytest.raises(InvalidPathError):
        _host(engine, delete=[path])
    with pytest.raises(InvalidPathError):
        StateUpdate(data={path: 1})
    with pytest.raises(InvalidPathError):
        with engine.transaction() as tx:
            tx.get(path)
    assert engine.state.version == 0


ODD_KEYS = ["😀", "ключ", "a" * 10_000, " ", "0", "007", "-1", "\x00", "\u200b", "tab\tkey"]


@pytest.mark.parametrize("key", ODD_KEYS, ids=lambda k: repr(k)[:12])
def test_odd_but_valid_keys(make_engine, key):
    engine = make_engine({"domain": {key: 1}})
    assert engine.state.domain[key] == 1
    assert engine.state.get(f"domain.{key}") == 1
    _host(engine, data={f"domain.{key}": 2})
    assert engine.state.domain[key] == 2
    _host(engine, delete=[f"domain.{key}"])
    assert key not in engine.state.domain


@pytest.mark.parametrize("key", ["", ".", "a.b", "*", "**"])
def test_invalid_keys(make_engine, key):
    with pytest.raises(ContextError):
        make_engine({"domain": {key: 1}})
    engine = make_engine({"domain": {}})
    with pytest.raises(ContextError):
        _host(engine, data={"domain.m": {"ok": {key: 1}}})
    assert engine.state.version == 0


# -- writes below a signal key ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["domain.sig_a.b", "domain.cmd_go.x.y", "domain.sig_a.0", "domain.m.sig_s.k"]
)
def test_writes_below_a_signal_key(make_engine, path):
    engine = make_engine({"domain": {"m": {}}})
    for kw in ({"signal": {path: 1}}, {"data": {path: 1}}, {"delete": [path]}):
        with pytest.raises(ContractViolationError):
            _host(engine, **kw)

    @process(inputs=[], outputs=["domain"], name=f"edge_{next(_NAMES)}")
    def returned(ctx):
        return StateUpdate(signal={path: 1})

    with pytest.raises(ContractViolationError):
        engine.execute(returned)
    assert engine.state.version == 0
    assert dict(engine.state.signals) == {}


def test_signal_path_itself_still_works(make_engine):
    engine = make_engine({"domain": {}})
    _host(engine, signal={"domain.sig_a": {"b": 1}})
    assert engine.state.signals["domain.sig_a"] == {"b": 1}


# -- deletes by path of list items --------------------------------------------------------------


@pytest.mark.parametrize("path", ["domain.lst.3", "domain.lst.9", "domain.lst." + "9" * 30])
def test_delete_list_item_out_of_range(make_engine, path):
    engine = make_engine(_ctx())
    with pytest.raises(IndexError):
        _host(engine, delete=[path])
    assert engine.state.version == 0


@pytest.mark.parametrize("path", ["domain.lst.x", "domain.lst.01", "domain.lst.-1"])
def test_delete_list_item_by_a_non_index(make_engine, path):
    engine = make_engine(_ctx())
    with pytest.raises(IndexError):
        _host(engine, delete=[path])
    assert engine.state.version == 0


@pytest.mark.parametrize("path", ["domain.m.x", "domain.nope", "domain.nope.deeper"])
def test_delete_missing_key(make_engine, path):
    engine = make_engine({"domain": {"m": {}}})
    with pytest.raises(KeyError):
        _host(engine, delete=[path])
    assert engine.state.version == 0


def test_delete_list_item_in_range(make_engine):
    engine = make_engine(_ctx())
    _host(engine, delete=["domain.lst.1"])
    assert engine.state.domain.lst == [1, 3]
    _host(engine, delete=["domain.lst.0", "domain.lst.0"])
    assert engine.state.domain.lst == []


@pytest.mark.parametrize("index", [None, "1", 1.0])
@pytest.mark.parametrize("op", ["pop", "insert", "getitem", "setitem", "delitem"])
def test_non_int_indices_are_type_errors(make_engine, op, index):
    actions = {
        "pop": lambda ctx: ctx.domain.lst.pop(index),
        "insert": lambda ctx: ctx.domain.lst.insert(index, 0),
        "getitem": lambda ctx: ctx.domain.lst[index],
        "setitem": lambda ctx: ctx.domain.lst.__setitem__(index, 0),
        "delitem": lambda ctx: ctx.domain.lst.__delitem__(index),
    }
    engine = make_engine(_ctx())
    with pytest.raises(TypeError):
        _run(engine, actions[op])
    assert engine.state.version == 0


def test_bool_indices_act_as_ints(make_engine):
    engine = make_engine(_ctx())
    _run(engine, lambda ctx: ctx.domain.lst.pop(True))
    assert engine.state.domain.lst == [1, 3]
