"""spec/04 — @process, registration, guarded reads and writes (REQUIREMENTS §4.2)."""

from __future__ import annotations

import pytest

from theus import (
    ContextError,
    ContractViolationError,
    InvalidContractError,
    ProcessNotFoundError,
    ProcessSpec,
    Semantic,
    process,
)

# ---------------------------------------------------------------------------------------------
# declaring


def test_process_bare_and_with_arguments_returns_the_function():
    def plain(ctx):
        return "plain"

    decorated = process(plain)
    assert decorated is plain
    assert isinstance(plain.__theus_process__, ProcessSpec)

    def with_args(ctx, amount):
        return amount

    result = process(inputs=["domain.a"], outputs=["domain.b"])(with_args)
    assert result is with_args
    assert with_args(None, amount=3) == 3  # stays a plain function

    @process
    def bare_syntax(ctx):
        return None

    assert isinstance(bare_syntax.__theus_process__, ProcessSpec)


def test_process_kwargs_are_passed_through(make_engine):
    engine = make_engine({"domain": {"balance": 10}})

    @process(inputs=["domain.balance"], outputs=["domain.balance"])
    def pay(ctx, amount, note="none"):
        ctx.local.note = note
        return ctx.domain.balance - amount

    assert engine.execute(pay, amount=3, note="n1") == 7
    assert engine.state.domain.balance == 7


@pytest.mark.parametrize("argument", ["inputs", "outputs"])
def test_single_str_contract_is_rejected(argument):
    def fn(ctx):
        return None

    with pytest.raises(InvalidContractError, match=argument):
        process(**{argument: "domain.x"})(fn)


@pytest.mark.parametrize(
    "semantic", ["pure", "effect", "guide", Semantic.PURE, Semantic.EFFECT, Semantic.GUIDE]
)
def test_semantic_values_accepted(semantic):
    def fn(ctx):
        return None

    process(semantic=semantic)(fn)


@pytest.mark.parametrize("semantic", ["PURE!", "impure", "", "effects"])
def test_bad_semantic_is_invalid_contract(semantic):
    def fn(ctx):
        return None

    with pytest.raises(InvalidContractError, match="semantic"):
        process(semantic=semantic)(fn)


def test_non_str_semantic_is_refused():
    def fn(ctx):
        return None

    # spec/04 says both "anything else: InvalidContractError" and "wrong types: TypeError"
    with pytest.raises((InvalidContractError, TypeError), match="semantic"):
        process(semantic=3)(fn)


def test_bad_retries_value_is_invalid_contract():
    def fn(ctx):
        return None

    with pytest.raises(InvalidContractError, match="retries"):
        process(retries=-1)(fn)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"retries": "3"}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"cpu_heavy": "yes"}, "cpu_heavy"),
        ({"name": 5}, "name"),
        ({"inputs": 5}, "inputs"),
        ({"outputs": object()}, "outputs"),
    ],
    ids=[
        "retries-str",
        "retries-float",
        "cpu_heavy-str",
        "name-int",
        "inputs-int",
        "outputs-object",
    ],
)
def test_wrong_argument_types_are_type_errors(kwargs, argument):
    def fn(ctx):
        return None

    with pytest.raises(TypeError, match=argument):
        process(**kwargs)(fn)


def test_spec_records_the_declaration():
    @process(
        inputs=("domain.a",),
        outputs=iter(["domain.b"]),
        semantic="guide",
        retries=5,
        cpu_heavy=True,
        name="custom",
    )
    def declared(ctx):
        return None

    spec = declared.__theus_process__
    assert "domain.a" in repr(spec.inputs)
    assert "domain.b" in repr(spec.outputs)
    assert spec.semantic == Semantic.GUIDE
    assert spec.retries == 5
    assert spec.cpu_heavy is True
    assert spec.name == "custom"


# ---------------------------------------------------------------------------------------------
# registering


def test_register_returns_fn_and_execute_by_name(make_engine):
    engine = make_engine({"domain": {"n": 1}})

    @process(inputs=["domain.n"])
    def get_n(ctx):
        return ctx.domain.n

    assert engine.register(get_n) is get_n
    assert engine.execute("get_n") == 1


def test_register_under_custom_name(make_engine):
    engine = make_engine({"domain": {"n": 1}})

    @process(inputs=["domain.n"], name="read-n")
    def get_n(ctx):
        return ctx.domain.n

    engine.register(get_n)
    assert engine.execute("read-n") == 1
    with pytest.raises(ProcessNotFoundError):
        engine.execute("get_n")


def test_undecorated_function_has_empty_contract(make_engine):
    engine = make_engine({"domain": {"n": 1}})

    def bare(ctx):
        ctx.local.scratch = 1
        return ctx.local.scratch

    assert engine.register(bare) is bare
    assert engine.execute("bare") == 1

    def reads(ctx):
        return ctx.domain.n

    with pytest.raises(ContractViolationError):
        engine.execute(reads)

    def writes(ctx):
        ctx.domain.n = 2

    with pytest.raises(ContractViolationError):
        engine.execute(writes)
    assert engine.state.version == 0


def test_duplicate_name_different_function_is_value_error(make_engine):
    engine = make_engine()

    def first(ctx):
        return 1

    def second(ctx):
        return 2

    second.__name__ = "first"
    second.__qualname__ = "first"
    engine.register(first)
    engine.register(first)  # same function again: no-op
    with pytest.raises(ValueError, match="first"):
        engine.register(second)
    assert engine.execute("first") == 1


def test_execute_registers_implicitly(make_engine):
    engine = make_engine()

    @process
    def implicit(ctx):
        return "ran"

    assert engine.execute(implicit) == "ran"
    assert engine.execute("implicit") == "ran"


def test_unknown_process_name_lists_registered(make_engine):
    engine = make_engine()

    @process
    def alpha_proc(ctx):
        return None

    engine.register(alpha_proc)
    before = engine.state
    with pytest.raises(ProcessNotFoundError) as info:
        engine.execute("does_not_exist")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "does_not_exist" in message and "alpha_proc" in message
    assert engine.state is before


def test_registration_is_per_engine(make_engine):
    e1, e2 = make_engine(), make_engine()

    @process
    def only_on_e1(ctx):
        return 1

    e1.register(only_on_e1)
    with pytest.raises(ProcessNotFoundError):
        e2.execute("only_on_e1")


# ---------------------------------------------------------------------------------------------
# semantics


def test_pure_naming_meta_literally_is_rejected_at_registration(engine):
    @process(inputs=["domain.meta_trace"], semantic="pure")
    def pure_reads_meta(ctx):
        return None

    with pytest.raises(InvalidContractError):
        engine.register(pure_reads_meta)


@pytest.mark.parametrize("output", ["domain.sig_done", "domain.meta_trace", "domain.cmd_x"])
def test_pure_cannot_declare_signal_or_meta_outputs(engine, output):
    @process(outputs=[output], semantic="pure")
    def pure_writes(ctx):
        return None

    with pytest.raises(InvalidContractError):
        engine.register(pure_writes)


def test_pure_signal_write_through_wildcard_refused_at_access(make_engine):
    engine = make_engine({"domain": {"x": 0}})

    @process(outputs=["domain.*"], semantic="pure")
    def pure_emits(ctx):
        ctx.domain.x = 1
        ctx.domain.sig_go = True

    with pytest.raises(ContractViolationError):
        engine.execute(pure_emits)
    assert engine.state.version == 0

    @process(outputs=["domain.*"], semantic="pure")
    def pure_writes_data(ctx):
        ctx.domain.x = 1

    engine.execute(pure_writes_data)
    assert engine.state.domain.x == 1


def test_guide_may_write_only_signal_and_meta(make_engine):
    engine = make_engine({"domain": {"x": 0}})

    @process(outputs=["domain.x"], semantic="guide")
    def guide_writes_data(ctx):
        return None

    with pytest.raises(InvalidContractError):
        engine.register(guide_writes_data)

    @process(inputs=["domain.x"], outputs=["domain.sig_next", "domain.meta_note"], semantic="guide")
    def guide_ok(ctx):
        ctx.domain.sig_next = ctx.domain.x + 1
        ctx.domain.meta_note = "steered"

    engine.execute(guide_ok)
    assert engine.state.domain.meta_note == "steered"
    assert dict(engine.state.signals) == {"domain.sig_next": 1}

    @process(outputs=["domain.*"], semantic="guide")
    def guide_wildcard(ctx):
        ctx.domain.x = 5

    with pytest.raises(ContractViolationError):
        engine.execute(guide_wildcard)
    assert engine.state.domain.x == 0


# ---------------------------------------------------------------------------------------------
# guarded reads


def test_ctx_namespaces_and_version(make_engine):
    engine = make_engine({"domain": {"a": 1}, "global": {"b": 2}, "extra": {"c": 3}})
    with engine.transaction() as tx:
        tx.update(data={"domain.a": 10})

    @process(inputs=["domain.a", "global.b", "extra.c"])
    def read_all(ctx):
        return (
            ctx.domain.a,
            ctx.global_.b,
            ctx["global"]["b"],
            ctx["extra"].c,
            ctx["domain"]["a"],
            ctx.version,
        )

    assert engine.execute(read_all) == (10, 2, 2, 3, 10, 1)


def test_read_outside_contract_names_path_process_and_inputs(make_engine):
    engine = make_engine({"domain": {"a": 1, "secret": 2}})

    @process(inputs=["domain.a"])
    def snoop(ctx):
        return ctx.domain.secret

    with pytest.raises(ContractViolationError) as info:
        engine.execute(snoop)
    assert isinstance(info.value, PermissionError)
    message = str(info.value)
    assert "domain.secret" in message and "snoop" in message and "domain.a" in message


def test_undeclared_missing_key_is_a_violation_not_attribute_error(make_engine):
    engine = make_engine({"domain": {"a": 1}})

    @process(inputs=["domain.a"])
    def read_missing(ctx):
        return ctx.domain.ghost

    with pytest.raises(ContractViolationError):
        engine.execute(read_missing)


def test_declared_missing_key_raises_python_errors(make_engine):
    engine = make_engine({"domain": {"l": [1]}})

    @process(inputs=["domain.ghost", "domain.l"])
    def read_declared_missing(ctx):
        errors = []
        for attempt in (
            lambda: ctx.domain.ghost,
            lambda: ctx.domain["ghost"],
            lambda: ctx.domain.l[5],
        ):
            try:
                attempt()
            except (AttributeError, KeyError, IndexError) as exc:
                errors.append(type(exc).__name__)
        return errors, ctx.domain.get("ghost", "dflt")

    assert engine.execute(read_declared_missing) == (
        ["AttributeError", "KeyError", "IndexError"],
        "dflt",
    )


WHOLE_CONTAINER_OPS = {
    "len": len,
    "iter": list,
    "in": lambda v: "k" in v,
    "eq": lambda v: v == {"k": 1},
    "keys": lambda v: list(v.keys()),
    "items": lambda v: list(v.items()),
    "values": lambda v: list(v.values()),
    "to_dict": lambda v: v.to_dict(),
}


@pytest.mark.parametrize("op", sorted(WHOLE_CONTAINER_OPS))
def test_navigation_allows_lookup_but_not_whole_container_reads(make_engine, op):
    engine = make_engine({"domain": {"users": {"k": 1, "alice": {"name": "A", "age": 3}}}})

    @process(inputs=["domain.users.alice.name"])
    def navigate(ctx):
        assert ctx.domain.users.alice.name == "A"
        return WHOLE_CONTAINER_OPS[op](ctx.domain.users)

    with pytest.raises(ContractViolationError):
        engine.execute(navigate)


@pytest.mark.parametrize("op", sorted(WHOLE_CONTAINER_OPS))
def test_whole_container_reads_allowed_when_covered(make_engine, op):
    engine = make_engine({"domain": {"box": {"k": 1}}})

    @process(inputs=["domain.box"])
    def whole(ctx):
        return WHOLE_CONTAINER_OPS[op](ctx.domain.box)

    expected = WHOLE_CONTAINER_OPS[op]({"k": 1}) if op != "to_dict" else {"k": 1}
    assert engine.execute(whole) == expected


def test_reads_see_own_earlier_writes(make_engine):
    engine = make_engine({"domain": {"a": 1, "l": [1]}})

    @process(inputs=["domain.a"], outputs=["domain.a", "domain.l", "domain.new"])
    def write_then_read(ctx):
        ctx.domain.a = 2
        ctx.domain.l.append(2)
        ctx.domain.new = {"x": 1}
        ctx.domain.new.x = 5
        return ctx.domain.a, ctx.domain.l.to_list(), ctx.domain.new.to_dict()

    assert engine.execute(write_then_read) == (2, [1, 2], {"x": 5})
    assert engine.state.domain == {"a": 2, "l": [1, 2], "new": {"x": 5}}


def test_strict_guards_false_still_checks_writes(make_engine):
    engine = make_engine({"domain": {"a": 1, "b": 2}}, strict_guards=False)

    @process(inputs=["domain.a"])
    def read_b(ctx):
        return ctx.domain.b

    assert engine.execute(read_b) == 2

    @process(inputs=["domain.a"], outputs=["domain.a"])
    def write_b(ctx):
        ctx.domain.b = 3

    with pytest.raises(ContractViolationError):
        engine.execute(write_b)
    assert engine.state.domain.b == 2


# ---------------------------------------------------------------------------------------------
# guarded writes


def _do_setattr(d):
    d.x = 1


def _do_setitem(d):
    d["x"] = 1


def _do_del(d):
    del d.m


def _do_delitem(d):
    del d["m"]


def _do_list_setitem(d):
    d.l[0] = 9


def _do_list_delitem(d):
    del d.l[0]


def _do_iadd(d):
    lst = d.l
    lst += [9]


WRITES = {
    # operation: (callable on ctx.domain, the path the contract must cover)
    "setattr": (_do_setattr, "domain.x"),
    "setitem": (_do_setitem, "domain.x"),
    "del": (_do_del, "domain.m"),
    "delitem": (_do_delitem, "domain.m"),
    "pop": (lambda d: d.pop("m"), "domain"),
    "popitem": (lambda d: d.m.popitem(), "domain.m"),
    "clear": (lambda d: d.m.clear(), "domain.m"),
    "update": (lambda d: d.m.update({"z": 1}), "domain.m"),
    "setdefault": (lambda d: d.m.setdefault("z", 1), "domain.m"),
    "append": (lambda d: d.l.append(9), "domain.l"),
    "extend": (lambda d: d.l.extend([9]), "domain.l"),
    "insert": (lambda d: d.l.insert(0, 9), "domain.l"),
    "list-pop": (lambda d: d.l.pop(), "domain.l"),
    "remove": (lambda d: d.l.remove(2), "domain.l"),
    "list-clear": (lambda d: d.l.clear(), "domain.l"),
    "sort": (lambda d: d.l.sort(), "domain.l"),
    "reverse": (lambda d: d.l.reverse(), "domain.l"),
    "list-setitem": (_do_list_setitem, "domain.l"),
    "list-delitem": (_do_list_delitem, "domain.l"),
    "iadd": (_do_iadd, "domain.l"),
}


def _writes_context():
    return {"domain": {"m": {"k": 1}, "l": [2, 1], "x": 0, "other": 0}}


@pytest.mark.parametrize("op", sorted(WRITES))
def test_write_outside_outputs_is_refused(make_engine, op):
    action, path = WRITES[op]
    engine = make_engine(_writes_context())
    before = engine.state

    @process(inputs=["domain"], outputs=["domain.other"])
    def write_undeclared(ctx):
        action(ctx.domain)

    with pytest.raises(ContractViolationError) as info:
        engine.execute(write_undeclared)
    message = str(info.value)
    assert path in message, f"must name the written path {path!r}: {message!r}"
    assert "domain.other" in message, f"must name the outputs: {message!r}"
    assert engine.state is before


@pytest.mark.parametrize("op", sorted(WRITES))
def test_write_inside_outputs_commits(make_engine, op):
    action, path = WRITES[op]
    engine = make_engine(_writes_context())

    @process(inputs=["domain"], outputs=[path])
    def write_declared(ctx):
        action(ctx.domain)

    engine.execute(write_declared)
    expected = _writes_context()["domain"]
    action(_PlainDomain(expected))
    assert engine.state.domain == expected
    assert engine.state.version == 1


class _PlainDomain(dict):
    """Applies the same operations to a plain dict (the model)."""

    def __init__(self, target):
        super().__init__()
        object.__setattr__(self, "_t", target)

    def __getattr__(self, name):
        return self._t[name]

    def __setattr__(self, name, value):
        self._t[name] = value

    def __delattr__(self, name):
        del self._t[name]

    def __getitem__(self, key):
        return self._t[key]

    def __setitem__(self, key, value):
        self._t[key] = value

    def __delitem__(self, key):
        del self._t[key]

    def pop(self, key, *default):
        return self._t.pop(key, *default)


def test_list_item_assignment_is_a_write_of_the_item(make_engine):
    """spec/04: ``lst[i] = v`` writes the item's path; ``del lst[i]``, ``pop``, ``insert``
    (which shift indices) write the container's path."""
    engine = make_engine({"domain": {"l": [1, 2, 3]}})

    @process(outputs=["domain.l.0"])
    def set_first(ctx):
        ctx.domain.l[0] = 10

    engine.execute(set_first)
    assert engine.state.domain.l == [10, 2, 3]
    for name, action in (
        ("del", lambda lst: lst.__delitem__(0)),
        ("pop", lambda lst: lst.pop(0)),
        ("insert", lambda lst: lst.insert(0, 0)),
        ("set-other", lambda lst: lst.__setitem__(1, 20)),
    ):

        @process(outputs=["domain.l.0"], name=f"shift_{name}")
        def shift(ctx, action=action):
            action(ctx.domain.l)

        with pytest.raises(ContractViolationError, match="domain.l"):
            engine.execute(shift)
    assert engine.state.domain.l == [10, 2, 3]


def test_inputs_do_not_grant_writes(make_engine):
    engine = make_engine({"domain": {"a": 1}})

    @process(inputs=["domain.a"])
    def write_input(ctx):
        ctx.domain.a = 2

    with pytest.raises(ContractViolationError, match="domain.a"):
        engine.execute(write_input)


def test_wildcard_outputs(make_engine):
    engine = make_engine({"domain": {"users": {"a": {"name": "x", "age": 1}}}})

    @process(outputs=["domain.users.*.name"])
    def rename(ctx):
        ctx.domain.users.a.name = "y"

    engine.execute(rename)
    assert engine.state.domain.users.a.name == "y"

    @process(outputs=["domain.users.*.name"])
    def age(ctx):
        ctx.domain.users.a.age = 2

    with pytest.raises(ContractViolationError, match="domain.users.a.age"):
        engine.execute(age)

    @process(outputs=["domain.**"])
    def anything(ctx):
        ctx.domain.users.a.age = 3
        ctx.domain.top = 1

    engine.execute(anything)
    assert engine.state.domain.users.a.age == 3 and engine.state.domain.top == 1


def test_write_below_missing_creates_nothing(make_engine):
    engine = make_engine({"domain": {"n": 5}})

    @process(outputs=["domain"])
    def below_missing(ctx):
        ctx.domain.missing.x = 1

    with pytest.raises(AttributeError):
        engine.execute(below_missing)

    @process(outputs=["domain"])
    def below_missing_item(ctx):
        ctx.domain["missing"]["x"] = 1

    with pytest.raises(KeyError):
        engine.execute(below_missing_item)

    @process(outputs=["domain"])
    def below_scalar(ctx):
        ctx.domain.n["x"] = 1

    with pytest.raises(TypeError):
        engine.execute(below_scalar)
    assert engine.state.version == 0 and engine.state.domain == {"n": 5}


def test_written_view_writes_its_content(make_engine):
    engine = make_engine({"domain": {"src": {"a": [1, 2]}, "dst": None}})

    @process(inputs=["domain.src"], outputs=["domain.src", "domain.dst"])
    def copy_view(ctx):
        ctx.domain.src.a.append(3)
        ctx.domain.dst = ctx.domain.src
        ctx.domain.src.a.append(4)  # after the copy: does not reach dst

    engine.execute(copy_view)
    assert engine.state.domain.dst == {"a": [1, 2, 3]}
    assert engine.state.domain.src == {"a": [1, 2, 3, 4]}


def test_views_die_with_their_transaction(make_engine):
    engine = make_engine({"domain": {"m": {"k": 1}}})
    leaked = {}

    @process(inputs=["domain.m"], outputs=["domain.m"])
    def leak(ctx):
        leaked["ctx"] = ctx
        leaked["m"] = ctx.domain.m
        return None

    engine.execute(leak)
    with pytest.raises(ContextError, match="ended"):
        leaked["m"]["k"]
    with pytest.raises(ContextError):
        leaked["m"]["k"] = 2
    with pytest.raises(ContextError):
        leaked["ctx"].domain
    assert engine.state.domain.m == {"k": 1}
