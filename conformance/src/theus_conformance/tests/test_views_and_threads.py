"""spec/04 (views and threads), spec/01 (copying and pickling): a transaction's views used from
several threads, views given inside ``context=``, copy/deepcopy/pickle of snapshots and views."""

from __future__ import annotations

import copy
import pickle

import pytest

from theus import ContextError, process
from theus_conformance.support import run_threads

THREADS = 4
PER_THREAD = 1500


def _in_threads(target):
    run_threads(THREADS, target)


@pytest.mark.requires("threads")
def test_threads_appending_to_one_list_view_commit_every_item(make_engine):
    engine = make_engine({"domain": {"lst": []}, "global": {}})

    @process(inputs=["domain.lst"], outputs=["domain.lst"])
    def fill(ctx):
        lst = ctx.domain.lst
        _in_threads(lambda t: [lst.append((t, i)) for i in range(PER_THREAD)])

    engine.register(fill)
    engine.execute(fill)
    items = engine.state.domain.lst.to_list()
    assert len(items) == THREADS * PER_THREAD
    assert sorted(items) == sorted((t, i) for t in range(THREADS) for i in range(PER_THREAD))
    for t in range(THREADS):  # each thread's items keep their order
        assert [i for (u, i) in items if u == t] == list(range(PER_THREAD))


@pytest.mark.requires("threads")
def test_threads_setting_distinct_keys_commit_every_key(make_engine):
    engine = make_engine({"domain": {"d": {}}, "global": {}})

    @process(inputs=["domain.**"], outputs=["domain.**"])
    def fill(ctx):
        domain = ctx.domain

        def work(t):
            for i in range(PER_THREAD):
                domain.d[f"k{t}_{i}"] = {"n": i}
                if i % 100 == 0:
                    assert len(domain.d) >= 1
                    assert domain.d[f"k{t}_{i}"].n == i

        _in_threads(work)

    engine.register(fill)
    engine.execute(fill)
    d = engine.state.domain.d
    assert len(d) == THREADS * PER_THREAD
    assert all(d[f"k{t}_{i}"]["n"] == i for t in range(THREADS) for i in range(0, PER_THREAD, 97))


@pytest.mark.requires("threads")
def test_threads_mixing_reads_and_list_mutators(make_engine):
    engine = make_engine({"domain": {"lst": list(range(700)), "n": 0}, "global": {}})

    @process(inputs=["domain.**"], outputs=["domain.**"])
    def mixed(ctx):
        lst = ctx.domain.lst

        def work(t):
            for i in range(300):
                if t % 2:
                    lst.append(i)
                else:
                    lst.pop(0)
                len(lst)
                lst.to_list()

        _in_threads(work)

    engine.register(mixed)
    engine.execute(mixed)
    assert len(engine.state.domain.lst) == 700  # 600 appends, 600 pops


@pytest.mark.parametrize("use", ["read", "write", "len"])
def test_reentrant_use_from_a_destructor_is_a_busy_context_error(make_engine, use):
    """A destructor that runs in the middle of one of the transaction's own operations on the
    same thread (here: the write that drops the last reference to the old value) cannot use
    the transaction: ContextError saying it is busy; never a hang, the write still lands."""
    engine = make_engine({"domain": {"x": 0, "y": 0}, "global": {}})
    outcomes = []

    @process(inputs=["domain.**"], outputs=["domain.**"])
    def proc(ctx):
        domain = ctx.domain

        class Probe:
            def __del__(self):
                try:
                    if use == "read":
                        domain.y
                    elif use == "write":
                        domain.y = 1
                    else:
                        len(domain)
                    outcomes.append("ok")
                except ContextError as exc:
                    outcomes.append(str(exc))

        domain.x = Probe()  # stored by reference; the draft holds the only reference
        domain.x = 2  # replacing it drops the probe inside this write

    engine.register(proc)
    engine.execute(proc)
    assert len(outcomes) == 1 and "busy" in outcomes[0], outcomes
    assert engine.state.to_dict()["domain"] == {"x": 2, "y": 0}


M = {"k": [1, {"z": 2}]}
LST = [1, [2, 3]]
CONTEXTS = {
    "map view": (lambda s: {"c": s.domain.m}, {"c": M}),
    "list view": (lambda s: {"c": s.domain.lst}, {"c": LST}),
    "nested views": (
        lambda s: {"c": {"a": [s.domain.lst, {"m": s.domain.m}]}},
        {"c": {"a": [LST, {"m": M}]}},
    ),
    "namespace view": (lambda s: s.domain, {"m": M, "lst": LST}),
    "item views": (lambda s: {"c": [s.domain.lst[1], s.domain.m.k[1]]}, {"c": [[2, 3], {"z": 2}]}),
}


def _only_plain(value):
    if isinstance(value, dict):
        return type(value) is dict and all(_only_plain(v) for v in value.values())
    if isinstance(value, list):
        return type(value) is list and all(_only_plain(v) for v in value)
    return isinstance(value, int)


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_views_in_the_constructor_context_are_stored_by_content(make_engine, name):
    source = make_engine({"domain": {"m": M, "lst": LST}, "global": {}})
    make, expected = CONTEXTS[name]
    engine = make_engine({"domain": make(source.state), "global": {}})
    plain = engine.state.to_dict()
    assert plain == {"domain": expected, "global": {}}
    assert _only_plain(plain)
    if name == "list view":
        assert engine.state.get("domain.c.1.0") == 2
    if name == "nested views":
        assert engine.state.get("domain.c.a.0.1.1") == 3
        assert engine.state.get("domain.c.a.1.m.k.1.z") == 2
    if name == "item views":
        assert engine.state.get("domain.c.0.1") == 3


def test_a_guarded_view_in_the_constructor_context_is_refused(make_engine):
    source = make_engine({"domain": {"m": {"k": 1}}, "global": {}})
    views = {}

    @process(inputs=["domain.m"], outputs=[])
    def grab(ctx):
        views["m"] = ctx.domain.m
        with pytest.raises(ContextError):
            make_engine({"domain": {"c": ctx.domain.m}, "global": {}})

    source.register(grab)
    source.execute(grab)


def test_views_written_as_values_are_stored_by_content(make_engine):
    engine = make_engine({"domain": {"m": {"k": [1, 2]}, "out": None}, "global": {}})
    snap = engine.state
    with engine.transaction() as tx:
        tx.update(data={"domain.out": {"a": snap.domain.m, "b": [snap.domain.m.k]}})
    assert engine.state.get("domain.out.b.0.1") == 2
    assert engine.state.to_dict()["domain"]["out"] == {"a": {"k": [1, 2]}, "b": [[1, 2]]}


def test_copy_of_a_snapshot_is_the_snapshot(make_engine):
    engine = make_engine({"domain": {"m": {"k": [1]}}, "global": {}})
    state = engine.state
    assert copy.copy(state) is state
    assert copy.deepcopy(state) is state
    assert copy.deepcopy({"s": state})["s"] is state


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_a_snapshot_or_a_view_is_a_type_error(make_engine, protocol):
    engine = make_engine({"domain": {"m": {"k": [1]}}, "global": {}})
    state = engine.state
    for obj in (state, state.domain, state.domain.m, state.domain.m.k):
        with pytest.raises(TypeError, match="to_dict"):
            pickle.dumps(obj, protocol)


def test_copy_of_a_snapshot_view_is_its_plain_copy(make_engine):
    engine = make_engine({"domain": {"m": {"k": [1, {"z": 2}]}}, "global": {}})
    m = engine.state.domain.m
    for make in (copy.copy, copy.deepcopy):
        got = make(m)
        assert type(got) is dict and got == {"k": [1, {"z": 2}]}
        got["k"].append(3)  # a plain, mutable copy
        lst = make(m.k)
        assert type(lst) is list and lst == [1, {"z": 2}] and type(lst[1]) is dict
    assert m.to_dict() == {"k": [1, {"z": 2}]}


def test_copy_of_a_guarded_view_is_its_plain_copy(make_engine):
    engine = make_engine({"domain": {"m": {"k": [1]}}, "global": {}})
    seen = {}

    @process(inputs=["domain.m"], outputs=["domain.m"])
    def proc(ctx):
        ctx.domain.m.k.append(2)
        seen["copy"] = copy.copy(ctx.domain.m)
        seen["deep"] = copy.deepcopy(ctx.domain.m.k)
        with pytest.raises(TypeError, match="to_dict"):
            pickle.dumps(ctx.domain.m)

    engine.register(proc)
    engine.execute(proc)
    assert seen == {"copy": {"k": [1, 2]}, "deep": [1, 2]}
    assert type(seen["copy"]) is dict and type(seen["deep"]) is list
