"""What ``TheusEngine`` needs to accept Theus 3 programs (spec/19): context objects and namespace
aliases, positional process arguments, the per-call ``retries=`` override, module scanning.

Everything here either gives a Theus 3 program the result it had there or raises before
anything commits; nothing silently does something else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import inspect
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ..contracts import ProcessSpec
from ..errors import ContextError

__all__ = [
    "MAX_CALL_RETRIES",
    "NAMESPACE_ALIASES",
    "as_context",
    "bind_positional",
    "call_retries",
    "check_timeout",
    "method_name_hints",
    "scan_modules",
]

_log = logging.getLogger("theus")

#: Theus 3 spellings of namespace names in a context (spec/19).
NAMESPACE_ALIASES = {"domain_ctx": "domain", "global_ctx": "global", "global_": "global"}

#: The most re-runs one ``execute(..., retries=n)`` call may ask for (spec/19).
MAX_CALL_RETRIES = 1000

#: Methods of the map views: ``ctx.domain.items`` is the method, not the key (every other name
#: read as an attribute of a map view is its key).
VIEW_METHODS = frozenset(
    {
        "clear", "copy", "get", "items", "keys", "pop", "popitem", "setdefault", "to_dict",
        "update", "values",
    }
)  # fmt: skip


def _plain(value: Any, depth: int = 0) -> Any:
    """A context object as plain data: ``to_dict()``, a Pydantic model (``model_dump()``), a
    dataclass (its fields); containers are walked (bounded: deeper values are kept as they
    are, and storing reports the depth limit or a cycle as usual)."""
    if depth > 64:
        return value
    if isinstance(value, Mapping):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v, depth + 1) for v in value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return _plain(to_dict(), depth + 1)
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return _plain(dump(), depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
        }
    return value


def as_context(context: Any) -> Any:
    """``TheusEngine(context=...)`` as a mapping of namespaces (spec/19).

    An object with ``to_dict()``, a Pydantic model or a dataclass (Theus 3's
    ``BaseSystemContext``) is converted, deeply; its attributes left ``None`` are dropped. In
    a mapping, a namespace given as such an object is converted; mappings are kept as they are. The
    namespace aliases ``domain_ctx``, ``global_ctx`` and ``global_`` become ``domain`` and
    ``global``; an alias given next to its namespace with another value is a ``ContextError``.
    Anything else is returned as it is (the engine's own check reports it).
    """
    if context is None:
        return None
    if isinstance(context, Mapping):
        mapping = {k: v if isinstance(v, Mapping) else _plain(v) for k, v in context.items()}
    else:
        converted = _plain(context)
        if not isinstance(converted, Mapping):
            return context
        mapping = {k: v for k, v in converted.items() if v is not None}
    if not any(k in NAMESPACE_ALIASES for k in mapping):
        return mapping
    out: dict[Any, Any] = {}
    for key, value in mapping.items():
        name = NAMESPACE_ALIASES.get(key, key) if isinstance(key, str) else key
        if name in out and out[name] is not value and out[name] != value:
            raise ContextError(
                f"TheusEngine(context=...) gives namespace {name!r} twice with different "
                f"values (as {name!r} and as its Theus 3 alias); give it once"
            )
        out.setdefault(name, value)
    return out


def check_timeout(value: object, where: str) -> None:
    """Theus 3's ``write_timeout_ms=``: accepted and ignored (spec/19); None or an int > 0."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise TypeError(f"{where}: write_timeout_ms must be a number > 0 or None, not {value!r}")


def bind_positional(spec: ProcessSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Turn ``execute(fn, *args)``'s positional arguments into keywords of ``kwargs`` (in
    place) by the function's signature, after ``ctx`` (spec/19). ``TypeError`` when they do not
    fit, or when the function takes them only by position."""
    try:
        signature = inspect.signature(spec.func)
    except (TypeError, ValueError):
        raise TypeError(
            f"process {spec.name!r}: its signature cannot be read, so positional arguments "
            "cannot be passed; pass keyword arguments"
        ) from None
    params = list(signature.parameters.values())[1:]  # after ctx
    if len(args) > len(params):
        raise TypeError(
            f"process {spec.name!r} takes {len(params)} argument(s) after ctx, "
            f"but {len(args)} were given"
        )
    for param, value in zip(params, args, strict=False):
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise TypeError(
                f"process {spec.name!r}: parameter {param.name!r} cannot be given by keyword; "
                "the engine passes arguments by keyword"
            )
        if param.kind is param.KEYWORD_ONLY:
            raise TypeError(
                f"process {spec.name!r}: parameter {param.name!r} is keyword-only; "
                f"pass {param.name}=..."
            )
        if param.name in kwargs:
            raise TypeError(f"process {spec.name!r} got multiple values for {param.name!r}")
        kwargs[param.name] = value


def call_retries(kwargs: dict[str, Any]) -> int | None:
    """Pop the reserved ``retries=`` keyword of ``execute`` (spec/19): None, or an int in
    ``[0, MAX_CALL_RETRIES]`` that replaces the process's ``retries`` for this call."""
    if "retries" not in kwargs:
        return None
    value = kwargs.pop("retries")
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"execute(..., retries=...) must be an int, not {value!r}")
    if not 0 <= value <= MAX_CALL_RETRIES:
        raise ValueError(
            f"execute(..., retries=...) must be between 0 and {MAX_CALL_RETRIES}, not {value}"
        )
    return value


def method_name_hints(spec: ProcessSpec) -> list[str]:
    """Registration-time hints for contract leaves named like a view method (spec/19):
    ``ctx.domain.items`` is the method, ``ctx.domain["items"]`` the value."""
    hints = []
    for pattern in spec.inputs + spec.outputs:
        segments = pattern.segments
        if len(segments) >= 2 and segments[-1] in VIEW_METHODS:
            parent = ".".join(segments[:-1])
            hints.append(
                f"process {spec.name!r}: {pattern.text!r} ends in {segments[-1]!r}, the name of "
                f"a view method: read it as ctx.{parent}[{segments[-1]!r}], not "
                f"ctx.{pattern.text} (which is the method)"
            )
    for hint in hints:
        _log.warning(hint)
    return hints


def scan_modules(directory: str, register: Callable[[Callable[..., Any]], Any]) -> list[str]:
    """Import every ``.py`` file under ``directory`` (not ``__*``), in sorted order, and pass
    each ``@process`` function it defines to ``register``; return their names (spec/19).

    A missing directory or a module that fails to import raises (``NotADirectoryError``,
    ``ImportError`` naming the file and chaining the cause); nothing is skipped silently.
    """
    if not os.path.isdir(directory):
        raise NotADirectoryError(f"scan_and_register({directory!r}): no such directory")
    found: list[str] = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for file in sorted(files):
            if not file.endswith(".py") or file.startswith("__"):
                continue
            path = os.path.join(root, file)
            digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:12]
            name = f"theus_scanned_{digest}_{file[:-3]}"
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:  # pragma: no cover
                raise ImportError(f"scan_and_register: cannot load {path}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            try:
                module_spec.loader.exec_module(module)
            except Exception as exc:
                del sys.modules[name]
                raise ImportError(
                    f"scan_and_register: importing {path} failed: {type(exc).__name__}: {exc}"
                ) from exc
            for value in list(vars(module).values()):
                spec = getattr(value, "__theus_process__", None)
                if isinstance(spec, ProcessSpec) and getattr(value, "__module__", None) == name:
                    register(value)
                    found.append(spec.name)
    return found
