"""spec/18 §2 — the Flux expression language: allow-list, escapes, bounds, semantics, errors."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from theus import FluxError, TheusError
from theus.flux import compile_expression, snapshot_scope

SCOPE: dict[str, Any] = {
    "domain": {
        "count": 3,
        "name": "bob",
        "items": [1, 2, 3],
        "user": {"age": 41, "tags": ["a", "b"]},
        "ratio": 0.5,
        "flag": False,
        "mro": "key-named-mro",
    },
    "global": {"enabled": True, "mode": "fast", "limit": 10},
    "signal": {"cmd_go": True, "sig_done": "x", "domain.sig_done": "x"},
    "limit": 5,
}


def ev(text: str, scope: dict[str, Any] | None = None, **kw: Any) -> Any:
    return compile_expression(text, inputs=("limit",), **kw).evaluate(
        SCOPE if scope is None else scope
    )


# ------------------------------------------------------------------------------------------
# semantics

SEMANTICS = [
    ("1", 1),
    ("'a'", "a"),
    ("None", None),
    ("True and False", False),
    ("0 or 'x'", "x"),
    ("not 0", True),
    ("domain.count", 3),
    ("domain['count']", 3),
    ("domain.user.age", 41),
    ("domain.user['tags'][1]", "b"),
    ("domain.items[-1]", 3),
    ("domain.items[domain.count - 1]", 3),
    ("global.enabled", True),
    ("global['mode'] == 'fast'", True),
    ("signal.cmd_go", True),
    ("cmd.cmd_go", True),
    ("signal['domain.sig_done']", "x"),
    ("signal.get('cmd_stop') is None", True),
    ("signal.get('cmd_stop', 7)", 7),
    ("domain.get('count')", 3),
    ("domain.user.get('zip', 'none')", "none"),
    ("limit", 5),
    ("domain.count < limit", True),
    ("0 < domain.count < 10", True),
    ("0 < domain.count < 2", False),
    ("domain.count == 3 and global.enabled and signal.get('cmd_stop') is None", True),
    ("domain.count > 5 or domain.name == 'bob'", True),
    ("2 in domain.items", True),
    ("'zz' not in domain.user", True),
    ("'age' in domain.user", True),
    ("len(domain.items)", 3),
    ("len(domain.name) + 1", 4),
    ("min(domain.items)", 1),
    ("max(1, domain.count, 2)", 3),
    ("abs(-domain.count)", 3),
    ("int('12') + int(2.7)", 14),
    ("float(domain.count) / 2", 1.5),
    ("str(domain.count) + 'x'", "3x"),
    ("bool(domain.items)", True),
    ("domain.count ** 2", 9),
    ("2 ** 10", 1024),
    ("7 // 2", 3),
    ("7 % 3", 1),
    ("-domain.count + +1", -2),
    ("'yes' if domain.flag else 'no'", "no"),
    ("domain.count in [1, 2, 3]", True),
    ("domain.count in (4, 5)", False),
    ("'ab' * 3", "ababab"),
    ("domain.flag is False", True),
    ("domain.flag is not True", True),
    ("domain['mro']", "key-named-mro"),
    ("(domain.count\n + 1)", 4),
]


@pytest.mark.parametrize(("text", "expected"), SEMANTICS)
def test_semantics(text: str, expected: Any) -> None:
    assert ev(text) == expected


def test_test_is_truthiness() -> None:
    cond = compile_expression("domain.items")
    assert cond.test({"domain": {"items": [1]}}) is True
    assert cond.test({"domain": {"items": []}}) is False


def test_and_or_short_circuit_skips_failing_reads() -> None:
    assert ev("False and domain.missing.x") is False
    assert ev("True or domain.missing.x") is True
    assert ev("1 if True else domain.missing") == 1


def test_reads_are_recorded() -> None:
    cond = compile_expression("domain.count < 10 and global.mode == 'x' and signal.get('cmd_go')")
    assert "domain.count" in cond.reads and "global.mode" in cond.reads
    assert "signal.cmd_go" in cond.reads
    assert cond.roots == {"domain", "global", "signal"}


def test_dot_read_is_a_key_lookup_never_getattr() -> None:
    class Obj:
        count = 99

    # an object that is not a map: `.count` does not reach its attribute
    with pytest.raises(FluxError, match="cannot read 'count'"):
        ev("domain.obj.count", {"domain": {"obj": Obj()}})
    # `.keys` / `.items` are keys, not methods
    assert ev("domain.keys", {"domain": {"keys": 1}}) == 1


def test_global_as_a_key_after_dot() -> None:
    assert ev("domain.global", {"domain": {"global": 4}}) == 4


# ------------------------------------------------------------------------------------------
# rejected at load: the escape corpus of ANCHORS.md and everything outside the allow-list

ESCAPES = [
    "len(().__class__.__bases__[0].__subclasses__()) > 0",
    "().__class__",
    "''.__class__.__mro__[1].__subclasses__()",
    "domain.__class__",
    "domain.x.__globals__",
    "__builtins__",
    "domain.__builtins__",
    "domain._private",
    "_x",
    "domain.func_globals",
    "domain.x.f_globals",
    "(x for x in ()).gi_frame.f_globals",
    "domain.gi_frame",
    "domain.__reduce__()",
    "domain.__reduce_ex__(2)",
    "'{0.__class__}'.format(1)",
    "'{0}'.format(domain)",
    "'{x}'.format_map(domain)",
    "domain.format",
    "str.mro()",
    "int.mro",
    "domain.mro",
    "domain.mro()",
    "lambda: 1",
    "(lambda x: x)(1)",
    "[x for x in domain.items]",
    "{x for x in domain.items}",
    "{x: 1 for x in domain.items}",
    "any(x for x in domain.items)",
    "9**9**9",
    "'a' * 10**9",
    "[0] * 10**9",
    "10**100000",
    "1 << 100000",
    "2 >> 1",
    "1 | 2",
    "1 & 2",
    "1 ^ 2",
    "~1",
    "eval('1')",
    "exec('1')",
    "open('/etc/passwd')",
    "__import__('os')",
    "getattr(domain, 'x')",
    "type(domain)",
    "vars()",
    "globals()",
    "(y := 1)",
    "f'{domain}'",
    "{'a': 1}",
    "{1, 2}",
    "domain.items[0:2]",
    "domain.get",
    "domain.items.count(1)",
    "domain.keys()",
    "len",
    "len(domain.items, 2)",
    "min()",
    "max(domain.items, key=abs)",
    "len(*domain.items)",
    "b'x'",
    "1j",
    "...",
    "domain.count is 3",
    "await domain",
    "1 / 0",
    "'%s' % 1",
    "1 @ 2",
    "unknown_name.x",
]


@pytest.mark.parametrize("text", ESCAPES)
def test_escapes_and_disallowed_syntax_rejected_at_load(text: str) -> None:
    with pytest.raises(FluxError) as info:
        compile_expression(
            text,
            file="wf.yaml",
            line=7,
            column=16,
            key_path="steps[0].condition",
            namespaces=("domain", "global"),
        )
    err = info.value
    assert isinstance(err, TheusError) and isinstance(err, ValueError)
    assert str(err).startswith("wf.yaml:7:")
    assert "steps[0].condition" in str(err)
    assert err.file == "wf.yaml" and err.line == 7
    assert err.column is not None and err.column >= 16
    assert err.expression == text


@pytest.mark.parametrize(
    ("text", "column", "needle"),
    [
        ("domain.__class__", 16 + 7, "'__class__'"),
        ("domain.count < 'a' * 10**9", 16 + 15, "repetition"),
        ("1 + lambda: 2", 16 + 4, "lambda"),
        ("domain.mro", 16 + 7, "reserved"),
        ("len(domain) + open(1)", 16 + 14, "'open'"),
        ("domain[", 16 + 6, "syntax"),
        ("x.y", 16, "unknown name 'x'"),
        ("global.format", 16 + 7, "reserved"),
    ],
)
def test_error_column_points_at_the_offending_token(text: str, column: int, needle: str) -> None:
    with pytest.raises(FluxError, match=needle) as info:
        compile_expression(text, file="f.yaml", line=3, column=16, namespaces=("domain", "global"))
    assert (info.value.line, info.value.column) == (3, column)
    assert str(info.value).startswith(f"f.yaml:3:{column}: ")


def test_size_and_depth_caps() -> None:
    with pytest.raises(FluxError, match="too long"):
        compile_expression("1 + " * 600 + "1")
    with pytest.raises(FluxError, match="nested too deeply|too large"):
        compile_expression("-" * 500 + "1")
    with pytest.raises(FluxError, match="too large"):
        compile_expression("[" + "1, " * 450 + "]")
    with pytest.raises(FluxError):
        compile_expression("(" * 300 + "1" + ")" * 300)
    with pytest.raises(FluxError, match="empty"):
        compile_expression("   ")


def test_non_str_expression_is_type_error() -> None:
    with pytest.raises(TypeError):
        compile_expression(3)  # type: ignore[arg-type]


def test_input_names_may_not_shadow() -> None:
    for bad in ("signal", "cmd", "global", "len", "domain"):
        with pytest.raises(FluxError, match="input name"):
            compile_expression("1", inputs=(bad,), namespaces=("domain",))


# ------------------------------------------------------------------------------------------
# evaluation errors and bounds at run time


@pytest.mark.parametrize(
    ("text", "scope", "needle"),
    [
        ("domain.count > 1", {"domain": {}}, "domain.count is missing"),
        ("domain.user.age > 1", {"domain": {"user": {}}}, "domain.user.age is missing"),
        ("domain.user.age > 1", {"domain": {"user": 3}}, "cannot read 'age' of domain.user"),
        ("domain.items[5]", {"domain": {"items": [1]}}, "missing"),
        ("domain.items[domain.i]", {"domain": {"items": [1], "i": 1.5}}, "a key must be"),
        ("domain.x < 'a'", {"domain": {"x": 1}}, "TypeError"),
        ("domain.x / 0", {"domain": {"x": 1}}, "ZeroDivisionError"),
        ("domain.x ** domain.y", {"domain": {"x": 10, "y": 10_000}}, "power result too large"),
        ("domain.s * domain.n", {"domain": {"s": "ab", "n": 10**6}}, "repetition"),
        ("domain.l * domain.n", {"domain": {"l": [1], "n": 10**6}}, "repetition"),
        ("domain.x * domain.x", {"domain": {"x": 2**3000}}, "integer result too large"),
        ("domain.s % 1", {"domain": {"s": "%s"}}, "formatting"),
        ("int(domain.s)", {"domain": {"s": "1" * 2000}}, "longer than 1000"),
        ("domain.x.get('a')", {"domain": {"x": [1]}}, ".get\\(\\) needs a map"),
        ("nothere.x", {}, "there is no 'nothere'"),
        ("float(domain.x) ** 1000", {"domain": {"x": 10}}, "OverflowError"),
    ],
)
def test_evaluation_errors_name_expression_and_path(
    text: str, scope: dict[str, Any], needle: str
) -> None:
    cond = compile_expression(text, file="w.yaml", line=9, column=5, key_path="steps[1].condition")
    with pytest.raises(FluxError, match=needle) as info:
        cond.test(scope)
    assert str(info.value).startswith("w.yaml:9:5: steps[1].condition: evaluating ")
    assert text in str(info.value)
    assert info.value.expression == text


def test_signal_string_comparison_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="theus"):
        compile_expression("signal.get('cmd_go') == 'True'", file="w.yaml", line=2, column=3)
    assert any("typed" in r.getMessage() and "w.yaml:2:3" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------------
# the snapshot scope


class _Snap:
    def __init__(self, data: dict[str, Any], signals: dict[str, Any]) -> None:
        self._data = data
        self.signals = signals
        self.fetched: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.fetched.append(key)
        return self._data[key]


def test_snapshot_scope_is_lazy_and_maps_signals() -> None:
    snap = _Snap(
        {"domain": {"x": 1}, "global": {"g": 2}, "other": {"o": 3}},
        {"domain.sig_a": 1, "global.sig_a": 2, "domain.cmd_go": True},
    )
    scope = snapshot_scope(snap, {"limit": 4})
    cond = compile_expression("domain.x < limit and signal.sig_a == 2 and cmd.cmd_go")
    assert cond.test(scope)
    assert snap.fetched == ["domain"]
    assert compile_expression("signal['domain.sig_a']").evaluate(scope) == 1
    assert compile_expression("global.g + other.o").evaluate(scope) == 5
    with pytest.raises(FluxError, match="there is no 'nope'"):
        compile_expression("nope.x").evaluate(scope)


def test_flux_errors_pickle_and_subclass() -> None:
    import pickle

    from theus import WorkflowError, WorkflowLimitError

    err = FluxError("bad", "f.yaml", 3, 4, "steps[0]", "x.y")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) == "f.yaml:3:4: steps[0]: bad"
    assert (back.file, back.line, back.column, back.key_path, back.expression) == (
        "f.yaml", 3, 4, "steps[0]", "x.y",
    )  # fmt: skip
    assert str(FluxError("bad")) == "<workflow>: bad"
    assert str(FluxError("bad", "f.yaml")) == "f.yaml: bad"
    limit = WorkflowLimitError("f:1:2: over", "f", 1, 2, None, ("a",))
    assert isinstance(limit, WorkflowError) and isinstance(limit, RuntimeError)
    back2 = pickle.loads(pickle.dumps(limit))
    assert (
        type(back2) is WorkflowLimitError and back2.executed == ("a",) and str(back2) == str(limit)
    )
