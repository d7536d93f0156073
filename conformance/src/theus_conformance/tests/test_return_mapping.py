"""spec/06 — writing by returning values; return-mapped writes obey the in-place rules
(REQUIREMENTS §4.2)."""

from __future__ import annotations

import pytest

from theus import ContractViolationError, InvalidContractError, StateUpdate, process
from theus_conformance.support import drain


def test_single_output_receives_the_value(make_engine):
    engine = make_engine({"domain": {"total": 0}})

    @process(inputs=["domain.total"], outputs=["domain.total"])
    def add(ctx, n):
        return ctx.domain.total + n

    assert engine.execute(add, n=5) == 5
    assert engine.state.domain.total == 5
    assert engine.state.version == 1


def test_several_outputs_receive_a_tuple_in_declared_order(make_engine):
    engine = make_engine({"domain": {"a": 0, "b": 0}})

    @process(outputs=["domain.b", "domain.a"])
    def two(ctx):
        return ("for-b", "for-a")

    assert engine.execute(two) == ("for-b", "for-a")
    assert engine.state.domain == {"a": "for-a", "b": "for-b"}


@pytest.mark.parametrize("returned", [["x"], ("x",), ("x", "y", "z"), ["x", "y", "z"], "xy", 7])
def test_wrong_shape_for_several_outputs(make_engine, returned):
    engine = make_engine({"domain": {"a": 0, "b": 0}})

    @process(outputs=["domain.a", "domain.b"])
    def misshapen(ctx):
        return returned

    with pytest.raises(ContractViolationError) as info:
        engine.execute(misshapen)
    message = str(info.value)
    assert "misshapen" in message and "2" in message
    assert engine.state.version == 0


def test_none_maps_nothing(make_engine):
    engine = make_engine({"domain": {"a": 1}})

    @process(outputs=["domain.a"])
    def returns_none(ctx):
        return None

    assert engine.execute(returns_none) is None
    assert engine.state.version == 0 and engine.state.domain.a == 1


@pytest.mark.parametrize("returned", ["just a value", 7, ("x",)])
def test_in_place_write_then_a_misshapen_value_raises(make_engine, returned):
    engine = make_engine({"domain": {"a": 1, "b": 1}})

    @process(outputs=["domain.a", "domain.b"])
    def both(ctx):
        ctx.domain.a = 2
        return returned

    with pytest.raises(ContractViolationError, match="2 outputs"):
        engine.execute(both)
    assert engine.state.version == 0


@pytest.mark.parametrize("returned", ["just a value", 7, [1], "view"])
def test_in_place_write_then_a_plain_value_for_one_output_raises(make_engine, returned):
    engine = make_engine({"domain": {"a": 1, "items": []}})

    @process(inputs=["domain.items"], outputs=["domain.items"])
    def one(ctx):
        ctx.domain["items"].append(1)
        return ctx.domain["items"] if returned == "view" else returned

    with pytest.raises(ContractViolationError, match="wrote in place") as info:
        engine.execute(one)
    assert "'domain.items'" in str(info.value) and "'one'" in str(info.value)
    assert engine.state.version == 0


def test_in_place_write_then_an_exact_mapping_is_applied_after(make_engine):
    engine = make_engine({"domain": {"orders": [5, 7], "balance": 0, "done": []}})

    @process(inputs=["domain.orders"], outputs=["domain.balance", "domain.done"])
    def pay(ctx):
        balance = ctx.domain.get("balance", 0)
        done = ctx.domain.get("done", [])
        for amount in ctx.domain.orders:
            balance += amount
            done.append(amount)  # in place
        return balance, done  # applied after the in-place writes

    assert engine.execute(pay)[0] == 12
    assert engine.state.domain.balance == 12
    assert engine.state.domain.done == [5, 7]

    @process(outputs=["domain.balance", "domain.done"])
    def keyed(ctx):
        ctx.domain.done.append(1)
        return {"balance": 99}

    engine.execute(keyed)
    assert engine.state.domain.balance == 99 and engine.state.domain.done == [5, 7, 1]


def test_no_outputs_maps_nothing(make_engine):
    engine = make_engine({"domain": {"a": 1}})

    @process(inputs=["domain.a"])
    def compute(ctx):
        return {"domain.a": 99}

    assert engine.execute(compute) == {"domain.a": 99}
    assert engine.state.version == 0


def test_wildcard_output_cannot_receive_a_value(make_engine):
    engine = make_engine({"domain": {"a": 1}})

    @process(outputs=["domain.*"])
    def to_wildcard(ctx):
        return 5

    with pytest.raises(ContractViolationError, match="StateUpdate"):
        engine.execute(to_wildcard)
    assert engine.state.version == 0


def test_state_update_is_applied_and_returned(make_engine):
    engine = make_engine({"domain": {"a": 1, "gone": 1}})
    rx = engine.signals.subscribe()
    heavy = object()
    update = StateUpdate(
        data={"domain.a": 2, "domain.new": {"x": [1]}},
        heavy={"domain.heavy_h": heavy},
        signal={"domain.sig_done": "y"},
        delete=["domain.gone"],
    )

    @process(outputs=["domain.*"])
    def explicit(ctx):
        return update

    assert engine.execute(explicit) is update
    state = engine.state
    assert state.version == 1
    assert state.domain.a == 2 and state.domain.new == {"x": [1]}
    assert state.domain.heavy_h is heavy
    assert "gone" not in state.domain
    assert dict(state.signals) == {"domain.sig_done": "y"}
    assert [(m.name, m.value, m.version) for m in drain(rx)] == [("domain.sig_done", "y", 1)]


def test_state_update_paths_are_checked_against_the_contract(make_engine):
    engine = make_engine({"domain": {"a": 1, "b": 1}})

    @process(outputs=["domain.a"])
    def sneaky(ctx):
        return StateUpdate(data={"domain.a": 2, "domain.b": 2})

    with pytest.raises(ContractViolationError, match="domain.b"):
        engine.execute(sneaky)

    @process(outputs=["domain.a"])
    def sneaky_delete(ctx):
        return StateUpdate(delete=["domain.b"])

    with pytest.raises(ContractViolationError, match="domain.b"):
        engine.execute(sneaky_delete)
    assert engine.state.version == 0


def test_return_mapping_obeys_semantic(make_engine):
    engine = make_engine({"domain": {"a": 1}})

    @process(outputs=["domain.*"], semantic="pure")
    def pure_signal(ctx):
        return StateUpdate(signal={"domain.sig_x": 1})

    with pytest.raises(ContractViolationError):
        engine.execute(pure_signal)

    @process(outputs=["domain.*"], semantic="guide")
    def guide_data(ctx):
        return StateUpdate(data={"domain.a": 2})

    with pytest.raises(ContractViolationError):
        engine.execute(guide_data)
    assert engine.state.version == 0


def test_return_mapping_into_log_and_signal_zones(make_engine):
    engine = make_engine({"domain": {}})
    rx = engine.signals.subscribe()

    @process(outputs=["domain.log_new", "domain.sig_made"])
    def create_log(ctx):
        return (["first"], "created")

    engine.execute(create_log)
    assert engine.state.domain.log_new == ["first"]
    assert [(m.name, m.value) for m in drain(rx)] == [("domain.sig_made", "created")]
    assert "sig_made" not in engine.state.domain

    with pytest.raises(ContractViolationError):
        engine.execute(create_log)  # the log exists now: a returned list would replace it
    assert engine.state.version == 1


def test_returned_view_writes_its_content(make_engine):
    engine = make_engine({"domain": {"src": {"k": [1]}, "dst": None}})

    @process(inputs=["domain.src"], outputs=["domain.dst"])
    def copy_src(ctx):
        return ctx.domain.src

    engine.execute(copy_src)
    assert engine.state.domain.dst == {"k": [1]}
    assert engine.state.domain.dst.to_dict() == {"k": [1]}


def test_returned_value_is_copied(make_engine):
    engine = make_engine({"domain": {"dst": None}})
    value = {"k": [1]}

    @process(outputs=["domain.dst"])
    def give(ctx):
        return value

    engine.execute(give)
    value["k"].append(2)
    assert engine.state.domain.dst == {"k": [1]}


def test_return_to_meta_refused_for_pure_at_registration(make_engine):
    engine = make_engine()

    @process(outputs=["domain.meta_x"], semantic="pure")
    def pure_meta(ctx):
        return 1

    with pytest.raises(InvalidContractError):
        engine.execute(pure_meta)
