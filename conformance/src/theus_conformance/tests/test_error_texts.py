"""spec/12 — error texts are worded once: the same bad input gives the same exception class and
the same ``str(exc)`` on every backend.

Two checks over one catalogue of bad inputs (``spec/vectors/errors.json``, read by an
interpreter of its operations below):

* every backend, the reference included, raises the vector's class with the vector's message;
* differentially, the backend under test and the reference backend raise the same class and
  message, for the vectors and for a few inputs JSON cannot write (non-str keys, sets, objects).
"""

from __future__ import annotations

import builtins
import copy
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import pytest

import theus
from theus import StateUpdate, TheusEngine, process
from theus_conformance import load_vector

REFERENCE = "reference"
VECTORS = load_vector("errors.json")
CASES: list[dict[str, Any]] = VECTORS["cases"]
_INDEX = re.compile(r"-?\d+")


# ---------------------------------------------------------------------------------------------
# the interpreter of the vectors' operations (spec/vectors/README.md, "errors.json")


def _value(value: Any) -> Any:
    """A vector's JSON value as the Python value it stands for (``$deep``, ``$cycle``)."""
    if isinstance(value, dict):
        if "$deep" in value:
            deep: Any = 0
            for _ in range(value["$deep"]):
                deep = {"a": deep}
            return deep
        if "$cycle" in value:
            cyclic: dict[str, Any] = {}
            cyclic["self"] = cyclic
            return cyclic
        return {k: _value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


def _key(obj: Any, segment: str) -> Any:
    if _INDEX.fullmatch(segment) and not isinstance(obj, Mapping) and hasattr(obj, "__len__"):
        return int(segment)
    return segment


def _segments(path: str) -> list[str]:
    return path.split(".") if path else []


def _resolve(root: Any, segments: list[str]) -> Any:
    obj = root
    for segment in segments:
        obj = obj[_key(obj, segment)]
    return obj


def _step(root: Any, step: list[Any], stash: list[Any]) -> tuple[bool, Any]:
    """Run one operation on ``root`` (a ctx, a snapshot or a stashed view); ``(True, value)``
    when the process returns ``value``."""
    op, args = step[0], [_value(a) for a in step[1:]]
    if op in ("return", "return_tuple", "return_update"):
        if op == "return_tuple":
            return True, tuple(args[0])
        if op == "return_update":
            return True, StateUpdate(**args[0])
        return True, args[0]
    segments = _segments(args[0])
    if op == "read":
        value = _resolve(root, segments)
        if hasattr(value, "to_dict"):
            value.to_dict()
    elif op == "read_attr":
        getattr(_resolve(root, segments[:-1]), segments[-1])
    elif op in ("write", "write_attr", "delete", "delete_attr"):
        parent = _resolve(root, segments[:-1])
        key = segments[-1]
        if op == "write":
            parent[_key(parent, key)] = args[1]
        elif op == "write_attr":
            setattr(parent, key, args[1])
        elif op == "delete":
            del parent[_key(parent, key)]
        else:
            delattr(parent, key)
    elif op == "call":
        getattr(_resolve(root, segments), args[1])(*args[2:])
    elif op == "stash":
        stash.append(_resolve(root, segments))
    else:
        raise ValueError(f"unknown vector operation {op!r}")
    return False, None


def _tx_step(engine: Any, tx: Any, sub: list[Any]) -> None:
    op, args = sub[0], [_value(a) for a in sub[1:]]
    if op == "update":
        tx.update(**args[0])
    elif op == "append":
        tx.append(args[0], args[1])
    elif op == "get":
        tx.get(args[0])
    elif op == "close_engine":
        engine.close()
    elif op == "other_commit":  # a commit by another thread while this transaction is open

        def other() -> None:
            with engine.transaction() as other_tx:
                other_tx.update(**args[0])

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    else:
        raise ValueError(f"unknown transaction operation {op!r}")


def _host(engine: Any, step: list[Any], stash: list[Any]) -> None:
    op = step[0]
    if op == "tx":
        with engine.transaction() as tx:
            for sub in step[1]:
                _tx_step(engine, tx, sub)
    elif op == "tx_after":
        with engine.transaction() as tx:
            pass
        tx.update(data={"domain.x": 1})
    elif op == "cas":
        engine.compare_and_swap(engine.state.version + step[1], **_value(step[2]))
    elif op == "state_get":
        engine.state.get(step[1])
    elif op == "snapshot":
        _step(engine.state, step[1], stash)
    elif op == "stashed":
        inner = step[1]
        relative = ".".join(["view", *_segments(inner[1])])
        _step({"view": stash[0]}, [inner[0], relative, *inner[2:]], stash)
    elif op == "write_stashed":  # another process assigns the stashed view at a path

        @process(inputs=["domain"], outputs=["domain"], name="writes_stashed")
        def writes_stashed(ctx: Any) -> None:
            _step(ctx, ["write", step[1], stash[0]], stash)

        engine.execute(writes_stashed)
    elif op == "close":
        engine.close()
    elif op == "execute":
        engine.execute(step[1])
    else:
        raise ValueError(f"unknown host operation {op!r}")


def run_case(backend: str, case: Mapping[str, Any]) -> tuple[type[BaseException], str] | None:
    """Run a vector on a new engine of ``backend``: ``(class, message)`` of what it raised,
    ``None`` if nothing was raised."""
    context = copy.deepcopy(case.get("context", VECTORS["context"]))
    engine = TheusEngine(context=context, backend=backend)
    stash: list[Any] = []
    try:
        spec = case.get("process")
        if spec is not None:
            steps = case.get("steps", [])

            def body(ctx: Any) -> Any:
                for step in steps:
                    done, value = _step(ctx, step, stash)
                    if done:
                        return value
                return None

            kwargs = {k: spec[k] for k in ("inputs", "outputs", "semantic") if k in spec}
            fn = process(name=spec["name"], **kwargs)(body)
            engine.register(fn)
            engine.execute(spec["name"])
        for step in case.get("host", []):
            _host(engine, step, stash)
    except Exception as exc:
        return type(exc), str(exc)
    finally:
        engine.close()
    return None


def error_class(name: str) -> type[BaseException]:
    """A vector's class name: a ``theus`` error or a built-in exception."""
    cls = getattr(theus, name, None) or getattr(builtins, name)
    assert isinstance(cls, type) and issubclass(cls, BaseException), name
    return cls


# ---------------------------------------------------------------------------------------------
# inputs only Python can write, compared differentially


def _extra(steps: list[Any], outputs: tuple[str, ...] = ("domain",)) -> dict[str, Any]:
    return {"process": {"name": "p", "inputs": [], "outputs": list(outputs)}, "steps": steps}


class _Opaque:
    pass


def _nested_list(depth: int, kind: Callable[[list[Any]], Any] = list) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = kind([value])
    return value


EXTRA: dict[str, dict[str, Any]] = {
    "int-key": _extra([["write", "domain.m", {1: 1}]]),
    "bytes-key": _extra([["write", "domain.m", {b"k": 1}]]),
    "tuple-key": _extra([["write", "domain.m", {("a",): 1}]]),
    "surrogate-key": _extra([["write", "domain.m", {"\udc80": 1}]]),
    "set-value": _extra([["write", "domain.x", {1, 2}]]),
    "object-value": _extra([["write", "domain.x", _Opaque()]]),
    "int-key-return": _extra([["return", {2: 1}]], ("domain.m",)),
    "list-of-bad-key": _extra([["write", "domain.items", [{"a.b": 1}]]]),
    "deep-list": _extra([["write", "domain.d", _nested_list(300)]]),
    "deep-tuple": _extra([["write", "domain.d", _nested_list(300, tuple)]]),
}


# ---------------------------------------------------------------------------------------------
# tests


def test_vectors_are_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "duplicate vector ids"
    assert len(CASES) >= 100
    for case in CASES:
        assert case["description"] and case["message"], case["id"]
        error_class(case["error"])
        assert "process" in case or "host" in case, case["id"]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_error_vector(backend: str, case: dict[str, Any]) -> None:
    """Every backend raises the vector's class with the vector's message."""
    outcome = run_case(backend, case)
    assert outcome is not None, f"{case['id']}: {case['description']}: nothing was raised"
    cls, message = outcome
    assert cls is error_class(case["error"]), (case["id"], cls, message)
    assert message == case["message"], case["id"]


def _differential(backend: str, case: Mapping[str, Any]) -> None:
    if backend == REFERENCE:
        pytest.skip("the reference backend is the oracle")
    tested, reference = run_case(backend, case), run_case(REFERENCE, case)
    assert tested == reference, f"{backend}: {tested!r}\nreference: {reference!r}"


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_same_text_as_reference(backend: str, case: dict[str, Any]) -> None:
    """The backend under test and the reference raise the same class and message."""
    _differential(backend, case)


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_same_text_as_reference_python_inputs(backend: str, name: str) -> None:
    """Inputs JSON cannot express: same outcome, class and message as the reference."""
    _differential(backend, EXTRA[name])


def test_messages_module_is_the_reference_wording() -> None:
    """A few sentences of ``theus.messages`` checked against their vectors (the facade and
    the reference build their errors with it)."""
    from theus import messages

    by_id: dict[str, dict[str, Any]] = {case["id"]: case for case in CASES}
    checks: dict[str, Callable[[], str]] = {
        "write-outside-outputs": lambda: messages.write_outside("p", "set", "domain.x", []),
        "read-outside": lambda: messages.read_outside("p", "domain.s", ["domain.x"], []),
        "log-pop": lambda: messages.log_append_only(
            "pop", "domain.log_events", "domain.log_events"
        ),
        "host-namespace-delete": lambda: messages.namespace_fixed("delete", "domain"),
        "snapshot-set": lambda: messages.read_only("assign", "domain.x"),
    }
    for case_id, build in checks.items():
        assert build() == by_id[case_id]["message"], case_id
