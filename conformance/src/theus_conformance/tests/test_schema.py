"""spec/16 — Type Shield: schemas checked before every commit, on every commit path."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import pytest

from theus import (
    AppendOnly,
    ConflictError,
    Immutable,
    Mutable,
    SchemaViolationError,
    StateUpdate,
    TheusEngine,
    process,
)
from theus_conformance.support import drain, run_with_timeout

pydantic = pytest.importorskip("pydantic")
BaseModel, ConfigDict, Field = pydantic.BaseModel, pydantic.ConfigDict, pydantic.Field


class Inner(BaseModel):
    n: int
    label: str = ""


class Config(BaseModel):
    name: str
    level: int = 0


class Domain(BaseModel):
    count: int
    total: int
    ratio: float = 0.0
    inner: Inner | None = None
    tags: list[str] = Field(default_factory=list)
    by_key: dict[str, int] = Field(default_factory=dict)
    events: Annotated[list[str], AppendOnly] = Field(default_factory=list)
    config: Annotated[Config, Immutable] | None = None
    sig_done: int = 0
    heavy_blob: Any = None


class Global(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: str = "a"


class Root(BaseModel):
    domain: Domain
    global_: Global = Field(default_factory=Global, alias="global")


def _context() -> dict[str, Any]:
    return {
        "domain": {"count": 0, "total": 0, "tags": ["a"], "events": ["e0"], "by_key": {}},
        "global": {"mode": "a"},
    }


@pytest.fixture(params=["model", "mapping"])
def shielded(request, make_engine):
    schema: Any = Root if request.param == "model" else {"domain": Domain, "global": Global}
    return make_engine(_context(), schema=schema)


def _pending(engine) -> int:
    return len(engine.outbox.pending)


class Watch:
    """The observable effects of a commit attempt: version, state, signals, outbox."""

    def __init__(self, engine):
        self.engine = engine
        self.rx = engine.signals.subscribe()
        self.before = engine.state
        self.outbox = _pending(engine)

    def nothing_happened(self) -> None:
        engine = self.engine
        assert engine.state.version == self.before.version
        assert engine.state.to_dict() == self.before.to_dict()
        assert drain(self.rx) == []
        assert _pending(engine) == self.outbox

    def committed(self, versions: int = 1) -> None:
        assert self.engine.state.version == self.before.version + versions


# ---------------------------------------------------------------------------------------------
# every commit path rejects, and nothing commits, publishes or is released

RUNS: list[int] = []


@process(inputs=["domain"], outputs=["domain"])
def write_in_place(ctx, value):
    RUNS.append(1)
    ctx.domain.count = value
    ctx.domain.sig_done = 1
    ctx.outbox.add("t", "m")


@process(inputs=[], outputs=["domain.count", "domain.sig_done"])
def write_by_return(ctx, value):
    RUNS.append(1)
    ctx.outbox.add("t", "m")
    return value, 1


@process(inputs=[], outputs=["domain"])
def write_by_update(ctx, value):
    RUNS.append(1)
    ctx.outbox.add("t", "m")
    return StateUpdate(data={"domain.count": value}, signal={"domain.sig_done": 1})


def _host(engine, value):
    with engine.transaction() as tx:
        tx.update(data={"domain.count": value}, signal={"domain.sig_done": 1})
        tx.outbox.add("t", "m")


def _cas(engine, value):
    engine.compare_and_swap(engine.state.version, data={"domain.count": value})


@process(inputs=["domain"], outputs=["domain"])
async def write_async(ctx, value):
    RUNS.append(1)
    await asyncio.sleep(0)
    ctx.domain.count = value
    ctx.domain.sig_done = 1
    ctx.outbox.add("t", "m")


def _async(engine, value):
    async def scenario():
        return await engine.aexecute(write_in_place, value=value)

    run_with_timeout(lambda: asyncio.run(scenario()))


def _async_def(engine, value):
    async def scenario():
        return await engine.aexecute(write_async, value=value)

    run_with_timeout(lambda: asyncio.run(scenario()))


PATHS = {
    "in-place": lambda engine, value: engine.execute(write_in_place, value=value),
    "return": lambda engine, value: engine.execute(write_by_return, value=value),
    "state-update": lambda engine, value: engine.execute(write_by_update, value=value),
    "transaction": _host,
    "cas": _cas,
    "async": _async,
    "async-def": _async_def,
}


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("bad", ["x", "1", 1.5, True, None, [1]])
def test_every_commit_path_rejects_and_nothing_lands(shielded, backend_info, path, bad):
    if path.startswith("async") and "async" not in backend_info.capabilities:
        pytest.skip("backend without async")
    watch = Watch(shielded)
    RUNS.clear()
    if path == "return" and bad is None:  # a None item leaves its output alone (spec/06)
        before = shielded.state.domain.count
        PATHS[path](shielded, bad)
        assert shielded.state.domain.count == before
        return
    with pytest.raises(SchemaViolationError) as info:
        PATHS[path](shielded, bad)
    err = info.value
    assert err.path == "domain.count"
    assert err.expected == "int"
    assert err.value == bad
    assert str(err) == f"schema: 'domain.count' expects int, got {bad!r} ({type(bad).__name__})"
    # a rejected process attempt is not re-run (spec/15)
    assert len(RUNS) == (0 if path in ("transaction", "cas") else 1)
    watch.nothing_happened()


@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_commit_path_accepts_a_valid_partial_write(shielded, backend_info, path):
    if path.startswith("async") and "async" not in backend_info.capabilities:
        pytest.skip("backend without async")
    watch = Watch(shielded)
    PATHS[path](shielded, 7)
    watch.committed()
    assert shielded.state.domain.count == 7
    assert shielded.state.domain.total == 0  # required, untouched: the partial write is fine


# ---------------------------------------------------------------------------------------------
# what is validated


def _tx(engine, **kw):
    with engine.transaction() as tx:
        tx.update(**kw)


@pytest.mark.parametrize(
    "data",
    [
        {"domain.ratio": 2},  # an int is a float (pydantic strict)
        {"domain.ratio": 2.5},
        {"domain.inner": {"n": 1}},
        {"domain.inner": {"n": 1, "label": "x"}, "domain.by_key.k": 3},
        {"domain.tags": ["x", "y"]},
        {"domain.undeclared": object()},  # extra='ignore' (the default)
        {"domain.heavy_blob": object()},
        {"domain": {"count": 1, "total": 2, "tags": [], "events": ["e0"]}},
    ],
)
def test_valid_writes_commit(shielded, data):
    watch = Watch(shielded)
    _tx(shielded, **({"replace": data} if "domain" in data else {"data": data}))
    watch.committed()


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [
        ({"domain.ratio": "2"}, "domain.ratio", "float"),
        ({"domain.inner": {"label": "no n"}}, "domain.inner", "Inner | None"),
        ({"domain.inner": {"n": "1"}}, "domain.inner", "Inner | None"),
        ({"domain.tags": ["x", 2]}, "domain.tags", "list[str]"),
        ({"domain.tags": ("x",)}, "domain.tags", "list[str]"),
        ({"domain.by_key.k": "v"}, "domain.by_key.k", "int"),
        ({"domain.by_key": {"k": 1.5}}, "domain.by_key", "dict[str, int]"),
        ({"domain": {"count": 1}}, "domain", "Domain"),
        ({"global.mode": 3}, "global.mode", "str"),
    ],
)
def test_invalid_writes_are_rejected(shielded, data, path, expected):
    watch = Watch(shielded)
    with pytest.raises(SchemaViolationError) as info:
        if "domain" in data:  # a write above: the whole namespace replaced
            _tx(shielded, replace=data)
        else:
            _tx(shielded, data={"domain.count": 1, **data})
    assert (info.value.path, info.value.expected) == (path, expected)
    assert str(info.value).startswith(f"schema: '{path}' expects {expected}, got ")
    watch.nothing_happened()


def test_nested_paths(shielded):
    _tx(shielded, data={"domain.inner": {"n": 1}})
    _tx(shielded, data={"domain.inner.n": 2, "domain.inner.label": "two"})
    assert shielded.state.domain.inner.to_dict() == {"n": 2, "label": "two"}
    watch = Watch(shielded)
    with pytest.raises(SchemaViolationError) as info:
        _tx(shielded, data={"domain.inner.n": "3"})
    assert str(info.value) == "schema: 'domain.inner.n' expects int, got '3' (str)"
    watch.nothing_happened()


def test_list_item_writes_and_appends(shielded):
    @process(inputs=["domain.tags"], outputs=["domain.tags"])
    def set_item(ctx, value):
        ctx.domain.tags[0] = value

    @process(inputs=["domain.tags"], outputs=["domain.tags"])
    def append(ctx, values):
        for v in values:
            ctx.domain.tags.append(v)

    shielded.execute(set_item, value="b")
    shielded.execute(append, values=["c"])
    assert list(shielded.state.domain.tags) == ["b", "c"]
    for run in (
        lambda: shielded.execute(set_item, value=5),
        lambda: shielded.execute(append, values=[3]),
    ):
        watch = Watch(shielded)
        with pytest.raises(SchemaViolationError) as info:
            run()
        assert info.value.expected in ("str", "list[str]")
        assert "domain.tags" in info.value.path
        watch.nothing_happened()
    watch = Watch(shielded)
    with pytest.raises(SchemaViolationError) as info:
        shielded.execute(append, values=["ok", 7])
    assert str(info.value).startswith("schema: an appended item of 'domain.tags' expects str")
    watch.nothing_happened()
    with shielded.transaction() as tx:
        tx.append("domain.tags", "d")
    with pytest.raises(SchemaViolationError):
        with shielded.transaction() as tx:
            tx.append("domain.tags", 4)
    assert list(shielded.state.domain.tags) == ["b", "c", "d"]


def test_deletes(shielded):
    _tx(shielded, data={"domain.ratio": 1.0, "domain.by_key.k": 1})
    _tx(shielded, delete=["domain.ratio", "domain.by_key.k"])  # defaults / dict entries
    for path, owner in (("domain.count", "Domain"), ("domain.total", "Domain")):
        watch = Watch(shielded)
        with pytest.raises(SchemaViolationError) as info:
            _tx(shielded, delete=[path])
        assert str(info.value) == f"schema: '{path}' is required by {owner} and cannot be deleted"
        watch.nothing_happened()

    @process(inputs=["domain"], outputs=["domain"])
    def delete_in_place(ctx):
        del ctx.domain.count

    with pytest.raises(SchemaViolationError):
        shielded.execute(delete_in_place)
    assert shielded.state.domain.count == 0


def test_extra_forbid(shielded):
    watch = Watch(shielded)
    with pytest.raises(SchemaViolationError) as info:
        _tx(shielded, data={"global.other": 1})
    assert str(info.value) == "schema: 'global.other' is not declared by Global (extra='forbid')"
    watch.nothing_happened()
    _tx(shielded, data={"global.mode": "b"})


def test_declared_signals_are_validated(shielded):
    @process(inputs=[], outputs=["domain.sig_done", "domain.sig_free"])
    def emit(ctx, value):
        ctx.domain.sig_done = value
        ctx.domain.sig_free = "anything"

    watch = Watch(shielded)
    with pytest.raises(SchemaViolationError) as info:
        shielded.execute(emit, value="x")
    assert info.value.path == "domain.sig_done"
    watch.nothing_happened()
    shielded.execute(emit, value=2)
    assert [m.name for m in drain(watch.rx)] == ["domain.sig_done", "domain.sig_free"]


# ---------------------------------------------------------------------------------------------
# zone overrides


def test_append_only_field(shielded):
    @process(inputs=["domain.events"], outputs=["domain.events"])
    def log(ctx, item):
        ctx.domain.events.append(item)

    shielded.execute(log, item="e1")
    attempts = [
        lambda: _tx(shielded, data={"domain.events": ["x"]}),
        lambda: _tx(shielded, data={"domain.events.0": "x"}),
        lambda: _tx(shielded, delete=["domain.events"]),
        lambda: _tx(
            shielded, replace={"domain": {**shielded.state.domain.to_dict(), "events": []}}
        ),
    ]
    for attempt in attempts:
        watch = Watch(shielded)
        with pytest.raises(SchemaViolationError) as info:
            attempt()
        assert info.value.expected == "AppendOnly"
        watch.nothing_happened()
    grown = {**shielded.state.domain.to_dict(), "events": ["e0", "e1", "e2"]}
    _tx(shielded, replace={"domain": grown})  # a write above that only grows the list
    assert list(shielded.state.domain.events) == ["e0", "e1", "e2"]


def test_immutable_field(shielded):
    _tx(shielded, data={"domain.config": {"name": "c", "level": 1}})  # creating it is fine
    for kw in (
        {"data": {"domain.config": {"name": "d"}}},
        {"data": {"domain.config.level": 2}},
        {"delete": ["domain.config.level"]},
        {"delete": ["domain.config"]},
    ):
        watch = Watch(shielded)
        with pytest.raises(SchemaViolationError) as info:
            _tx(shielded, **kw)
        assert info.value.expected == "Immutable"
        assert "(at 'domain.config')" in str(info.value)
        watch.nothing_happened()
    same = shielded.state.domain.to_dict()
    _tx(shielded, replace={"domain": {**same, "count": 5}})  # above, keeping the value: fine
    with pytest.raises(SchemaViolationError) as info:
        _tx(shielded, replace={"domain": {**same, "config": {"name": "z"}}})
    assert str(info.value) == (
        "schema: writing 'domain' would change 'domain.config', which is Immutable"
    )


def test_immutable_held_by_the_initial_context(make_engine):
    context = _context()
    context["domain"]["config"] = {"name": "init"}
    engine = make_engine(context, schema=Root)
    with pytest.raises(SchemaViolationError):
        _tx(engine, data={"domain.config.name": "x"})
    assert engine.state.domain.config.name == "init"


def test_mutable_lifts_an_enclosing_override(make_engine):
    class Item(BaseModel):
        sku: str
        qty: Annotated[int, Mutable] = 0

    class Ns(BaseModel):
        entries: Annotated[list[Item], AppendOnly] = Field(default_factory=list)

    engine = make_engine({"domain": {"entries": [{"sku": "a"}]}}, schema={"domain": Ns})
    _tx(engine, data={"domain.entries.0.qty": 3})
    with pytest.raises(SchemaViolationError):
        _tx(engine, data={"domain.entries.0.sku": "b"})
    with pytest.raises(SchemaViolationError):
        _tx(engine, data={"domain.entries.0": {"sku": "a", "qty": 4}})
    with engine.transaction() as tx:
        tx.append("domain.entries", {"sku": "b"})
    assert engine.state.domain.entries[0].to_dict() == {"sku": "a", "qty": 3}
    assert engine.state.version == 2


@pytest.mark.parametrize(
    "annotation",
    [
        ("sig_a", Annotated[int, Mutable]),
        ("cmd_a", Annotated[int, Immutable]),
        ("heavy_a", Annotated[Any, Immutable]),
        ("log_a", Annotated[list[int], Mutable]),
    ],
)
def test_markers_on_prefix_zones_are_refused(make_engine, backend, annotation):
    key, ann = annotation
    model = pydantic.create_model("Bad", **{key: (ann, None)})
    engine = make_engine()
    with pytest.raises(ValueError, match="prefix zones") as info:
        engine.set_schema({"domain": model})
    assert key in str(info.value)
    with pytest.raises(ValueError, match="prefix zones"):
        TheusEngine(backend=backend, schema={"domain": model})


# ---------------------------------------------------------------------------------------------
# set_schema at runtime, per engine


@pytest.mark.parametrize("schema", [object, 1, "Root", {"domain": dict}, {1: Domain}, [Root]])
def test_not_a_schema_is_a_type_error(make_engine, backend, schema):
    engine = make_engine()
    with pytest.raises(TypeError, match="schema"):
        engine.set_schema(schema)
    with pytest.raises(TypeError, match="schema"):
        TheusEngine(backend=backend, schema=schema)
    _tx(engine, data={"domain.x": "anything"})  # the failed set_schema left no schema


def test_set_schema_replaces_and_removes(make_engine):
    engine = make_engine(_context())
    _tx(engine, data={"domain.count": "free"})
    engine.set_schema(Root)
    with pytest.raises(SchemaViolationError):
        _tx(engine, data={"domain.count": "x"})

    class Loose(BaseModel):
        count: str = ""

    engine.set_schema({"domain": Loose})
    _tx(engine, data={"domain.count": "x"})
    with pytest.raises(SchemaViolationError) as info:
        _tx(engine, data={"domain.count": 1})
    assert info.value.expected == "str"
    engine.set_schema(None)
    _tx(engine, data={"domain.count": 1.5})
    assert engine.state.domain.count == 1.5


def test_two_engines_with_different_schemas(make_engine):
    class A(BaseModel):
        v: int = 0

    class B(BaseModel):
        v: str = ""

    ea = make_engine({"domain": {}}, schema={"domain": A})
    eb = make_engine({"domain": {}}, schema={"domain": B})
    plain = make_engine({"domain": {}})
    _tx(ea, data={"domain.v": 1})
    _tx(eb, data={"domain.v": "1"})
    _tx(plain, data={"domain.v": None})
    with pytest.raises(SchemaViolationError):
        _tx(ea, data={"domain.v": "1"})
    with pytest.raises(SchemaViolationError):
        _tx(eb, data={"domain.v": 1})
    assert (ea.state.domain.v, eb.state.domain.v, plain.state.domain.v) == (1, "1", None)


def test_rejection_is_not_a_conflict(make_engine):
    engine = make_engine(_context(), schema=Root)
    with pytest.raises(SchemaViolationError) as info:
        engine.compare_and_swap(0, data={"domain.count": "x"})
    assert not isinstance(info.value, ConflictError)
    engine.compare_and_swap(0, data={"domain.count": 1})
    assert engine.state.version == 1
