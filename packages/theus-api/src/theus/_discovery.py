"""Backend discovery through the ``theus.backends`` entry-point group (spec/13)."""

from __future__ import annotations

import importlib
import logging
import os
import threading
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .errors import BackendLoadError, BackendNotFoundError
from .protocols import Backend

__all__ = ["BackendInfo", "backends", "select_backend"]

GROUP = "theus.backends"
ENV_VAR = "THEUS_BACKEND"
_log = logging.getLogger("theus.backends")
_INSTALL_HINTS = {
    "rust": "pip install theus-rust",
    "reference": "pip install theus-reference",
}


@dataclass(frozen=True)
class BackendInfo:
    """What discovery knows of one installed backend."""

    name: str
    priority: int
    version: str
    capabilities: frozenset[str]
    error: str | None = None


class _Registry:
    """The process-wide discovery cache: entry points are scanned and loaded once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, Backend | BaseException] | None = None

    def scan(self, refresh: bool = False) -> dict[str, Backend | BaseException]:
        with self._lock:
            if self._loaded is None or refresh:
                self._loaded = {ep.name: _load(ep) for ep in _entry_points()}
            return dict(self._loaded)


def _entry_points() -> list[EntryPoint]:
    seen: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        seen.setdefault(ep.name, ep)
    return list(seen.values())


def _check(obj: Any, origin: str) -> Backend:
    if isinstance(obj, type):
        obj = obj()
    missing = [
        a
        for a in ("name", "priority", "version", "capabilities", "create_engine", "create_hub")
        if not hasattr(obj, a)
    ]
    if missing:
        raise BackendLoadError(f"{origin} is not a Theus backend: it lacks {', '.join(missing)}")
    return obj  # type: ignore[no-any-return]


def _load(ep: EntryPoint) -> Backend | BaseException:
    try:
        return _check(ep.load(), f"entry point {ep.name!r} ({ep.value})")
    except Exception as exc:  # a broken backend must not break discovery of the others
        _log.warning("Theus backend %r (%s) failed to load: %s", ep.name, ep.value, exc)
        return exc


_REGISTRY = _Registry()


def backends(refresh: bool = False) -> tuple[BackendInfo, ...]:
    """The installed backends, highest priority first (spec/13)."""
    out = []
    for name, b in _REGISTRY.scan(refresh).items():
        if isinstance(b, BaseException):
            out.append(BackendInfo(name, -1, "?", frozenset(), f"{type(b).__name__}: {b}"))
        else:
            out.append(BackendInfo(b.name, b.priority, b.version, frozenset(b.capabilities)))
    return tuple(sorted(out, key=lambda i: (-i.priority, i.name)))


def _describe_installed() -> str:
    infos = backends()
    if not infos:
        return "no backend is installed"
    return "installed: " + ", ".join(
        f"{i.name}" + (f" (broken: {i.error})" if i.error else f" (priority {i.priority})")
        for i in infos
    )


def _hint(name: str) -> str:
    return _INSTALL_HINTS.get(name, f"install the package that provides backend {name!r}")


def _from_spec(spec: str) -> Backend:
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise BackendLoadError(f"cannot load backend {spec!r}: {exc}") from exc
    return _check(obj, f"backend {spec!r}")


def select_backend(requested: Any = None) -> Backend:
    """Pick the backend: explicit argument, then ``$THEUS_BACKEND``, then highest priority."""
    if requested is None:
        requested = os.environ.get(ENV_VAR) or None
    if requested is not None and not isinstance(requested, str):
        return _check(requested, f"backend object {requested!r}")
    if isinstance(requested, str):
        if ":" in requested:
            return _from_spec(requested)
        loaded = _REGISTRY.scan()
        found = loaded.get(requested)
        if found is None:
            raise BackendNotFoundError(
                f"Theus backend {requested!r} is not installed ({_describe_installed()}); "
                f"{_hint(requested)}"
            )
        if isinstance(found, BaseException):
            raise BackendLoadError(
                f"Theus backend {requested!r} is installed but failed to load: {found}"
            ) from found
        return found
    usable = [b for b in _REGISTRY.scan().values() if not isinstance(b, BaseException)]
    if not usable:
        raise BackendNotFoundError(
            f"no usable Theus backend ({_describe_installed()}); install one: "
            "pip install theus-rust (fast) or pip install theus-reference (pure Python)"
        )
    return max(usable, key=lambda b: b.priority)
