"""theus.audit without a backend: recipes, conditions, counters and the stage fed with
hand-built ``Changes`` (spec/17)."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from theus import (
    AuditAbortError,
    AuditBlockError,
    AuditRecipeError,
    AuditStopError,
    AuditViolationError,
    TheusError,
)
from theus.audit import Audit, load_recipe
from theus.contracts import process, spec_of
from theus.pipeline import Change, Changes


def _spec(name: str) -> Any:
    @process(name=name)
    def fn(ctx: Any, **kwargs: Any) -> None:
        return None

    return spec_of(fn)


class _Snap:
    """A stand-in snapshot: ``snap["domain"]`` and ``.version``."""

    def __init__(self, tree: dict[str, Any], version: int = 1) -> None:
        self.tree = tree
        self.version = version

    def __getitem__(self, key: str) -> Any:
        return self.tree[key]


class _MapView(Mapping[str, Any]):
    """A read-only view stand-in with ``to_dict``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        return _MapView(value) if isinstance(value, dict) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __repr__(self) -> str:
        return "MapView(backend-specific)"


def _changes(process_name: str | None, *items: tuple[str, str, Any], base: Any = None) -> Changes:
    return Changes(
        [Change(kind, tuple(path.split(".")), value) for kind, path, value in items],  # type: ignore[arg-type]
        process_name,
        base if base is not None else _Snap({"domain": {}}),
    )


def _commit(audit: Audit, changes: Changes, version: int = 1) -> None:
    """One landed attempt: before_commit then after_commit."""
    audit.stage.before_commit(changes)
    audit.stage.after_commit(_Snap({}, version), changes)


def _outputs(*rules: dict[str, Any], **audit: Any) -> dict[str, Any]:
    recipe: dict[str, Any] = {"process_recipes": {"p": {"outputs": list(rules)}}}
    if audit:
        recipe["audit"] = audit
    return recipe


def _inputs(*rules: dict[str, Any], **audit: Any) -> dict[str, Any]:
    recipe: dict[str, Any] = {"process_recipes": {"p": {"inputs": list(rules)}}}
    if audit:
        recipe["audit"] = audit
    return recipe


# ------------------------------------------------------------------------------------------
# loading


def test_defaults_are_theus3s() -> None:
    recipe = load_recipe({})
    assert (recipe.level, recipe.threshold_max, recipe.threshold_min, recipe.reset_on_success) == (
        "B",
        3,
        0,
        True,
    )
    assert dict(recipe.processes) == {}
    assert load_recipe({"audit": None, "process_recipes": None}) == recipe


@pytest.mark.parametrize(
    ("spelling", "level"),
    [
        ("S", "S"),
        ("Stop", "S"),
        ("A", "A"),
        ("Abort", "A"),
        ("B", "B"),
        ("Block", "B"),
        ("C", "C"),
        ("Count", "C"),
    ],
)
def test_level_spellings(spelling: str, level: str) -> None:
    recipe = load_recipe(
        {
            "audit": {"level": spelling},
            **_outputs({"field": "domain.x", "min": 0, "level": spelling}),
        }
    )
    assert recipe.level == level
    assert recipe.processes["p"].outputs[0].level == level


def test_a_loaded_recipe_is_reused_as_is() -> None:
    recipe = load_recipe(_outputs({"field": "domain.x", "min": 0}))
    assert load_recipe(recipe) is recipe
    assert Audit(recipe).recipe is recipe


@pytest.mark.parametrize(
    ("recipe", "key_path", "fragment"),
    [
        ({"audi": {}}, "audi", "unknown key 'audi'"),
        ({"threshold_max": 2}, "threshold_max", "unknown key"),
        ({"audit": {"level": "X"}}, "audit.level", "unknown level 'X'"),
        ({"audit": {"level": "s"}}, "audit.level", "unknown level"),
        ({"audit": {"threshold_max": -1}}, "audit.threshold_max", "int >= 0"),
        ({"audit": {"threshold_max": True}}, "audit.threshold_max", "a bool"),
        ({"audit": {"threshold_max": 2.5}}, "audit.threshold_max", "a float"),
        ({"audit": {"threshold_min": 3, "threshold_max": 2}}, "audit.threshold_min", "greater"),
        ({"audit": {"reset_on_success": "yes"}}, "audit.reset_on_success", "a bool"),
        ({"audit": []}, "audit", "a mapping"),
        ({"process_recipes": []}, "process_recipes", "a mapping"),
        ({"process_recipes": {"p": {"input": []}}}, "process_recipes.p.input", "unknown key"),
        ({"process_recipes": {"p": {"inputs": {}}}}, "process_recipes.p.inputs", "list of rules"),
        (
            {"process_recipes": {"p": {"inputs": ["amount"]}}},
            "process_recipes.p.inputs[0]",
            "mapping",
        ),
        (_inputs({"min": 1}), "process_recipes.p.inputs[0]", "needs a 'field'"),
        (_inputs({"field": "a"}), "process_recipes.p.inputs[0]", "must check something"),
        (_inputs({"field": 3, "min": 1}), "process_recipes.p.inputs[0].field", "a str"),
        (_inputs({"field": "a", "mn": 1}), "process_recipes.p.inputs[0].mn", "unknown key 'mn'"),
        (_inputs({"field": "a", "min": "1"}), "process_recipes.p.inputs[0].min", "a number"),
        (_inputs({"field": "a", "min": True}), "process_recipes.p.inputs[0].min", "a number"),
        (_inputs({"field": "a", "max": float("nan")}), "process_recipes.p.inputs[0].max", "number"),
        (_inputs({"field": "a", "min": 5, "max": 1}), "process_recipes.p.inputs[0].min", "greater"),
        (_inputs({"field": "a", "min_len": -1}), "process_recipes.p.inputs[0].min_len", ">= 0"),
        (
            _inputs({"field": "a", "min_len": 4, "max_len": 2}),
            "process_recipes.p.inputs[0].min_len",
            "greater",
        ),
        (_inputs({"field": "a", "eq": None}), "process_recipes.p.inputs[0].eq", "null"),
        (_inputs({"field": "a", "neq": [1]}), "process_recipes.p.inputs[0].neq", "a list"),
        (_inputs({"field": "a", "regex": "("}), "process_recipes.p.inputs[0].regex", "bad regex"),
        (_inputs({"field": "a", "regex": 5}), "process_recipes.p.inputs[0].regex", "a str"),
        (
            _inputs({"field": "a", "min": 1, "level": "D"}),
            "process_recipes.p.inputs[0].level",
            "level",
        ),
        (
            _inputs({"field": "a", "min": 1, "message": 1}),
            "process_recipes.p.inputs[0].message",
            "a str",
        ),
        (
            _inputs({"field": "a", "min": 1, "threshold_max": 1, "max_threshold": 1}),
            "process_recipes.p.inputs[0].max_threshold",
            "not both",
        ),
        (
            _inputs({"field": "a", "min": 1, "threshold_min": 1}),
            "process_recipes.p.inputs[0].threshold_min",
            "unknown",
        ),
        (
            _inputs({"field": "1a", "min": 1}),
            "process_recipes.p.inputs[0].field",
            "keyword argument",
        ),
        (
            _outputs({"field": "domain..x", "min": 1}),
            "process_recipes.p.outputs[0].field",
            "invalid path",
        ),
        (
            _outputs({"field": "domain.*", "min": 1}),
            "process_recipes.p.outputs[0].field",
            "invalid path",
        ),
        (
            {"process_recipes": {"a.b": {"inputs": [{"field": "a"}]}}},
            "process_recipes['a.b'].inputs[0]",
            "check",
        ),
    ],
)
def test_dict_recipe_errors_name_the_key_path(recipe: Any, key_path: str, fragment: str) -> None:
    with pytest.raises(AuditRecipeError) as info:
        Audit(recipe)
    err = info.value
    assert isinstance(err, TheusError) and isinstance(err, ValueError)
    assert err.key_path == key_path
    assert str(err).startswith(f"audit recipe: {key_path}: ")
    assert fragment in err.problem
    assert (err.file, err.line, err.column) == (None, None, None)


def test_a_recipe_of_another_type_is_a_type_error() -> None:
    for bad in (3, ["audit"], b"audit: {}"):
        with pytest.raises(TypeError, match="audit_recipe must be"):
            Audit(bad)


def test_a_missing_file_raises_the_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Audit(tmp_path / "nope.yaml")


YAML_CASES = [
    # (text, line, column, key path, fragment)
    ("audit:\n  levl: B\n", 2, 3, "audit.levl", "unknown key 'levl'"),
    ("audit:\n  level: Q\n", 2, 10, "audit.level", "unknown level 'Q'"),
    ("audit:\n  threshold_max: two\n", 2, 18, "audit.threshold_max", "a str"),
    (
        "process_recipes:\n  transfer:\n    outputs:\n      - field: domain.balance\n"
        "        min: 5\n        max: 1\n",
        5,
        14,
        "process_recipes.transfer.outputs[0].min",
        "greater than max",
    ),
    (
        "process_recipes:\n  t:\n    inputs:\n      - {field: x, regex: '[a-'}\n",
        4,
        27,
        "process_recipes.t.inputs[0].regex",
        "bad regex",
    ),
    ("audit:\n  level: [B\n", 3, 1, "<recipe>", "malformed YAML"),
    ("audit: {}\naudit: {}\n", 2, 1, "audit", "duplicate key"),
    ("a: 1\n---\nb: 2\n", 2, 1, "<recipe>", "malformed YAML"),
    (
        "process_recipes:\n  t:\n    inputs:\n      - field: x\n",
        4,
        9,
        "process_recipes.t.inputs[0]",
        "check",
    ),
    (
        "process_recipes:\n  t:\n    inputs:\n      - field: x\n        min: !!binary aGk=\n",
        5,
        14,
        "process_recipes.t.inputs[0].min",
        "a number",
    ),
    ("audit:\n  level: !custom B\n", 2, 10, "audit.level", "cannot read"),
    ("process_recipes:\n  t: &a\n    inputs: *a\n", 2, 6, "process_recipes.t.inputs", "alias"),
    ("\tbad: 1\n", 1, 1, "<recipe>", "malformed YAML"),
]


@pytest.mark.parametrize(("text", "line", "column", "key_path", "fragment"), YAML_CASES)
def test_yaml_recipe_errors_name_file_line_and_column(
    tmp_path: Path, text: str, line: int, column: int, key_path: str, fragment: str
) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(AuditRecipeError) as info:
        Audit(str(path))
    err = info.value
    assert (err.file, err.line, err.column, err.key_path) == (str(path), line, column, key_path)
    assert str(err).startswith(f"{path}:{line}:{column}: {key_path}: ")
    assert fragment in err.problem


def test_yaml_recipe_accepts_pathlike_merge_keys_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "process_recipes:\n  t:\n    outputs:\n"
        "      - &r {field: domain.x, min: 0, level: C}\n"
        "      - {<<: *r, field: domain.y}\n"
    )
    recipe = Audit(path).recipe
    outs = recipe.processes["t"].outputs
    assert [r.field for r in outs] == ["domain.x", "domain.y"]
    assert all(r.level == "C" for r in outs)
    assert outs[1].where == f"{path}:5:9"
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert dict(Audit(empty).recipe.processes) == {}
    assert Audit(empty).recipe.source == str(empty)


def test_invalid_utf8_names_the_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"audit:\n  level: \xff\n")
    with pytest.raises(AuditRecipeError) as info:
        Audit(path)
    assert info.value.file == str(path)
    assert info.value.line == 2
    assert "malformed YAML" in str(info.value)


def test_recipe_errors_pickle() -> None:
    err = AuditRecipeError("bad", "audit.level", "f.yaml", 2, 3)
    back = pickle.loads(pickle.dumps(err))
    assert (str(back), back.line, back.column, back.key_path) == (str(err), 2, 3, "audit.level")


def test_unknown_processes_are_accepted() -> None:
    audit = Audit(
        {"process_recipes": {"_template": {"inputs": [{"field": "x", "min": 0}]}, "later": None}}
    )
    audit.check_inputs(_spec("other"), {"x": -1})
    assert audit.counts == {}


# ------------------------------------------------------------------------------------------
# conditions (input rules, level C so nothing raises)


@pytest.mark.parametrize(
    ("rule", "good", "bad", "condition"),
    [
        ({"min": 0}, [0, 5, 0.5, 10**30], [-1, -0.1, "5", True, float("nan")], "min"),
        ({"max": 10}, [10, -3, 9.9], [11, 10.01, "1", [1], False], "max"),
        ({"eq": "READY"}, ["READY"], ["ready", "READY ", 1, ["READY"]], "eq"),
        ({"eq": 1}, [1, 1.0], [2, True, "1"], "eq"),
        ({"eq": True}, [True], [1, False, "true"], "eq"),
        ({"neq": "LOCKED"}, ["OPEN", 1, ["LOCKED"]], ["LOCKED"], "neq"),
        ({"neq": 0}, [1, False, "0"], [0, 0.0], "neq"),
        (
            {"min_len": 2},
            ["ab", [1, 2], {"a": 1, "b": 2}, (1, 2, 3)],
            ["a", [], {}, 5, 2.0],
            "min_len",
        ),
        ({"max_len": 2}, ["", "ab", [1]], ["abc", [1, 2, 3], 7], "max_len"),
        ({"regex": "^User"}, ["User1", "User"], ["user", "AUser", 5, ["User"]], "regex"),
        ({"regex": "ab"}, ["abc", "ab"], ["xab"], "regex"),
        ({"regex": "^SAFE$"}, ["SAFE"], ["SAFE!", "UNSAFE"], "regex"),
    ],
)
def test_conditions(rule: dict[str, Any], good: list[Any], bad: list[Any], condition: str) -> None:
    audit = Audit(_inputs({"field": "v", "level": "C", **rule}, reset_on_success=False))
    spec = _spec("p")
    for value in good:
        audit.check_inputs(spec, {"v": value})
    assert audit.log == []
    for value in bad:
        audit.check_inputs(spec, {"v": value})
    assert [v.rule for v in audit.log] == [condition] * len(bad)
    assert [repr(v.value) for v in audit.log] == [repr(b) for b in bad]
    assert audit.count("p") == len(bad)


def test_first_failing_condition_in_order_decides() -> None:
    audit = Audit(_inputs({"field": "v", "level": "C", "max_len": 1, "min": 0, "regex": "x"}))
    audit.check_inputs(_spec("p"), {"v": "abc"})
    assert audit.log[0].rule == "min"  # min comes before max_len and regex
    audit.check_inputs(_spec("p"), {"v": 5})
    assert audit.log[1].rule == "max_len"


def test_absent_and_none_values_are_not_checked() -> None:
    audit = Audit(
        _inputs({"field": "v", "min": 0, "level": "S"}, {"field": "o.n", "min": 0, "level": "S"})
    )
    spec = _spec("p")
    audit.check_inputs(spec, {})
    audit.check_inputs(spec, {"v": None, "o": {}})
    audit.check_inputs(spec, {"o": {"m": -1}})
    assert audit.log == []


def test_dotted_input_fields_go_into_the_argument() -> None:
    class Order:
        def __init__(self, amount: int) -> None:
            self.amount = amount

    audit = Audit(
        _inputs(
            {"field": "order.amount", "min": 1, "level": "C"},
            {"field": "items.1.qty", "max": 3, "level": "C"},
            {"field": "obj.amount", "min": 1, "level": "C"},
        )
    )
    audit.check_inputs(
        _spec("p"), {"order": {"amount": 0}, "items": [{"qty": 9}, {"qty": 4}], "obj": Order(0)}
    )
    assert [(v.field, v.value) for v in audit.log] == [
        ("order.amount", 0),
        ("items.1.qty", 4),
        ("obj.amount", 0),
    ]


def test_default_texts_and_message() -> None:
    audit = Audit(
        _inputs(
            {"field": "a", "min": 1, "level": "C"},
            {"field": "b", "regex": "^x", "level": "C", "message": "b must start with x"},
            {"field": "c", "max_len": 1, "level": "C"},
        )
    )
    audit.check_inputs(_spec("p"), {"a": 0, "b": "yy", "c": "long"})
    assert [v.message for v in audit.log] == [
        "0 is less than min 1",
        "b must start with x",
        "length 4 is greater than max_len 1",
    ]


# ------------------------------------------------------------------------------------------
# levels and thresholds on inputs


@pytest.mark.parametrize(("level", "error"), [("S", AuditStopError), ("A", AuditAbortError)])
def test_stop_and_abort_raise_at_every_violation(level: str, error: type[Exception]) -> None:
    audit = Audit(_inputs({"field": "amount", "min": 1, "level": level}, threshold_max=5))
    for n in (1, 2, 3):
        with pytest.raises(error) as info:
            audit.check_inputs(_spec("p"), {"amount": 0})
        assert isinstance(info.value, AuditViolationError)
        assert info.value.violation.count == n  # type: ignore[attr-defined]
        assert info.value.violation.raised  # type: ignore[attr-defined]
    name = {"S": "stop", "A": "abort"}[level]
    assert str(info.value) == f"audit {name}: process 'p' input 'amount': 0 is less than min 1"
    assert audit.counts == {"p:input:amount": 3}


@pytest.mark.parametrize("threshold", [0, 1, 2, 5])
def test_block_raises_once_the_counter_passes_threshold_max(threshold: int) -> None:
    audit = Audit(_inputs({"field": "amount", "min": 1}, level="B", threshold_max=threshold))
    spec = _spec("p")
    for _ in range(threshold):
        audit.check_inputs(spec, {"amount": 0})  # logged, goes on
    for n in range(threshold + 1, threshold + 4):  # every later violating call raises
        with pytest.raises(AuditBlockError) as info:
            audit.check_inputs(spec, {"amount": 0})
        assert str(info.value) == (
            f"audit block: process 'p' input 'amount': 0 is less than min 1 "
            f"(violation {n}, threshold_max {threshold})"
        )
    assert audit.count("p") == threshold + 3
    assert [v.raised for v in audit.log] == [False] * threshold + [True] * 3


def test_count_never_raises() -> None:
    audit = Audit(_inputs({"field": "a", "min": 1, "level": "C"}, threshold_max=0))
    for _ in range(20):
        audit.check_inputs(_spec("p"), {"a": 0})
    assert audit.count("p", "a") == 20


def test_rule_threshold_and_level_override_the_recipe() -> None:
    audit = Audit(
        _inputs(
            {"field": "a", "min": 100, "level": "B", "max_threshold": 1},
            {"field": "d", "regex": "^User", "level": "C"},
            {"field": "e", "min": 0, "threshold_max": 0},
            level="S",
            threshold_max=100,
            reset_on_success=False,
        )
    )
    spec = _spec("p")
    audit.check_inputs(spec, {"a": 50, "d": "Admin"})
    with pytest.raises(AuditBlockError):
        audit.check_inputs(spec, {"a": 50, "d": "Admin"})
    for _ in range(5):
        audit.check_inputs(spec, {"d": "Admin"})  # C never raises
    with pytest.raises(AuditStopError):
        audit.check_inputs(spec, {"e": -1})  # recipe level S (threshold ignored)


def test_reset_on_success_clears_after_a_clean_check() -> None:
    audit = Audit(_inputs({"field": "a", "min": 1}, threshold_max=2))
    spec = _spec("p")
    for _ in range(10):  # violating calls interleaved with clean ones never reach 3
        audit.check_inputs(spec, {"a": 0})
        audit.check_inputs(spec, {"a": 0})
        assert audit.count("p") == 2
        audit.check_inputs(spec, {"a": 5})
        assert audit.count("p") == 0
    assert audit.counts == {}


def test_reset_is_per_counter_and_absent_is_clean() -> None:
    audit = Audit(
        _inputs({"field": "a", "min": 1, "level": "C"}, {"field": "b", "min": 1, "level": "C"})
    )
    spec = _spec("p")
    audit.check_inputs(spec, {"a": 0, "b": 0})
    audit.check_inputs(spec, {"a": 0, "b": 0})
    audit.check_inputs(spec, {"a": 0, "b": 1})
    assert audit.counts == {"p:input:a": 3}
    audit.check_inputs(spec, {})
    assert audit.counts == {}


def test_without_reset_counters_accumulate_and_reset_clears() -> None:
    audit = Audit(_inputs({"field": "a", "min": 1}, threshold_max=3, reset_on_success=False))
    spec = _spec("p")
    for _ in range(3):
        audit.check_inputs(spec, {"a": 0})
        audit.check_inputs(spec, {"a": 5})
    assert audit.count("p") == 3
    with pytest.raises(AuditBlockError):
        audit.check_inputs(spec, {"a": 0})
    audit.reset("other")
    assert audit.count("p") == 4
    audit.reset("p")
    assert audit.counts == {}
    audit.check_inputs(spec, {"a": 0})
    audit.reset()
    assert audit.counts == {}


def test_a_raising_call_does_not_reset_and_counts_every_violation() -> None:
    audit = Audit(
        _inputs(
            {"field": "a", "min": 1, "level": "C"},
            {"field": "b", "min": 1, "level": "B"},
            {"field": "c", "min": 1, "level": "A"},
            {"field": "d", "min": 1, "level": "S"},
            {"field": "e", "min": 1, "level": "C"},
        )
    )
    spec = _spec("p")
    audit.check_inputs(spec, {"e": 0})
    with pytest.raises(AuditStopError) as info:
        audit.check_inputs(spec, {"a": 0, "b": 0, "c": 0, "d": 0})
    assert info.value.violation.field == "d"  # type: ignore[attr-defined]
    assert [v.field for v in info.value.violations] == ["a", "b", "c", "d"]  # type: ignore[attr-defined]
    assert audit.counts == {f"p:input:{f}": 1 for f in "abcde"}
    with pytest.raises(AuditAbortError):  # A before B
        audit.check_inputs(spec, {"b": 0, "c": 0})


def test_rules_on_one_field_share_a_counter_counted_once_per_call() -> None:
    audit = Audit(
        _inputs({"field": "a", "min": 1, "level": "C"}, {"field": "a", "regex": "x", "level": "C"})
    )
    audit.check_inputs(_spec("p"), {"a": 0})  # fails both rules
    assert audit.counts == {"p:input:a": 1}
    assert [v.count for v in audit.log] == [1, 1]


def test_threshold_min_marks_approaching_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    audit = Audit(_inputs({"field": "a", "min": 1}, threshold_min=2, threshold_max=3))
    spec = _spec("p")
    with caplog.at_level(logging.WARNING, logger="theus"):
        for _ in range(3):
            audit.check_inputs(spec, {"a": 0})
        with pytest.raises(AuditBlockError):
            audit.check_inputs(spec, {"a": 0})
    assert [v.approaching for v in audit.log] == [False, True, True, False]
    messages = [r.getMessage() for r in caplog.records if r.name == "theus"]
    assert len(messages) == 4
    assert "approaching threshold_max (2/3)" in messages[1]
    assert "approaching threshold_max (3/3)" in messages[2]
    assert "stopped" in messages[3]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "theus")


def test_two_audits_never_share_counters() -> None:
    recipe = _inputs({"field": "a", "min": 1}, threshold_max=1)
    one, two = Audit(recipe), Audit(recipe)
    one.check_inputs(_spec("p"), {"a": 0})
    with pytest.raises(AuditBlockError):
        one.check_inputs(_spec("p"), {"a": 0})
    assert two.counts == {} and two.log == []
    two.check_inputs(_spec("p"), {"a": 0})  # its own first violation
    assert (one.count("p"), two.count("p")) == (2, 1)


def test_count_filters_and_log_capacity() -> None:
    audit = Audit(
        {
            "process_recipes": {
                "p": {
                    "inputs": [{"field": "a", "min": 1, "level": "C"}],
                    "outputs": [{"field": "domain.a", "min": 1, "level": "C"}],
                },
                "q": {"inputs": [{"field": "a", "min": 1, "level": "C"}]},
            }
        },
        log_capacity=3,
    )
    for _ in range(2):
        audit.check_inputs(_spec("p"), {"a": 0})
    audit.check_inputs(_spec("q"), {"a": 0})
    _commit(audit, _changes("p", ("set", "domain.a", 0)))
    assert audit.counts == {"p:input:a": 2, "q:input:a": 1, "p:output:domain.a": 1}
    assert audit.count("p") == 3
    assert audit.count("p", "a") == 2
    assert audit.count("p", side="output") == 1
    assert audit.count("p", "domain.a", "input") == 0
    assert audit.count("nobody") == 0
    with pytest.raises(ValueError, match="side"):
        audit.count("p", side="in")
    assert len(audit.log) == 3 and audit.log[-1].side == "output"


def test_violation_errors_pickle() -> None:
    audit = Audit(_inputs({"field": "a", "min": 1, "level": "S"}))
    with pytest.raises(AuditStopError) as info:
        audit.check_inputs(_spec("p"), {"a": 0})
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is AuditStopError
    assert str(back) == str(info.value) and back.violation == info.value.violation


# ------------------------------------------------------------------------------------------
# the stage


def test_a_recipe_without_outputs_installs_a_hookless_stage() -> None:
    audit = Audit(_inputs({"field": "a", "min": 1}))
    assert audit.stage.name == "audit"
    assert type(audit.stage).before_commit is type(audit.stage).__mro__[1].before_commit  # type: ignore[attr-defined]
    assert Audit(_outputs({"field": "domain.a", "min": 1})).stage.name == "audit"


@pytest.mark.parametrize(("level", "error"), [("S", AuditStopError), ("A", AuditAbortError)])
def test_output_stop_and_abort_reject_in_before_commit(level: str, error: type[Exception]) -> None:
    audit = Audit(_outputs({"field": "domain.balance", "min": 0, "level": level}))
    changes = _changes("p", ("set", "domain.balance", -5))
    with pytest.raises(error) as info:
        audit.stage.before_commit(changes)
    assert info.value.violation.version is None  # type: ignore[attr-defined]
    assert "output 'domain.balance': -5 is less than min 0" in str(info.value)
    assert audit.count("p") == 1


def test_output_block_counts_landed_calls_once_even_when_re_run() -> None:
    audit = Audit(_outputs({"field": "domain.balance", "min": 0}, threshold_max=2))
    bad = _changes("p", ("set", "domain.balance", -1))
    for call in (1, 2):
        for _attempt in range(3):  # two conflicted attempts, then the one that lands
            audit.stage.before_commit(bad)
        assert audit.count("p") == call - 1  # not counted before it lands
        audit.stage.after_commit(_Snap({}, 10 + call), bad)
        assert audit.count("p") == call
    with pytest.raises(AuditBlockError, match=r"\(violation 3, threshold_max 2\)"):
        audit.stage.before_commit(bad)
    assert audit.count("p") == 3
    assert [(v.version, v.raised) for v in audit.log] == [(11, False), (12, False), (None, True)]


def test_output_reset_on_a_clean_landed_commit() -> None:
    audit = Audit(_outputs({"field": "domain.balance", "min": 0}, threshold_max=1))
    _commit(audit, _changes("p", ("set", "domain.balance", -1)))
    assert audit.count("p") == 1
    _commit(audit, _changes("p", ("set", "domain.other", 1)))  # untouched: clean
    assert audit.count("p") == 0
    _commit(audit, _changes("p", ("set", "domain.balance", -1)))
    audit.stage.before_commit(_changes("p", ("set", "domain.balance", 3)))  # not landed
    assert audit.count("p") == 1
    with pytest.raises(AuditBlockError):
        audit.stage.before_commit(_changes("p", ("set", "domain.balance", -1)))


def test_output_count_level_only_counts() -> None:
    audit = Audit(_outputs({"field": "domain.size", "max": 10, "level": "C"}, threshold_max=0))
    for version in range(1, 6):
        _commit(audit, _changes("p", ("set", "domain.size", 11)), version)
    assert audit.count("p") == 5
    assert [v.version for v in audit.log] == [1, 2, 3, 4, 5]


def test_output_values_inside_a_written_ancestor() -> None:
    audit = Audit(
        _outputs(
            {"field": "domain.user.age", "min": 0, "level": "C"},
            {"field": "domain.items.1", "max": 5, "level": "C"},
            {"field": "domain.user", "max_len": 1, "level": "C"},
        )
    )
    view = _MapView({"age": -2, "name": "x"})
    _commit(audit, _changes("p", ("set", "domain.items", [1, 9]), ("set", "domain.user", view)))
    assert [(v.field, v.rule) for v in audit.log] == [
        ("domain.user.age", "min"),
        ("domain.items.1", "max"),
        ("domain.user", "max_len"),
    ]
    # a view shows as its plain content (the same on every backend)
    audit2 = Audit(_outputs({"field": "domain.user", "eq": 1, "level": "C"}))
    _commit(audit2, _changes("p", ("set", "domain.user", view)))
    assert audit2.log[0].message == "{'age': -2, 'name': 'x'} is not equal to 1"


def test_output_appends_check_the_whole_list() -> None:
    base = _Snap({"domain": {"log_x": [1, 2, 3]}})
    audit = Audit(_outputs({"field": "domain.log_x", "max_len": 4, "level": "C"}))
    _commit(audit, _changes("p", ("append", "domain.log_x", (4,)), base=base))
    assert audit.log == []
    _commit(audit, _changes("p", ("append", "domain.log_x", (4, 5)), base=base))
    assert audit.log[0].message == "length 5 is greater than max_len 4"
    assert audit.log[0].value == [1, 2, 3, 4, 5]


def test_output_writes_below_the_field_are_applied_to_its_base_value() -> None:
    base = _Snap({"domain": {"cart": {"a": 1, "b": 2}, "l": [1, 2, 3]}})
    audit = Audit(
        _outputs(
            {"field": "domain.cart", "max_len": 2, "level": "C"},
            {"field": "domain.l", "max_len": 3, "level": "C"},
        )
    )
    _commit(audit, _changes("p", ("set", "domain.cart.a", 5), base=base))  # same length
    assert audit.log == []
    _commit(
        audit, _changes("p", ("set", "domain.cart.c", 5), ("set", "domain.cart.d.e", 1), base=base)
    )
    assert audit.log[-1].value == {"a": 1, "b": 2, "c": 5, "d": {"e": 1}}
    _commit(
        audit,
        _changes("p", ("delete", "domain.cart.a", None), ("set", "domain.cart.c", 1), base=base),
    )
    assert len(audit.log) == 1
    _commit(audit, _changes("p", ("set", "domain.l.3", 4), base=base))
    assert audit.log[-1].value == [1, 2, 3, 4]
    _commit(
        audit,
        _changes("p", ("delete", "domain.l.0", None), ("delete", "domain.l.2", None), base=base),
    )
    assert len(audit.log) == 2
    fresh = _Snap({"domain": {}})
    _commit(
        audit,
        _changes(
            "p",
            ("set", "domain.cart.x", 1),
            ("set", "domain.cart.y", 1),
            ("set", "domain.cart.z", 1),
            base=fresh,
        ),
    )
    assert audit.log[-1].value == {"x": 1, "y": 1, "z": 1}


def test_deleted_or_untouched_fields_are_not_checked() -> None:
    audit = Audit(_outputs({"field": "domain.x", "min": 0, "level": "S"}))
    base = _Snap({"domain": {"x": -1}})
    _commit(audit, _changes("p", ("delete", "domain.x", None), base=base))
    _commit(audit, _changes("p", ("delete", "domain", None), base=base))
    _commit(audit, _changes("p", ("set", "domain.y", -1), base=base))
    _commit(audit, _changes("p", ("set", "domain", _MapView({"y": 1})), base=base))
    _commit(audit, _changes("p", ("set", "domain.x", None), base=base))
    assert audit.log == []


def test_host_transactions_and_other_processes_are_not_audited() -> None:
    audit = Audit(_outputs({"field": "domain.x", "min": 0, "level": "S"}))
    _commit(audit, _changes(None, ("set", "domain.x", -1)))
    _commit(audit, _changes("q", ("set", "domain.x", -1)))
    assert audit.log == [] and audit.counts == {}


def test_signals_in_changes_are_checked_too() -> None:
    audit = Audit(_outputs({"field": "domain.sig_level", "max": 3, "level": "C"}))
    _commit(audit, _changes("p", ("set", "domain.x", 1), ("set", "domain.sig_level", 9)))
    assert audit.count("p") == 1
