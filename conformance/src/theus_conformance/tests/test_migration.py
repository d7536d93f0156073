"""spec/19 — Theus 3 programs: the same result, or a loud error before anything commits.

Each class of behaviour is checked with several inputs on every backend; the last tests are
this project's own port of Theus 3's e-commerce example scenario (balance 1500.0).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import textwrap

import pytest

from theus import (
    ConflictError,
    ContextError,
    ContractViolationError,
    ProcessNotFoundError,
    StateUpdate,
    process,
)

# ---------------------------------------------------------------------------------------------
# 1. the nested form of data= merges (spec/05)


def _tx(engine, **kw):
    with engine.transaction() as tx:
        tx.update(**kw)


NESTED = [
    # (start domain, nested data for "domain", expected domain)
    ({"a": 1, "b": 2}, {"a": 5}, {"a": 5, "b": 2}),
    ({"p": {"x": 1, "y": 2}, "q": 0}, {"p": {"x": 9}}, {"p": {"x": 9, "y": 2}, "q": 0}),
    ({"p": {"x": {"deep": 1, "keep": 2}}}, {"p": {"x": {"deep": 3}}},
     {"p": {"x": {"deep": 3, "keep": 2}}}),
    ({"l": [1, 2], "k": 1}, {"l": [3]}, {"l": [3], "k": 1}),  # lists replace
    ({"s": 5, "k": 1}, {"s": {"now": "map"}}, {"s": {"now": "map"}, "k": 1}),  # scalar -> dict
    ({"l": [1], "k": 1}, {"l": {"m": 1}}, {"l": {"m": 1}, "k": 1}),  # list -> dict
    ({"k": 1}, {"new": {"x": {}}}, {"k": 1, "new": {"x": {}}}),  # missing -> the dict whole
    ({"m": {"x": 1}}, {"m": {}}, {"m": {"x": 1}}),  # an empty dict merges nothing
    ({"a": 1}, {}, {"a": 1}),
]  # fmt: skip


@pytest.mark.parametrize(("start", "nested", "expected"), NESTED)
def test_nested_data_merges_in_a_host_transaction(make_engine, start, nested, expected):
    engine = make_engine({"domain": start, "global": {"g": 1}})
    _tx(engine, data={"domain": nested})
    assert engine.state.domain.to_dict() == expected
    assert engine.state.global_ == {"g": 1}


@pytest.mark.parametrize(("start", "nested", "expected"), NESTED)
def test_nested_data_merges_in_compare_and_swap(make_engine, start, nested, expected):
    engine = make_engine({"domain": start})
    engine.compare_and_swap(0, data={"domain": nested})
    assert engine.state.domain.to_dict() == expected


@pytest.mark.parametrize(("start", "nested", "expected"), NESTED)
def test_nested_data_merges_in_a_state_update(make_engine, start, nested, expected):
    engine = make_engine({"domain": start})

    @process(outputs=["domain.**"])
    def returns_update(ctx):
        return StateUpdate(data={"domain": nested})

    engine.execute(returns_update)
    assert engine.state.domain.to_dict() == expected


def test_dotted_keys_and_replace_set_and_replace(make_engine):
    engine = make_engine({"domain": {"p": {"x": 1, "y": 2}, "q": 0}, "global": {"g": 1}})
    _tx(engine, data={"domain.p": {"x": 9}})
    assert engine.state.domain.to_dict() == {"p": {"x": 9}, "q": 0}
    _tx(engine, replace={"domain": {"only": 1}})
    assert engine.state.domain.to_dict() == {"only": 1}
    engine.compare_and_swap(engine.state.version, replace={"global": {"h": 2}})
    assert engine.state.global_.to_dict() == {"h": 2}

    @process(outputs=["domain"])
    def replaces(ctx):
        return StateUpdate(replace={"domain": {"fresh": True}})

    engine.execute(replaces)
    assert engine.state.domain.to_dict() == {"fresh": True}


def test_in_place_namespace_assignment_still_replaces(make_engine):
    engine = make_engine({"domain": {"a": 1, "b": 2}})

    @process(outputs=["domain"])
    def assign(ctx):
        ctx.domain = {"a": 3}

    engine.execute(assign)
    assert engine.state.domain.to_dict() == {"a": 3}


def test_nested_form_writes_only_what_it_names_so_the_contract_decides(make_engine):
    engine = make_engine({"domain": {"a": 1, "b": 2}})

    @process(outputs=["domain.a"])
    def only_a(ctx):
        return StateUpdate(data={"domain": {"a": 10}})

    engine.execute(only_a)  # a merge of domain.a only: within the contract
    assert engine.state.domain.to_dict() == {"a": 10, "b": 2}

    @process(outputs=["domain.a"])
    def touches_b(ctx):
        return StateUpdate(data={"domain": {"a": 11, "b": 0}})

    with pytest.raises(ContractViolationError, match="domain.b"):
        engine.execute(touches_b)
    assert engine.state.domain.to_dict() == {"a": 10, "b": 2}


def test_nested_form_in_other_zones_sets_whole(make_engine):
    engine = make_engine({"domain": {"heavy_h": {"x": 1, "y": 2}, "log_l": []}})
    rx = engine.signals.subscribe()
    _tx(engine, data={"domain": {"sig_go": {"now": 1}, "heavy_h": {"x": 5}}})
    assert engine.state.domain.heavy_h == {"x": 5}  # an opaque heavy value: set whole
    assert dict(engine.state.signals) == {"domain.sig_go": {"now": 1}}
    assert [m.name for m in rx.recv_many(10, timeout=1)] == ["domain.sig_go"]


@pytest.mark.parametrize("bad", ["a.b", "", "*", 3])
def test_nested_form_keys_follow_the_key_rule(make_engine, bad):
    engine = make_engine({"domain": {"m": {}}})
    before = engine.state
    with pytest.raises(ContextError, match="invalid key"):
        _tx(engine, data={"domain": {"m": {bad: 1}}})
    assert engine.state is before


@pytest.mark.parametrize("key", ["sig_go", "cmd_stop"])
def test_bare_signal_keys_say_what_to_write(make_engine, key):
    engine = make_engine()
    before = engine.state
    with pytest.raises(ContextError) as info:
        _tx(engine, signal={key: True})
    assert str(info.value) == (
        f"signal= key {key!r} names no namespace: signals live inside a namespace here; "
        f"write 'domain.{key}' (spec/19)"
    )
    assert engine.state is before


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"key": "domain.x"}, ValueError), ({"val": 1}, TypeError), ({"key": 5, "val": 1}, TypeError)],
)
def test_state_update_key_val_misuse_raises(kwargs, error):
    with pytest.raises(error):
        StateUpdate(**kwargs)


@pytest.mark.parametrize(
    ("key", "val"), [("domain.x", 2), ("domain.m.k", [1]), ("domain", {"y": 1})]
)
def test_state_update_key_val_is_data(make_engine, key, val):
    engine = make_engine({"domain": {"x": 1, "m": {}}})

    @process(outputs=["domain.**"])
    def writes(ctx):
        return StateUpdate(key=key, val=val)

    engine.execute(writes)
    if key == "domain":  # the nested form: merged
        assert engine.state.domain.to_dict() == {"x": 1, "m": {}, "y": 1}
    else:
        assert engine.state.get(key) == val


# ---------------------------------------------------------------------------------------------
# 2. return mapping after in-place writes, lists, keyed dicts (spec/06)


def test_returned_tuple_is_applied_after_in_place_writes(make_engine):
    engine = make_engine(
        {"domain": {"orders": [{"id": "A", "total": 10.0}], "balance": 0.0, "done": []}}
    )

    @process(inputs=["domain.orders"], outputs=["domain.balance", "domain.done"])
    def pay(ctx):
        balance = ctx.domain.get("balance", 0.0)
        done = ctx.domain.get("done", [])
        for order in ctx.domain["orders"]:
            balance += order["total"]
            done.append(order["id"])  # in place
        return balance, done

    engine.execute(pay)
    assert engine.state.domain.balance == 10.0
    assert engine.state.domain.done == ["A"]


@pytest.mark.parametrize("shape", [list, tuple])
def test_a_list_or_tuple_fills_several_outputs(make_engine, shape):
    engine = make_engine({"domain": {"a": 0, "b": 0, "c": 0}})

    @process(outputs=["domain.c", "domain.a", "domain.b"])
    def three(ctx):
        return shape(["for-c", "for-a", "for-b"])

    engine.execute(three)
    assert engine.state.domain.to_dict() == {"a": "for-a", "b": "for-b", "c": "for-c"}


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ({"balance": 5}, {"balance": 5, "items": [1]}),
        ({"domain.balance": 6}, {"balance": 6, "items": [1]}),
        ({"balance": 7, "items": [2]}, {"balance": 7, "items": [2]}),
        ({"domain.items": [3], "balance": 8}, {"balance": 8, "items": [3]}),
        ({"balance": None, "items": [4]}, {"balance": 0, "items": [4]}),
    ],
)
def test_a_dict_keyed_by_outputs_fills_them(make_engine, returned, expected):
    engine = make_engine({"domain": {"balance": 0, "items": [1]}})

    @process(outputs=["domain.balance", "domain.items"])
    def keyed(ctx):
        return returned

    assert engine.execute(keyed) == returned
    assert engine.state.domain.to_dict() == expected


def test_a_keyed_dict_for_one_output_unpacks(make_engine):
    engine = make_engine({"domain": {"total": 0}})

    @process(outputs=["domain.total"])
    def keyed(ctx):
        return {"total": 3}

    @process(outputs=["domain.total"])
    def plain_dict(ctx):
        return {"sum": 3, "n": 1}  # names no output: the value itself

    engine.execute(keyed)
    assert engine.state.domain.total == 3
    engine.execute(plain_dict)
    assert engine.state.domain.total == {"sum": 3, "n": 1}


@pytest.mark.parametrize(
    ("outputs", "returned", "words"),
    [
        (["domain.a", "domain.b"], {"a": 1, "zz": 2}, "'zz' names none of them"),
        (["domain.a", "domain.b"], {"a": 1, "domain.a": 2}, "twice"),
        (["domain.p.x", "domain.q.x"], {"x": 1}, "names more than one output"),
        (["domain.a"], {"a": 1, 2: 3}, "names none of them"),
    ],
)
def test_a_misfitting_keyed_dict_raises(make_engine, outputs, returned, words):
    engine = make_engine({"domain": {"a": 0, "b": 0, "p": {}, "q": {}}})

    @process(outputs=outputs)
    def bad(ctx):
        return returned

    with pytest.raises(ContractViolationError, match=words):
        engine.execute(bad)
    assert engine.state.version == 0


@pytest.mark.parametrize("returned", [(None, 2), [None, 2], {"b": 2}])
def test_none_items_leave_their_output_alone(make_engine, returned):
    engine = make_engine({"domain": {"a": "kept", "b": 0}})

    @process(outputs=["domain.a", "domain.b"])
    def partial(ctx):
        return returned

    engine.execute(partial)
    assert engine.state.domain.to_dict() == {"a": "kept", "b": 2}


@pytest.mark.parametrize("returned", [1, "x", [1, 2], None])
def test_a_plain_value_after_in_place_writes_to_one_output(make_engine, returned):
    engine = make_engine({"domain": {"n": 0}})

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def both(ctx):
        ctx.domain.n = 5
        return returned

    if returned is None:
        engine.execute(both)
        assert engine.state.domain.n == 5
        return
    with pytest.raises(ContractViolationError) as info:
        engine.execute(both)
    assert str(info.value) == (
        f"process 'both' wrote in place and also returned a {type(returned).__name__} for its "
        "output 'domain.n'; after in-place writes only an exact mapping is applied (a dict "
        "keyed by the output, or a StateUpdate): return None to keep the in-place writes "
        "alone, or write only by returning"
    )
    assert engine.state.version == 0


# ---------------------------------------------------------------------------------------------
# 3. strict flags, errors, engine surface


@pytest.mark.parametrize("name", ["strict_guards", "strict_cas"])
@pytest.mark.parametrize("value", [True, False])
def test_strict_flags_are_read_only(make_engine, name, value):
    engine = make_engine(strict_cas=True)
    assert (engine.strict_guards, engine.strict_cas) == (True, True)
    with pytest.raises(AttributeError, match=f"engine.{name} is read-only"):
        setattr(engine, name, value)
    assert (engine.strict_guards, engine.strict_cas) == (True, True)


def test_process_not_found_is_also_a_value_error(make_engine):
    engine = make_engine()
    for name in ("missing", "other"):
        with pytest.raises(ValueError, match=name):
            engine.execute(name)
        with pytest.raises(ProcessNotFoundError):
            engine.execute(name)


def test_execute_takes_positional_arguments(make_engine):
    engine = make_engine({"domain": {"n": 0}})

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def add(ctx, a, b=0, *, c=0):
        return ctx.domain.n + a + b + c

    assert engine.execute(add, 1) == 1
    assert engine.execute(add, 1, 2) == 4
    assert engine.execute(add, 1, c=3) == 8
    assert asyncio.run(engine.aexecute(add, 2, 2)) == 12
    for args, kwargs in (((1, 2, 3), {}), ((1,), {"a": 1})):
        with pytest.raises(TypeError):
            engine.execute(add, *args, **kwargs)
    assert engine.state.domain.n == 12


def test_execute_retries_is_a_bounded_per_call_override(make_engine):
    engine = make_engine({"domain": {"n": 0}})
    seen = []

    @process(inputs=["domain.n"], outputs=["domain.n"], retries=0)
    def bump(ctx, **kwargs):
        seen.append(dict(kwargs))
        return ctx.domain.n + 1

    engine.execute(bump, retries=5)
    engine.execute(bump, retries=0)
    assert seen == [{}, {}]  # the function never receives retries=
    assert engine.state.domain.n == 2
    for bad, error in ((-1, ValueError), (1001, ValueError), ("3", TypeError), (True, TypeError)):
        with pytest.raises(error):
            engine.execute(bump, retries=bad)
    assert engine.state.domain.n == 2


def test_write_timeout_and_requester_are_accepted(make_engine):
    engine = make_engine({"domain": {"n": 0}}, write_timeout_ms=5000)
    with engine.transaction(write_timeout_ms=100) as tx:
        tx.update(data={"domain.n": 1})
    engine.compare_and_swap(1, data={"domain.n": 2}, requester="worker-1")
    assert engine.state.domain.n == 2
    with pytest.raises(TypeError):
        make_engine(write_timeout_ms=-1)
    with pytest.raises(TypeError):
        engine.transaction(write_timeout_ms="soon")
    with pytest.raises(TypeError):
        engine.compare_and_swap(2, data={"domain.n": 3}, requester=7)
    assert engine.state.domain.n == 2


def test_stale_compare_and_swap_still_raises(make_engine):
    engine = make_engine({"domain": {"a": 0, "b": 0}})
    engine.compare_and_swap(0, data={"domain.a": 1})
    with pytest.raises(ConflictError):
        engine.compare_and_swap(0, data={"domain.b": 1})  # disjoint, but stale: loud
    assert engine.state.domain.to_dict() == {"a": 1, "b": 0}


def test_edit_writes_in_place_and_commits_together(make_engine):
    engine = make_engine({"domain": {"counter": 0, "m": {"x": 1}}, "global": {"g": 1}})
    with engine.edit() as ctx:
        ctx.domain.counter = 999
        ctx.domain.m["y"] = 2
        ctx.global_.g = 2
        assert engine.state.version == 0  # nothing committed inside the block
    assert engine.state.version == 1
    assert engine.state.to_dict() == {
        "domain": {"counter": 999, "m": {"x": 1, "y": 2}},
        "global": {"g": 2},
    }
    with pytest.raises(RuntimeError):
        with engine.edit() as ctx:
            ctx.domain.counter = -1
            raise RuntimeError("abandon")
    assert engine.state.version == 1 and engine.state.domain.counter == 999


def test_shutdown_closes(make_engine):
    engine = make_engine()
    engine.shutdown()
    with pytest.raises(ContextError):
        engine.transaction()


def test_scan_and_register(make_engine, tmp_path):
    (tmp_path / "procs").mkdir()
    (tmp_path / "procs" / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    (tmp_path / "procs" / "orders.py").write_text(
        textwrap.dedent(
            """
            from theus import process

            @process(inputs=["domain.n"], outputs=["domain.n"])
            def scanned_bump(ctx):
                return ctx.domain.n + 1

            def helper(ctx):
                return None
            """
        )
    )
    engine = make_engine({"domain": {"n": 0}})
    assert engine.scan_and_register(str(tmp_path / "procs")) == ["scanned_bump"]
    engine.execute("scanned_bump")
    assert engine.state.domain.n == 1
    with pytest.raises(ProcessNotFoundError):
        engine.execute("helper")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bad.py").write_text("import no_such_module_here\n")
    with pytest.raises(ImportError, match="bad.py"):
        engine.scan_and_register(str(tmp_path / "broken"))
    with pytest.raises(NotADirectoryError):
        engine.scan_and_register(str(tmp_path / "nowhere"))


def test_process_keywords_errors_side_effects_parallel(make_engine):
    @process(outputs=["domain.x"], errors=["ValueError"], side_effects=["email"])
    def noted(ctx):
        return 1

    spec = noted.__theus_process__
    assert (spec.errors, spec.side_effects) == (("ValueError",), ("email",))

    @process(outputs=["domain.x"], parallel=True)  # runs on a worker (spec/22)
    def on_other_cores(ctx):
        return 1

    assert on_other_cores.__theus_process__.parallel
    engine = make_engine({"domain": {"x": 0}}, executor="threads")
    assert engine.execute(on_other_cores) == 1 and engine.state.domain.x == 1

    with pytest.raises(TypeError):

        @process(errors="ValueError")
        def wrong(ctx):
            return None


@pytest.mark.parametrize(
    ("root", "written"), [("heavy", "heavy_x"), ("signal", "sig_x"), ("meta", "meta_x")]
)
def test_theus3_zone_roots_say_what_to_write(make_engine, root, written):
    from theus import InvalidContractError

    engine = make_engine()

    @process(outputs=[f"{root}.x"])
    def zone_root(ctx):
        return 1

    with pytest.raises(InvalidContractError, match=f"'domain.{written}'"):
        engine.execute(zone_root)
    assert engine.state.version == 0


def test_view_method_named_leaf_gets_a_hint(make_engine, caplog):
    engine = make_engine({"domain": {"items": [1], "count": 0}})

    @process(inputs=["domain.items"], outputs=["domain.count"])
    def count_items(ctx):
        return len(ctx.domain["items"])

    with caplog.at_level(logging.WARNING, logger="theus"):
        engine.execute(count_items)
    assert any(
        'ctx.domain["items"]' in r.getMessage() or "ctx.domain['items']" in r.getMessage()
        for r in caplog.records
    )
    assert engine.state.domain.count == 1


# ---------------------------------------------------------------------------------------------
# 4. contexts and aliases


@dataclasses.dataclass
class _Domain:
    status: str = "IDLE"
    items: list = dataclasses.field(default_factory=list)


class _WithToDict:
    def to_dict(self):
        return {"domain": {"status": "FROM_TO_DICT"}, "global": {"v": 1}}


def test_contexts_given_as_objects(make_engine):
    import pydantic

    from theus.context import BaseDomainContext, BaseSystemContext

    class Glob(pydantic.BaseModel):
        app: str = "demo"

    class System(BaseSystemContext):
        def __init__(self):
            self.global_ctx = Glob()
            self.domain_ctx = _Domain(items=["x"])

    engine = make_engine(System())
    assert engine.state.to_dict() == {
        "global": {"app": "demo"},
        "domain": {"status": "IDLE", "items": ["x"]},
    }
    engine = make_engine(_WithToDict())
    assert engine.state.domain.status == "FROM_TO_DICT" and engine.state.global_.v == 1
    engine = make_engine({"domain": _Domain(), "global_": Glob(app="g")})
    assert engine.state.to_dict() == {
        "domain": {"status": "IDLE", "items": []},
        "global": {"app": "g"},
    }
    engine = make_engine({"domain_ctx": BaseDomainContext(n=1)})
    assert engine.state.domain.to_dict() == {"n": 1}
    with pytest.raises(ContextError, match="twice"):
        make_engine({"domain": {"a": 1}, "domain_ctx": {"a": 2}})


def test_namespace_aliases_in_patterns_ctx_and_state(make_engine):
    engine = make_engine({"domain_ctx": {"n": 1}, "global_ctx": {"rate": 2}})

    @process(inputs=["domain_ctx.n", "global_ctx.rate"], outputs=["domain_ctx.n", "domain.log"])
    def scale(ctx):
        ctx.domain_ctx.n = ctx.domain_ctx.n * ctx.global_ctx.rate
        ctx.domain.log = "scaled"

    @process(inputs=["global_.rate"], outputs=["domain.n"])
    def from_rate(ctx):
        return ctx.global_.rate + ctx.global_ctx.rate

    engine.execute(scale)
    assert engine.state.domain.to_dict() == {"n": 2, "log": "scaled"}
    assert engine.state.domain_ctx.n == 2 and engine.state.global_ctx.rate == 2
    assert [p.text for p in scale.__theus_process__.inputs] == ["domain.n", "global.rate"]
    engine.execute(from_rate)
    assert engine.state.domain.n == 4


def test_state_data_and_state_signal(make_engine):
    engine = make_engine({"domain": {"x": 1, "m": {"k": [1]}}})
    data = engine.state.data
    assert data["domain"]["x"] == 1 and data["domain"]["m"]["k"] == [1]
    with pytest.raises(ContextError):
        data["domain"]["x"] = 2
    with pytest.raises(AttributeError, match="state.signals"):
        engine.state.signal
    other = make_engine({"data": {"own": 1}})
    assert other.state.data == {"own": 1}  # a namespace named data wins


def test_theus3_import_paths():
    import theus.config
    import theus.context
    from theus.contracts import Semantic, SemanticType
    from theus.structures import ContextError as StructuresContextError
    from theus.structures import StateUpdate as StructuresStateUpdate

    assert SemanticType is Semantic and SemanticType.EFFECT.value == "effect"
    assert StructuresStateUpdate is StateUpdate and StructuresContextError is ContextError
    for name in ("State", "FrozenDict", "ManagedAllocator"):
        with pytest.raises(ImportError, match="use "):
            exec(f"from theus.structures import {name}", {})
    assert theus.config.ConfigFactory.load_audit_recipe() is None or True
    with pytest.raises(FileNotFoundError):
        theus.config.ConfigFactory.load_recipe("/no/such/recipe.yaml")
    assert theus.context.BaseSystemContext(domain={"a": 1}, other=None).to_dict() == {
        "domain": {"a": 1}
    }


# ---------------------------------------------------------------------------------------------
# 5. views: the non-mutating list and map operations


def test_list_and_map_view_operations(make_engine):
    engine = make_engine({"domain": {"l": [1, 2, 3], "m": {"a": 1}}})
    results = {}

    @process(inputs=["domain.l", "domain.m"])
    def use(ctx):
        d = ctx.domain
        results["guarded"] = _view_ops(d)

    engine.execute(use)
    snapshot = _view_ops(engine.state.domain)
    expected = {
        "add": [1, 2, 3, 9], "radd": [0, 1, 2, 3], "mul": [1, 2, 3, 1, 2, 3],
        "rmul": [1, 2, 3, 1, 2, 3],
        "views": [1, 2, 3, 1, 2, 3], "copy": [1, 2, 3], "slice": [2, 3], "or": {"a": 1, "z": 2},
        "ror": {"z": 2, "a": 1}, "mcopy": {"a": 1}, "types": ["list", "list", "dict"],
        "bad": ["TypeError", "TypeError", "TypeError"],
    }  # fmt: skip
    assert results["guarded"] == expected
    assert snapshot == expected


def _view_ops(d):
    out = {
        "add": d["l"] + [9], "radd": [0] + d["l"], "mul": d["l"] * 2, "rmul": 2 * d["l"],
        "views": d["l"] + d["l"], "copy": d["l"].copy(), "slice": d["l"][1:],
        "or": d["m"] | {"z": 2}, "ror": {"z": 2} | d["m"], "mcopy": d["m"].copy(),
    }  # fmt: skip
    out["types"] = [type(out["add"]).__name__, type(out["copy"]).__name__, type(out["or"]).__name__]
    bad = []
    for attempt in (lambda: d["l"] + (1,), lambda: d["l"] * 1.5, lambda: d["m"] | [1]):
        try:
            attempt()
        except TypeError:
            bad.append("TypeError")
    out["bad"] = bad
    return out


# ---------------------------------------------------------------------------------------------
# 6. theus.compat.v3: coroutine execute


def test_compat_v3_execute_is_a_coroutine(backend):
    from theus.compat.v3 import TheusEngine as V3Engine

    engine = V3Engine({"domain": {"n": 0}}, backend=backend)
    try:

        @process(inputs=["domain.n"], outputs=["domain.n"])
        def bump(ctx, by=1):
            return ctx.domain.n + by

        async def main():
            first = await engine.execute(bump)
            second = await engine.execute(bump, 5)
            return first, second

        assert asyncio.run(main()) == (1, 6)
        assert engine.state.domain.n == 6 and engine.state.version == 2
        assert engine.engine.execute(bump) == 7  # the blocking engine underneath
        engine.register(bump)
        run = asyncio.run(engine.execute_workflow("steps:\n  - process: bump\n"))
        assert run.executed == ("bump",) and engine.state.domain.n == 8
        with pytest.raises(AttributeError, match="read-only"):
            engine.strict_cas = True
        with pytest.raises(NotImplementedError, match="context="):
            V3Engine({}, namespaces=[("extra", None)], backend=backend)
    finally:
        engine.close()


# ---------------------------------------------------------------------------------------------
# 7. our port of Theus 3's e-commerce example scenario


ECOMMERCE_RECIPE = """
process_recipes:
  create_order:
    outputs:
      - field: "domain_ctx.orders"
        max_len: 10
        level: "B"
  process_payment:
    outputs:
      - field: "domain.balance"
        min: 0
        level: "B"
"""


@process(inputs=["domain.order_request"], outputs=["domain.orders"])
def create_order(ctx):
    request = ctx.domain["order_request"].to_dict()
    total = request.get("total", 0)
    if total <= 0:
        raise ValueError(f"invalid total: {total}")
    order = {"id": request["id"], "items": list(request.get("items", [])), "total": total}
    return ctx.domain.get("orders", []) + [order]  # noqa: RUF005 (a list view + a list)


@process(inputs=["domain.orders"], outputs=["domain.balance", "domain.processed_orders"])
def process_payment(ctx):
    balance = ctx.domain.get("balance", 0.0)
    processed = ctx.domain.get("processed_orders", [])
    for order in ctx.domain["orders"]:
        if order["id"] in processed:
            continue
        balance += order["total"]
        processed.append(order["id"])  # in place, then returned with the balance
    return balance, processed


@process(inputs=["domain.orders"], outputs=["domain.heavy_invoice_img"])
def store_invoice_image(ctx):
    return bytearray(b"\x89PNG" + bytes(range(64)))


@process(inputs=[], outputs=["domain.balance"])
def trigger_rollback_test(ctx):
    raise RuntimeError("intentional failure for the rollback test")


def _ecommerce_context():
    import pydantic

    from theus.context import BaseSystemContext

    class DemoGlobal(pydantic.BaseModel):
        app_name: str = "demo"
        max_retries: int = 3

    class DemoDomain(pydantic.BaseModel):
        status: str = "IDLE"
        order_request: dict | None = None
        orders: list[dict] = pydantic.Field(default_factory=list)
        balance: float = 0.0
        processed_orders: list[str] = pydantic.Field(default_factory=list)
        meta_last_error: str | None = None

    class DemoSystemContext(BaseSystemContext):
        def __init__(self):
            self.global_ctx = DemoGlobal()
            self.domain_ctx = DemoDomain()

    return DemoSystemContext()


def _seed(engine):
    with engine.transaction() as tx:
        tx.update(
            data={
                "domain": {
                    "order_request": {"id": "ORD-001", "items": ["Laptop"], "total": 1500.0},
                    "orders": [],
                    "balance": 0.0,
                    "processed_orders": [],
                }
            }
        )


def _check_ecommerce_result(engine):
    domain = engine.state.domain
    assert domain.balance == 1500.0
    assert domain.processed_orders == ["ORD-001"]
    assert domain.orders == [{"id": "ORD-001", "items": ["Laptop"], "total": 1500.0}]
    assert domain.status == "IDLE" and domain.meta_last_error is None  # the merge kept them
    assert engine.state.global_.app_name == "demo"
    assert bytes(domain.heavy_invoice_img[:4]) == b"\x89PNG"


def test_ecommerce_scenario_blocking(make_engine, tmp_path):
    from theus.config import ConfigFactory

    recipe_file = tmp_path / "audit_recipe.yaml"
    recipe_file.write_text(ECOMMERCE_RECIPE)
    engine = make_engine(
        _ecommerce_context(),
        strict_guards=True,
        audit_recipe=ConfigFactory.load_recipe(str(recipe_file)),
    )
    for fn in (create_order, process_payment, store_invoice_image, trigger_rollback_test):
        engine.register(fn)
    _seed(engine)
    for name in ("create_order", "process_payment", "store_invoice_image"):
        engine.execute(name)
    _check_ecommerce_result(engine)
    before = engine.state
    with pytest.raises(RuntimeError, match="intentional"):
        engine.execute("trigger_rollback_test")
    assert engine.state is before
    engine.execute("process_payment")  # paid orders are not paid twice
    assert engine.state.domain.balance == 1500.0


ECOMMERCE_WORKFLOW = """
name: "e-commerce"
steps:
  - process: "create_order"
  - process: "process_payment"
  - process: "store_invoice_image"
"""


@pytest.mark.parametrize("how", ["execute", "workflow"])
def test_ecommerce_scenario_with_compat_v3(backend, tmp_path, how):
    from theus.compat.v3 import TheusEngine as V3Engine

    workflow = tmp_path / "workflow.yaml"
    workflow.write_text(ECOMMERCE_WORKFLOW)
    engine = V3Engine(_ecommerce_context(), strict_guards=True, backend=backend)
    try:
        for fn in (create_order, process_payment, store_invoice_image):
            engine.register(fn)
        _seed(engine)

        async def main():
            if how == "workflow":  # Theus 3's main.py: await engine.execute_workflow(path)
                await engine.execute_workflow(str(workflow))
                return
            for name in ("create_order", "process_payment", "store_invoice_image"):
                await engine.execute(name)

        asyncio.run(main())
        _check_ecommerce_result(engine)
    finally:
        engine.close()


def test_ecommerce_invalid_total_commits_nothing(make_engine):
    engine = make_engine(_ecommerce_context())
    with engine.transaction() as tx:
        tx.update(data={"domain": {"order_request": {"id": "ORD-BAD", "total": 0}}})
    before = engine.state
    with pytest.raises(ValueError, match="invalid total"):
        engine.execute(create_order)
    assert engine.state is before
    assert engine.state.domain.orders == [] and engine.state.domain.balance == 0.0
