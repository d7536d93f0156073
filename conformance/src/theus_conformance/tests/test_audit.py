"""spec/17 — audit recipes: recipe errors before anything runs, input rules against the call's
keyword arguments, levels, thresholds, reset_on_success, counters per engine (REQUIREMENTS §9).

Output rules (checked on the commit pipeline) are in test_audit_outputs.py.
"""

from __future__ import annotations

import asyncio
import logging
import textwrap

import pytest

from theus import (
    AuditAbortError,
    AuditBlockError,
    AuditRecipeError,
    AuditStopError,
    AuditViolationError,
    TheusEngine,
    process,
)
from theus_conformance.support import drain, in_thread


def _recipe(inputs, **audit):
    recipe = {"process_recipes": {"transfer": {"inputs": inputs}}}
    if audit:
        recipe["audit"] = audit
    return recipe


def _transfer_engine(make_engine, recipe):
    """An engine whose ``transfer`` process adds ``amount`` to ``domain.balance`` and raises a
    signal; ``runs`` counts the process's runs."""
    engine = make_engine({"domain": {"balance": 0}}, audit_recipe=recipe)
    runs = []

    @process(inputs=["domain.balance"], outputs=["domain.balance", "domain.sig_moved"])
    def transfer(ctx, amount, dest="UserA"):
        runs.append(amount)
        ctx.domain.balance = ctx.domain.balance + amount
        ctx.domain.sig_moved = amount

    engine.register(transfer)
    return engine, transfer, runs


def _assert_refused(engine, rx, before, call, error, runs):
    ran = len(runs)
    with pytest.raises(error) as info:
        call()
    assert engine.state is before  # nothing committed
    assert drain(rx) == []  # nothing published
    assert len(runs) == ran  # the process did not run (input rules)
    return info.value


# ---------------------------------------------------------------------------------------------
# the engine's audit


def test_engine_audit_is_none_without_a_recipe(make_engine):
    assert make_engine().audit is None


def test_engine_audit_exposes_recipe_counts_and_log(make_engine):
    engine, transfer, _ = _transfer_engine(make_engine, _recipe([{"field": "amount", "min": 1}]))
    audit = engine.audit
    assert audit.recipe.level == "B" and audit.recipe.threshold_max == 3
    assert audit.counts == {} and audit.log == [] and audit.count("transfer") == 0
    engine.execute(transfer, amount=0)
    assert audit.counts == {"transfer:input:amount": 1}
    assert audit.count("transfer") == 1
    assert audit.count("transfer", "amount", "input") == 1
    [record] = audit.log
    assert (
        record.process,
        record.side,
        record.field,
        record.rule,
        record.value,
        record.level,
        record.message,
        record.version,
        record.count,
        record.raised,
        record.approaching,
    ) == (
        "transfer",
        "input",
        "amount",
        "min",
        0,
        "B",
        "0 is less than min 1",
        None,
        1,
        False,
        False,
    )


# ---------------------------------------------------------------------------------------------
# recipe errors: before anything runs, naming file, line and column


YAML_ERRORS = [
    # (recipe text, line, column, key path, fragment of the problem)
    ("audit:\n  level: Q\n", 2, 10, "audit.level", "unknown level 'Q'"),
    ("audit:\n  thresold_max: 2\n", 2, 3, "audit.thresold_max", "unknown key 'thresold_max'"),
    ("audit:\n  threshold_max: [2]\n", 2, 18, "audit.threshold_max", "int >= 0"),
    (
        """\
        process_recipes:
          transfer:
            outputs:
              - field: domain.balance
                min: 10
                max: 5
        """,
        5,
        14,
        "process_recipes.transfer.outputs[0].min",
        "min 10 is greater than max 5",
    ),
    (
        """\
        process_recipes:
          transfer:
            inputs:
              - field: amount
                minimum: 1
        """,
        5,
        9,
        "process_recipes.transfer.inputs[0].minimum",
        "unknown key 'minimum'",
    ),
    (
        """\
        process_recipes:
          transfer:
            inputs:
              - {field: dest, regex: "^(User"}
        """,
        4,
        30,
        "process_recipes.transfer.inputs[0].regex",
        "bad regex",
    ),
    (
        """\
        process_recipes:
          transfer:
            inputs:
              - field: amount
                min: 1
                level: Z
        """,
        6,
        16,
        "process_recipes.transfer.inputs[0].level",
        "unknown level 'Z'",
    ),
    ("process_recipes:\n  transfer: {inputs: [\n", 3, 1, "<recipe>", "malformed YAML"),
    ("process_recipes: {}\nprocess_recipes: {}\n", 2, 1, "process_recipes", "duplicate key"),
    ("threshold_max: 2\n", 1, 1, "threshold_max", "unknown key"),
]


@pytest.mark.parametrize(("text", "line", "column", "key_path", "fragment"), YAML_ERRORS)
def test_yaml_recipe_errors_name_file_line_column_before_anything_runs(
    make_engine, backend, tmp_path, text, line, column, key_path, fragment
):
    path = tmp_path / "audit_recipe.yaml"
    path.write_text(textwrap.dedent(text))
    for given in (str(path), path):
        with pytest.raises(AuditRecipeError) as info:
            TheusEngine({"domain": {"balance": 0}}, backend=backend, audit_recipe=given)
        err = info.value
        assert isinstance(err, ValueError)
        assert (err.file, err.line, err.column, err.key_path) == (str(path), line, column, key_path)
        assert str(err).startswith(f"{path}:{line}:{column}: {key_path}: ")
        assert fragment in str(err)


DICT_ERRORS = [
    ({"audit": {"level": "Severe"}}, "audit.level", "unknown level 'Severe'"),
    ({"audit": {"threshold_min": 5, "threshold_max": 1}}, "audit.threshold_min", "greater"),
    (
        _recipe([{"field": "amount", "min": 1, "max": 0}]),
        "process_recipes.transfer.inputs[0].min",
        "greater than max",
    ),
    (
        _recipe([{"field": "amount", "min": "1"}]),
        "process_recipes.transfer.inputs[0].min",
        "number",
    ),
    (_recipe([{"field": "amount"}]), "process_recipes.transfer.inputs[0]", "must check something"),
    (_recipe([{"min": 1}]), "process_recipes.transfer.inputs[0]", "needs a 'field'"),
    (_recipe([{"field": "a", "regex": "["}]), "process_recipes.transfer.inputs[0].regex", "regex"),
    (
        _recipe([{"field": "a", "min_len": 2.5}]),
        "process_recipes.transfer.inputs[0].min_len",
        "int",
    ),
    (_recipe({"field": "a", "min": 1}), "process_recipes.transfer.inputs", "a list of rules"),
    (
        {"process_recipes": {"transfer": {"outputs": [{"field": "domain.a..b", "min": 1}]}}},
        "process_recipes.transfer.outputs[0].field",
        "invalid path",
    ),
    ({"rules": []}, "rules", "unknown key 'rules'"),
]


@pytest.mark.parametrize(("recipe", "key_path", "fragment"), DICT_ERRORS)
def test_dict_recipe_errors_name_the_key_path(backend, recipe, key_path, fragment):
    with pytest.raises(AuditRecipeError) as info:
        TheusEngine(backend=backend, audit_recipe=recipe)
    assert info.value.key_path == key_path
    assert str(info.value).startswith(f"audit recipe: {key_path}: ")
    assert fragment in str(info.value)


def test_a_recipe_of_the_wrong_type_or_a_missing_file(backend, tmp_path):
    with pytest.raises(TypeError, match="audit_recipe must be"):
        TheusEngine(backend=backend, audit_recipe=42)
    with pytest.raises(FileNotFoundError):
        TheusEngine(backend=backend, audit_recipe=str(tmp_path / "missing.yaml"))


def test_unknown_process_names_are_accepted(make_engine):
    engine = make_engine(audit_recipe={"process_recipes": {"registered_later": None}})
    assert engine.audit.counts == {}


# ---------------------------------------------------------------------------------------------
# levels on input rules


@pytest.mark.parametrize(
    ("level", "error", "word"),
    [
        ("S", AuditStopError, "stop"),
        ("Stop", AuditStopError, "stop"),
        ("A", AuditAbortError, "abort"),
        ("Abort", AuditAbortError, "abort"),
    ],
)
def test_stop_and_abort_refuse_every_violating_call(make_engine, level, error, word):
    engine, transfer, runs = _transfer_engine(
        make_engine, _recipe([{"field": "amount", "min": 1, "level": level}], threshold_max=10)
    )
    rx = engine.signals.subscribe()
    for n in (1, 2, 3):
        err = _assert_refused(
            engine, rx, engine.state, lambda: engine.execute(transfer, amount=-5), error, runs
        )
        assert isinstance(err, AuditViolationError)
        assert str(err) == f"audit {word}: process 'transfer' input 'amount': -5 is less than min 1"
        assert err.violation.count == n and err.violation.raised
        assert [v.field for v in err.violations] == ["amount"]
    engine.execute(transfer, amount=5)  # a clean call runs and commits
    assert engine.state.domain.balance == 5 and runs == [5]


@pytest.mark.parametrize("threshold", [0, 1, 2, 4])
def test_block_commits_up_to_threshold_max_then_refuses(make_engine, threshold):
    engine, transfer, runs = _transfer_engine(
        make_engine, _recipe([{"field": "amount", "max": 100}], level="B", threshold_max=threshold)
    )
    rx = engine.signals.subscribe()
    for i in range(threshold):  # logged, still committed
        engine.execute(transfer, amount=500)
        assert engine.state.domain.balance == 500 * (i + 1)
        assert [m.value for m in drain(rx)] == [500]
    for n in range(threshold + 1, threshold + 3):  # every later violating call raises
        err = _assert_refused(
            engine,
            rx,
            engine.state,
            lambda: engine.execute(transfer, amount=500),
            AuditBlockError,
            runs,
        )
        assert str(err) == (
            "audit block: process 'transfer' input 'amount': 500 is greater than max 100 "
            f"(violation {n}, threshold_max {threshold})"
        )
    assert engine.audit.count("transfer") == threshold + 2
    assert [r.raised for r in engine.audit.log] == [False] * threshold + [True, True]


def test_block_with_threshold_max_2_is_theus3s_example(make_engine):
    engine, transfer, runs = _transfer_engine(
        make_engine,
        _recipe([{"field": "amount", "min": 18, "message": "Too young"}], threshold_max=2),
    )
    engine.execute(transfer, amount=10)
    engine.execute(transfer, amount=10)
    with pytest.raises(AuditBlockError, match="Too young"):
        engine.execute(transfer, amount=10)
    assert runs == [10, 10]
    assert engine.state.domain.balance == 20


def test_count_never_refuses(make_engine):
    engine, transfer, _runs = _transfer_engine(
        make_engine, _recipe([{"field": "dest", "regex": "^User", "level": "C"}], threshold_max=0)
    )
    for _ in range(12):
        engine.execute(transfer, amount=1, dest="Admin")
    assert engine.state.domain.balance == 12
    assert engine.audit.count("transfer", "dest") == 12
    assert all(r.level == "C" and not r.raised for r in engine.audit.log)


def test_rule_level_and_threshold_override_the_recipe(make_engine, tmp_path):
    # the shape of Theus 3's own integration spec (rule-level max_threshold)
    path = tmp_path / "spec.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            audit:
              threshold_max: 100
              reset_on_success: false
            process_recipes:
              transfer:
                inputs:
                  - field: "amount"
                    min: 100
                    message: "Amount must be >= 100"
                    level: "B"
                    max_threshold: 1
                  - field: "dest"
                    regex: "^User.*"
                    level: "C"
            """
        )
    )
    engine, transfer, _runs = _transfer_engine(make_engine, str(path))
    engine.execute(transfer, amount=50)  # count 1 <= 1: proceeds
    with pytest.raises(AuditBlockError, match="Amount must be >= 100"):
        engine.execute(transfer, amount=50)
    for _ in range(10):
        engine.execute(transfer, amount=100, dest="Admin")  # level C: never blocks
    assert engine.state.domain.balance == 1050
    assert engine.audit.counts == {"transfer:input:amount": 2, "transfer:input:dest": 10}


def test_most_severe_violation_decides_and_all_are_recorded(make_engine):
    engine, transfer, runs = _transfer_engine(
        make_engine,
        _recipe(
            [
                {"field": "dest", "regex": "^User", "level": "C"},
                {"field": "amount", "min": 0, "level": "A"},
                {"field": "amount", "max": -10, "level": "S"},
            ]
        ),
    )
    with pytest.raises(AuditStopError) as info:
        engine.execute(transfer, amount=-5, dest="Admin")
    assert info.value.violation.rule == "max"
    assert [(v.field, v.rule, v.level) for v in info.value.violations] == [
        ("dest", "regex", "C"),
        ("amount", "min", "A"),
        ("amount", "max", "S"),
    ]
    # two rules on one field share its counter, counted once per call
    assert engine.audit.counts == {"transfer:input:dest": 1, "transfer:input:amount": 1}
    assert runs == []


# ---------------------------------------------------------------------------------------------
# thresholds, reset_on_success


def test_reset_on_success_clears_the_counter_after_a_clean_call(make_engine):
    engine, transfer, runs = _transfer_engine(
        make_engine, _recipe([{"field": "amount", "min": 1}], threshold_max=2)
    )
    for _ in range(5):  # never three violating calls in a row
        engine.execute(transfer, amount=0)
        engine.execute(transfer, amount=0)
        assert engine.audit.count("transfer") == 2
        engine.execute(transfer, amount=1)
        assert engine.audit.count("transfer") == 0
    assert len(runs) == 15
    engine.execute(transfer, amount=0)
    engine.execute(transfer, amount=0)
    with pytest.raises(AuditBlockError):
        engine.execute(transfer, amount=0)


def test_without_reset_on_success_counters_accumulate(make_engine):
    engine, transfer, _runs = _transfer_engine(
        make_engine,
        _recipe([{"field": "amount", "min": 1}], threshold_max=2, reset_on_success=False),
    )
    for _ in range(2):
        engine.execute(transfer, amount=0)
        engine.execute(transfer, amount=1)
    assert engine.audit.count("transfer") == 2
    with pytest.raises(AuditBlockError):
        engine.execute(transfer, amount=0)
    engine.audit.reset()
    engine.execute(transfer, amount=0)
    assert engine.audit.count("transfer") == 1


def test_threshold_min_warns_on_the_theus_logger(make_engine, caplog):
    engine, transfer, _runs = _transfer_engine(
        make_engine, _recipe([{"field": "amount", "min": 1}], threshold_min=2, threshold_max=3)
    )
    with caplog.at_level(logging.WARNING, logger="theus"):
        for _ in range(3):
            engine.execute(transfer, amount=0)
    assert [r.approaching for r in engine.audit.log] == [False, True, True]
    lines = [r.getMessage() for r in caplog.records if r.name == "theus"]
    assert len(lines) == 3
    assert "'transfer' input 'amount'" in lines[0]
    assert "approaching threshold_max (2/3)" in lines[1]
    assert "approaching threshold_max (3/3)" in lines[2]


def test_absent_or_none_arguments_are_not_checked(make_engine):
    engine = make_engine(
        audit_recipe=_recipe(
            [
                {"field": "amount", "min": 1, "level": "S"},
                {"field": "order.qty", "max": 3, "level": "S"},
            ]
        )
    )

    @process(outputs=["domain.n"])
    def transfer(ctx, amount=None, order=None):
        ctx.domain.n = 1

    engine.execute(transfer)
    engine.execute(transfer, amount=None, order={"other": 9})
    with pytest.raises(AuditStopError, match="input 'order.qty': 4 is greater than max 3"):
        engine.execute(transfer, order={"qty": 4})
    assert engine.audit.count("transfer") == 1


def test_the_registered_name_selects_the_recipe(make_engine):
    engine = make_engine(
        audit_recipe={
            "process_recipes": {"pay": {"inputs": [{"field": "n", "min": 0, "level": "S"}]}}
        }
    )

    @process(name="pay", outputs=["domain.n"])
    def some_function(ctx, n):
        ctx.domain.n = n

    with pytest.raises(AuditStopError):
        engine.execute(some_function, n=-1)
    with pytest.raises(AuditStopError):
        engine.execute("pay", n=-1)
    engine.execute("pay", n=1)
    assert engine.state.domain.n == 1


# ---------------------------------------------------------------------------------------------
# per engine, per call


def test_counters_are_per_engine(make_engine):
    recipe = _recipe([{"field": "amount", "min": 1}], threshold_max=1)
    one, t1, _ = _transfer_engine(make_engine, recipe)
    two, t2, _ = _transfer_engine(make_engine, recipe)
    one.execute(t1, amount=0)
    with pytest.raises(AuditBlockError):
        one.execute(t1, amount=0)
    assert two.audit.counts == {} and two.audit.log == []
    two.execute(t2, amount=0)  # its own first violation: commits
    assert (one.audit.count("transfer"), two.audit.count("transfer")) == (2, 1)
    assert one.audit is not two.audit


def test_a_loaded_recipe_can_be_shared_with_fresh_counters(make_engine):
    first, t1, _ = _transfer_engine(
        make_engine, _recipe([{"field": "amount", "min": 1, "level": "C"}])
    )
    first.execute(t1, amount=0)
    second, _t2, _ = _transfer_engine(make_engine, first.audit.recipe)
    assert second.audit.recipe is first.audit.recipe
    assert second.audit.counts == {}


@pytest.mark.requires("threads")
def test_input_rules_are_checked_once_per_call_not_per_re_run(make_engine):
    engine = make_engine(
        {"domain": {"n": 0}}, audit_recipe=_recipe([{"field": "amount", "min": 1, "level": "C"}])
    )
    attempts = []

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def transfer(ctx, amount):
        attempts.append(ctx.version)
        value = ctx.domain.n
        if len(attempts) == 1:
            in_thread(lambda: engine.compare_and_swap(engine.state.version, data={"domain.n": 100}))
        ctx.domain.n = value + amount

    engine.execute(transfer, amount=0)
    assert len(attempts) == 2  # re-run once
    assert engine.audit.count("transfer") == 1
    assert len(engine.audit.log) == 1


@pytest.mark.requires("async")
def test_input_rules_on_aexecute_and_async_processes(make_engine):
    engine = make_engine(
        {"domain": {"balance": 0}},
        audit_recipe=_recipe([{"field": "amount", "min": 1, "level": "A"}]),
    )

    @process(inputs=["domain.balance"], outputs=["domain.balance"])
    async def transfer(ctx, amount):
        ctx.domain.balance = ctx.domain.balance + amount

    @process(name="sync_transfer", inputs=["domain.balance"], outputs=["domain.balance"])
    def sync_transfer(ctx, amount):
        ctx.domain.balance = ctx.domain.balance + amount

    before = engine.state
    with pytest.raises(AuditAbortError):
        asyncio.run(engine.aexecute(transfer, amount=0))
    with pytest.raises(AuditAbortError):
        engine.execute(transfer, amount=0)  # an async process from the sync API
    assert engine.state is before
    asyncio.run(engine.aexecute(transfer, amount=2))
    engine.execute(transfer, amount=3)
    assert engine.state.domain.balance == 5
    assert engine.audit.count("transfer") == 0  # reset by the clean calls
    assert len(engine.audit.log) == 2
    engine2 = make_engine(
        audit_recipe={
            "process_recipes": {
                "sync_transfer": {"inputs": [{"field": "amount", "min": 1, "level": "S"}]}
            }
        }
    )
    with pytest.raises(AuditStopError):
        asyncio.run(engine2.aexecute(sync_transfer, amount=0))
