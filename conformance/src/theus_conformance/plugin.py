"""pytest plugin of the Theus conformance suite (entry point ``pytest11: theus_conformance``).

What it adds to a pytest run:

* ``--theus-backend NAMES`` — comma-separated backends to test (registered names or
  ``module:attr`` of an unpublished backend); default: every installed backend that loads;
* the ``backend`` fixture — session-scoped and parametrized over those backends, so every test
  using it runs once per backend and its id shows the backend name;
* ``backend_info`` — the :class:`BackendUnderTest` (name, version, priority, capabilities);
* ``make_engine(context=None, **kw)`` — builds ``TheusEngine(..., backend=backend)`` and closes
  every engine it built after the test; ``engine`` — one such engine with an empty context;
* the marker ``@pytest.mark.requires("capability", ...)`` — skips, with the reason, when the
  backend under test does not declare the capability;
* a report-header line listing the backends under test with versions and capabilities.

The plugin never imports a backend module itself: it asks ``theus`` (discovery) and passes the
backend name to ``TheusEngine(backend=...)``. It is inert in pytest runs that do not use its
fixtures (``theus`` is only imported when needed).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

__all__ = ["BackendUnderTest", "selected_backends"]

_ENTRY_POINT_GROUP = "theus.backends"
_SELECTION = pytest.StashKey[dict[str, "BackendUnderTest"]]()


@dataclass(frozen=True)
class BackendUnderTest:
    """A backend selected for this run, as the conformance suite sees it."""

    name: str  # what the tests pass as TheusEngine(backend=...)
    version: str
    priority: int
    capabilities: frozenset[str]
    module_root: str  # the top-level module that provides the backend object

    def describe(self) -> str:
        caps = ", ".join(sorted(self.capabilities)) or "none"
        return f"{self.name} {self.version} (priority {self.priority}; capabilities: {caps})"


# --------------------------------------------------------------------------------------------
# options, markers, header


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("theus", "Theus conformance suite")
    group.addoption(
        "--theus-backend",
        action="store",
        default=None,
        metavar="NAMES",
        help=(
            "comma-separated Theus backends to run the conformance tests against: registered "
            "names (entry-point group 'theus.backends') or 'module:attr' of an unpublished "
            "backend. Default: every installed backend that loads."
        ),
    )

    group.addoption(
        "--theus-store",
        action="store",
        default=_DEFAULT_STORES,
        metavar="MODULE:FACTORY,...",
        help=(
            "comma-separated store factories the store conformance tests "
            "(theus_conformance.stores) run against; default: SQLite and a PostgreSQL server "
            "the tests start themselves (skipped with the reason where no server binary exists)"
        ),
    )


_DEFAULT_STORES = "theus_conformance.stores:sqlite_store,theus_conformance.stores:postgres_store"


def _parametrize_stores(metafunc: pytest.Metafunc) -> None:
    if "store_factory" in metafunc.fixturenames:
        option = metafunc.config.getoption("--theus-store", default=_DEFAULT_STORES)
        names = [n.strip() for n in str(option).split(",") if n.strip()]
        metafunc.parametrize("store_factory", names, ids=[n.rpartition(":")[2] for n in names])


@pytest.fixture
def store_under_test(store_factory: str, tmp_path: Any) -> Any:
    """The :class:`theus_conformance.stores.StoreUnderTest` for this test's directory (a
    test whose store cannot run here — no PostgreSQL server binary — is skipped)."""
    from .stores import PostgresUnavailable, resolve_factory

    try:
        return resolve_factory(store_factory)(tmp_path)
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*capabilities): skip unless the Theus backend under test declares every "
        "named capability (e.g. 'threads', 'async', 'native-execute')",
    )
    if config.getoption("--theus-backend", default=None):
        selected_backends(config)  # a bad --theus-backend is a usage error, before collection


def _describe_selection(config: pytest.Config) -> list[str]:
    selection = selected_backends(config)
    if not selection:
        return ["theus conformance: no Theus backend installed"]
    return ["theus conformance backends under test:"] + [
        f"  {b.describe()}" for b in selection.values()
    ]


def pytest_report_header(config: pytest.Config) -> list[str]:
    # With --theus-backend the selection is known (and validated) before collection. Without
    # it, the plugin may be loaded into a run that has nothing to do with Theus (it is a
    # pytest11 plugin): the backends are then described after collection, and only if
    # collected tests use them.
    if config.getoption("--theus-backend"):
        return _describe_selection(config)
    return []


def pytest_report_collectionfinish(
    config: pytest.Config, start_path: Any, items: list[pytest.Item]
) -> list[str]:
    if config.getoption("--theus-backend"):
        return []
    uses_backend = any(
        "backend" in getattr(getattr(item, "callspec", None), "params", {}) for item in items
    )
    return _describe_selection(config) if uses_backend else []


# --------------------------------------------------------------------------------------------
# backend selection


def _entry_point_root(name: str) -> str | None:
    for ep in importlib.metadata.entry_points(group=_ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.value.split(":", 1)[0].split(".", 1)[0]
    return None


def _installed_summary(infos: Any) -> str:
    parts = []
    for info in infos:
        state = "ok" if info.error is None else f"fails to load: {info.error}"
        parts.append(f"{info.name} ({state})")
    return ", ".join(parts) or "none"


def _from_object(name: str, obj: Any, root: str) -> BackendUnderTest:
    return BackendUnderTest(
        name=name,
        version=str(getattr(obj, "version", "?")),
        priority=int(getattr(obj, "priority", 0)),
        capabilities=frozenset(getattr(obj, "capabilities", frozenset())),
        module_root=root,
    )


def _resolve(requested: str, infos: Any) -> BackendUnderTest:
    if ":" in requested:  # an unpublished backend, imported directly (spec 13, form 3)
        module_name, _, attr = requested.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise pytest.UsageError(
                f"--theus-backend {requested!r}: cannot import the backend object: {exc!r}"
            ) from exc
        return _from_object(requested, obj, module_name.split(".", 1)[0])
    for info in infos:
        if info.name == requested:
            if info.error is not None:
                raise pytest.UsageError(
                    f"--theus-backend {requested!r}: the backend is installed but fails to load: "
                    f"{info.error}"
                )
            return BackendUnderTest(
                name=info.name,
                version=str(info.version),
                priority=int(info.priority),
                capabilities=frozenset(info.capabilities),
                module_root=_entry_point_root(info.name) or "?",
            )
    raise pytest.UsageError(
        f"--theus-backend {requested!r}: no such Theus backend is installed; installed: "
        f"{_installed_summary(infos)}. Install it (e.g. 'pip install theus-reference') or name "
        "an unpublished backend as 'module:attr'."
    )


def selected_backends(config: pytest.Config) -> dict[str, BackendUnderTest]:
    """The backends this run tests, by the name the tests pass as ``backend=`` (cached)."""
    if _SELECTION in config.stash:
        return config.stash[_SELECTION]
    try:
        import theus
    except ImportError as exc:
        raise pytest.UsageError(
            f"theus conformance: cannot import 'theus' (pip install theus-api): {exc}"
        ) from exc
    infos = theus.backends()
    requested = config.getoption("--theus-backend")
    selection: dict[str, BackendUnderTest] = {}
    if requested:
        for name in (n.strip() for n in requested.split(",")):
            if name and name not in selection:
                selection[name] = _resolve(name, infos)
    else:
        for info in infos:
            if info.error is None:
                selection[info.name] = _resolve(info.name, infos)
    config.stash[_SELECTION] = selection
    return selection


def _is_our_backend_fixture(metafunc: pytest.Metafunc) -> bool:
    defs = getattr(metafunc, "_arg2fixturedefs", {}).get("backend")
    if not defs:
        return False
    func = getattr(defs[-1], "func", None)
    return getattr(func, "__module__", None) == __name__


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    _parametrize_stores(metafunc)
    if "backend" not in metafunc.fixturenames or not _is_our_backend_fixture(metafunc):
        return
    selection = selected_backends(metafunc.config)
    if not selection:
        raise pytest.UsageError(
            "theus conformance: no Theus backend is installed that loads "
            "(pip install theus-reference, or pass --theus-backend module:attr)"
        )
    names = list(selection)
    metafunc.parametrize("backend", names, ids=names, indirect=True, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marks = list(item.iter_markers("requires"))
        callspec = getattr(item, "callspec", None)
        if not marks or callspec is None or "backend" not in callspec.params:
            continue
        under_test = selected_backends(config).get(callspec.params["backend"])
        if under_test is None:
            continue
        needed = [cap for mark in marks for cap in mark.args]
        missing = [cap for cap in needed if cap not in under_test.capabilities]
        if missing:
            declared = ", ".join(sorted(under_test.capabilities)) or "none"
            item.add_marker(
                pytest.mark.skip(
                    reason=(
                        f"backend {under_test.name!r} does not declare capability "
                        f"{', '.join(repr(m) for m in missing)} (it declares: {declared})"
                    )
                )
            )


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test (parametrized by ``--theus-backend``)."""
    param = getattr(request, "param", None)
    if param is None:
        raise pytest.UsageError("the 'backend' fixture was not parametrized by theus_conformance")
    return str(param)


@pytest.fixture(scope="session")
def backend_info(request: pytest.FixtureRequest, backend: str) -> BackendUnderTest:
    """Name, version, priority, capabilities and module root of the backend under test."""
    return selected_backends(request.config)[backend]


@pytest.fixture
def make_engine(backend: str) -> Iterator[Callable[..., Any]]:
    """Factory: ``make_engine(context=None, **kw)`` -> a ``TheusEngine`` on the backend under
    test; every engine built is closed after the test."""
    from theus import ContextError, TheusEngine

    built: list[Any] = []

    def factory(context: Any = None, **kw: Any) -> Any:
        kw.setdefault("backend", backend)
        engine = TheusEngine(context=context, **kw)
        built.append(engine)
        return engine

    yield factory
    for engine in reversed(built):
        with contextlib.suppress(ContextError):  # closed by the test already
            engine.close()


@pytest.fixture
def engine(make_engine: Callable[..., Any]) -> Any:
    """A ``TheusEngine`` with an empty context on the backend under test."""
    return make_engine()
