"""spec/13 — backend discovery: explicit name, ``THEUS_BACKEND``, ``module:attr``, priority,
errors that list what is installed."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import sys
import textwrap

import pytest

import theus
from theus import BackendInfo, BackendLoadError, BackendNotFoundError, SignalHub, TheusEngine

GROUP = "theus.backends"


def _entry_point(name):
    for ep in importlib.metadata.entry_points(group=GROUP):
        if ep.name == name:
            return ep
    return None


def _expected_name(backend):
    """The ``engine.backend`` a selection by ``backend`` must report."""
    if ":" in backend:
        module, _, attr = backend.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj.name
    return backend


def _registered(backend):
    if ":" in backend:
        pytest.skip("the backend under test is an unpublished module:attr backend")
    ep = _entry_point(backend)
    assert ep is not None, f"{backend!r} is not in the entry-point group {GROUP!r}"
    return ep


@pytest.fixture
def engines():
    built = []
    yield built
    for engine in built:
        engine.close()


def test_explicit_name(backend, engines):
    engine = TheusEngine(backend=backend)
    engines.append(engine)
    assert engine.backend == _expected_name(backend)


def test_environment_variable(backend, engines, monkeypatch):
    monkeypatch.setenv("THEUS_BACKEND", backend)
    engine = TheusEngine()
    engines.append(engine)
    assert engine.backend == _expected_name(backend)
    hub = SignalHub()
    rx = hub.subscribe()
    assert hub.publish("via env") == 1
    assert rx.try_recv() == "via env"


def test_explicit_argument_beats_environment(backend, engines, monkeypatch):
    monkeypatch.setenv("THEUS_BACKEND", "theus-conformance-no-such-backend")
    engine = TheusEngine(backend=backend)
    engines.append(engine)
    assert engine.backend == _expected_name(backend)


def test_module_attr_escape_hatch(backend, engines):
    ep = _registered(backend)
    engine = TheusEngine(backend=ep.value)
    engines.append(engine)
    assert engine.backend == backend
    hub = SignalHub(backend=ep.value)
    rx = hub.subscribe()
    hub.publish(1)
    assert rx.try_recv() == 1


def test_backend_object(backend, engines):
    ep = _registered(backend)
    obj = ep.load()
    assert obj.name == backend
    assert isinstance(obj.capabilities, frozenset)
    assert isinstance(obj.priority, int) and isinstance(obj.version, str)
    engine = TheusEngine(backend=obj)
    engines.append(engine)
    assert engine.backend == backend


def test_unknown_name_lists_installed_backends(backend, monkeypatch):
    monkeypatch.delenv("THEUS_BACKEND", raising=False)
    installed = [info.name for info in theus.backends()]
    with pytest.raises(BackendNotFoundError) as info:
        TheusEngine(backend="theus-conformance-no-such-backend")
    message = str(info.value)
    assert isinstance(info.value, LookupError)
    assert "theus-conformance-no-such-backend" in message
    for name in installed:
        assert name in message, f"installed backend {name!r} not listed in: {message!r}"
    assert "install" in message
    with pytest.raises(BackendNotFoundError):
        SignalHub(backend="theus-conformance-no-such-backend")


@pytest.mark.parametrize("known", ["rust", "reference"])
def test_missing_first_party_backend_gives_pip_hint(backend, known):
    if any(info.name == known for info in theus.backends()):
        pytest.skip(f"{known!r} is installed here")
    with pytest.raises(BackendNotFoundError, match=f"pip install theus-{known}"):
        TheusEngine(backend=known)


def test_unknown_name_in_environment(backend, monkeypatch):
    monkeypatch.setenv("THEUS_BACKEND", "theus-conformance-no-such-backend")
    with pytest.raises(BackendNotFoundError, match="theus-conformance-no-such-backend"):
        TheusEngine()


def test_module_attr_that_fails_to_import(backend):
    with pytest.raises(BackendLoadError) as info:
        TheusEngine(backend="theus_conformance_no_such_module:backend")
    assert isinstance(info.value, ImportError)
    assert info.value.__cause__ is not None
    assert "theus_conformance_no_such_module" in str(info.value)


def test_module_attr_that_is_not_a_backend(backend):
    with pytest.raises(BackendLoadError, match="json"):
        TheusEngine(backend="json:dumps")


def test_backends_listing(backend, backend_info):
    infos = theus.backends()
    assert isinstance(infos, tuple)
    assert all(isinstance(i, BackendInfo) for i in infos)
    priorities = [i.priority for i in infos]
    assert priorities == sorted(priorities, reverse=True)
    assert theus.backends() == infos  # cached
    assert theus.backends(refresh=True) == infos
    if ":" in backend:
        return
    [mine] = [i for i in infos if i.name == backend]
    assert mine.error is None
    assert mine.version == backend_info.version
    assert isinstance(mine.capabilities, frozenset)
    assert mine.capabilities == backend_info.capabilities
    assert mine.priority == backend_info.priority


def test_default_is_highest_priority_that_loads(backend, engines, monkeypatch):
    monkeypatch.delenv("THEUS_BACKEND", raising=False)
    loadable = [i for i in theus.backends() if i.error is None]
    engine = TheusEngine()
    engines.append(engine)
    assert engine.backend == loadable[0].name


# ---------------------------------------------------------------------------------------------
# broken installations, simulated with a throw-away distribution on sys.path


@pytest.fixture
def fake_distributions(tmp_path):
    """Installs (on sys.path, for this test only) distributions registering a backend whose
    module does not exist (with the highest priority it could claim) and one whose entry point
    is not a backend."""
    dist = tmp_path / "theus_conformance_fake_backends-0.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: theus-conformance-fake-backends\nVersion: 0.0.0\n"
    )
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
        [{GROUP}]
        zz-broken-import = theus_conformance_missing_module:backend
        zz-not-a-backend = json:dumps
        """)
    )
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        importlib.invalidate_caches()
        theus.backends(refresh=True)


def test_broken_backends_are_reported_not_fatal(
    backend, engines, fake_distributions, monkeypatch, caplog
):
    monkeypatch.delenv("THEUS_BACKEND", raising=False)
    infos = {i.name: i for i in theus.backends(refresh=True)}
    assert infos["zz-broken-import"].error, "a backend that fails to import must carry an error"
    assert infos["zz-not-a-backend"].error, "an entry point that is not a backend must carry one"
    with pytest.raises(BackendLoadError) as info:
        TheusEngine(backend="zz-broken-import")
    assert info.value.__cause__ is not None
    with pytest.raises(BackendLoadError):
        TheusEngine(backend="zz-not-a-backend")
    with caplog.at_level(logging.WARNING, logger="theus.backends"):
        theus.backends(refresh=True)
        engine = TheusEngine()
        engines.append(engine)
    assert engine.backend not in ("zz-broken-import", "zz-not-a-backend")
    assert any(
        r.name.startswith("theus.backends") and "zz-broken-import" in r.getMessage()
        for r in caplog.records
    ), "a skipped backend must be logged on 'theus.backends'"
