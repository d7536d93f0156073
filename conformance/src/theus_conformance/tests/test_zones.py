"""spec/03 — zones by key prefix (REQUIREMENTS §4.5), with spec/vectors/zones.json.

The zone of each vector path is observed through behaviour only; every zone has a behaviour no
other zone shares (signal: not in the tree; heavy: identity; log: no reassignment; meta: hidden
from ``pure``; data: none of these).
"""

from __future__ import annotations

import pytest

from theus import (
    ContextError,
    ContractViolationError,
    InvalidContractError,
    StateUpdate,
    process,
)
from theus_conformance import load_vector
from theus_conformance.support import drain, tree_with

ZONES = load_vector("zones.json")


def _parent(path):
    return path.rsplit(".", 1)[0]


def _zone_checks_data(make_engine, path):
    engine = make_engine(tree_with([path], leaf="old"))
    value = [1, {"k": 2}]
    with engine.transaction() as tx:
        tx.update(data={path: value})
    stored = engine.state.get(path)
    assert stored == value and stored is not value  # a frozen copy, in the tree
    assert dict(engine.state.signals) == {}
    with engine.transaction() as tx:  # reassignment allowed (not log)
        tx.update(data={path: "again"})
    assert engine.state.get(path) == "again"

    @process(inputs=[_parent(path) + ".*"], semantic="pure")
    def pure_reader(ctx):
        node = ctx[path.split(".")[0]]
        for seg in path.split(".")[1:]:
            node = node[seg]
        return node

    assert engine.execute(pure_reader) == "again"  # not meta


def _zone_checks_signal(make_engine, path):
    engine = make_engine(tree_with([_parent(path)], leaf={}))
    rx = engine.signals.subscribe()
    with engine.transaction() as tx:
        tx.update(signal={path: {"go": 1}})
    state = engine.state
    assert state.version == 1
    parent, key = path.rsplit(".", 1)
    assert key not in state.get(parent)  # not in the tree
    assert key not in str(state.to_dict())
    assert dict(state.signals) == {path: {"go": 1}}
    assert state.get(path) == {"go": 1}  # snapshot.get of a signal path reads its signals
    [message] = drain(rx)
    assert (message.name, message.value, message.version) == (path, {"go": 1}, 1)
    with engine.transaction() as tx:
        tx.update(data={"domain.other": 1})
    assert dict(engine.state.signals) == {}  # lives one version
    assert engine.state.get(path, "gone") == "gone"
    assert dict(state.signals) == {path: {"go": 1}}


def _zone_checks_meta(make_engine, path):
    engine = make_engine(tree_with([path], leaf={"trace": [1]}))
    value = {"trace": [1, 2]}
    with engine.transaction() as tx:
        tx.update(data={path: value})
    assert engine.state.get(path) == value and engine.state.get(path) is not value
    ns = path.split(".")[0]

    @process(inputs=[ns + ".**"], semantic="pure")
    def pure_meta_reader(ctx):
        node = ctx[ns]
        for seg in path.split(".")[1:]:
            node = node[seg]
        return dict(node)

    if ns.startswith("meta_"):
        # the pattern names a meta namespace literally: refused at registration, or at the
        # latest at access (spec/04 "rejected at registration")
        with pytest.raises((InvalidContractError, ContractViolationError)):
            engine.execute(pure_meta_reader)
    else:
        with pytest.raises(ContractViolationError):
            engine.execute(pure_meta_reader)

    @process(inputs=[ns + ".**"], semantic="effect")
    def effect_meta_reader(ctx):
        node = ctx[ns]
        for seg in path.split(".")[1:]:
            node = node[seg]
        return node.to_dict()

    assert engine.execute(effect_meta_reader) == value

    @process(inputs=[path], semantic="pure")
    def pure_literal(ctx):
        return None

    with pytest.raises(InvalidContractError):
        engine.register(pure_literal)


def _zone_checks_heavy(make_engine, path):
    engine = make_engine(tree_with([_parent(path)], leaf={}))

    class Unhashable:
        __hash__ = None

        def __eq__(self, other):
            raise AssertionError("a heavy value must never be compared")

        def __deepcopy__(self, memo):
            raise AssertionError("a heavy value must never be copied")

        def __copy__(self):
            raise AssertionError("a heavy value must never be copied")

        def __reduce_ex__(self, protocol):
            raise AssertionError("a heavy value must never be pickled")

    obj = Unhashable()
    with engine.transaction() as tx:
        tx.update(heavy={path: obj})
    assert engine.state.get(path) is obj
    data_obj = {"mutable": [1]}  # data= on a heavy path is stored by reference as well
    with engine.transaction() as tx:
        tx.update(data={path: data_obj})
    assert engine.state.get(path) is data_obj
    data_obj["mutable"].append(2)  # shared, by design
    assert engine.state.get(path)["mutable"] == [1, 2]
    assert engine.state.get(path + ".mutable", "leaf") == "leaf"  # a heavy value is a leaf
    before = engine.state
    with pytest.raises(ContextError):
        with engine.transaction() as tx:
            tx.update(data={path + ".mutable": 3})
    assert engine.state is before


def _zone_checks_log(make_engine, path):
    parent_path, _, _key = path.rpartition(".")
    engine = make_engine(tree_with([parent_path], leaf={}))
    with engine.transaction() as tx:  # created when absent
        tx.update(data={path: ["e1"]})
    assert engine.state.get(path) == ["e1"]
    with engine.transaction() as tx:
        tx.append(path, "e2")
    assert engine.state.get(path) == ["e1", "e2"]
    before = engine.state
    with pytest.raises(ContractViolationError) as info:
        with engine.transaction() as tx:
            tx.update(data={path: ["replaced"]})
    assert path in str(info.value) and "log" in str(info.value)
    with pytest.raises(ContractViolationError):
        with engine.transaction() as tx:
            tx.update(delete=[path])
    with pytest.raises(ContractViolationError):
        with engine.transaction() as tx:
            tx.update(data={path + ".0": "rewritten"})
    assert engine.state is before


ZONE_CHECKS = {
    "data": _zone_checks_data,
    "signal": _zone_checks_signal,
    "meta": _zone_checks_meta,
    "heavy": _zone_checks_heavy,
    "log": _zone_checks_log,
}


@pytest.mark.parametrize("path, zone", ZONES, ids=[f"{p}={z}" for p, z in ZONES])
def test_zone_vector(make_engine, path, zone):
    segments = path.split(".")
    if zone == "log" and segments[-1].isdigit():
        _log_item(make_engine, path)
    elif zone == "heavy" and not segments[-1].startswith("heavy_"):
        _below_heavy(make_engine, path)
    elif zone == "meta" and not segments[-1].startswith("meta_") and len(segments) > 2:
        _below_meta(make_engine, path)
    else:
        ZONE_CHECKS[zone](make_engine, path)


def _log_item(make_engine, path):
    """An element of a log list is in the log zone: it cannot be assigned or deleted."""
    parent = _parent(path)
    index = int(path.rsplit(".", 1)[1])
    ctx = tree_with([_parent(parent)])
    node = ctx
    for seg in parent.split(".")[:-1]:
        node = node[seg]
    node[parent.rsplit(".", 1)[1]] = list(range(index + 1))
    engine = make_engine(ctx)
    before = engine.state
    with pytest.raises(ContractViolationError):
        with engine.transaction() as tx:
            tx.update(data={path: "rewritten"})
    with pytest.raises(ContractViolationError):
        with engine.transaction() as tx:
            tx.update(delete=[path])
    assert engine.state is before
    assert engine.state.get(path) == index


def _below_heavy(make_engine, path):
    """A path below a heavy key addresses nothing, whatever its own prefix says."""
    heavy_path = _parent(path)
    obj = {path.rsplit(".", 1)[1]: "inside"}
    ctx = tree_with([_parent(heavy_path)] if "." in _parent(heavy_path) else [])
    node = ctx
    for seg in heavy_path.split(".")[:-1]:
        node = node[seg]
    node[heavy_path.rsplit(".", 1)[1]] = obj
    engine = make_engine(ctx)
    assert engine.state.get(heavy_path) is obj
    assert engine.state.get(path, "dflt") == "dflt"
    before = engine.state
    with pytest.raises(ContextError):
        with engine.transaction() as tx:
            tx.update(data={path: 1})
    assert engine.state is before


def _below_meta(make_engine, path):
    """A path below a meta key is meta even when its own key looks heavy: stored as data
    (copied, not by reference) and hidden from ``pure`` processes."""
    obj = ["a", "list"]
    engine = make_engine(tree_with([_parent(path)], leaf={}))
    with engine.transaction() as tx:
        tx.update(data={path: obj})
    assert engine.state.get(path) == obj
    assert engine.state.get(path) is not obj  # not heavy
    _zone_checks_meta(make_engine, path)


# ---------------------------------------------------------------------------------------------
# zone rules inside processes


def test_log_append_inside_process(make_engine):
    engine = make_engine({"domain": {"log_events": ["a"]}})

    @process(outputs=["domain.log_events"])
    def add_events(ctx):
        ctx.domain.log_events.append("b")
        ctx.domain.log_events.extend(["c", "d"])
        events = ctx.domain.log_events
        events += ["e"]

    engine.execute(add_events)
    assert engine.state.domain.log_events == ["a", "b", "c", "d", "e"]


LOG_FORBIDDEN = {
    "assign": lambda d: setattr(d, "log_events", ["x"]),
    "setitem": lambda d: d.log_events.__setitem__(0, "x"),
    "insert": lambda d: d.log_events.insert(0, "x"),
    "pop": lambda d: d.log_events.pop(),
    "remove": lambda d: d.log_events.remove("a"),
    "clear": lambda d: d.log_events.clear(),
    "delitem": lambda d: d.log_events.__delitem__(0),
    "sort": lambda d: d.log_events.sort(),
    "reverse": lambda d: d.log_events.reverse(),
    "delete": lambda d: d.__delitem__("log_events"),
    "pop-key": lambda d: d.pop("log_events"),
}


@pytest.mark.parametrize("op", sorted(LOG_FORBIDDEN))
def test_log_is_append_only_inside_process(make_engine, op):
    engine = make_engine({"domain": {"log_events": ["a", "b"]}})
    before = engine.state

    @process(outputs=["domain.log_events"])
    def mutate_log(ctx):
        ctx.domain.log_events.append("appended-first")
        LOG_FORBIDDEN[op](ctx.domain)

    with pytest.raises(ContractViolationError) as info:
        engine.execute(mutate_log)
    assert "domain.log_events" in str(info.value)
    assert "log" in str(info.value)
    assert engine.state is before


def test_log_creation_rules(make_engine):
    """spec/03: a log is created with a list (another type: ContractViolationError);
    appending to an absent log raises KeyError, nothing is created implicitly."""
    engine = make_engine()
    before = engine.state
    with pytest.raises(ContractViolationError, match="domain.log_x"):
        with engine.transaction() as tx:
            tx.update(data={"domain.log_x": "not a list"})
    with pytest.raises(KeyError, match="domain.log_absent"):
        with engine.transaction() as tx:
            tx.append("domain.log_absent", 1)
    assert engine.state is before
    with engine.transaction() as tx:
        tx.update(data={"domain.log_x": []})
        tx.append("domain.log_x", "same transaction")
    assert engine.state.domain.log_x == ["same transaction"]


def test_returned_list_for_existing_log_is_refused(make_engine):
    engine = make_engine({"domain": {"log_events": ["a"]}})

    @process(outputs=["domain.log_events"])
    def return_log(ctx):
        return ["a", "b"]

    with pytest.raises(ContractViolationError):
        engine.execute(return_log)
    assert engine.state.version == 0


def test_signal_cannot_be_deleted_or_mutated(make_engine):
    engine = make_engine()
    with engine.transaction() as tx:  # the base snapshot carries the signal
        tx.update(signal={"domain.sig_x": [1]})
    before = engine.state
    with pytest.raises(ContractViolationError):
        with engine.transaction() as tx:
            tx.update(delete=["domain.sig_x"])

    @process(inputs=["domain.sig_x"], outputs=["domain.sig_x"])
    def append_to_signal(ctx):
        ctx.domain.sig_x.append(2)  # signal values are frozen: a read-only view (spec/03)

    with pytest.raises(ContextError):
        engine.execute(append_to_signal)
    assert dict(before.signals) == {"domain.sig_x": [1]}  # the snapshot's signal is unchanged

    @process(outputs=["domain.sig_x"])
    def delete_signal(ctx):
        del ctx.domain["sig_x"]

    with pytest.raises(ContractViolationError):
        engine.execute(delete_signal)
    assert engine.state is before


def test_signal_read_inside_process_sees_base_signals(make_engine):
    engine = make_engine()
    with engine.transaction() as tx:
        tx.update(signal={"domain.sig_ready": "yes"}, data={"domain.n": 0})

    @process(inputs=["domain.sig_ready", "domain.sig_never"])
    def read_signal(ctx):
        got = ctx.domain.sig_ready
        try:
            ctx.domain.sig_never
        except AttributeError:
            return got, "missing"
        return got, "present"

    assert engine.execute(read_signal) == ("yes", "missing")


def test_signal_read_your_own_write(make_engine):
    engine = make_engine()
    with engine.transaction() as tx:
        tx.update(signal={"domain.sig_v": "base"})

    seen = []

    @process(inputs=["domain.sig_v"], outputs=["domain.sig_v"])
    def rewrite(ctx):
        before = ctx.domain.sig_v
        ctx.domain.sig_v = "mine"
        seen.append((before, ctx.domain.sig_v, ctx.domain["sig_v"]))

    engine.execute(rewrite)
    assert seen == [("base", "mine", "mine")]
    assert dict(engine.state.signals) == {"domain.sig_v": "mine"}


def test_signal_rewrite_keeps_last_value_in_write_order(make_engine):
    engine = make_engine()
    rx = engine.signals.subscribe()

    @process(outputs=["domain.sig_b", "domain.sig_a"])
    def emit(ctx):
        ctx.domain.sig_b = 1
        ctx.domain.sig_a = 2
        ctx.domain.sig_b = 3

    engine.execute(emit)
    assert list(engine.state.signals.items()) == [("domain.sig_b", 3), ("domain.sig_a", 2)]
    messages = drain(rx)
    assert [m.name for m in messages] == ["domain.sig_b", "domain.sig_a"]
    assert [m.value for m in messages] == [3, 2]


def test_heavy_value_identity_through_process(make_engine):
    obj = bytearray(b"weights")
    engine = make_engine({"domain": {"heavy_w": obj}})
    assert engine.state.domain.heavy_w is obj

    @process(inputs=["domain.heavy_w"], outputs=["domain.heavy_out"])
    def pass_heavy(ctx):
        assert ctx.domain.heavy_w is obj
        ctx.domain.heavy_out = ctx.domain.heavy_w

    engine.execute(pass_heavy)
    assert engine.state.domain.heavy_out is obj


def test_heavy_kw_outside_heavy_zone_is_value_error(engine):
    with pytest.raises(ValueError, match="domain.plain"):
        with engine.transaction() as tx:
            tx.update(heavy={"domain.plain": object()})
    with pytest.raises(ValueError, match="domain.plain"):
        with engine.transaction() as tx:
            tx.update(signal={"domain.plain": 1})
    with pytest.raises(ValueError, match="domain.plain"):
        engine.compare_and_swap(0, heavy={"domain.plain": 1})
    with pytest.raises(ValueError, match="domain.plain"):
        engine.compare_and_swap(0, signal={"domain.plain": 1})

    @process(outputs=["domain.plain"])
    def return_bad_heavy(ctx):
        return StateUpdate(heavy={"domain.plain": object()})

    with pytest.raises(ValueError, match="domain.plain"):
        engine.execute(return_bad_heavy)
    assert engine.state.version == 0


@pytest.mark.parametrize("semantic", ["pure", "effect"])
def test_meta_by_wildcard_checked_at_access(make_engine, semantic):
    engine = make_engine({"domain": {"meta_trace": [1], "x": 1}})

    @process(inputs=["domain.*"], semantic=semantic)
    def touch_meta(ctx):
        return ctx.domain.meta_trace.to_list()

    if semantic == "pure":
        with pytest.raises(ContractViolationError):
            engine.execute(touch_meta)
    else:
        assert engine.execute(touch_meta) == [1]


# ---------------------------------------------------------------------------------------------
# zones of keys inside a written map


@pytest.mark.parametrize("where", ["construction", "data", "process"])
def test_signal_key_inside_a_written_map_is_refused(make_engine, where):
    value = {"ok": 1, "inner": {"sig_hidden": True}}
    if where == "construction":
        with pytest.raises(ContextError, match="sig_hidden"):
            make_engine({"domain": {"m": value}})
        return
    engine = make_engine({"domain": {"m": None}})
    before = engine.state
    with pytest.raises(ContextError, match="sig_hidden"):
        if where == "data":
            with engine.transaction() as tx:
                tx.update(data={"domain.m": value})
        else:

            @process(outputs=["domain.m"])
            def write_map(ctx):
                ctx.domain.m = value

            engine.execute(write_map)
    assert engine.state is before


def test_heavy_and_log_keys_inside_a_written_map(make_engine):
    obj = {"by": "reference"}
    engine = make_engine({"domain": {"agent": {"heavy_model": obj, "log_steps": ["init"]}}})
    assert engine.state.domain.agent.heavy_model is obj
    with engine.transaction() as tx:
        tx.append("domain.agent.log_steps", "step")
    assert engine.state.domain.agent.log_steps == ["init", "step"]
    with pytest.raises(ContractViolationError):
        with engine.transaction() as tx:
            tx.update(data={"domain.agent.log_steps": []})
    other = {"also": "reference"}
    with engine.transaction() as tx:
        tx.update(data={"domain.fresh": {"heavy_blob": other, "log_x": [1]}})
    assert engine.state.domain.fresh.heavy_blob is other
    with pytest.raises(ContractViolationError):
        with engine.transaction() as tx:
            tx.update(data={"domain.fresh.log_x": [2]})


def test_a_view_cannot_be_stored_in_the_heavy_zone(make_engine):
    """spec/03: a view is a window on a transaction, never a heavy value."""
    engine = make_engine({"domain": {"m": {"a": 1}}})

    @process(inputs=["domain.m"], outputs=["domain.heavy_copy"])
    def stash_view(ctx):
        ctx.domain.heavy_copy = ctx.domain.m

    before = engine.state
    with pytest.raises(ContextError):
        engine.execute(stash_view)
    assert engine.state is before
    with pytest.raises(ContextError):
        with engine.transaction() as tx:
            tx.update(heavy={"domain.heavy_snap": engine.state.domain.m})
    assert engine.state is before
