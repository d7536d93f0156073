"""The Rust backend checks a commit with the schema stage's native plan (spec/16, Native plan)
when it may, and calls ``before_commit`` otherwise.

White box: the stage's ``_fast`` table is the dict the engine took at ``watch`` time. Each test
moves the stage onto a fresh table (so ``before_commit`` fills that one) and puts counting
validators into the original one: a call counted there was made natively."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from theus import SchemaViolationError, TheusEngine, process
from theus.pipeline import Stage

pydantic = pytest.importorskip("pydantic")


class Domain(pydantic.BaseModel):
    count: int
    total: int = 0
    name: str = ""
    by_key: dict[str, int] = pydantic.Field(default_factory=dict)
    sig_done: int = 0


@process(inputs=[], outputs=["domain.count"])
def set_count(ctx: Any, value: Any) -> None:
    ctx.domain.count = value


def _tx(engine: Any, **kw: Any) -> None:
    with engine.transaction() as tx:
        tx.update(**kw)


class Native:
    """An engine whose native calls are counted, per path."""

    def __init__(self, paths: tuple[str, ...] = ("domain.count", "domain.total")) -> None:
        context = {"domain": {"count": 0, "total": 0, "name": "", "by_key": {}}}
        self.engine = TheusEngine(context=context, backend="rust", schema={"domain": Domain})
        self.engine.register(set_count)
        self.stage: Any = self.engine.pipeline.find("schema")
        table, _ = self.stage.native_plan()
        _tx(self.engine, data=dict.fromkeys(paths, 1))  # resolve the paths into the table
        assert set(table) >= {tuple(p.split(".")) for p in paths}
        self.stage._fast, self.stage._cache = {}, {}  # before_commit fills others from now on
        self.calls: list[tuple[str, Any]] = []
        for key, real in list(table.items()):
            table[key] = self._counting(".".join(key), real)

    def _counting(self, dotted: str, real: Any) -> Any:
        def validator(value: Any, *, strict: bool) -> Any:
            assert strict is True
            self.calls.append((dotted, value))
            return real(value, strict=strict)

        return validator


def test_plain_sets_of_planned_paths_are_checked_natively() -> None:
    n = Native()
    n.engine.execute(set_count, value=5)
    _tx(n.engine, data={"domain.count": 6, "domain.total": 7})
    with n.engine.transaction() as tx:
        tx.update(data={"domain.count": 8})
    n.engine.compare_and_swap(n.engine.state.version, data={"domain.total": 9})
    assert n.calls == [
        ("domain.count", 5),
        ("domain.count", 6),
        ("domain.total", 7),
        ("domain.count", 8),
        ("domain.total", 9),
    ]
    assert n.stage._fast == {}  # before_commit was not called
    assert (n.engine.state.domain.count, n.engine.state.domain.total) == (8, 9)


def test_a_native_failure_goes_to_before_commit_for_the_message() -> None:
    n = Native()
    with pytest.raises(SchemaViolationError) as info:
        n.engine.execute(set_count, value="x")
    assert str(info.value) == "schema: 'domain.count' expects int, got 'x' (str)"
    assert n.calls == [("domain.count", "x")]
    assert ("domain", "count") in n.stage._fast  # before_commit ran (and resolved the path)


@pytest.mark.parametrize(
    "kw",
    [
        {"data": {"domain.count": 2, "domain.name": "n"}},  # a path not in the plan yet
        {"data": {"domain.count": 2}, "delete": ["domain.name"]},
        {"data": {"domain.count": 2, "domain.by_key": {"k": 1}}},  # a map value
        {"data": {"domain.count": {"k": 1}}},
    ],
)
def test_commits_the_plan_cannot_check_call_before_commit(kw: dict[str, Any]) -> None:
    n = Native()
    with contextlib.suppress(SchemaViolationError):
        _tx(n.engine, **kw)
    assert n.calls == []
    assert n.stage._fast  # before_commit ran and resolved paths into its own table


def test_an_outbox_message_or_another_before_commit_stage_disable_it() -> None:
    n = Native()
    with n.engine.transaction() as tx:
        tx.update(data={"domain.count": 3})
        tx.outbox.add("topic", 1)
    assert n.calls == []
    _tx(n.engine, data={"domain.count": 4})
    assert n.calls == [("domain.count", 4)]

    class Other(Stage):
        name = "other"

        def before_commit(self, changes: Any) -> None:
            pass

    n.engine.pipeline.add(Other())  # (the engine takes the stage's plan again: not counted)
    _tx(n.engine, data={"domain.count": 2})
    assert n.calls == [("domain.count", 4)]


def test_past_the_bound_of_resolved_validators_paths_stay_checked() -> None:
    engine = TheusEngine(
        context={"domain": {"count": 0, "by_key": {}}}, backend="rust", schema={"domain": Domain}
    )
    keys = {f"domain.by_key.k{i}": i for i in range(4200)}
    for _ in range(3):  # resolved by before_commit, then natively past the bound of 4096
        _tx(engine, data=keys)
    with pytest.raises(SchemaViolationError) as info:
        _tx(engine, data={"domain.by_key.k0": "zero"})
    assert str(info.value) == "schema: 'domain.by_key.k0' expects int, got 'zero' (str)"
    _tx(engine, data={"domain.by_key.k1": -1})
    assert engine.state.domain.by_key.to_dict()["k1"] == -1
