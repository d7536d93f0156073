"""spec/02 — dotted paths, contract patterns, coverage; driven by spec/vectors.

The vectors are exercised through the public API only: paths through ``snapshot.get``,
``tx.get``, ``tx.update`` and ``compare_and_swap``; invalid patterns through ``@process``;
``covers``/``leads_to`` through guarded reads inside a process; ``overlap`` through conflicts.
"""

from __future__ import annotations

import pytest

from theus import (
    ConflictError,
    ContractViolationError,
    InvalidContractError,
    InvalidPathError,
    TheusError,
    process,
)
from theus_conformance import load_vector
from theus_conformance.support import in_thread, tree_with

PATHS = load_vector("paths.json")
PATTERNS = load_vector("patterns.json")
OVERLAP = load_vector("overlap.json")


def _ids(values):
    return [repr(v) for v in values]


def _navigate(ctx, segments):
    value = ctx[segments[0]]
    for seg in segments[1:]:
        value = value[seg]
    return value


# ---------------------------------------------------------------------------------------------
# paths


def _is_signal(segments):
    return any(s.startswith(("sig_", "cmd_")) for s in segments)


@pytest.mark.parametrize("text, segments", PATHS["valid"], ids=_ids([p[0] for p in PATHS["valid"]]))
def test_valid_path_reads_and_writes(make_engine, text, segments):
    if _is_signal(segments):  # a signal path is valid, but never in the tree (spec/03)
        engine = make_engine()
        with engine.transaction() as tx:
            tx.update(data={text: {"w": 1}})
        assert dict(engine.state.signals) == {text: {"w": 1}}
        assert segments[-1] not in engine.state.get(".".join(segments[:-1]))
        return
    engine = make_engine(tree_with([text], leaf="old"))
    expected_old = "old" if len(segments) > 1 else {}
    assert engine.state.get(text) == expected_old
    new = {"w": 1}
    with engine.transaction() as tx:
        assert tx.get(text) == expected_old
        tx.update(data={text: new})
    state = engine.state
    assert state.get(text) == new
    value = state[segments[0]]
    for seg in segments[1:]:
        value = value[seg]
    assert value == new


@pytest.mark.parametrize("text", PATHS["invalid"], ids=_ids(PATHS["invalid"]))
def test_invalid_path_is_refused_everywhere(make_engine, text):
    engine = make_engine({"domain": {"x": 1}})
    before = engine.state

    def check(info):
        assert isinstance(info.value, ValueError) and isinstance(info.value, TheusError)
        if text:
            assert text in str(info.value)

    with pytest.raises(InvalidPathError) as info:
        engine.state.get(text)
    check(info)
    with pytest.raises(InvalidPathError) as info:
        with engine.transaction() as tx:
            tx.update(data={text: 1})
    check(info)
    with pytest.raises(InvalidPathError) as info:
        with engine.transaction() as tx:
            tx.get(text)
    check(info)
    with pytest.raises(InvalidPathError) as info:
        with engine.transaction() as tx:
            tx.update(delete=[text])
    check(info)
    with pytest.raises(InvalidPathError) as info:
        engine.compare_and_swap(0, data={text: 1})
    check(info)
    assert engine.state is before


@pytest.mark.parametrize("bad", [5, None, b"domain.x", ("domain", "x")], ids=repr)
def test_non_str_path_is_invalid(engine, bad):
    with pytest.raises(InvalidPathError):
        engine.state.get(bad)


def test_numeric_segment_indexes_a_list(make_engine):
    engine = make_engine({"domain": {"orders": [{"status": "new"}, {"status": "paid"}]}})
    assert engine.state.get("domain.orders.1.status") == "paid"
    with engine.transaction() as tx:
        tx.update(data={"domain.orders.0.status": "sent"})
    assert engine.state.domain.orders == [{"status": "sent"}, {"status": "paid"}]


def test_numeric_segment_is_a_key_in_a_map(make_engine):
    engine = make_engine({"domain": {"orders": {"3": {"status": "new"}}}})
    assert engine.state.get("domain.orders.3.status") == "new"


# ---------------------------------------------------------------------------------------------
# patterns rejected by @process


@pytest.mark.parametrize("pattern", PATTERNS["invalid"], ids=_ids(PATTERNS["invalid"]))
@pytest.mark.parametrize("argument", ["inputs", "outputs"])
def test_invalid_pattern_rejected_by_process(backend, pattern, argument):
    def my_contracted_fn(ctx):
        return None

    with pytest.raises(InvalidContractError) as info:
        process(**{argument: [pattern]})(my_contracted_fn)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "my_contracted_fn" in message, f"must name the function: {message!r}"
    assert argument in message, f"must name the argument: {message!r}"
    if pattern:
        assert pattern in message, f"must name the pattern: {message!r}"


@pytest.mark.parametrize("argument", ["inputs", "outputs"])
def test_unknown_namespace_rejected_at_registration(engine, argument):
    @process(**{argument: ["nowhere.x"]})
    def reads_nowhere(ctx):
        return None

    with pytest.raises(InvalidContractError, match="nowhere"):
        engine.register(reads_nowhere)
    before = engine.state
    with pytest.raises(InvalidContractError, match="nowhere"):
        engine.execute(reads_nowhere)
    assert engine.state is before


# ---------------------------------------------------------------------------------------------
# covers / leads_to through guarded reads


CASES = PATTERNS["cases"]
CASE_IDS = [f"{c['pattern']}~{c['path']}" for c in CASES]


LEAF_CASES = [c for c in CASES if "." in c["path"]]  # a namespace is always a map


@pytest.mark.parametrize(
    "case", LEAF_CASES, ids=[f"{c['pattern']}~{c['path']}" for c in LEAF_CASES]
)
def test_pattern_coverage_of_a_leaf(make_engine, case):
    """A non-container at ``path`` is readable iff the pattern covers the path."""
    segments = case["path"].split(".")
    engine = make_engine(tree_with([case["path"]], leaf="leaf-value"))

    @process(inputs=[case["pattern"]])
    def read_leaf(ctx):
        return _navigate(ctx, segments)

    if case["covers"]:
        assert engine.execute(read_leaf) == "leaf-value"
    else:
        with pytest.raises(ContractViolationError):
            engine.execute(read_leaf)
    assert engine.state.version == 0


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pattern_navigation_to_a_container(make_engine, case):
    """A map at ``path``: covered → readable; led to → navigable, but ``len``/iteration are
    reads of the path; neither → refused."""
    segments = case["path"].split(".")
    context = tree_with([case["path"] + ".inner"], leaf=1)
    engine = make_engine(context)
    outcome = {}

    @process(inputs=[case["pattern"]])
    def navigate(ctx):
        view = _navigate(ctx, segments)
        outcome["navigated"] = True
        outcome["len"] = len(view)
        outcome["keys"] = sorted(view)
        return None

    if case["covers"]:
        engine.execute(navigate)
        assert outcome == {"navigated": True, "len": 1, "keys": ["inner"]}
    elif case["leads_to"]:
        with pytest.raises(ContractViolationError):
            engine.execute(navigate)
        assert outcome == {"navigated": True}
    else:
        with pytest.raises(ContractViolationError):
            engine.execute(navigate)
        assert "len" not in outcome


@pytest.mark.parametrize("case", [c for c in CASES if not c["covers"]], ids=repr)
def test_strict_guards_false_allows_reads(make_engine, case):
    segments = case["path"].split(".")
    engine = make_engine(tree_with([case["path"] + ".inner"], leaf=7), strict_guards=False)

    @process(inputs=[case["pattern"]])
    def read_anyway(ctx):
        return _navigate(ctx, segments)["inner"]

    assert engine.execute(read_anyway) == 7


def test_parent_covers_children_in_a_process(make_engine):
    engine = make_engine({"domain": {"user": {"name": "ann", "tags": ["a"]}, "other": 1}})

    @process(inputs=["domain.user"])
    def read_user(ctx):
        return (ctx.domain.user.name, list(ctx.domain.user.tags), ctx.domain.user.to_dict())

    assert engine.execute(read_user) == ("ann", ["a"], {"name": "ann", "tags": ["a"]})

    @process(inputs=["domain.user"])
    def read_sibling(ctx):
        return ctx.domain.other

    with pytest.raises(ContractViolationError) as info:
        engine.execute(read_sibling)
    assert "domain.other" in str(info.value)
    assert "read_sibling" in str(info.value)


# ---------------------------------------------------------------------------------------------
# overlap through conflicts


def _value_for(tree, path):
    node = tree
    for seg in path.split("."):
        node = node[seg]
    if isinstance(node, dict):
        return {**node, "written": path}
    return f"written-{path}"


@pytest.mark.requires("threads")
@pytest.mark.parametrize("a, b, overlaps", OVERLAP, ids=[f"{a}|{b}" for a, b, _ in OVERLAP])
def test_overlap_decides_conflicts(make_engine, a, b, overlaps):
    """A host transaction writing ``a`` conflicts with an intervening commit writing ``b``
    exactly when the paths overlap; otherwise the two merge."""
    tree = tree_with([a, b])
    engine = make_engine(tree)
    value_a, value_b = _value_for(tree, a), _value_for(tree, b)

    def intervene():
        engine.compare_and_swap(engine.state.version, data={b: value_b})

    if overlaps:
        with pytest.raises(ConflictError):
            with engine.transaction() as tx:
                tx.update(data={a: value_a})
                in_thread(intervene)
        assert engine.state.version == 1
        assert engine.state.get(b) == value_b
    else:
        with engine.transaction() as tx:
            tx.update(data={a: value_a})
            in_thread(intervene)
        assert engine.state.version == 2
        assert engine.state.get(a) == value_a
        assert engine.state.get(b) == value_b
