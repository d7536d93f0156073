"""spec/18 §2 and §2.6 — the expression vectors (spec/vectors/expressions.json) on every
backend: the Python evaluator on ``snapshot_scope(engine.state, inputs)``, and, on a backend
with the capability ``native-conditions``, ``engine.core.compile_expression(...)`` too (same
value, same ``FluxError`` text); plus a Hypothesis differential test of the native evaluation
against the Python one on random expressions over random states."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from theus import FluxError
from theus.flux import compile_expression, snapshot_scope
from theus.flux.native import PythonCondition, bind_condition
from theus_conformance import load_vector

VECTORS = load_vector("expressions.json")
CASES: list[dict[str, Any]] = VECTORS["cases"]
SCOPE: dict[str, Any] = VECTORS["scope"]
NATIVE = "native-conditions"


def _build(make_engine: Any, scope: Mapping[str, Any]) -> Any:
    """An engine holding the scope's namespaces, its signals set by a host transaction."""
    context = {k: v for k, v in scope.items() if k not in ("signals", "inputs")}
    engine = make_engine(context)
    if scope.get("signals"):
        with engine.transaction() as tx:
            tx.update(signal=dict(scope["signals"]))
    return engine


def _write(engine: Any, data: dict[str, Any]) -> None:
    with engine.transaction() as tx:
        tx.update(data=data)


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "$float" in value:
            return float(value["$float"])
        if "$tuple" in value:
            return ("tuple", [_decode(v) for v in value["$tuple"]])
        if "$list" in value:
            return ("list", [_decode(v) for v in value["$list"]])
        if "$map" in value:
            return ("map", {k: _decode(v) for k, v in value["$map"].items()})
    return value


def _matches(actual: Any, expected: Any) -> bool:
    """``actual`` is the decoded ``expected``: same scalar type (bool, int, float, str and
    None told apart; NaN matches NaN), a tuple, a sequence or a mapping item by item."""
    if isinstance(expected, tuple):
        kind, items = expected
        if kind == "map":
            return (
                isinstance(actual, Mapping)
                and set(actual) == set(items)
                and all(_matches(actual[k], v) for k, v in items.items())
            )
        if kind == "tuple" and type(actual) is not tuple:
            return False
        if not isinstance(actual, Sequence) or isinstance(actual, str):
            return False
        return len(actual) == len(items) and all(
            _matches(a, e) for a, e in zip(actual, items, strict=True)
        )
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, float) and math.isnan(expected):
        return math.isnan(actual)
    return bool(actual == expected)


def _truth(expected: Any) -> bool:
    if isinstance(expected, tuple):
        return bool(expected[1])
    return bool(expected)


def _compile(text: str) -> Any:
    return compile_expression(text, inputs=tuple(SCOPE["inputs"]))


def _ids(case: dict[str, Any]) -> str:
    return str(case["expr"])


def test_vectors_cover_the_language() -> None:
    """The vector file is big enough and covers every IR node kind and outcome."""
    assert len(CASES) >= 150
    kinds: set[str] = set()
    for case in CASES:
        if "load_error" in case:
            continue
        stack = [_compile(case["expr"]).ir]
        while stack:
            node = stack.pop()
            kinds.add(node[0])
            for part in node[1:]:
                if isinstance(part, tuple) and part and isinstance(part[0], str):
                    stack.append(part)
                elif isinstance(part, tuple):
                    stack.extend(p for p in part if isinstance(p, tuple) and p)
    assert kinds >= {
        "const", "read", "index", "get", "cmp", "and", "or", "not", "neg", "pos", "bin", "if",
        "call", "tuple",
    }  # fmt: skip
    assert sum("error" in c for c in CASES) >= 30
    assert sum("load_error" in c for c in CASES) >= 3


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_vector_python(make_engine: Any, case: dict[str, Any]) -> None:
    """The Python evaluator on the engine's snapshot gives the vector's value or error."""
    if "load_error" in case:
        with pytest.raises(FluxError) as info:
            _compile(case["expr"])
        assert str(info.value) == case["load_error"]
        return
    engine = _build(make_engine, SCOPE)
    expression = _compile(case["expr"])
    scope = snapshot_scope(engine.state, SCOPE["inputs"])
    if "error" in case:
        with pytest.raises(FluxError) as info:
            expression.evaluate(scope)
        assert str(info.value) == case["error"]
        return
    expected = _decode(case["value"])
    assert _matches(expression.evaluate(scope), expected), case
    assert expression.test(snapshot_scope(engine.state, SCOPE["inputs"])) is _truth(expected)


@pytest.mark.requires(NATIVE)
@pytest.mark.parametrize("case", [c for c in CASES if "load_error" not in c], ids=_ids)
def test_vector_native(make_engine: Any, case: dict[str, Any]) -> None:
    """``core.compile_expression`` evaluates every vector to the same value or error text."""
    engine = _build(make_engine, SCOPE)
    native = engine.core.compile_expression(_compile(case["expr"]))
    assert native is not None, "every vector's IR is natively evaluable"
    inputs = SCOPE["inputs"]
    if "error" in case:
        for method in (native.evaluate, native.test):
            with pytest.raises(FluxError) as info:
                method(inputs)
            assert str(info.value) == case["error"]
        return
    expected = _decode(case["value"])
    assert _matches(native.evaluate(inputs), expected), case
    assert native.test(inputs) is _truth(expected)


@pytest.mark.requires(NATIVE)
def test_native_reads_the_latest_snapshot(make_engine: Any) -> None:
    """A compiled condition reads the snapshot current at each call, signals included."""
    engine = make_engine({"domain": {"count": 0}})
    native = engine.core.compile_expression(
        compile_expression("domain.count < 2 and not signal.get('cmd_stop')")
    )
    assert native.test() is True
    _write(engine, {"domain.count": 1})
    assert native.test({}) is True
    with engine.transaction() as tx:
        tx.update(signal={"domain.cmd_stop": True})
    assert native.test() is False
    _write(engine, {"domain.count": 5})  # the signal is gone with its version
    assert native.test() is False
    _write(engine, {"domain.count": 1})
    assert native.test() is True
    assert native.evaluate() is True


@pytest.mark.requires(NATIVE)
def test_native_inputs_shadow_and_fall_back(make_engine: Any) -> None:
    """Inputs are read by name; a mapping that is not a dict and unmodelled values are
    evaluated in Python with the same result."""

    class Inputs(Mapping[str, Any]):
        def __init__(self, **values: Any) -> None:
            self.values = values

        def __getitem__(self, key: str) -> Any:
            return self.values[key]

        def __iter__(self) -> Any:
            return iter(self.values)

        def __len__(self) -> int:
            return len(self.values)

    engine = make_engine({"domain": {"count": 3}})
    expression = compile_expression("domain.count < limit", inputs=("limit",))
    native = engine.core.compile_expression(expression)
    assert native.test({"limit": 5}) is True
    assert native.test({"limit": 2}) is False
    assert native.test(Inputs(limit=4)) is True
    assert native.evaluate({"limit": 2.5}) is False
    with pytest.raises(FluxError) as info:
        native.test({})
    with pytest.raises(FluxError) as again:
        expression.test(snapshot_scope(engine.state, {}))
    assert str(info.value) == str(again.value)


def test_bind_condition_on_every_backend(make_engine: Any, backend_info: Any) -> None:
    """``bind_condition`` gives the native form when the backend has it, else the Python one;
    both read the latest snapshot."""
    engine = make_engine({"domain": {"count": 0}})
    cond = bind_condition(
        engine.core, backend_info.capabilities, compile_expression("domain.count + 1")
    )
    if NATIVE not in backend_info.capabilities:
        assert isinstance(cond, PythonCondition)
    assert cond.evaluate() == 1
    _write(engine, {"domain.count": 4})
    assert cond.evaluate({}) == 5
    assert cond.test() is True


# ------------------------------------------------------------------------------------------
# differential: native vs Python on random expressions

_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([2**31, 2**62, 2**63 - 1, -(2**63), 2**64, 2**53 + 1]),
    st.sampled_from([0.0, -0.0, 0.5, -2.5, 3.0, 1e16, 1e300, 0.1, float("inf")]),
    st.sampled_from(["", "a", "b", "ab", "é", "12", "-3", "1.5", "True"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "x"]), inner, max_size=3),
    ),
    max_leaves=6,
)
_states = st.fixed_dictionaries(
    {"a": _values, "b": _values, "n": st.integers(-3, 3), "s": st.sampled_from(["", "a", "xy"])},
    optional={"l": st.lists(_scalars, max_size=3), "m": st.dictionaries(
        st.sampled_from(["a", "x"]), _scalars, max_size=2)},
)  # fmt: skip
_signals = st.dictionaries(
    st.sampled_from(["domain.sig_a", "global.sig_a", "domain.cmd_b"]), _scalars, max_size=3
)

_atoms = st.one_of(
    st.sampled_from(
        [
            "domain.a", "domain.b", "domain.n", "domain.s", "domain.l", "domain.m", "domain.m.x",
            "domain.a.a", "domain.a[0]", "domain.l[-1]", "domain.missing", "signal.sig_a",
            "signal.get('cmd_b')", "signal.get('sig_a', 0)", "domain.get('m', 1)", "k",
            "global.g", "signal", "domain",
        ]
    ),
    st.sampled_from(
        ["0", "1", "-1", "2", "3", "0.5", "2.0", "'a'", "''", "'x'", "True", "False", "None",
         "(1, 'a')", "()", "9223372036854775807"]
    ),
)  # fmt: skip


def _combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(
        ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "in", "not in",
         "and", "or"]
    )  # fmt: skip
    calls = st.sampled_from(["len", "abs", "int", "float", "str", "bool", "min", "max"])
    return st.one_of(
        st.tuples(inner, binary, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["not ", "-", "+"]), inner).map(lambda t: f"({t[0]}{t[1]})"),
        st.tuples(calls, inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["min", "max"]), inner, inner).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]})[{t[1]}]"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]}, {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"domain.get({t[0]}, {t[1]})"),
        st.tuples(inner, st.sampled_from(["None", "True", "False"])).map(
            lambda t: f"({t[0]} is {t[1]})"
        ),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} < {t[1]} <= {t[2]})"),
    )


_expressions = st.recursive(_atoms, _combine, max_leaves=8)


def _outcome(fn: Any) -> tuple[str, Any]:
    try:
        return "value", fn()
    except FluxError as exc:
        return "error", str(exc)


def _same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "error":
        return bool(a[1] == b[1])
    x, y = a[1], b[1]
    if isinstance(x, Mapping) or (isinstance(x, Sequence) and not isinstance(x, str | tuple)):
        return bool(x == y)  # views of the state: both evaluations return the Python object
    if isinstance(x, tuple):
        return (
            type(y) is tuple
            and len(x) == len(y)
            and all(_same(("value", i), ("value", j)) for i, j in zip(x, y, strict=True))
        )
    if type(x) is not type(y):
        return False
    if isinstance(x, float) and math.isnan(x):
        return math.isnan(y)
    if isinstance(x, float) and x == 0.0:
        return math.copysign(1.0, x) == math.copysign(1.0, y)
    return bool(x == y)


@pytest.mark.requires(NATIVE)
@_SETTINGS
@given(
    text=_expressions,
    domain=_states,
    signals=_signals,
    k=_scalars,
)
def test_native_matches_python(
    make_engine: Any, text: str, domain: dict[str, Any], signals: dict[str, Any], k: Any
) -> None:
    """Random expressions over random states: the native evaluation gives the same value
    (same type; NaN and the sign of zero included) or the same FluxError text as the
    Python evaluation of the same snapshot."""
    try:
        expression = compile_expression(text, inputs=("k",))
    except FluxError:
        assume(False)
        return
    engine = _build(make_engine, {"domain": domain, "global": {"g": 1}, "signals": signals})
    native = engine.core.compile_expression(expression)
    if native is None:  # an IR constant the backend does not take: nothing to compare
        return
    inputs = {"k": k}
    python = _outcome(lambda: expression.evaluate(snapshot_scope(engine.state, inputs)))
    assert _same(_outcome(lambda: native.evaluate(inputs)), python), (text, python)
    py_test = _outcome(lambda: expression.test(snapshot_scope(engine.state, inputs)))
    assert _same(_outcome(lambda: native.test(inputs)), py_test), (text, py_test)
