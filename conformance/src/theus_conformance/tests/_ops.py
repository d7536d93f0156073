"""Operations as data, for the property-based and differential tests.

An operation is a plain tuple (so Hypothesis can generate, shrink and print it); ``run`` turns
it into calls on an engine and returns an :class:`Outcome` comparable across engines.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from theus import ConflictError, ContractViolationError, StateUpdate, TheusError, process

KEYS = ("a", "b", "c")
COUNTER = "n"

_names = itertools.count()


class Boom(Exception):
    """Raised on purpose by failing operations."""


def plain(value: Any) -> Any:
    """A view (or anything) as plain Python data, for comparisons."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes | tuple):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


@dataclass(frozen=True)
class Outcome:
    ok: bool
    value: Any = None  # the plain return value when ok
    error: type | None = None  # the exception type otherwise


# ---------------------------------------------------------------------------------------------
# strategies

scalars = st.one_of(st.integers(-5, 5), st.text("xyz", max_size=3), st.booleans(), st.none())
values = st.one_of(
    scalars,
    st.lists(st.integers(0, 9), max_size=3),
    st.dictionaries(st.sampled_from(KEYS), st.integers(0, 9), max_size=2),
)
keys = st.sampled_from(KEYS)

host_ops = st.tuples(
    st.just("host"),
    st.lists(st.tuples(keys, values), max_size=3).map(tuple),  # sets
    st.lists(keys, max_size=2, unique=True).map(tuple),  # deletes
    st.booleans(),  # fail
)
step = st.one_of(
    st.tuples(st.just("set"), keys, values),
    st.tuples(st.just("del"), keys, st.none()),
    st.tuples(st.just("incr"), st.just(COUNTER), st.none()),
)
inplace_ops = st.tuples(st.just("inplace"), st.lists(step, max_size=4).map(tuple), st.booleans())
return_ops = st.tuples(st.just("return"), keys, values)
cas_ops = st.tuples(
    st.just("cas"),
    st.sampled_from((0, 0, -1, 1)),
    st.lists(st.tuples(keys, values), min_size=1, max_size=2).map(tuple),
)
operations = st.one_of(host_ops, inplace_ops, return_ops, cas_ops)


# ---------------------------------------------------------------------------------------------
# running an operation on an engine


def _host(engine: Any, sets: tuple, deletes: tuple, fail: bool) -> Any:
    with engine.transaction() as tx:
        if sets:
            tx.update(data={f"domain.{k}": v for k, v in sets})
        if deletes:
            tx.update(delete=[f"domain.{k}" for k in deletes])
        if fail:
            raise Boom("host transaction fails")
    return None


def _inplace_process(steps: tuple, fail: bool) -> Any:
    @process(inputs=["domain"], outputs=["domain"], name=f"inplace_{next(_names)}")
    def inplace(ctx: Any) -> None:
        for kind, key, value in steps:
            if kind == "set":
                ctx.domain[key] = value
            elif kind == "del":
                del ctx.domain[key]
            else:
                ctx.domain[key] = ctx.domain.get(key, 0) + 1
        if fail:
            raise Boom("process fails")

    return inplace


def _return_process(key: str, value: Any) -> Any:
    @process(outputs=[f"domain.{key}"], name=f"returns_{next(_names)}")
    def returns(ctx: Any) -> Any:
        return value

    return returns


def run(engine: Any, op: tuple) -> Outcome:
    """Apply ``op`` to ``engine``; never raises for the operation's own errors."""
    kind = op[0]
    try:
        if kind == "host":
            result = _host(engine, op[1], op[2], op[3])
        elif kind == "inplace":
            result = engine.execute(_inplace_process(op[1], op[2]))
        elif kind == "return":
            result = engine.execute(_return_process(op[1], op[2]))
        elif kind == "cas":
            snapshot = engine.compare_and_swap(
                engine.state.version + op[1], data={f"domain.{k}": v for k, v in op[2]}
            )
            result = snapshot.version
        elif kind == "update":
            result = engine.execute(_update_process(op[1], op[2]))
        elif kind == "program":
            result = engine.execute(_program_process(op[1], op[2], op[3], op[4]))
        elif kind == "edge":
            result = _edge(engine, op[1], op[2])
        else:  # pragma: no cover - a bug in the test
            raise AssertionError(f"unknown operation {op!r}")
    except (
        Boom,
        TheusError,
        KeyError,
        AttributeError,
        IndexError,
        TypeError,
        ValueError,
        PermissionError,
        LookupError,
    ) as exc:
        return Outcome(False, error=type(exc))
    try:
        value = plain(result)
    except TheusError as exc:  # e.g. a view returned from the process: dead after the call
        value = ("unusable result", type(exc))
    return Outcome(True, value=value)


# ---------------------------------------------------------------------------------------------
# the model: the spec applied to plain dicts


def model_apply(model: dict, version: int, op: tuple) -> tuple[Outcome, dict, int]:
    """What the spec says ``op`` does: (outcome, new model, new version). A failure leaves
    the model and version as they were."""
    kind = op[0]
    draft = copy.deepcopy(model)
    domain = draft["domain"]
    if kind == "host":
        _, sets, deletes, fail = op
        for k, v in sets:
            domain[k] = copy.deepcopy(v)
        for k in deletes:
            if k not in domain:
                return Outcome(False, error=KeyError), model, version
            del domain[k]
        if fail:
            return Outcome(False, error=Boom), model, version
        wrote = bool(sets or deletes)
        return Outcome(True), draft, version + (1 if wrote else 0)
    if kind == "inplace":
        _, steps, fail = op
        for k, key, value in steps:
            if k == "set":
                domain[key] = copy.deepcopy(value)
            elif k == "del":
                if key not in domain:
                    return Outcome(False, error=KeyError), model, version
                del domain[key]
            else:
                domain[key] = domain.get(key, 0) + 1
        if fail:
            return Outcome(False, error=Boom), model, version
        return Outcome(True), draft, version + (1 if steps else 0)
    if kind == "return":
        _, key, value = op
        if value is None:
            return Outcome(True), model, version
        if isinstance(value, dict) and key in value:  # keyed by the output's leaf (spec/06)
            if set(value) != {key}:
                return Outcome(False, error=ContractViolationError), model, version
            domain[key] = value[key]
            return Outcome(True, value=plain(value)), draft, version + 1
        domain[key] = copy.deepcopy(value)
        return Outcome(True, value=plain(value)), draft, version + 1
    if kind == "cas":
        _, delta, sets = op
        if delta != 0:
            return Outcome(False, error=ConflictError), model, version
        for k, v in sets:
            domain[k] = copy.deepcopy(v)
        return Outcome(True, value=version + 1), draft, version + 1
    raise AssertionError(f"no model for {op!r}")  # pragma: no cover


def model_outcome_matches(expected: Outcome, actual: Outcome) -> bool:
    if expected.ok != actual.ok:
        return False
    if not expected.ok:
        return actual.error is not None and issubclass(actual.error, expected.error)
    return expected.value == actual.value


# ---------------------------------------------------------------------------------------------
# richer operations for the differential test (no model: the reference backend is the model)

PATTERNS = (
    "domain",
    "domain.*",
    "domain.a",
    "domain.b",
    "domain.l",
    "domain.log_e",
    "domain.sig_s",
    "domain.m",
    "domain.m.*",
    "domain.heavy_h",
    "global.g",
)
PROGRAM_STEPS = (
    "read_a",
    "read_missing",
    "len_domain",
    "set_a",
    "set_b",
    "del_a",
    "pop_b",
    "pop_b_default",
    "append_l",
    "extend_l",
    "insert_l",
    "pop_l",
    "remove_l",
    "sort_l",
    "reverse_l",
    "clear_l",
    "setitem_l0",
    "del_l0",
    "log_append",
    "log_assign",
    "sig_set",
    "sig_del",
    "m_update",
    "m_setdefault",
    "m_clear",
    "m_popitem",
    "set_g",
    "set_view",
    "raise",
)
RETURNS = ("none", "scalar", "pair", "triple", "list", "view")


def _program_process(inputs: tuple, outputs: tuple, steps: tuple, returns: str) -> Any:
    @process(inputs=list(inputs), outputs=list(outputs), name=f"program_{next(_names)}")
    def program(ctx: Any) -> Any:
        d = ctx.domain
        trace = []
        for s in steps:
            if s == "read_a":
                trace.append(plain(d["a"]))
            elif s == "read_missing":
                trace.append(plain(d["zz"]))
            elif s == "len_domain":
                trace.append(len(d))
            elif s == "set_a":
                d["a"] = len(trace)
            elif s == "set_b":
                d.b = {"nested": [len(trace)]}
            elif s == "del_a":
                del d["a"]
            elif s == "pop_b":
                trace.append(plain(d.pop("b")))
            elif s == "pop_b_default":
                trace.append(plain(d.pop("b", "dflt")))
            elif s == "append_l":
                d.l.append(len(trace))
            elif s == "extend_l":
                d.l.extend([7, 8])
            elif s == "insert_l":
                d.l.insert(0, -1)
            elif s == "pop_l":
                trace.append(d.l.pop())
            elif s == "remove_l":
                d.l.remove(1)
            elif s == "sort_l":
                d.l.sort()
            elif s == "reverse_l":
                d.l.reverse()
            elif s == "clear_l":
                d.l.clear()
            elif s == "setitem_l0":
                d.l[0] = 42
            elif s == "del_l0":
                del d.l[0]
            elif s == "log_append":
                d.log_e.append(len(trace))
            elif s == "log_assign":
                d.log_e = []
            elif s == "sig_set":
                d.sig_s = len(trace)
            elif s == "sig_del":
                del d["sig_s"]
            elif s == "m_update":
                d.m.update({"u": 1})
            elif s == "m_setdefault":
                trace.append(plain(d.m.setdefault("sd", 2)))
            elif s == "m_clear":
                d.m.clear()
            elif s == "m_popitem":
                trace.append(plain(d.m.popitem()))
            elif s == "set_g":
                ctx.global_.g = len(trace)
            elif s == "set_view":
                d["b"] = d["m"]
            elif s == "raise":
                raise Boom("program fails")
        if returns == "none":
            return None
        if returns == "scalar":
            return len(trace)
        if returns == "pair":
            return (1, 2)
        if returns == "triple":
            return (1, 2, 3)
        if returns == "list":
            return [trace]
        return ctx.domain["m"]

    return program


def _update_process(outputs: tuple, parts: tuple) -> Any:
    data, deletes, signal = parts

    @process(outputs=list(outputs), name=f"update_{next(_names)}")
    def update(ctx: Any) -> Any:
        return StateUpdate(
            data={f"domain.{k}": v for k, v in data},
            delete=[f"domain.{k}" for k in deletes],
            signal={f"domain.{k}": v for k, v in signal},
        )

    return update


program_ops = st.tuples(
    st.just("program"),
    st.lists(st.sampled_from(PATTERNS), max_size=3, unique=True).map(tuple),
    st.lists(st.sampled_from(PATTERNS), max_size=3, unique=True).map(tuple),
    st.lists(st.sampled_from(PROGRAM_STEPS), max_size=5).map(tuple),
    st.sampled_from(RETURNS),
)
update_ops = st.tuples(
    st.just("update"),
    st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2, unique=True).map(tuple),
    st.tuples(
        st.lists(st.tuples(st.sampled_from(("a", "b", "m", "l")), values), max_size=2).map(tuple),
        st.lists(st.sampled_from(("a", "b", "zz")), max_size=1).map(tuple),
        st.lists(st.tuples(st.sampled_from(("sig_s", "cmd_c")), scalars), max_size=1).map(tuple),
    ),
)
DIFFERENTIAL_CONTEXT = {
    "domain": {"a": 1, "b": 2, "l": [3, 1, 2], "log_e": ["start"], "m": {"x": 1, "y": 2}},
    "global": {"g": 0},
}


# ---------------------------------------------------------------------------------------------
# edge inputs (issue 6, classes 1 and 10): huge ints, odd keys, list paths, deep and cyclic
# values; the reference backend decides, the backend under test must raise the same class

HUGE = (10**30, -(10**30), 2**63, -(2**63) - 1, 2**64, 2**1000)
ODD_KEYS = (
    "",
    ".",
    "*",
    "**",
    "a.b",
    "\ud800",
    "a\udfffb",
    "\U0001f600",
    "\u043a\u043b\u044e\u0447",
    "k" * 300,
    "0",
    "007",
    "sig_x",
    "meta_q",
    "heavy_q",
    " ",
)
LIST_SEGMENTS = ("0", "1", "2", "3", "9", "01", "-1", "x", "9" * 25)
MAX_DEPTH = 256


def _nest(levels: int, kind: str = "map") -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value} if kind == "map" else [value]
    return value


def _cyclic(levels: int) -> Any:
    top: dict[str, Any] = {}
    inner = top
    for _ in range(levels % 4):
        inner["a"] = {}
        inner = inner["a"]
    inner["loop"] = top if levels % 2 else [0, top]
    return top


def _in_process(engine: Any, action: Any, retries: int = 3) -> Any:
    out: list[Any] = []

    @process(inputs=["domain"], outputs=["domain"], retries=retries, name=f"edge_{next(_names)}")
    def edge(ctx: Any) -> None:  # returns nothing: no return mapping
        out.append(plain(action(ctx.domain)))

    engine.execute(edge)
    return out[-1]


def _host_update(engine: Any, **kw: Any) -> None:
    with engine.transaction() as tx:
        tx.update(**kw)


def _setitem(d: Any, i: int) -> None:
    d.l[i] = 5


def _delitem(d: Any, i: int) -> None:
    del d.l[i]


def _set_key(d: Any, key: str) -> None:
    d[key] = 1


def _edge(engine: Any, sub: str, arg: Any) -> Any:
    """Run one edge operation; its result is compared across backends."""
    if sub == "read":
        return (plain(engine.state.domain.l[arg]), _in_process(engine, lambda d: d.l[arg]))
    if sub == "setitem":
        return _in_process(engine, lambda d: _setitem(d, arg))
    if sub == "delitem":
        return _in_process(engine, lambda d: _delitem(d, arg))
    if sub == "pop":
        return _in_process(engine, lambda d: d.l.pop(arg))
    if sub == "insert":
        return _in_process(engine, lambda d: d.l.insert(arg, "ins"))
    if sub == "huge_value":
        _host_update(engine, data={"domain.big": arg, "domain.m.big": [arg]})
        return plain(engine.state.domain.big)
    if sub == "key_in_value":
        return _host_update(engine, data={"domain.m": {"x": 1, arg: 2}})
    if sub == "key_in_path":
        return _host_update(engine, data={f"domain.m.{arg}": 3})
    if sub == "key_inplace":
        return _in_process(engine, lambda d: _set_key(d.m, arg))
    if sub == "key_get":
        return plain(engine.state.get(f"domain.m.{arg}", "default"))
    if sub == "key_delete":
        return _host_update(engine, delete=[f"domain.m.{arg}"])
    if sub == "list_set":
        return _host_update(engine, data={f"domain.l.{arg}": "set"})
    if sub == "list_delete":
        return _host_update(engine, delete=[f"domain.l.{arg}"])
    if sub == "list_get":
        return plain(engine.state.get(f"domain.l.{arg}", "default"))
    if sub == "signal_below":
        return _host_update(engine, signal={f"domain.sig_s.{arg}": 1})
    if sub == "data_below_signal":
        return _host_update(engine, data={f"domain.sig_s.{arg}": 1})
    if sub == "retries":
        return _in_process(engine, lambda d: _set_key(d, "r"), retries=arg)
    if sub == "deep_host":  # the value's leaf sits at 2 + arg segments
        return _host_update(engine, data={"domain.z": _nest(arg)})
    if sub == "deep_inplace":
        return _in_process(engine, lambda d: _set_key_to(d, "z", _nest(arg, "list")))
    if sub == "deep_append":  # at domain.l.N: 3 + (arg - 1) segments
        return _in_process(engine, lambda d: d.l.append(_nest(arg - 1)))
    if sub == "deep_path":
        return plain(engine.state.get(".".join(["domain"] + ["a"] * (arg - 1)), "default"))
    if sub == "cycle_host":
        return _host_update(engine, data={"domain.z": _cyclic(arg)})
    if sub == "cycle_inplace":
        return _in_process(engine, lambda d: _set_key_to(d, "z", _cyclic(arg)))
    raise AssertionError(f"unknown edge operation {sub!r}")  # pragma: no cover - a test bug


def _set_key_to(d: Any, key: str, value: Any) -> None:
    d[key] = value


_indices = st.one_of(st.integers(-5, 5), st.sampled_from(HUGE))
_odd_keys = st.one_of(
    st.sampled_from(ODD_KEYS), st.text(st.characters(exclude_categories=()), max_size=3)
)
edge_ops = st.one_of(
    st.tuples(
        st.just("edge"), st.sampled_from(("read", "setitem", "delitem", "pop", "insert")), _indices
    ),
    st.tuples(st.just("edge"), st.just("huge_value"), st.sampled_from(HUGE)),
    st.tuples(
        st.just("edge"),
        st.sampled_from(("key_in_value", "key_in_path", "key_inplace", "key_get", "key_delete")),
        _odd_keys,
    ),
    st.tuples(
        st.just("edge"),
        st.sampled_from(("list_set", "list_delete", "list_get")),
        st.one_of(st.sampled_from(LIST_SEGMENTS), st.integers(0, 6).map(str)),
    ),
    st.tuples(
        st.just("edge"),
        st.sampled_from(("signal_below", "data_below_signal")),
        st.sampled_from(("b", "0", "x")),
    ),
    st.tuples(st.just("edge"), st.just("retries"), st.sampled_from((0, 1, 2**64, 2**70))),
    st.tuples(
        st.just("edge"),
        st.sampled_from(
            ("deep_host", "deep_inplace", "deep_append", "deep_path", "cycle_host", "cycle_inplace")
        ),
        st.integers(MAX_DEPTH - 4, MAX_DEPTH + 1),
    ),
)
