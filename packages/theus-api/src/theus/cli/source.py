"""Where ``theus`` gets its engine and processes from (spec/20 §1, ``SOURCE``)."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..contracts import ProcessSpec

__all__ = ["SetupError", "Source", "load_processes", "load_state", "make_engine"]


class SetupError(Exception):
    """The context, the state file, a processes module or a backend cannot be loaded (exit 3)."""


@dataclass(frozen=True)
class Source:
    """The ``SOURCE`` options of a command."""

    context: str | None = None
    state: str | None = None
    processes: tuple[str, ...] = ()
    backend: str | None = None


@contextmanager
def _importable_cwd() -> Iterator[None]:
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


@contextmanager
def _backend_env(backend: str | None) -> Iterator[None]:
    if backend is None:
        yield
        return
    old = os.environ.get("THEUS_BACKEND")
    os.environ["THEUS_BACKEND"] = backend
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("THEUS_BACKEND", None)
        else:
            os.environ["THEUS_BACKEND"] = old


def _import(module: str) -> Any:
    with _importable_cwd():
        try:
            return importlib.import_module(module)
        except Exception as exc:
            raise SetupError(
                f"cannot import module {module!r}: {type(exc).__name__}: {exc}"
            ) from exc


def _engine_class() -> Any:
    from ..engine import TheusEngine

    return TheusEngine


def _from_context(spec: str, backend: str | None) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SetupError(f"--context must be MODULE:ATTR, not {spec!r}")
    engine_cls = _engine_class()
    with _backend_env(backend):
        obj = _import(module_name)
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise SetupError(f"module {module_name!r} has no attribute {attr!r}") from None
        if not isinstance(obj, engine_cls):
            if not callable(obj):
                raise SetupError(
                    f"--context {spec}: expected a TheusEngine or a zero-argument callable "
                    f"returning one, not {type(obj).__name__}"
                )
            try:
                obj = obj()
            except Exception as exc:
                raise SetupError(
                    f"--context {spec}: the factory raised {type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(obj, engine_cls):
                raise SetupError(
                    f"--context {spec}: the factory returned {type(obj).__name__}, "
                    "not a TheusEngine"
                )
    if backend is not None and obj.backend != backend:
        raise SetupError(
            f"--context {spec}: the engine uses backend {obj.backend!r}, not {backend!r}"
        )
    return obj


def load_state(path: str) -> dict[str, Any]:
    """The initial context in a ``.json`` or ``.yaml``/``.yml`` file."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise SetupError(f"cannot read the state file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SetupError(f"{path}: the state file is not valid UTF-8") from None
    if path.endswith((".yaml", ".yml")):
        yaml: Any = importlib.import_module("yaml")

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f":{where.line + 1}:{where.column + 1}" if where is not None else ""
            raise SetupError(
                f"{path}{at}: not valid YAML: {getattr(exc, 'problem', exc)}"
            ) from None
    elif path.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SetupError(
                f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
            ) from None
    else:
        raise SetupError(f"{path}: a state file must end in .json, .yaml or .yml")
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise SetupError(f"{path}: the state must be a mapping of namespace names to mappings")
    return data


def load_processes(modules: Sequence[str]) -> dict[str, ProcessSpec]:
    """Every ``@process`` function defined at the top level of ``modules``, by name, in
    definition order."""
    found: dict[str, ProcessSpec] = {}
    for module_name in modules:
        module = _import(module_name)
        for value in vars(module).values():
            spec = getattr(value, "__theus_process__", None)
            if not isinstance(spec, ProcessSpec):
                continue
            other = found.get(spec.name)
            if other is not None and other.func is not spec.func:
                raise SetupError(
                    f"two processes named {spec.name!r} (in {other.func.__module__} and "
                    f"{spec.func.__module__})"
                )
            found[spec.name] = spec
    return found


def make_engine(source: Source) -> Any:
    """The engine of ``source``: ``--context`` or ``--state`` + ``--processes``."""
    if source.context is not None:
        return _from_context(source.context, source.backend)
    if source.state is None:
        raise SetupError("no engine: give --context MODULE:ATTR or --state FILE --processes MODULE")
    state = load_state(source.state)
    specs = load_processes(source.processes)
    from ..errors import TheusError

    try:
        engine = _engine_class()(context=state, backend=source.backend)
    except (TheusError, TypeError, ValueError) as exc:
        raise SetupError(f"cannot create the engine: {exc}") from exc
    try:
        for spec in specs.values():
            engine.register(spec.func)
    except (TheusError, TypeError, ValueError) as exc:
        engine.close()
        raise SetupError(f"cannot register the processes: {exc}") from exc
    return engine


def engine_specs(engine: Any) -> Mapping[str, ProcessSpec]:
    """The processes registered on ``engine``, by name."""
    registry = getattr(engine, "_by_name", {})
    return {name: entry[0] for name, entry in registry.items()}
