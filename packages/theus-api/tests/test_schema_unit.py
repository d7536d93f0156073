"""SchemaStage unit tests (spec/16): Changes built directly against a fake base snapshot."""

from __future__ import annotations

import pickle
from typing import Annotated, Any, Optional

import pytest

pydantic = pytest.importorskip("pydantic")

from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

from theus import AppendOnly, Immutable, Mutable, SchemaViolationError  # noqa: E402
from theus.pipeline import Change, Changes  # noqa: E402
from theus.schema import SchemaStage, type_text  # noqa: E402

_MISSING = object()


class FakeBase:
    """A stand-in for a snapshot: ``get(dotted, default)`` over a plain tree."""

    version = 0

    def __init__(self, tree: dict[str, Any]) -> None:
        self.tree = tree

    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self.tree
        for seg in path.split("."):
            if isinstance(node, dict) and seg in node:
                node = node[seg]
            elif isinstance(node, list) and seg.isdigit() and int(seg) < len(node):
                node = node[int(seg)]
            else:
                return default
        return node


class Inner(BaseModel):
    n: int
    label: str = ""


class Config(BaseModel):
    name: str
    level: int = 0


class Item(BaseModel):
    sku: str
    qty: Annotated[int, Mutable] = 0


class Domain(BaseModel):
    count: int
    ratio: float = 0.0
    name: Optional[str] = None  # noqa: UP045
    inner: Optional[Inner] = None  # noqa: UP045
    tags: list[str] = []
    by_key: dict[str, int] = {}
    pair: tuple[int, int] = (0, 0)
    events: Annotated[list[str], AppendOnly] = []
    config: Annotated[Config, Immutable] | None = None
    items: Annotated[list[Item], AppendOnly] = []
    sig_ping: int = 0
    positive: Annotated[int, Field(gt=0)] = 1
    anything: Any = None
    either: int | str = 0


class Root(BaseModel):
    domain: Domain
    global_: dict[str, Any] = Field(default_factory=dict, alias="global")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: int = 0


def check(stage: SchemaStage, *changes: Change, base: dict[str, Any] | None = None) -> None:
    stage.before_commit(Changes(list(changes), "p", FakeBase(base or {"domain": {"count": 0}})))


def bad(stage: SchemaStage, *changes: Change, base: dict[str, Any] | None = None) -> Any:
    with pytest.raises(SchemaViolationError) as info:
        check(stage, *changes, base=base)
    return info.value


@pytest.fixture(params=["model", "mapping"])
def stage(request: pytest.FixtureRequest) -> SchemaStage:
    if request.param == "model":
        return SchemaStage(Root)
    return SchemaStage({"domain": Domain, "global": Strict})


def S(path: str, value: Any) -> Change:
    return Change("set", tuple(path.split(".")), value)


def D(path: str) -> Change:
    return Change("delete", tuple(path.split(".")), None)


def A(path: str, *items: Any) -> Change:
    return Change("append", tuple(path.split(".")), items)


def test_partial_writes_against_required_fields(stage: SchemaStage) -> None:
    check(stage, S("domain.ratio", 1.5))
    check(stage, S("domain.count", 3), S("domain.name", None), S("domain.name", "x"))
    check(stage, S("domain.inner", {"n": 1}), S("domain.inner.n", 4), S("domain.by_key.z", 9))


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("domain.count", "x", "int"),
        ("domain.count", "1", "int"),
        ("domain.count", True, "int"),
        ("domain.count", 1.0, "int"),
        ("domain.name", 3, "str | None"),
        ("domain.tags", ["a", 2], "list[str]"),
        ("domain.tags.0", 5, "str"),
        ("domain.by_key.k", "v", "int"),
        ("domain.pair", [1, 2], "tuple[int, int]"),
        ("domain.inner", {"label": "no n"}, "Inner | None"),
        ("domain.inner.n", "1", "int"),
        ("domain.positive", 0, "int"),
        ("domain.either", 1.5, "int | str"),
    ],
)
def test_strict_type_errors(stage: SchemaStage, path: str, value: Any, expected: str) -> None:
    err = bad(stage, S(path, value))
    assert err.path == path
    assert err.expected == expected
    assert err.value == value
    assert str(err).startswith(f"schema: '{path}' expects {expected}, got {value!r}")
    assert err.errors


def test_message_exact() -> None:
    err = bad(SchemaStage(Root), S("domain.count", "x"))
    assert str(err) == "schema: 'domain.count' expects int, got 'x' (str)"
    err = bad(SchemaStage(Root), S("domain.inner", {"n": "1"}))
    assert str(err) == (
        "schema: 'domain.inner' expects Inner | None, got {'n': '1'} (dict): "
        "at 'n': Input should be a valid integer"
    )
    err = bad(SchemaStage(Root), S("domain.positive", 0))
    assert str(err) == (
        "schema: 'domain.positive' expects int, got 0 (int): Input should be greater than 0"
    )
    long = "y" * 500
    assert len(str(bad(SchemaStage(Root), S("domain.count", long)))) < 200
    assert pickle.loads(pickle.dumps(err)).path == "domain.positive"


def test_ints_for_floats_and_tuples() -> None:
    stage = SchemaStage(Root)
    check(stage, S("domain.ratio", 2), S("domain.pair", (1, 2)), S("domain.either", "s"))


def test_views_are_converted() -> None:
    class View(dict[str, Any]):
        def to_dict(self) -> dict[str, Any]:
            return dict(self)

    class ListView(list[Any]):
        def to_list(self) -> list[Any]:
            return list(self)

    stage = SchemaStage(Root)
    check(stage, S("domain.inner", View(n=1)), S("domain.tags", ListView(["a"])))
    err = bad(stage, S("domain.inner", View(n="1")))
    assert type(err.value) is dict


def test_namespace_wholesale(stage: SchemaStage) -> None:
    check(stage, S("domain", {"count": 1, "tags": ["a"]}))
    err = bad(stage, S("domain", {"tags": []}))
    assert "count" in str(err) and err.path == "domain"


def test_appends() -> None:
    stage = SchemaStage(Root)
    base = {"domain": {"count": 0, "tags": ["a"], "events": ["e"]}}
    check(stage, A("domain.tags", "b", "c"), A("domain.events", "f"), base=base)
    err = bad(stage, A("domain.tags", "b", 3), base=base)
    assert str(err).startswith("schema: an appended item of 'domain.tags' expects str, got 3")


def test_deletes() -> None:
    stage = SchemaStage(Root)
    err = bad(stage, D("domain.count"))
    assert str(err) == "schema: 'domain.count' is required by Domain and cannot be deleted"
    check(stage, D("domain.ratio"), D("domain.by_key.x"), D("domain.undeclared"))
    check(stage, D("domain.inner.label"), base={"domain": {"count": 0, "inner": {"n": 1}}})
    assert "required by Inner" in str(bad(stage, D("domain.inner.n")))


def test_extra() -> None:
    check(SchemaStage(Root), S("domain.whatever", object()), S("other.x", 1))
    stage = SchemaStage({"global": Strict})
    check(stage, S("global.a", 1), S("domain.x", "anything"))
    err = bad(stage, S("global.b", 1))
    assert str(err) == "schema: 'global.b' is not declared by Strict (extra='forbid')"
    assert "extra='forbid'" in str(bad(stage, S("global.b.c", 1)))
    bad(stage, D("global.b"))


def test_any_and_leaves() -> None:
    stage = SchemaStage(Root)
    check(stage, S("domain.anything.deep.er", 1), S("global.k.x", 1))
    err = bad(stage, S("domain.either.x", 1))
    assert "checks only whole" in str(err) and "'domain.either'" in str(err)


def test_signals_validated_if_declared() -> None:
    stage = SchemaStage(Root)
    check(stage, S("domain.sig_ping", 3), S("domain.sig_other", "x"))
    assert bad(stage, S("domain.sig_ping", "x")).expected == "int"


def test_immutable() -> None:
    stage = SchemaStage(Root)
    empty = {"domain": {"count": 0}}
    check(stage, S("domain.config", {"name": "a"}), base=empty)  # creation
    full = {"domain": {"count": 0, "config": {"name": "a", "level": 1}}}
    for change in (S("domain.config", {"name": "b"}), S("domain.config.level", 2)):
        err = bad(stage, change, base=full)
        assert err.expected == "Immutable"
        assert "(at 'domain.config')" in str(err)
    err = bad(stage, D("domain.config.level"), base=full)
    assert str(err) == (
        "schema: 'domain.config.level' is Immutable (at 'domain.config'): "
        "delete refused, it exists already"
    )
    bad(stage, D("domain.config"), base=full)
    # a write above: same value is fine, a change or a removal is not
    check(stage, S("domain", {"count": 2, "config": {"name": "a", "level": 1}}), base=full)
    err = bad(stage, S("domain", {"count": 2, "config": {"name": "z", "level": 1}}), base=full)
    assert str(err) == "schema: writing 'domain' would change 'domain.config', which is Immutable"
    err = bad(stage, S("domain", {"count": 2}), base=full)
    assert "would remove 'domain.config'" in str(err)
    check(stage, S("domain", {"count": 2}), base=empty)


def test_append_only() -> None:
    stage = SchemaStage(Root)
    check(stage, S("domain.events", ["a"]), base={"domain": {"count": 0}})
    base = {"domain": {"count": 0, "events": ["a", "b"], "items": [{"sku": "x", "qty": 1}]}}
    check(stage, A("domain.events", "c"), A("domain.items", {"sku": "y"}), base=base)
    for change in (S("domain.events", ["a"]), S("domain.events.0", "z"), D("domain.events")):
        err = bad(stage, change, base=base)
        assert err.expected == "AppendOnly"
    assert "only appends are allowed" in str(bad(stage, S("domain.events", ["b"]), base=base))
    # Mutable lifts the inherited AppendOnly for the item's qty only
    check(stage, S("domain.items.0.qty", 5), base=base)
    bad(stage, S("domain.items.0.sku", "z"), base=base)
    bad(stage, S("domain.items.0", {"sku": "x", "qty": 2}), base=base)
    # above: growing at the end is fine, anything else is not
    items = [{"sku": "x", "qty": 1}]
    check(stage, S("domain", {"count": 0, "events": ["a", "b", "c"], "items": items}), base=base)
    assert "remove 'domain.events'" in str(bad(stage, S("domain", {"count": 0}), base=base))
    bad(stage, S("domain", {"count": 0, "events": ["b", "a"], "items": []}), base=base)


def test_nested_dict_and_list_markers() -> None:
    class Ns(BaseModel):
        configs: dict[str, Annotated[Config, Immutable]] = {}
        frozen: list[Annotated[str, Immutable]] = []

    stage = SchemaStage({"domain": Ns})
    base = {"domain": {"configs": {"a": {"name": "a"}}, "frozen": ["x"]}}
    check(stage, S("domain.configs.b", {"name": "b"}), A("domain.frozen", "y"), base=base)
    bad(stage, S("domain.configs.a.name", "c"), base=base)
    bad(stage, S("domain.frozen.0", "c"), base=base)
    bad(stage, S("domain.frozen", ["y", "x"]), base=base)
    check(stage, S("domain.frozen", ["x", "y"]), base=base)
    bad(stage, S("domain.configs", {}), base=base)


def test_recursive_model() -> None:
    class Tree(BaseModel):
        value: int
        children: list[Tree] = []

    class Ns(BaseModel):
        tree: Tree | None = None

    stage = SchemaStage({"domain": Ns})
    check(stage, S("domain.tree", {"value": 1, "children": [{"value": 2}]}))
    check(stage, S("domain.tree.children.0.value", 3))
    bad(stage, S("domain.tree.children.0.children.0.value", "x"))


@pytest.mark.parametrize(
    "schema", [object, 1, "Root", Inner(n=1), {"domain": dict}, {1: Inner}, pydantic.RootModel[int]]
)
def test_not_a_schema(schema: Any) -> None:
    with pytest.raises(TypeError, match="schema"):
        SchemaStage(schema)


def test_markers_on_prefix_zones_and_sets() -> None:
    class Sig(BaseModel):
        sig_a: Annotated[int, Immutable] = 0

    class Heavy(BaseModel):
        heavy_a: Annotated[Any, Immutable] = None

    class Log(BaseModel):
        log_a: Annotated[list[int], Mutable] = []

    class Sets(BaseModel):
        tags: set[str] = set()

    class NotList(BaseModel):
        n: Annotated[int, AppendOnly] = 0

    for model in (Sig, Heavy, Log):
        with pytest.raises(ValueError, match="prefix zones"):
            SchemaStage({"domain": model})
    with pytest.raises(ValueError, match="frozenset"):
        SchemaStage({"domain": Sets})
    with pytest.raises(ValueError, match="AppendOnly needs a list"):
        SchemaStage({"domain": NotList})

    class LogOk(BaseModel):
        log_a: Annotated[list[int], Immutable] = []

    SchemaStage({"domain": LogOk})


def test_type_text() -> None:
    assert type_text(Optional[list[dict[str, int]]]) == "list[dict[str, int]] | None"  # noqa: UP045
    assert type_text(tuple[int, ...]) == "tuple[int, ...]"
    assert type_text(Annotated[int, Immutable]) == "int"


def test_markers_pickle_to_themselves() -> None:
    for marker in (AppendOnly, Immutable, Mutable):
        assert pickle.loads(pickle.dumps(marker)) is marker
        assert repr(marker) == marker.name


def test_path_cache_is_bounded_and_stays_correct() -> None:
    stage = SchemaStage(Root)
    for i in range(5000):
        check(stage, S(f"domain.by_key.k{i}", i))
    assert len(stage._cache) <= 4096 and len(stage._fast) <= len(stage._cache)
    assert bad(stage, S("domain.by_key.k1", "x")).path == "domain.by_key.k1"
    check(stage, S("domain.count", 1))
    assert bad(stage, S("domain.count", "1")).expected == "int"  # the fast path still refuses


def test_native_plan_is_the_live_table_of_one_call_paths(stage: SchemaStage) -> None:
    plan = stage.native_plan()
    assert plan is not None
    table, error = plan
    assert error is pydantic.ValidationError
    assert table == {}
    check(
        stage,
        S("domain.count", 1),
        S("domain.positive", 2),
        S("domain.name", None),
        S("domain.tags", ["a"]),  # a list annotation: not one call
        S("domain.events", ["e"]),  # a zone marker
        S("domain.by_key.k", 1),
        S("domain.sig_ping", 1),
    )
    assert set(table) == {
        ("domain", "count"),
        ("domain", "positive"),
        ("domain", "name"),
        ("domain", "by_key", "k"),
        ("domain", "sig_ping"),
    }
    table[("domain", "count")](3, strict=True)
    with pytest.raises(pydantic.ValidationError):
        table[("domain", "count")]("3", strict=True)
    with pytest.raises(pydantic.ValidationError):
        table[("domain", "positive")](0, strict=True)
    again = stage.native_plan()
    assert again is not None and again[0] is table  # the same dict, filled in place


def test_native_plan_of_a_subclass_overriding_before_commit() -> None:
    class Wrapped(SchemaStage):
        def before_commit(self, changes: Changes) -> None:
            super().before_commit(changes)

    class Named(SchemaStage):
        name = "named"

    assert Wrapped(Root).native_plan() is None
    assert Named(Root).native_plan() is not None
