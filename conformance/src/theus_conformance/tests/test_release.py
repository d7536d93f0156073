"""spec/05 "Release of replaced values": a value no live snapshot can reach is released by the
commit that replaced it (REQUIREMENTS §4.11, issue 6 class 5).

Checked with weak references, without ``gc.collect()``: right after the commit that replaced,
deleted or popped a value, with every older snapshot dropped, nothing may keep it alive (no
overwrite buffer, cache or history of the engine). A snapshot still held keeps its values; when
the last one goes, they go, with no further commit.
"""

from __future__ import annotations

import weakref

import pytest

from theus import process


class Blob:
    """A weakly referenceable leaf."""

    def __init__(self, tag):
        self.tag = tag

    def __repr__(self):
        return f"Blob({self.tag!r})"


def _context():
    return {
        "domain": {
            "x": Blob("x"),
            "heavy_h": Blob("heavy"),
            "lst": [Blob("l0"), Blob("l1"), Blob("l2")],
            "m": {"n": {"v": Blob("nested")}},
            "other": 0,
            **{f"k{i}": i for i in range(200)},
        },
        "global": {"g": Blob("global")},
    }


@process(outputs=["domain.lst"])
def set_first_item(ctx):
    ctx.domain.lst[0] = None


@process(outputs=["domain.lst"])
def pop_last_item(ctx):
    ctx.domain.lst.pop()


@process(outputs=["domain.lst"])
def pop_first_item(ctx):
    ctx.domain.lst.pop(0)


@process(outputs=["domain.m"])
def replace_nested(ctx):
    ctx.domain.m.n.v = "replaced"


@process(outputs=["domain.heavy_h"])
def replace_heavy(ctx):
    ctx.domain.heavy_h = None


@process(outputs=["domain.x"])
def delete_x(ctx):
    del ctx.domain.x


@process(inputs=["domain.other"], outputs=["domain.other"])
def bump_other(ctx):
    ctx.domain.other = ctx.domain.other + 1


def _host(data=None, heavy=None, delete=()):
    def run(engine):
        with engine.transaction() as tx:
            tx.update(data=data, heavy=heavy, delete=delete)

    return run


def _proc(fn):
    def run(engine):
        engine.execute(fn)

    run.via_process = True
    return run


# (what is replaced, where it sits in _context(), how it is replaced)
CASES = [
    ("overwrite a key", "domain.x", _host(data={"domain.x": None})),
    ("delete a key", "domain.x", _host(delete=["domain.x"])),
    ("delete a key in a process", "domain.x", _proc(delete_x)),
    ("overwrite a heavy key", "domain.heavy_h", _host(heavy={"domain.heavy_h": None})),
    ("heavy key in a process", "domain.heavy_h", _proc(replace_heavy)),
    ("overwrite a nested key", "domain.m.n.v", _host(data={"domain.m.n.v": 1})),
    ("nested key in a process", "domain.m.n.v", _proc(replace_nested)),
    ("replace the parent map", "domain.m.n.v", _host(data={"domain.m": {}})),
    ("delete the parent map", "domain.m.n.v", _host(delete=["domain.m"])),
    ("list item set", "domain.lst.0", _proc(set_first_item)),
    ("list item set by path", "domain.lst.1", _host(data={"domain.lst.1": None})),
    ("list pop", "domain.lst.2", _proc(pop_last_item)),
    ("list pop(0)", "domain.lst.0", _proc(pop_first_item)),
    ("replace the whole list", "domain.lst.1", _host(data={"domain.lst": []})),
    ("global namespace", "global.g", _host(data={"global.g": 0})),
]


def _watch(engine, path):
    value = engine.state.get(path)
    assert isinstance(value, Blob), path
    return weakref.ref(value)


@pytest.mark.parametrize(("what", "path", "replace"), CASES, ids=[c[0] for c in CASES])
def test_a_replaced_value_is_released_by_its_commit(backend, make_engine, what, path, replace):
    engine = make_engine(_context())
    ref = _watch(engine, path)
    before = engine.state.version
    replace(engine)
    assert engine.state.version == before + 1
    assert ref() is None, f"{what}: {path} is still alive after the commit that replaced it"


@pytest.mark.parametrize(("what", "path", "replace"), CASES, ids=[c[0] for c in CASES])
def test_a_held_snapshot_keeps_its_values_until_dropped(backend, make_engine, what, path, replace):
    engine = make_engine(_context())
    ref = _watch(engine, path)
    held = engine.state
    replace(engine)
    for _ in range(3):
        engine.execute(bump_other)
    assert held.get(path) is ref(), f"{what}: the old snapshot lost {path}"
    del held
    assert ref() is None, f"{what}: {path} outlived the last snapshot holding it"


@pytest.mark.parametrize("rounds", [1, 9, 40])
def test_several_overwrites_in_a_row_release_each_value(make_engine, rounds):
    # Each key is overwritten `rounds` times, several keys in turn (a small overwrite buffer
    # of a backend fills and cycles); every replaced value dies with its commit.
    keys = [f"k{i}" for i in range(12)]
    engine = make_engine(_context())
    for n in range(rounds):
        for key in keys:
            fresh = Blob((key, n))
            ref = weakref.ref(fresh)
            with engine.transaction() as tx:
                tx.update(data={f"domain.{key}": fresh})
            del fresh
            assert ref() is not None
            previous = _watch(engine, f"domain.{key}")
            with engine.transaction() as tx:
                tx.update(data={f"domain.{key}": n})
            assert previous() is None, f"domain.{key} round {n}"


def test_a_replaced_value_stays_released_through_later_commits(make_engine):
    engine = make_engine(_context())
    ref = _watch(engine, "domain.heavy_h")
    with engine.transaction() as tx:
        tx.update(heavy={"domain.heavy_h": None})
    assert ref() is None
    for _ in range(10):
        engine.execute(bump_other)
    assert ref() is None
    assert engine.state.domain.other == 10
