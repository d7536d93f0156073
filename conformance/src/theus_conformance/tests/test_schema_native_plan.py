"""spec/16 (Native plan) and spec/15 — the boundary of a backend's fast path for the schema
stage. Every case first commits valid values to the paths it uses, so that a backend using the
stage's native plan holds them, then checks that acceptance, errors (class and message) and
what lands are those of ``before_commit``: the same on a warm engine as on a cold one."""

from __future__ import annotations

from typing import Annotated, Any

import pytest

from theus import Immutable, SchemaViolationError, process
from theus.pipeline import Stage
from theus.schema import SchemaStage
from theus_conformance.support import drain

pydantic = pytest.importorskip("pydantic")
BaseModel, ConfigDict, Field = pydantic.BaseModel, pydantic.ConfigDict, pydantic.Field


def _no_13(value: int) -> int:
    if value == 13:
        raise LookupError("thirteen is not looked up")
    if value == 7:
        raise ValueError("no sevens")
    return value


class Config(BaseModel):
    name: str


class Domain(BaseModel):
    count: int
    total: int = 0
    ratio: float = 0.0
    name: str = ""
    maybe: int | None = None
    positive: Annotated[int, Field(gt=0)] = 1
    checked: Annotated[int, pydantic.AfterValidator(_no_13)] = 0
    tags: list[str] = Field(default_factory=list)
    by_key: dict[str, int] = Field(default_factory=dict)
    config: Annotated[Config, Immutable] | None = None
    sig_done: int = 0


class Global(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: str = "a"


class Root(BaseModel):
    domain: Domain
    global_: Global = Field(default_factory=Global, alias="global")


WARM = {
    "domain.count": 1,
    "domain.total": 1,
    "domain.ratio": 0.5,
    "domain.maybe": 1,
    "domain.positive": 2,
    "domain.checked": 1,
    "global.mode": "b",
}


def _context() -> dict[str, Any]:
    return {
        "domain": {"count": 0, "ratio": 0.0, "tags": ["a"], "by_key": {}},
        "global": {"mode": "a"},
    }


def _tx(engine: Any, **kw: Any) -> None:
    with engine.transaction() as tx:
        tx.update(**kw)


def _warm(engine: Any) -> Any:
    """Commit valid values to every path of WARM, twice (the second commit may go native)."""
    for _ in range(2):
        _tx(engine, data=WARM)
        for path, value in WARM.items():
            _tx(engine, data={path: value})
    return engine


@pytest.fixture
def pair(make_engine: Any) -> tuple[Any, Any]:
    """A cold engine (no commit yet) and a warm one, same schema and state."""
    return make_engine(_context(), schema=Root), _warm(make_engine(_context(), schema=Root))


def _outcome(run: Any) -> tuple[str, str] | None:
    try:
        run()
    except Exception as exc:  # the class and the message are compared
        return type(exc).__name__, str(exc)
    return None


@process(inputs=[], outputs=["domain.count"])
def set_count(ctx: Any, value: Any) -> None:
    ctx.domain.count = value


@process(inputs=[], outputs=["domain.count"])
def return_count(ctx: Any, value: Any) -> Any:
    return value


WRITES = {
    "in-place": lambda engine, path, value: engine.execute(set_count, value=value),
    "return": lambda engine, path, value: engine.execute(return_count, value=value),
    "transaction": lambda engine, path, value: _tx(engine, data={path: value}),
    "cas": lambda engine, path, value: engine.compare_and_swap(
        engine.state.version, data={path: value}
    ),
}


# ---------------------------------------------------------------------------------------------
# values are validated, never converted


@pytest.mark.parametrize(
    ("path", "value"),
    [("domain.ratio", 2), ("domain.ratio", 0), ("domain.maybe", None), ("domain.name", "n")],
)
def test_a_value_pydantic_would_coerce_commits_as_written(pair, path, value):
    for engine in pair:
        for _ in range(3):
            _tx(engine, data={path: value})
            stored = engine.state.get(path)
            assert stored == value
            assert type(stored) is type(value)


@pytest.mark.parametrize("how", sorted(WRITES))
@pytest.mark.parametrize("bad", ["1", 1.0, True, None, b"1", (1,), frozenset({1}), object()])
def test_a_failure_on_the_fast_path_gives_the_full_message(pair, how, bad):
    if how == "return" and bad is None:
        pytest.skip("a process returning None writes nothing (spec/06)")
    outcomes = []
    for engine in pair:
        for _ in range(2):
            before = engine.state
            with pytest.raises(SchemaViolationError) as info:
                WRITES[how](engine, "domain.count", bad)
            assert info.value.path == "domain.count"
            assert info.value.value is bad or info.value.value == bad
            assert engine.state.version == before.version
            assert engine.state.domain.count == before.domain.count
            outcomes.append(str(info.value))
    assert len(set(outcomes)) == 1
    assert outcomes[0].startswith(f"schema: 'domain.count' expects int, got {bad!r} (")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("domain.count", "x", "schema: 'domain.count' expects int, got 'x' (str)"),
        ("domain.ratio", "2", "schema: 'domain.ratio' expects float, got '2' (str)"),
        ("domain.maybe", "1", "schema: 'domain.maybe' expects int | None, got '1' (str)"),
        (
            "domain.positive",
            0,
            "schema: 'domain.positive' expects int, got 0 (int): Input should be greater than 0",
        ),
        (
            "domain.checked",
            7,
            "schema: 'domain.checked' expects int, got 7 (int): Value error, no sevens",
        ),
        ("global.mode", 3, "schema: 'global.mode' expects str, got 3 (int)"),
        ("domain.count", {"a": 1}, "schema: 'domain.count' expects int, got {'a': 1} (dict)"),
        ("domain.count", [1], "schema: 'domain.count' expects int, got [1] (list)"),
    ],
)
def test_rejections_of_planned_paths_read_as_before_commit_says(pair, path, value, message):
    for engine in pair:
        for _ in range(2):
            version = engine.state.version
            with pytest.raises(SchemaViolationError) as info:
                _tx(engine, data={path: value})
            assert str(info.value) == message
            assert info.value.path == path
            assert engine.state.version == version


@pytest.mark.parametrize("how", ["transaction", "cas"])
def test_another_exception_of_a_validator_reaches_the_caller_unchanged(pair, how):
    for engine in pair:
        for _ in range(2):
            version = engine.state.version
            with pytest.raises(LookupError, match="^thirteen is not looked up$"):
                WRITES[how](engine, "domain.checked", 13)
            assert engine.state.version == version
        WRITES[how](engine, "domain.checked", 12)
        assert engine.state.domain.checked == 12


def test_the_first_offending_change_in_change_order_is_named(pair):
    cases = [
        ({"domain.count": 2, "domain.total": "t"}, "domain.total"),
        ({"domain.count": "c", "domain.total": "t"}, "domain.count"),
        ({"domain.total": 2, "domain.ratio": "r", "global.mode": 1}, "domain.ratio"),
    ]
    for data, path in cases:
        messages = set()
        for engine in pair:
            with pytest.raises(SchemaViolationError) as info:
                _tx(engine, data=data)
            assert info.value.path == path
            messages.add(str(info.value))
        assert len(messages) == 1
    for engine in pair:
        _tx(engine, data={"domain.count": 3, "domain.total": 4, "domain.ratio": 5})
        assert (engine.state.domain.count, engine.state.domain.ratio) == (3, 5)


# ---------------------------------------------------------------------------------------------
# commits the plan cannot check go through before_commit


def test_deletes_next_to_planned_sets(pair):
    for engine in pair:
        _tx(engine, data={"domain.count": 2}, delete=["domain.ratio"])  # ratio has a default
        assert "ratio" not in engine.state.domain.to_dict()
        with pytest.raises(SchemaViolationError) as info:
            _tx(engine, data={"domain.total": 2}, delete=["domain.count"])
        assert str(info.value) == (
            "schema: 'domain.count' is required by Domain and cannot be deleted"
        )
        with pytest.raises(SchemaViolationError) as info:
            _tx(engine, data={"domain.count": "x"}, delete=["domain.tags"])
        assert info.value.path == "domain.count"
        assert engine.state.domain.count == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"domain.name": 5}, "schema: 'domain.name' expects str, got 5 (int)"),
        ({"domain.tags": [1]}, "schema: 'domain.tags' expects list[str], got [1] (list)"),
        ({"domain.by_key.k": "v"}, "schema: 'domain.by_key.k' expects int, got 'v' (str)"),
        ({"global.other": 1}, "schema: 'global.other' is not declared by Global (extra='forbid')"),
        (
            {"domain.config.name": "z"},
            "schema: 'domain.config.name' is Immutable (at 'domain.config'): set refused, "
            "it exists already",
        ),
    ],
)
def test_a_path_outside_the_plan_is_checked_fully(pair, data, message):
    for engine in pair:
        _tx(engine, data={"domain.config": {"name": "c"}})  # create the Immutable field
        for _ in range(2):
            version = engine.state.version
            with pytest.raises(SchemaViolationError) as info:
                _tx(engine, data={"domain.count": 5, **data})
            assert str(info.value).startswith(message)
            assert engine.state.version == version


def test_appends_and_container_values_next_to_planned_sets(pair):
    @process(inputs=["domain.tags"], outputs=["domain.tags", "domain.count"])
    def grow(ctx: Any, item: Any) -> None:
        ctx.domain.count = 9
        ctx.domain.tags.append(item)

    for engine in pair:
        engine.execute(grow, item="b")
        with pytest.raises(SchemaViolationError) as info:
            engine.execute(grow, item=2)
        assert (
            str(info.value) == "schema: an appended item of 'domain.tags' expects str, got 2 (int)"
        )
        _tx(engine, data={"domain.count": 1, "domain.by_key": {"k": 1}})
        with pytest.raises(SchemaViolationError) as info:
            _tx(engine, data={"domain.count": 1, "domain.by_key": {"k": "v"}})
        assert info.value.path == "domain.by_key"
        assert list(engine.state.domain.tags) == ["a", "b"]


def test_signals_and_outbox_messages_of_checked_commits(pair):
    @process(inputs=[], outputs=["domain.count", "domain.sig_done"])
    def emit(ctx: Any, value: Any) -> None:
        ctx.domain.count = 1
        ctx.domain.sig_done = value

    @process(inputs=[], outputs=["domain.count"])
    def send(ctx: Any, value: Any) -> None:
        ctx.domain.count = value
        ctx.outbox.add("t", value)

    for engine in pair:
        rx = engine.signals.subscribe()
        engine.execute(emit, value=1)
        engine.execute(emit, value=2)
        with pytest.raises(SchemaViolationError) as info:
            engine.execute(emit, value="x")
        assert str(info.value) == "schema: 'domain.sig_done' expects int, got 'x' (str)"
        assert [(m.name, m.value) for m in drain(rx)] == [
            ("domain.sig_done", 1),
            ("domain.sig_done", 2),
        ]
        engine.execute(send, value=3)
        engine.execute(send, value=4)
        with pytest.raises(SchemaViolationError):
            engine.execute(send, value="five")
        assert [m.payload for m in engine.outbox.drain()] == [3, 4]


def test_a_user_stage_next_to_the_schema_stage_sees_every_commit(pair):
    class Record(Stage):
        name = "record"

        def __init__(self) -> None:
            self.before: list[list[tuple[str, str]]] = []

        def before_commit(self, changes: Any) -> None:
            self.before.append([(c.kind, c.dotted) for c in changes])

    class Refuse99(Stage):
        name = "refuse-99"

        def before_commit(self, changes: Any) -> None:
            if any(c.value == 99 for c in changes):
                raise RuntimeError("99 refused by a user stage")

    for engine in pair:
        record, refuse = Record(), Refuse99()
        engine.pipeline.add(record)
        _tx(engine, data={"domain.count": 4})
        assert record.before == [[("set", "domain.count")]]
        with pytest.raises(SchemaViolationError):
            _tx(engine, data={"domain.count": "x"})
        assert len(record.before) == 1  # the schema stage rejected first
        engine.pipeline.add(refuse, index=0)
        with pytest.raises(RuntimeError, match="^99 refused by a user stage$"):
            _tx(engine, data={"domain.count": 99})
        _tx(engine, data={"domain.count": 5})
        assert record.before[-1] == [("set", "domain.count")]
        engine.pipeline.remove(refuse)
        engine.pipeline.remove(record)
        _tx(engine, data={"domain.count": 99})
        with pytest.raises(SchemaViolationError):
            _tx(engine, data={"domain.count": "y"})
        assert len(record.before) == 2
        assert engine.state.domain.count == 99


def test_an_after_commit_stage_gets_the_changes_of_checked_commits(pair):
    class After(Stage):
        name = "after"

        def __init__(self) -> None:
            self.seen: list[tuple[int, list[tuple[str, str, Any]]]] = []

        def after_commit(self, snapshot: Any, changes: Any) -> None:
            self.seen.append((snapshot.version, [(c.kind, c.dotted, c.value) for c in changes]))

    for engine in pair:
        stage = After()
        engine.pipeline.add(stage)
        _tx(engine, data={"domain.count": 6})
        with pytest.raises(SchemaViolationError):
            _tx(engine, data={"domain.count": "x"})
        assert stage.seen == [(engine.state.version, [("set", "domain.count", 6)])]


def test_a_schema_stage_subclass_overriding_before_commit_is_always_called(make_engine):
    class Counting(SchemaStage):
        name = "counting-schema"
        calls = 0

        def before_commit(self, changes: Any) -> None:
            Counting.calls += 1
            super().before_commit(changes)

    assert Counting(Root).native_plan() is None
    engine = make_engine(_context())
    engine.pipeline.add(Counting(Root), index=0)
    for i in range(5):
        _tx(engine, data={"domain.count": i})
    with pytest.raises(SchemaViolationError):
        _tx(engine, data={"domain.count": "x"})
    assert Counting.calls == 6


def test_set_schema_replaces_a_warm_plan(pair):
    class Loose(BaseModel):
        count: str = ""

    for engine in pair:
        engine.set_schema({"domain": Loose})
        for _ in range(2):
            _tx(engine, data={"domain.count": "text"})
        with pytest.raises(SchemaViolationError) as info:
            _tx(engine, data={"domain.count": 1})
        assert str(info.value) == "schema: 'domain.count' expects str, got 1 (int)"
        engine.set_schema(None)
        _tx(engine, data={"domain.count": 1.5})
        engine.set_schema(Root)
        for _ in range(2):
            _tx(engine, data={"domain.count": 2})
        with pytest.raises(SchemaViolationError):
            _tx(engine, data={"domain.count": 2.5})
        assert engine.state.domain.count == 2
