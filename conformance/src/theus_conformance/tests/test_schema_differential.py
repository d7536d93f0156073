"""spec/16 — schema-checked operations, differentially: the backend under test and the
reference backend run the same random writes under the same schema; outcomes (and, for a
rejection, the exact SchemaViolationError message, path, expected text and value), states,
versions and published signals must be identical."""

from __future__ import annotations

import copy
from typing import Annotated, Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from theus import AppendOnly, Immutable, SchemaViolationError, TheusEngine, process
from theus_conformance.support import REFERENCE, drain, require_reference, run_machine
from theus_conformance.tests import _ops

pydantic = pytest.importorskip("pydantic")


class Domain(pydantic.BaseModel):
    n: int
    s: str = ""
    tags: Annotated[list[int], AppendOnly] = pydantic.Field(default_factory=list)
    m: dict[str, int] = pydantic.Field(default_factory=dict)
    frozen: Annotated[int, Immutable] | None = None
    sig_x: int = 0


class Global(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    g: float = 0.0


SCHEMA = {"domain": Domain, "global": Global}
CONTEXT = {"domain": {"n": 0, "tags": [1], "m": {"a": 1}}, "global": {}}

scalars = st.one_of(
    st.integers(-3, 3), st.sampled_from(["", "x", "1"]), st.booleans(), st.none(), st.just(1.5)
)
values = st.one_of(
    scalars,
    st.lists(st.integers(0, 3), max_size=3),
    st.lists(st.sampled_from(["a", 1]), max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), st.one_of(st.integers(0, 3), st.just("v"))),
)
paths = st.sampled_from(
    [
        "domain.n",
        "domain.s",
        "domain.tags",
        "domain.tags.0",
        "domain.m",
        "domain.m.a",
        "domain.m.b",
        "domain.frozen",
        "domain.other",
        "global.g",
        "global.h",
    ]
)
host_ops = st.tuples(
    st.just("host"),
    st.lists(st.tuples(paths, values), max_size=2).map(tuple),
    st.lists(paths, max_size=1).map(tuple),
)
append_ops = st.tuples(st.just("append"), st.lists(values, min_size=1, max_size=2).map(tuple))
signal_ops = st.tuples(st.just("signal"), values)
whole_ops = st.tuples(
    st.just("whole"), st.dictionaries(st.sampled_from(["n", "s", "tags"]), values)
)


def _run(engine: Any, op: tuple) -> tuple[Any, ...]:
    kind = op[0]
    try:
        if kind == "host":
            with engine.transaction() as tx:
                tx.update(data=dict(op[1]), delete=[p for p in op[2] if p not in dict(op[1])])
        elif kind == "append":

            @process(inputs=["domain.tags"], outputs=["domain.tags"])
            def append(ctx: Any) -> None:
                for item in op[1]:
                    ctx.domain.tags.append(item)

            engine.execute(append)
        elif kind == "signal":

            @process(outputs=["domain.sig_x"])
            def emit(ctx: Any) -> None:
                ctx.domain.sig_x = op[1]

            engine.execute(emit)
        else:

            @process(inputs=["domain"], outputs=["domain"])
            def whole(ctx: Any) -> None:
                ctx.domain = {**ctx.domain.to_dict(), **op[1]}

            engine.execute(whole)
    except SchemaViolationError as exc:
        return ("schema", str(exc), exc.path, exc.expected, _ops.plain(exc.value))
    except Exception as exc:
        return ("error", type(exc))
    return ("ok",)


class SchemaDifferential(RuleBasedStateMachine):
    backend = REFERENCE

    def __init__(self) -> None:
        super().__init__()
        self.engines: list[Any] = []

    @initialize()
    def start(self) -> None:
        self.engines = [
            TheusEngine(context=copy.deepcopy(CONTEXT), backend=self.backend, schema=SCHEMA),
            TheusEngine(context=copy.deepcopy(CONTEXT), backend=REFERENCE, schema=SCHEMA),
        ]
        self.receivers = [e.signals.subscribe() for e in self.engines]

    def _both(self, op: tuple) -> None:
        tested, reference = (_run(e, op) for e in self.engines)
        assert tested == reference, (op, tested, reference)

    @rule(op=host_ops)
    def host(self, op: tuple) -> None:
        self._both(op)

    @rule(op=append_ops)
    def append(self, op: tuple) -> None:
        self._both(op)

    @rule(op=signal_ops)
    def signal(self, op: tuple) -> None:
        self._both(op)

    @rule(op=whole_ops)
    def whole(self, op: tuple) -> None:
        self._both(op)

    @invariant()
    def same_state(self) -> None:
        if not self.engines:
            return
        tested, reference = (e.state for e in self.engines)
        assert tested.version == reference.version
        assert tested.to_dict() == reference.to_dict()
        assert [(m.name, _ops.plain(m.value), m.version) for m in drain(self.receivers[0])] == [
            (m.name, _ops.plain(m.value), m.version) for m in drain(self.receivers[1])
        ]

    def teardown(self) -> None:
        for engine in self.engines:
            engine.close()


def test_schema_checked_operations_match_reference(backend):
    require_reference(backend)
    run_machine(SchemaDifferential, 40, 15, backend=backend)
