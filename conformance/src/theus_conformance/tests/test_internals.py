"""spec/01, spec/04 — internals: private-looking keys read the stored value, no attribute of a
view, ``ctx`` or snapshot reaches the transaction, snapshots cannot be changed by back doors."""

from __future__ import annotations

import contextlib

import pytest

from theus import ContractViolationError, process

PRIVATE = ["_path", "_tx", "_node", "_get", "_whole", "_write", "_s", "_abc_impl", "_state"]


def _context():
    inner = {name: f"v{name}" for name in PRIVATE}
    return {
        "domain": {"m": dict(inner, nested={"_tx": {"_node": 1}}), "lst": [1, 2], "x": 0},
        "global": {},
    }


@pytest.mark.parametrize("name", PRIVATE)
def test_private_keys_read_the_stored_value_on_snapshot_views(make_engine, name):
    engine = make_engine(_context())
    view = engine.state.domain.m
    assert getattr(view, name) == f"v{name}"
    assert view[name] == f"v{name}"
    assert view.nested._tx._node == 1


@pytest.mark.parametrize("name", PRIVATE)
def test_private_keys_read_the_stored_value_in_a_process(make_engine, name):
    engine = make_engine(_context())
    seen = {}

    @process(inputs=["domain.m.**"], outputs=["domain.m.**"])
    def proc(ctx):
        seen["value"] = getattr(ctx.domain.m, name)
        setattr(ctx.domain.m, name, "new")
        seen["nested"] = ctx.domain.m.nested._tx._node

    engine.register(proc)
    engine.execute(proc)
    assert seen == {"value": f"v{name}", "nested": 1}
    assert engine.state.get(f"domain.m.{name}") == "new"


@pytest.mark.parametrize("name", PRIVATE)
def test_missing_private_keys_are_attribute_errors(make_engine, name):
    engine = make_engine(_context())
    for obj in (engine.state.domain, engine.state.domain.lst):
        assert not hasattr(obj, name)
        with pytest.raises(AttributeError):
            object.__getattribute__(obj, name)
    assert not hasattr(engine.state, name)


def _reaches_internals(obj):
    """Names of attributes (ordinary or via object.__getattribute__) that lead to an object
    with a ``contract``, a ``commit`` or a ``base`` attribute: a transaction or an engine."""
    names = set(dir(obj)) | {
        "_tx",
        "_s",
        "_engine",
        "_views",
        "tx",
        "txn",
        "engine",
        "_node",
        "_path",
        "_current",
    }
    found = []
    for name in sorted(names):
        if name.startswith("__") and name.endswith("__"):
            continue
        for getter in (getattr, object.__getattribute__):
            try:
                value = getter(obj, name)
            except Exception:
                continue
            if callable(value) and not hasattr(value, "contract"):
                continue
            if any(hasattr(value, a) for a in ("contract", "commit", "base", "_tx")):
                found.append(name)
    return found


def test_no_attribute_reaches_the_transaction(make_engine):
    engine = make_engine(_context())
    found = {}

    @process(inputs=["domain.**"], outputs=["domain.x"])
    def proc(ctx):
        for label, obj in [
            ("ctx", ctx),
            ("domain", ctx.domain),
            ("m", ctx.domain.m),
            ("lst", ctx.domain.lst),
        ]:
            found[label] = _reaches_internals(obj)

    engine.register(proc)
    engine.execute(proc)
    for label, obj in [
        ("snapshot", engine.state),
        ("view", engine.state.domain),
        ("list", engine.state.domain.lst),
    ]:
        found[label] = _reaches_internals(obj)
    assert found == {k: [] for k in found}


@pytest.mark.parametrize(
    "attack",
    [
        lambda ctx: setattr(ctx._tx, "contract", None),
        lambda ctx: object.__getattribute__(ctx, "_tx").__setattr__("contract", None),
        lambda ctx: setattr(ctx.domain._tx, "contract", None),
        lambda ctx: object.__getattribute__(ctx.domain, "_tx"),
        lambda ctx: object.__getattribute__(ctx.domain.lst, "_tx"),
    ],
)
def test_a_process_cannot_switch_its_contract_off(make_engine, attack):
    engine = make_engine(_context())

    @process(inputs=["domain.x"], outputs=["domain.x"])
    def proc(ctx):
        with pytest.raises(AttributeError):
            attack(ctx)
        ctx.domain.m = {"hacked": True}  # still outside the outputs

    engine.register(proc)
    with pytest.raises(ContractViolationError):
        engine.execute(proc)
    assert engine.state.version == 0


@pytest.mark.parametrize("name", ["version", "root", "signal_index", "_s", "domain", "x"])
def test_object_setattr_cannot_change_a_snapshot(make_engine, name):
    engine = make_engine(_context())
    state = engine.state
    before = (state.version, state.to_dict())
    with pytest.raises((AttributeError, TypeError)):
        object.__setattr__(state, name, 99)
    with pytest.raises((AttributeError, TypeError)):
        object.__delattr__(state, name)
    assert (state.version, state.to_dict()) == before
    assert (engine.state.version, engine.state.to_dict()) == before


def test_init_again_cannot_change_a_snapshot(make_engine):
    engine = make_engine(_context())
    state = engine.state
    other = make_engine({"domain": {"y": 1}, "global": {}}).state
    before = (state.version, state.to_dict())
    for args in [(), (99,), (99, {}, ()), (99, getattr(other, "root", None), ())]:
        with contextlib.suppress(TypeError):
            type(state).__init__(state, *args)
        assert (state.version, state.to_dict()) == before
    assert engine.state.version == 0


@pytest.mark.parametrize("name", ["_s", "_path", "_tx", "_node"])
def test_object_setattr_cannot_change_a_view(make_engine, name):
    engine = make_engine(_context())
    view = engine.state.domain
    lst = engine.state.domain.lst
    for obj in (view, lst):
        with pytest.raises((AttributeError, TypeError)):
            object.__setattr__(obj, name, ("domain",))
    with contextlib.suppress(TypeError):
        type(view).__init__(view, ("global",), None, None)
    assert view.to_dict() == _context()["domain"]
    assert lst.to_list() == [1, 2]
