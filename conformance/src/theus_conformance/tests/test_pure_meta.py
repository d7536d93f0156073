"""spec/03 (meta) — a ``pure`` process sees no meta values in whole-container reads, at any
depth, and cannot set, replace, move or delete one; ``effect`` processes see everything."""

from __future__ import annotations

import copy

import pytest

from theus import ContractViolationError, StateUpdate, process


def _context():
    return {
        "domain": {
            "meta_top": "t",
            "x": 1,
            "m": {"a": 1, "meta_audit": "x"},
            "deep": {"inner": {"b": 2, "meta_k": {"z": 1}}},
            "lst": [{"v": 1, "meta_tag": "t"}, {"v": 2}, 3],
            "nested": [[{"meta_n": 1, "w": 1}]],
            "plain": {"p": 1},
            "plain_lst": [1, 2, 3],
            "log_book": [{"meta_in_log": 1}],
        },
        "global": {},
    }


VISIBLE = {
    "x": 1,
    "m": {"a": 1},
    "deep": {"inner": {"b": 2}},
    "lst": [{"v": 1}, {"v": 2}, 3],
    "nested": [[{"w": 1}]],
    "plain": {"p": 1},
    "plain_lst": [1, 2, 3],
    "log_book": [{"meta_in_log": 1}],  # below a log key: log zone, not meta
}


def _run(make_engine, body, semantic="pure"):
    """Run ``body(ctx)`` in a process; return the engine and what ``body`` returned."""
    engine = make_engine(_context())
    out = {}

    @process(inputs=["domain.**"], outputs=["domain.**"], semantic=semantic)
    def proc(ctx):
        out["result"] = body(ctx)

    engine.register(proc)
    engine.execute(proc)
    return engine, out.get("result")


READS = {
    "to_dict": (lambda ctx: ctx.domain.to_dict(), VISIBLE),
    "copy": (lambda ctx: ctx.domain.copy(), VISIBLE),
    "copy.copy": (lambda ctx: copy.copy(ctx.domain), VISIBLE),
    "copy.deepcopy": (lambda ctx: copy.deepcopy(ctx.domain), VISIBLE),
    "keys": (lambda ctx: list(ctx.domain.keys()), sorted(VISIBLE)),
    "iter": (lambda ctx: list(ctx.domain), sorted(VISIBLE)),
    "len": (lambda ctx: len(ctx.domain), len(VISIBLE)),
    "items": (
        lambda ctx: [(k, v if isinstance(v, int) else "view") for k, v in ctx.domain.items()],
        [(k, 1 if k == "x" else "view") for k in sorted(VISIBLE)],
    ),
    "values": (lambda ctx: len(ctx.domain.values()), len(VISIBLE)),
    "eq": (lambda ctx: (ctx.domain == VISIBLE, ctx.domain == _context()["domain"]), (True, False)),
    "in": (lambda ctx: ("meta_top" in ctx.domain, "x" in ctx.domain), (False, True)),
    "nested map to_dict": (lambda ctx: ctx.domain.m.to_dict(), {"a": 1}),
    "nested map len/in": (
        lambda ctx: (len(ctx.domain.m), "meta_audit" in ctx.domain.m, list(ctx.domain.m)),
        (1, False, ["a"]),
    ),
    "nested map eq": (lambda ctx: ctx.domain.m == {"a": 1}, True),
    "two levels": (lambda ctx: ctx.domain.deep.to_dict(), {"inner": {"b": 2}}),
    "two levels keys": (lambda ctx: ctx.domain.deep.inner.keys(), ["b"]),
    "list to_list": (lambda ctx: ctx.domain.lst.to_list(), [{"v": 1}, {"v": 2}, 3]),
    "list eq": (lambda ctx: ctx.domain.lst == [{"v": 1}, {"v": 2}, 3], True),
    "list in/index/count": (
        lambda ctx: (
            {"v": 1} in ctx.domain.lst,
            ctx.domain.lst.index({"v": 1}),
            ctx.domain.lst.count({"v": 1}),
        ),
        (True, 0, 1),
    ),
    "list item": (
        lambda ctx: (
            ctx.domain.lst[0].to_dict(),
            len(ctx.domain.lst[0]),
            "meta_tag" in ctx.domain.lst[0],
        ),
        ({"v": 1}, 1, False),
    ),
    "list iteration": (
        lambda ctx: [dict(i) for i in list(ctx.domain.lst)[:2]],
        [{"v": 1}, {"v": 2}],
    ),
    "list in list": (lambda ctx: ctx.domain.nested.to_list(), [[{"w": 1}]]),
    "list in list item": (lambda ctx: ctx.domain.nested[0][0].to_dict(), {"w": 1}),
    "list copy": (lambda ctx: copy.deepcopy(ctx.domain.lst), [{"v": 1}, {"v": 2}, 3]),
    "repr": (
        lambda ctx: [
            k
            for k in ("meta_top", "meta_audit", "meta_tag", "meta_k", "meta_n")
            if k in repr(ctx.domain) + repr(ctx.domain.lst) + repr(ctx.domain.nested)
        ],
        [],
    ),
}


@pytest.mark.parametrize("name", sorted(READS))
def test_pure_whole_reads_hide_meta(make_engine, name):
    body, expected = READS[name]
    _, result = _run(make_engine, body)
    assert result == expected


EFFECT_READS = {
    "to_dict": (lambda ctx: ctx.domain.to_dict(), _context()["domain"]),
    "copy.deepcopy": (lambda ctx: copy.deepcopy(ctx.domain), _context()["domain"]),
    "len": (lambda ctx: len(ctx.domain), len(_context()["domain"])),
    "in": (lambda ctx: "meta_top" in ctx.domain and "meta_audit" in ctx.domain.m, True),
    "eq": (lambda ctx: ctx.domain == _context()["domain"], True),
    "list item": (lambda ctx: ctx.domain.lst[0].to_dict(), {"v": 1, "meta_tag": "t"}),
    "nested list": (lambda ctx: ctx.domain.nested.to_list(), [[{"meta_n": 1, "w": 1}]]),
    "repr": (lambda ctx: "meta_top" in repr(ctx.domain), True),
}


@pytest.mark.parametrize("name", sorted(EFFECT_READS))
def test_effect_whole_reads_see_meta(make_engine, name):
    body, expected = EFFECT_READS[name]
    _, result = _run(make_engine, body, semantic="effect")
    assert result == expected


@pytest.mark.parametrize(
    "body",
    [
        lambda ctx: ctx.domain.meta_top,
        lambda ctx: ctx.domain["meta_top"],
        lambda ctx: ctx.domain.m.meta_audit,
        lambda ctx: ctx.domain.lst[0]["meta_tag"],
        lambda ctx: ctx.domain.deep.inner.meta_k,
        lambda ctx: ctx.domain.nested[0][0].meta_n,
    ],
)
def test_pure_direct_meta_reads_stay_violations(make_engine, body):
    with pytest.raises(ContractViolationError):
        _run(make_engine, body)


def _assign(target, key, value):
    def body(ctx):
        node = ctx.domain
        for seg in target:
            node = node[seg]
        node[key] = value

    return body


REFUSED = {
    "assign map with meta": lambda ctx: setattr(ctx.domain, "new", {"meta_x": 1}),
    "assign deep meta": lambda ctx: setattr(ctx.domain, "new", {"a": {"b": [{"meta_x": 1}]}}),
    "assign list with meta": lambda ctx: setattr(ctx.domain, "new", [{"meta_x": 1}]),
    "assign into nested map": lambda ctx: setattr(ctx.domain.plain, "q", {"meta_q": 1}),
    "replace map holding meta": lambda ctx: setattr(ctx.domain, "m", {"a": 2}),
    "replace by leaf": lambda ctx: setattr(ctx.domain, "deep", 5),
    "replace inner": lambda ctx: setattr(ctx.domain.deep, "inner", {}),
    "replace list holding meta": lambda ctx: setattr(ctx.domain, "lst", []),
    "replace namespace": lambda ctx: setattr(ctx, "domain", {"x": 1}),
    "update": lambda ctx: ctx.domain.update({"m": 1}),
    "del attr": lambda ctx: delattr(ctx.domain, "m"),
    "del item": lambda ctx: ctx.domain.__delitem__("deep"),
    "pop": lambda ctx: ctx.domain.pop("m"),
    "map clear": lambda ctx: ctx.domain.m.clear(),
    "namespace clear": lambda ctx: ctx.domain.clear(),
    "list pop first": lambda ctx: ctx.domain.lst.pop(0),
    "list remove": lambda ctx: ctx.domain.lst.remove({"v": 1}),
    "list clear": lambda ctx: ctx.domain.lst.clear(),
    "list sort": lambda ctx: ctx.domain.lst.sort(key=lambda v: 0 if isinstance(v, int) else 1),
    "list reverse": lambda ctx: ctx.domain.lst.reverse(),
    "list insert": lambda ctx: ctx.domain.lst.insert(0, 9),
    "list del": lambda ctx: ctx.domain.lst.__delitem__(0),
    "list del slice": lambda ctx: ctx.domain.lst.__delitem__(slice(0, 1)),
    "list setitem": lambda ctx: ctx.domain.lst.__setitem__(0, {"v": 1}),
    "list append meta": lambda ctx: ctx.domain.plain_lst.append({"meta_x": 1}),
    "list extend meta": lambda ctx: ctx.domain.plain_lst.extend([{"q": {"meta_x": 1}}]),
    "inner list clear": lambda ctx: ctx.domain.nested[0].clear(),
    "outer list pop": lambda ctx: ctx.domain.nested.pop(),
    "write a view holding meta": lambda ctx: setattr(ctx.domain, "copy_m", ctx.domain.m),
    "write a deep view": lambda ctx: setattr(ctx.domain, "plain", ctx.domain.deep),
    "write a list view": lambda ctx: setattr(ctx.domain, "copy_l", ctx.domain.lst),
    "write a view inside a map": lambda ctx: setattr(ctx.domain, "w", {"k": [ctx.domain.m]}),
    "return data=": lambda ctx: StateUpdate(data={"domain.m": 1}),
    "return data= with meta": lambda ctx: StateUpdate(data={"domain.new": {"meta_z": 1}}),
    "return delete=": lambda ctx: StateUpdate(delete=["domain.deep"]),
    "return delete= item": lambda ctx: StateUpdate(delete=["domain.lst.0"]),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_pure_writes_touching_meta_are_refused(make_engine, name):
    engine = make_engine(_context())

    @process(inputs=["domain.**"], outputs=["domain.**"], semantic="pure")
    def proc(ctx):
        return REFUSED[name](ctx)

    engine.register(proc)
    with pytest.raises(ContractViolationError, match="meta_"):
        engine.execute(proc)
    assert engine.state.version == 0
    assert engine.state.to_dict() == _context()


ALLOWED = {
    "assign plain": (lambda ctx: setattr(ctx.domain, "plain", {"q": 1}), ("plain",), {"q": 1}),
    "leaf beside meta": (
        lambda ctx: setattr(ctx.domain.m, "a", 5),
        ("m",),
        {"a": 5, "meta_audit": "x"},
    ),
    "deep leaf": (
        lambda ctx: setattr(ctx.domain.deep.inner, "b", 3),
        ("deep",),
        {"inner": {"b": 3, "meta_k": {"z": 1}}},
    ),
    "append": (
        lambda ctx: ctx.domain.lst.append({"v": 3}),
        ("lst",),
        [*_context()["domain"]["lst"], {"v": 3}],
    ),
    "pop last": (lambda ctx: ctx.domain.lst.pop(), ("lst",), _context()["domain"]["lst"][:2]),
    "insert at end": (
        lambda ctx: ctx.domain.lst.insert(10, 9),
        ("lst",),
        [*_context()["domain"]["lst"], 9],
    ),
    "set item without meta": (
        lambda ctx: ctx.domain.lst.__setitem__(1, 7),
        ("lst",),
        [{"v": 1, "meta_tag": "t"}, 7, 3],
    ),
    "remove after meta": (
        lambda ctx: ctx.domain.lst.remove({"v": 2}),
        ("lst",),
        [{"v": 1, "meta_tag": "t"}, 3],
    ),
    "delete plain": (lambda ctx: delattr(ctx.domain, "plain"), ("plain",), None),
    "log append": (
        lambda ctx: ctx.domain.log_book.append({"meta_ok": 2}),
        ("log_book",),
        [{"meta_in_log": 1}, {"meta_ok": 2}],
    ),
    "write a plain view": (
        lambda ctx: setattr(ctx.domain, "plain", ctx.domain.plain_lst),
        ("plain",),
        [1, 2, 3],
    ),
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_pure_writes_beside_meta_are_allowed(make_engine, name):
    body, key, expected = ALLOWED[name]
    engine, _ = _run(make_engine, body)
    assert engine.state.version == 1
    got = engine.state.to_dict()["domain"].get(key[0])
    assert got == expected
    assert engine.state.get("domain.meta_top") == "t"


@pytest.mark.parametrize(
    "name",
    [
        "replace map holding meta",
        "del attr",
        "list pop first",
        "list clear",
        "write a view holding meta",
    ],
)
def test_effect_writes_touching_meta_are_allowed(make_engine, name):
    engine = make_engine(_context())

    @process(inputs=["domain.**"], outputs=["domain.**"], semantic="effect")
    def proc(ctx):
        REFUSED[name](ctx)  # (what it returns is not mapped: it wrote in place)

    engine.register(proc)
    engine.execute(proc)
    assert engine.state.version == 1
