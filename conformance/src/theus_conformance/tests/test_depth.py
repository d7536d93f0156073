"""spec/01 depth limit and cycles, spec/02 path length (issue 6, class 1).

``MAX_DEPTH`` is 256 segments, the namespace included: ``nest(k)`` written at a path of ``n``
segments puts its innermost leaf at ``n + k`` segments.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap

import pytest

from theus import (
    ContextError,
    DepthLimitError,
    InvalidPathError,
    StateUpdate,
    process,
)

LIMIT = 256


def nest(levels, leaf=1, kind="map"):
    """``levels`` nested containers around ``leaf`` (built iteratively)."""
    value = leaf
    for _ in range(levels):
        value = {"a": value} if kind == "map" else [value]
    return value


def mixed(levels, leaf=1):
    """Alternating maps and lists."""
    value = leaf
    for i in range(levels):
        value = {"a": value} if i % 2 else [value]
    return value


def deep_path(segments):
    """``domain.a.a...`` with ``segments`` segments in all."""
    return ".".join(["domain"] + ["a"] * (segments - 1))


# -- the error class ---------------------------------------------------------------------------


def test_depth_limit_error_class():
    import theus
    import theus.errors

    assert issubclass(DepthLimitError, ContextError)
    assert issubclass(DepthLimitError, ValueError)
    assert theus.DepthLimitError is theus.errors.DepthLimitError is DepthLimitError
    assert "DepthLimitError" in theus.__all__
    assert "DepthLimitError" in theus.errors.__all__


# -- the constructor ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["map", "list", "mixed"])
def test_constructor_at_the_limit(make_engine, kind):
    value = mixed(LIMIT - 2) if kind == "mixed" else nest(LIMIT - 2, kind=kind)
    engine = make_engine({"domain": {"x": value}})
    assert engine.state.to_dict()["domain"]["x"] == value
    assert engine.state.domain.x == value


@pytest.mark.parametrize("kind", ["map", "list", "mixed"])
def test_constructor_over_the_limit(make_engine, kind):
    value = mixed(LIMIT - 1) if kind == "mixed" else nest(LIMIT - 1, kind=kind)
    with pytest.raises(DepthLimitError) as info:
        make_engine({"domain": {"x": value}})
    assert str(LIMIT) in str(info.value)
    assert "domain" in str(info.value)


def test_empty_container_at_the_limit_is_fine(make_engine):
    engine = make_engine({"domain": nest(LIMIT - 1, leaf={})})
    assert engine.state.get(deep_path(LIMIT)) == {}
    engine = make_engine({"domain": {"x": nest(LIMIT - 2, leaf=[])}})
    assert engine.state.domain.x == nest(LIMIT - 2, leaf=[])


def test_leaves_are_not_traversed(make_engine):
    # a tuple, a frozenset and a heavy value hold deep structure: one segment each
    deep = nest(1000)
    engine = make_engine(
        {"domain": {"t": (deep,), "h": nest(LIMIT - 3, leaf=(deep,)), "heavy_x": [deep]}}
    )
    assert engine.state.domain.t[0] is deep
    assert engine.state.domain.heavy_x[0] is deep


# -- host transactions, StateUpdate ------------------------------------------------------------


def _host_update(engine, **kw):
    with engine.transaction() as tx:
        tx.update(**kw)


@pytest.mark.parametrize("kind", ["map", "list"])
def test_tx_update_at_and_over_the_limit(make_engine, kind):
    engine = make_engine({"domain": {"keep": 1}})
    _host_update(engine, data={"domain.x": nest(LIMIT - 2, kind=kind)})
    assert engine.state.version == 1
    assert engine.state.domain.x == nest(LIMIT - 2, kind=kind)
    before = engine.state
    with pytest.raises(DepthLimitError):
        _host_update(engine, data={"domain.y": nest(LIMIT - 1, kind=kind)})
    assert engine.state is before
    assert "y" not in engine.state.domain


def test_refused_write_leaves_earlier_writes_uncommitted(make_engine):
    engine = make_engine({"domain": {}})
    with pytest.raises(DepthLimitError):
        _host_update(engine, data={"domain.ok": 1, "domain.bad": nest(LIMIT)})
    assert engine.state.version == 0
    assert engine.state.to_dict() == {"domain": {}, "global": {}}


def test_host_append_at_and_over_the_limit(make_engine):
    engine = make_engine({"domain": {"log_e": [], "lst": []}})
    with engine.transaction() as tx:  # the item sits at domain.log_e.0: 3 segments
        tx.append("domain.log_e", nest(LIMIT - 3))
        tx.append("domain.lst", nest(LIMIT - 3, kind="list"))
    assert engine.state.domain.log_e == [nest(LIMIT - 3)]
    before = engine.state
    for path in ("domain.log_e", "domain.lst"):
        with pytest.raises(DepthLimitError):
            with engine.transaction() as tx:
                tx.append(path, nest(LIMIT - 2))
        assert engine.state is before


def test_signal_values_obey_the_limit(make_engine):
    engine = make_engine({"domain": {}})
    _host_update(engine, signal={"domain.sig_ok": nest(LIMIT - 2)})
    assert engine.state.signals["domain.sig_ok"] == nest(LIMIT - 2)
    before = engine.state
    with pytest.raises(DepthLimitError):
        _host_update(engine, signal={"domain.sig_bad": nest(LIMIT - 1)})
    assert engine.state is before


def test_state_update_returned_by_a_process(make_engine):
    engine = make_engine({"domain": {}})

    @process(inputs=[], outputs=["domain.x"])
    def ok(ctx):
        return StateUpdate(data={"domain.x": nest(LIMIT - 2)})

    @process(inputs=[], outputs=["domain.x"])
    def bad(ctx):
        return StateUpdate(data={"domain.x": nest(LIMIT - 1, kind="list")})

    engine.execute(ok)
    assert engine.state.version == 1
    before = engine.state
    with pytest.raises(DepthLimitError):
        engine.execute(bad)
    assert engine.state is before


# -- writes inside a process -------------------------------------------------------------------


_NAMES = itertools.count()


def _run(engine, action, outputs=("domain",)):
    @process(inputs=["domain"], outputs=list(outputs), name=f"act_{next(_NAMES)}")
    def act(ctx):
        return action(ctx)

    return engine.execute(act)


def _assign(value):
    def action(ctx):
        ctx.domain.x = value

    return action


def _assign_item(value):
    def action(ctx):
        ctx.domain["x"] = value

    return action


def _set_list_item(value):
    def action(ctx):
        ctx.domain.lst[0] = value

    return action


WRITES = {
    # name: (action factory, segments of the path the value is written at)
    "attr": (_assign, 2),
    "item": (_assign_item, 2),
    "list-item": (_set_list_item, 3),
    "append": (lambda v: lambda ctx: ctx.domain.lst.append(v), 3),
    "extend": (lambda v: lambda ctx: ctx.domain.lst.extend([0, v]), 3),
    "insert": (lambda v: lambda ctx: ctx.domain.lst.insert(0, v), 3),
    "insert-huge": (lambda v: lambda ctx: ctx.domain.lst.insert(10**30, v), 3),
    "setdefault": (lambda v: lambda ctx: ctx.domain.setdefault("x", v), 2),
    "update": (lambda v: lambda ctx: ctx.domain.update({"x": v}), 2),
}


def _discarding(factory):
    """The in-place action, its result dropped (a value returned after an in-place write
    raises, spec/06)."""

    def make(value):
        action = factory(value)
        return lambda ctx: action(ctx) and None

    return make


@pytest.mark.parametrize("op", sorted(WRITES))
def test_in_place_writes_at_and_over_the_limit(make_engine, op):
    factory, at = WRITES[op]
    factory = _discarding(factory)
    engine = make_engine({"domain": {"lst": [0]}})
    _run(engine, factory(nest(LIMIT - at)))
    assert engine.state.version == 1
    engine = make_engine({"domain": {"lst": [0]}})
    before = engine.state
    with pytest.raises(DepthLimitError):
        _run(engine, factory(nest(LIMIT - at + 1, kind="list")))
    assert engine.state is before


@pytest.mark.parametrize("kind", ["map", "list"])
def test_return_mapping_at_and_over_the_limit(make_engine, kind):
    engine = make_engine({"domain": {"x": 0}})
    _run(engine, lambda ctx: nest(LIMIT - 2, kind=kind), outputs=["domain.x"])
    assert engine.state.domain.x == nest(LIMIT - 2, kind=kind)
    before = engine.state
    with pytest.raises(DepthLimitError):
        _run(engine, lambda ctx: nest(LIMIT - 1, kind=kind), outputs=["domain.x"])
    assert engine.state is before


def test_two_outputs_return_mapping(make_engine):
    engine = make_engine({"domain": {"x": 0, "y": 0}})
    before = engine.state
    with pytest.raises(DepthLimitError):
        _run(engine, lambda ctx: (1, nest(LIMIT)), outputs=["domain.x", "domain.y"])
    assert engine.state is before


def _descend(view, levels):
    for _ in range(levels):
        view = view.a
    return view


def test_writing_below_a_view_at_the_limit(make_engine):
    # domain.a.a... (256 segments) is an empty map: nothing may go inside it
    engine = make_engine({"domain": nest(LIMIT - 1, leaf={})})

    def key(ctx):
        _descend(ctx.domain, LIMIT - 1)["k"] = 1

    def attr(ctx):
        _descend(ctx.domain, LIMIT - 1).k = 1

    def ok(ctx):
        _descend(ctx.domain, LIMIT - 2).b = 1  # 256 segments: fine

    for action in (key, attr):
        with pytest.raises(DepthLimitError):
            _run(engine, action)
        assert engine.state.version == 0
    _run(engine, ok)
    assert engine.state.get(deep_path(LIMIT - 1) + ".b") == 1


def test_paths_longer_than_the_limit(make_engine):
    engine = make_engine({"domain": nest(LIMIT - 1)})
    assert engine.state.get(deep_path(LIMIT)) == 1
    with pytest.raises(InvalidPathError):
        engine.state.get(deep_path(LIMIT + 1))
    with pytest.raises(InvalidPathError):
        engine.state.get(deep_path(10_000))
    with pytest.raises(InvalidPathError):
        _host_update(engine, data={deep_path(LIMIT + 1): 1})
    with pytest.raises(InvalidPathError):
        StateUpdate(delete=[deep_path(LIMIT + 1)])
    with pytest.raises(InvalidPathError):
        with engine.transaction() as tx:
            tx.get(deep_path(LIMIT + 1))
    # a path at the limit works; a container written there must be empty
    _host_update(engine, data={deep_path(LIMIT): 2})
    assert engine.state.get(deep_path(LIMIT)) == 2
    with pytest.raises(DepthLimitError):
        _host_update(engine, data={deep_path(LIMIT): {"b": 1}})
    assert engine.state.version == 1


# -- views written deeper than they came from ---------------------------------------------------


def test_view_written_deeper_than_its_origin(make_engine):
    engine = make_engine({"domain": {"deep": nest(LIMIT - 2), "box": {}}})

    def same_depth(ctx):
        ctx.domain.copy_ = ctx.domain.deep

    def shallower(ctx):
        ctx.domain.deep = ctx.domain.deep.a

    def deeper(ctx):
        ctx.domain.box.inner = ctx.domain.deep

    def deeper_in_list(ctx):
        ctx.domain.lst = [ctx.domain.deep]

    def deeper_by_append(ctx):
        ctx.domain.lst = []
        ctx.domain.lst.append(ctx.domain.deep)

    for action in (deeper, deeper_in_list, deeper_by_append):
        with pytest.raises(DepthLimitError):
            _run(engine, action)
        assert engine.state.version == 0
    _run(engine, same_depth)
    assert engine.state.domain.copy_ == nest(LIMIT - 2)
    _run(engine, shallower)
    assert engine.state.domain.deep == nest(LIMIT - 3)


def test_snapshot_view_written_deeper(make_engine):
    engine = make_engine({"domain": {"deep": nest(LIMIT - 2), "box": {}}})
    view = engine.state.domain.deep
    with pytest.raises(DepthLimitError):
        _host_update(engine, data={"domain.box.inner": view})
    assert engine.state.version == 0
    _host_update(engine, data={"domain.other": view})
    assert engine.state.domain.other == nest(LIMIT - 2)


# -- cycles ------------------------------------------------------------------------------------


def _self_map():
    d = {"v": 1}
    d["self"] = d
    return d, "domain.c.self"


def _self_list():
    lst = [1]
    lst.append(lst)
    return lst, "domain.c.1"


def _two_maps():
    a, b = {}, {}
    a["b"] = b
    b["a"] = a
    return a, "domain.c.b.a"


def _below_a_list():
    d = {}
    d["self"] = d
    return [0, {"x": d}], "domain.c.1.x.self"


def _deep_cycle():
    d = {}
    inner = nest(10, leaf=d)
    d["loop"] = inner
    return {"k": d}, "domain.c.k.loop." + ".".join(["a"] * 10)


CYCLES = {
    "self-map": _self_map,
    "self-list": _self_list,
    "two-maps": _two_maps,
    "below-a-list": _below_a_list,
    "deep": _deep_cycle,
}


@pytest.mark.parametrize("name", sorted(CYCLES))
def test_cycle_in_the_constructor(make_engine, name):
    value, closes = CYCLES[name]()
    with pytest.raises(DepthLimitError) as info:
        make_engine({"domain": {"c": value}})
    message = str(info.value)
    assert "contains itself" in message
    assert repr(closes) in message or f"'{closes}'" in message


@pytest.mark.parametrize("name", sorted(CYCLES))
def test_cycle_in_writes(make_engine, name):
    engine = make_engine({"domain": {"lst": []}})
    value, closes = CYCLES[name]()
    with pytest.raises(DepthLimitError) as info:
        _host_update(engine, data={"domain.c": value})
    assert f"'{closes}'" in str(info.value)

    def assign(ctx):
        ctx.domain.c = value

    def append(ctx):
        ctx.domain.lst.append(value)

    for action in (assign, append):
        with pytest.raises(DepthLimitError) as info:
            _run(engine, action)
        assert "contains itself" in str(info.value)
    with pytest.raises(DepthLimitError):
        _host_update(engine, signal={"domain.sig_c": value})
    assert engine.state.version == 0


def test_shared_values_are_not_cycles(make_engine):
    shared = {"v": [1, 2]}
    engine = make_engine({"domain": {"a": shared, "b": [shared, shared], "c": {"d": shared}}})
    assert engine.state.domain.b == [shared, shared]
    assert engine.state.domain.c.d == shared


# -- any depth, any stack ----------------------------------------------------------------------


def test_tree_at_the_limit_when_the_caller_is_deep(make_engine):
    """Reads and copies of a tree at the limit need no deep interpreter stack (~300 frames)."""
    engine = make_engine({"domain": {"x": nest(LIMIT - 2)}})
    results = []

    def at_depth(n):
        if n:
            return at_depth(n - 1)
        results.append(engine.state.to_dict()["domain"]["x"] == nest(LIMIT - 2))
        results.append(engine.state.domain.x == nest(LIMIT - 2))
        results.append(engine.state.domain.to_dict() == {"x": nest(LIMIT - 2)})
        _host_update(engine, data={"domain.y": nest(LIMIT - 2, kind="list")})
        with pytest.raises(DepthLimitError):
            _host_update(engine, data={"domain.z": nest(LIMIT - 1)})
        return True

    assert at_depth(300)
    assert results == [True, True, True]


_SCRIPT = """
import sys, threading
from theus import TheusEngine, DepthLimitError

BACKEND, LEVELS, KIND, SMALL_STACK = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def nest(n):
    value = 1
    for i in range(n):
        value = {"a": value} if KIND == "map" or (KIND == "mixed" and i % 2) else [value]
    return value

out = []

def body():
    deep = nest(LEVELS)
    for how in ("ctor", "update", "process"):
        try:
            if how == "ctor":
                TheusEngine(context={"domain": {"x": deep}}, backend=BACKEND)
            else:
                engine = TheusEngine(context={"domain": {}}, backend=BACKEND)
                if how == "update":
                    with engine.transaction() as tx:
                        tx.update(data={"domain.x": deep})
                else:
                    from theus import process

                    @process(inputs=[], outputs=["domain.x"])
                    def write(ctx):
                        ctx.domain.x = deep

                    engine.execute(write)
            out.append("stored")
        except DepthLimitError:
            out.append("DepthLimitError")
        except RecursionError:
            out.append("RecursionError")

if SMALL_STACK == "1":
    threading.stack_size(256 * 1024)
    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
else:
    body()
print(",".join(out))
"""


def _run_script(script, *args):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("small_stack", [False, True], ids=["main-thread", "256k-thread"])
@pytest.mark.parametrize(
    ("levels", "kind"), [(30_000, "map"), (100_000, "list"), (50_000, "mixed")]
)
def test_very_deep_values_raise_in_a_subprocess(backend, levels, kind, small_stack):
    proc = _run_script(_SCRIPT, backend, levels, kind, int(small_stack))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "DepthLimitError,DepthLimitError,DepthLimitError", proc.stderr


_AT_LIMIT_SCRIPT = """
import gc, sys, threading
from theus import TheusEngine, DepthLimitError

BACKEND, KIND = sys.argv[1], sys.argv[2]

def nest(n):
    value = 1
    for _ in range(n):
        value = {"a": value} if KIND == "map" else [value]
    return value

out = []

def body():
    value = nest(254)  # at domain.x: the innermost leaf sits at 256 segments
    engine = TheusEngine(context={"domain": {"x": value}}, backend=BACKEND)
    plain = engine.state.to_dict()
    out.append(plain["domain"]["x"] == value)
    out.append(engine.state.domain.x == value)
    out.append(engine.state.domain == {"x": value})
    out.append(len(repr(engine.state.domain)) > 254)
    with engine.transaction() as tx:
        tx.update(data={"domain.y": nest(254)})

    from theus import process

    @process(inputs=["domain"], outputs=["domain"])
    def deepest(ctx):  # reads and writes a path of 256 segments
        node = ctx.domain.y
        for _ in range(253):
            node = node["a"] if KIND == "map" else node[0]
        if KIND == "map":
            node["a"] = node["a"] + 1
        else:
            node[0] = node[0] + 1
        return None

    engine.execute(deepest)
    out.append(engine.state.version == 2)
    with engine.transaction() as tx:
        tx.update(data={"domain.x": 0})
    try:
        with engine.transaction() as tx:
            tx.update(data={"domain.z": nest(255)})
    except DepthLimitError:
        out.append(True)
    cyclic = {}
    cyclic["self"] = cyclic
    try:
        TheusEngine(context={"domain": {"c": cyclic}}, backend=BACKEND)
    except DepthLimitError:
        out.append(True)
    del engine, plain
    gc.collect()
    out.append(True)

threading.stack_size(256 * 1024)
thread = threading.Thread(target=body)
thread.start()
thread.join()
print(len(out), all(out))
"""


@pytest.mark.parametrize("kind", ["map", "list"])
def test_tree_at_the_limit_on_a_small_stack_in_a_subprocess(backend, kind):
    proc = _run_script(_AT_LIMIT_SCRIPT, backend, kind)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "8 True", proc.stderr
