"""spec/17 — audit output rules on the commit pipeline (spec/15): the values a commit would
write, however they were written (in place, returned, StateUpdate); levels and thresholds
counted once per call; nothing lands and nothing is published when a rule raises."""

from __future__ import annotations

import asyncio

import pytest

from theus import (
    AuditAbortError,
    AuditBlockError,
    AuditStopError,
    StateUpdate,
    process,
)
from theus_conformance.support import drain, in_thread, run_with_timeout


def _recipe(outputs, name="pay", **audit):
    recipe = {"process_recipes": {name: {"outputs": outputs}}}
    if audit:
        recipe["audit"] = audit
    return recipe


# the same write two ways (in place, StateUpdate); returned values: _returning_engine
def _in_place(ctx, value):
    ctx.domain.balance = value
    ctx.domain.sig_paid = value


def _state_update(ctx, value):
    return StateUpdate(data={"domain.balance": value}, signal={"domain.sig_paid": value})


WAYS = {"in_place": _in_place, "state_update": _state_update}


def _pay_engine(make_engine, recipe, way):
    engine = make_engine(
        {"domain": {"balance": 10, "log_pay": [], "cart": {}}}, audit_recipe=recipe
    )
    body = WAYS[way]

    @process(name="pay", inputs=["domain.balance"], outputs=["domain.balance", "domain.sig_paid"])
    def pay(ctx, value):
        return body(ctx, value)

    engine.register(pay)
    return engine, pay


def _returning_engine(make_engine, recipe):
    engine = make_engine({"domain": {"balance": 10}}, audit_recipe=recipe)

    @process(name="pay", inputs=["domain.balance"], outputs=["domain.balance"])
    def pay(ctx, value):
        return value

    return engine, pay


def _refused(engine, rx, call, error):
    before = engine.state
    with pytest.raises(error) as info:
        call()
    assert engine.state is before
    assert drain(rx) == []
    return info.value


# ---------------------------------------------------------------------------------------------
# levels, whichever way the value is written


@pytest.mark.parametrize("way", sorted(WAYS))
@pytest.mark.parametrize(
    ("level", "error", "word"), [("S", AuditStopError, "stop"), ("A", AuditAbortError, "abort")]
)
def test_stop_and_abort_reject_the_commit(make_engine, way, level, error, word):
    engine, pay = _pay_engine(
        make_engine, _recipe([{"field": "domain.balance", "min": 0, "level": level}]), way
    )
    rx = engine.signals.subscribe()
    for n in (1, 2):
        err = _refused(engine, rx, lambda: engine.execute(pay, value=-5), error)
        assert str(err) == (
            f"audit {word}: process 'pay' output 'domain.balance': -5 is less than min 0"
        )
        assert err.violation.count == n and err.violation.version is None
    engine.execute(pay, value=3)
    assert engine.state.domain.balance == 3
    assert [m.value for m in drain(rx)] == [3]


@pytest.mark.parametrize("level", ["S", "A", "B", "C"])
def test_returned_values_are_audited(make_engine, level):
    engine, pay = _returning_engine(
        make_engine,
        _recipe([{"field": "domain.balance", "min": 0, "level": level}], threshold_max=0),
    )
    before = engine.state
    if level == "C":
        engine.execute(pay, value=-1)
        assert engine.state.domain.balance == -1
        assert engine.audit.log[0].version == engine.state.version
    else:
        with pytest.raises((AuditStopError, AuditAbortError, AuditBlockError)):
            engine.execute(pay, value=-1)
        assert engine.state is before
    assert engine.audit.count("pay") == 1


@pytest.mark.parametrize("way", sorted(WAYS))
@pytest.mark.parametrize("threshold", [0, 2])
def test_block_commits_up_to_threshold_max_then_rejects(make_engine, way, threshold):
    engine, pay = _pay_engine(
        make_engine,
        _recipe([{"field": "domain.balance", "max": 100}], level="B", threshold_max=threshold),
        way,
    )
    rx = engine.signals.subscribe()
    for i in range(threshold):
        engine.execute(pay, value=500 + i)
        assert engine.state.domain.balance == 500 + i
        assert [m.value for m in drain(rx)] == [500 + i]
        assert engine.audit.count("pay") == i + 1  # counted by the time execute returns
    err = _refused(engine, rx, lambda: engine.execute(pay, value=999), AuditBlockError)
    assert str(err) == (
        "audit block: process 'pay' output 'domain.balance': 999 is greater than max 100 "
        f"(violation {threshold + 1}, threshold_max {threshold})"
    )
    versions = [r.version for r in engine.audit.log]
    assert versions == [*range(1, threshold + 1), None]


def test_count_only_counts_and_records_the_version(make_engine):
    engine, pay = _pay_engine(
        make_engine, _recipe([{"field": "domain.balance", "min": 0, "level": "C"}]), "in_place"
    )
    for _ in range(5):
        engine.execute(pay, value=-1)
    assert engine.audit.count("pay") == 5
    assert [r.version for r in engine.audit.log] == [1, 2, 3, 4, 5]
    assert all(not r.raised for r in engine.audit.log)


def test_reset_on_success_after_a_clean_commit(make_engine):
    engine, pay = _pay_engine(
        make_engine, _recipe([{"field": "domain.balance", "min": 0}], threshold_max=1), "in_place"
    )
    for _ in range(4):
        engine.execute(pay, value=-1)
        assert engine.audit.count("pay") == 1
        engine.execute(pay, value=1)
        assert engine.audit.count("pay") == 0
    engine.execute(pay, value=-1)
    with pytest.raises(AuditBlockError):
        engine.execute(pay, value=-1)


def test_without_reset_on_success_the_count_accumulates(make_engine):
    engine, pay = _pay_engine(
        make_engine,
        _recipe([{"field": "domain.balance", "min": 0}], threshold_max=2, reset_on_success=False),
        "in_place",
    )
    for _ in range(2):
        engine.execute(pay, value=-1)
        engine.execute(pay, value=1)
    with pytest.raises(AuditBlockError):
        engine.execute(pay, value=-1)
    assert engine.audit.count("pay") == 3


# ---------------------------------------------------------------------------------------------
# what the rule sees


def test_a_field_inside_a_written_map_or_list(make_engine):
    engine = make_engine(
        {"domain": {"user": {"age": 1, "name": "a"}, "items": [1, 2]}},
        audit_recipe=_recipe(
            [
                {"field": "domain.user.age", "min": 0, "level": "S"},
                {"field": "domain.items.1", "max": 5, "level": "S"},
            ],
            name="save",
        ),
    )

    @process(name="save", outputs=["domain.user", "domain.items"])
    def save(ctx, user, items):
        return StateUpdate(data={"domain.user": user, "domain.items": items})

    with pytest.raises(AuditStopError, match="output 'domain.user.age': -3 is less than min 0"):
        engine.execute(save, user={"age": -3, "name": "b"}, items=[1, 2])
    with pytest.raises(AuditStopError, match="output 'domain.items.1': 9 is greater than max 5"):
        engine.execute(save, user={"age": 3}, items=[1, 9])
    engine.execute(save, user={"age": 3}, items=[1, 5])
    assert engine.state.version == 1


def test_appends_and_writes_below_the_field_see_its_whole_new_value(make_engine):
    engine = make_engine(
        {"domain": {"log_pay": [1, 2], "cart": {"a": 1}}},
        audit_recipe=_recipe(
            [
                {"field": "domain.log_pay", "max_len": 3, "level": "A"},
                {"field": "domain.cart", "max_len": 2, "level": "A"},
            ],
            name="shop",
        ),
    )

    @process(name="shop", outputs=["domain.log_pay", "domain.cart"])
    def shop(ctx, log_items=(), cart_keys=()):
        for item in log_items:
            ctx.domain.log_pay.append(item)
        for key in cart_keys:
            ctx.domain.cart[key] = 0

    engine.execute(shop, log_items=[3])  # 3 items: fine
    with pytest.raises(AuditAbortError, match="output 'domain.log_pay': length 4"):
        engine.execute(shop, log_items=[4])
    engine.execute(shop, cart_keys=["b"])
    with pytest.raises(AuditAbortError, match="output 'domain.cart': length 3"):
        engine.execute(shop, cart_keys=["c"])
    assert engine.state.domain.log_pay.to_list() == [1, 2, 3]
    assert engine.state.domain.cart.to_dict() == {"a": 1, "b": 0}


def test_untouched_or_deleted_fields_are_not_checked(make_engine):
    engine = make_engine(
        {"domain": {"balance": -1, "other": 0}},
        audit_recipe=_recipe([{"field": "domain.balance", "min": 0, "level": "S"}], name="p"),
    )

    @process(name="p", outputs=["domain.other", "domain.balance"])
    def p(ctx, drop=False):
        ctx.domain.other += 1
        if drop:
            del ctx.domain.balance

    engine.execute(p)
    engine.execute(p, drop=True)
    assert engine.audit.log == []
    assert "balance" not in engine.state.domain


def test_host_transactions_and_compare_and_swap_are_not_audited(make_engine):
    engine = make_engine(
        {"domain": {"balance": 0}},
        audit_recipe=_recipe([{"field": "domain.balance", "min": 0, "level": "S"}]),
    )
    with engine.transaction() as tx:
        tx.update(data={"domain.balance": -5})
    engine.compare_and_swap(engine.state.version, data={"domain.balance": -6})
    assert engine.state.domain.balance == -6
    assert engine.audit.log == []


@pytest.mark.requires("threads")
def test_a_re_run_call_is_counted_once(make_engine):
    engine = make_engine(
        {"domain": {"n": 0}},
        audit_recipe=_recipe([{"field": "domain.n", "max": 0, "level": "B"}], name="inc"),
    )
    attempts = []

    @process(name="inc", inputs=["domain.n"], outputs=["domain.n"])
    def inc(ctx):
        attempts.append(ctx.version)
        value = ctx.domain.n
        if len(attempts) == 1:
            in_thread(lambda: engine.compare_and_swap(engine.state.version, data={"domain.n": 5}))
        ctx.domain.n = value + 1

    engine.execute(inc)
    assert len(attempts) == 2
    assert engine.audit.count("inc") == 1
    assert [(r.value, r.version) for r in engine.audit.log] == [(6, 2)]


def test_output_counters_are_per_engine(make_engine):
    recipe = _recipe([{"field": "domain.balance", "min": 0}], threshold_max=1)
    one, pay1 = _pay_engine(make_engine, recipe, "in_place")
    two, pay2 = _pay_engine(make_engine, recipe, "in_place")
    one.execute(pay1, value=-1)
    with pytest.raises(AuditBlockError):
        one.execute(pay1, value=-1)
    two.execute(pay2, value=-1)
    assert (one.audit.count("pay"), two.audit.count("pay")) == (2, 1)
    assert two.state.domain.balance == -1


def test_input_and_output_rules_together(make_engine):
    engine = make_engine(
        {"domain": {"balance": 100}},
        audit_recipe={
            "process_recipes": {
                "transfer": {
                    "inputs": [{"field": "amount", "min": 1, "max": 1000, "level": "B"}],
                    "outputs": [
                        {
                            "field": "domain.balance",
                            "min": 0,
                            "level": "S",
                            "message": "balance cannot go negative",
                        }
                    ],
                }
            }
        },
    )

    @process(inputs=["domain.balance"], outputs=["domain.balance"])
    def transfer(ctx, amount):
        return ctx.domain.balance - amount

    engine.execute(transfer, amount=60)
    with pytest.raises(AuditStopError) as info:
        engine.execute(transfer, amount=60)
    assert str(info.value) == (
        "audit stop: process 'transfer' output 'domain.balance': balance cannot go negative"
    )
    assert engine.state.domain.balance == 40
    engine.execute(transfer, amount=0)  # input violation (B, 1 of 3): commits
    # the clean output reset the output counter; the input counter keeps its violation
    assert engine.audit.counts == {"transfer:input:amount": 1}


@pytest.mark.requires("threads")
def test_a_rejection_in_the_exclusive_last_re_run_releases_the_engine(make_engine):
    engine = make_engine(
        {"domain": {"n": 0}},
        audit_recipe=_recipe([{"field": "domain.n", "min": 0, "level": "S"}], name="inc"),
    )
    attempts = []

    @process(name="inc", inputs=["domain.n"], outputs=["domain.n"], retries=1)
    def inc(ctx):
        attempts.append(ctx.version)
        value = ctx.domain.n
        if len(attempts) == 1:  # lose the first (clean) attempt: the re-run is the last one
            in_thread(
                lambda: engine.compare_and_swap(engine.state.version, data={"domain.n": -100})
            )
        ctx.domain.n = value + 1

    with pytest.raises(AuditStopError, match="-99 is less than min 0"):
        engine.execute(inc)
    assert len(attempts) == 2
    assert engine.state.version == 1  # only the other thread's commit landed
    assert engine.state.domain.n == -100
    # nothing is left holding the engine: another thread commits, then a clean call
    in_thread(lambda: engine.compare_and_swap(engine.state.version, data={"domain.n": 7}))
    run_with_timeout(lambda: engine.execute(inc))
    assert engine.state.domain.n == 8
    assert engine.audit.count("inc") == 0  # the clean call reset it


@pytest.mark.requires("async")
def test_output_rules_on_aexecute(make_engine):
    engine = make_engine(
        {"domain": {"balance": 0}},
        audit_recipe=_recipe([{"field": "domain.balance", "min": 0, "level": "A"}]),
    )

    @process(name="pay", inputs=["domain.balance"], outputs=["domain.balance"])
    async def pay(ctx, value):
        ctx.domain.balance = value

    @process(name="pay", inputs=["domain.balance"], outputs=["domain.balance"])
    def sync_pay(ctx, value):
        return value

    rx = engine.signals.subscribe()
    _refused(engine, rx, lambda: asyncio.run(engine.aexecute(pay, value=-1)), AuditAbortError)
    _refused(engine, rx, lambda: engine.execute(pay, value=-1), AuditAbortError)
    asyncio.run(engine.aexecute(pay, value=4))
    assert engine.state.domain.balance == 4
    other = make_engine(
        {"domain": {"balance": 0}},
        audit_recipe=_recipe([{"field": "domain.balance", "min": 0, "level": "A"}]),
    )
    with pytest.raises(AuditAbortError):
        asyncio.run(other.aexecute(sync_pay, value=-1))
    assert other.state.version == 0


def test_map_and_list_values_read_the_same_on_every_backend(make_engine):
    engine = make_engine(
        {"domain": {"user": {}, "tags": []}},
        audit_recipe=_recipe(
            [
                {"field": "domain.user", "eq": "x", "level": "C"},
                {"field": "domain.tags", "neq": "x", "max_len": 1, "level": "C"},
                {"field": "domain.user.name", "regex": "^[A-Z]", "level": "C"},
            ],
            name="save",
        ),
    )

    @process(name="save", outputs=["domain.user", "domain.tags"])
    def save(ctx):
        ctx.domain.user = {"name": "bob", "roles": ["a", "b"]}
        ctx.domain.tags = ["t1", {"k": 2}]

    engine.execute(save)
    assert [(r.field, r.rule, r.message) for r in engine.audit.log] == [
        ("domain.user", "eq", "{'name': 'bob', 'roles': ['a', 'b']} is not equal to 'x'"),
        ("domain.tags", "max_len", "length 2 is greater than max_len 1"),
        ("domain.user.name", "regex", "'bob' does not match regex '^[A-Z]'"),
    ]
    assert engine.audit.log[0].version == 1


def test_a_yaml_recipe_with_input_and_output_rules(make_engine, tmp_path):
    path = tmp_path / "banking_audit.yaml"
    path.write_text(
        "audit:\n"
        "  level: Block\n"
        "  threshold_max: 1\n"
        "process_recipes:\n"
        "  wire_transfer:\n"
        "    inputs:\n"
        "      - field: recipient\n"
        '        regex: "^[A-Z]{2}[0-9]{4}$"\n'
        "    outputs:\n"
        "      - field: domain.sender_balance\n"
        "        min: 0\n"
        "        level: S\n"
        '        message: "Safety: balance can never be negative"\n'
    )
    engine = make_engine({"domain": {"sender_balance": 100}}, audit_recipe=path)

    @process(inputs=["domain.sender_balance"], outputs=["domain.sender_balance"])
    def wire_transfer(ctx, amount, recipient):
        return ctx.domain.sender_balance - amount

    engine.execute(wire_transfer, amount=30, recipient="DE1234")
    engine.execute(wire_transfer, amount=30, recipient="bad")  # B, 1 of 1: commits
    with pytest.raises(AuditBlockError):
        engine.execute(wire_transfer, amount=30, recipient="bad")
    with pytest.raises(AuditStopError, match="Safety: balance can never be negative"):
        engine.execute(wire_transfer, amount=50, recipient="FR0001")
    assert engine.state.domain.sender_balance == 40
    assert engine.state.version == 2
    assert engine.audit.recipe.source == str(path)
