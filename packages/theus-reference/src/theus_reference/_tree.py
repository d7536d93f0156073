"""Freezing values into the tree and path-copying updates (spec/01, spec/05)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from theus.errors import ContextError
from theus.paths import Path, format_path
from theus.zones import Zone, zone_of_key

from ._pmap import MISSING, PMap
from ._pvec import PList

__all__ = [
    "child",
    "delete_in",
    "freeze",
    "get_in",
    "index_of",
    "is_node",
    "register_views",
    "set_in",
    "thaw",
    "zone_root",
]


def is_node(value: Any) -> bool:
    """True for the tree's own containers."""
    return type(value) is PMap or type(value) is PList


def zone_root(path: Path) -> tuple[Zone, int]:
    """The zone of ``path`` and the length of the prefix whose last key decided it."""
    for i, segment in enumerate(path):
        zone = zone_of_key(segment)
        if zone is not None:
            return zone, i + 1
    return Zone.DATA, len(path)


def _check_key(key: object, path: Path) -> str:
    if not isinstance(key, str) or not key or "." in key or key in ("*", "**"):
        raise ContextError(
            f"invalid key {key!r} under {format_path(path)!r}: keys are non-empty str without '.'"
        )
    return key


_VIEW_TYPES: tuple[type, ...] = ()


def _view_content(view: Any) -> Any:
    return view


def register_views(types: tuple[type, ...], content: Callable[[Any], Any]) -> None:
    """Let ``freeze`` store views by content when ``unwrap`` leaves them (``_views`` calls it)."""
    global _VIEW_TYPES, _view_content
    _VIEW_TYPES, _view_content = types, content


def freeze(value: Any, path: Path, zone: Zone, unwrap: Callable[[Any], Any]) -> Any:
    """The stored form of ``value`` written at ``path`` (in ``zone``).

    Maps and lists become ``PMap``/``PList`` recursively (the caller's object is copied), sets
    become frozensets, heavy values stay as they are, views are replaced by ``unwrap(view)``.
    """
    if zone is Zone.HEAVY:
        if unwrap(value) is not value or type(value) in _VIEW_TYPES:
            raise ContextError(
                f"cannot store a view at {format_path(path)!r}: heavy values are kept by "
                "reference and a view is a window on a transaction; write "
                "view.to_dict() / view.to_list() instead"
            )
        return value
    unwrapped = unwrap(value)
    if unwrapped is not value:
        return unwrapped
    if type(value) in _VIEW_TYPES:  # a view ``unwrap`` left (the engine's context=): by content
        return _view_content(value)
    if type(value) is PMap or type(value) is PList:
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            key = _check_key(key, path)
            inner = zone
            if zone is Zone.DATA:
                inner = zone_of_key(key) or Zone.DATA
                if inner is Zone.SIGNAL:
                    raise ContextError(
                        f"the map written at {format_path(path)!r} contains signal key {key!r}; "
                        "signals are transient: write the signal path itself"
                    )
            out[key] = freeze(item, (*path, key), inner, unwrap)
        return PMap(out)
    if isinstance(value, list):
        return PList(freeze(item, (*path, str(i)), zone, unwrap) for i, item in enumerate(value))
    if isinstance(value, set):
        return frozenset(value)
    return value


def thaw(value: Any) -> Any:
    """A deep, plain, mutable copy of a stored value."""
    if type(value) is PMap:
        return {k: thaw(v) for k, v in value.items()}
    if type(value) is PList:
        return [thaw(v) for v in value]
    return value


def index_of(node: PList, segment: str) -> int | None:
    """The list index a path segment names, or None."""
    if segment.isdigit() and (segment == "0" or segment[0] != "0"):
        i = int(segment)
        if i < len(node):
            return i
    return None


def child(node: Any, segment: str) -> Any:
    """The child of ``node`` at ``segment``, or MISSING."""
    if type(node) is PMap:
        return node.get(segment)
    if type(node) is PList:
        i = index_of(node, segment)
        return MISSING if i is None else node.get(i)
    return MISSING


def get_in(root: Any, path: Path) -> Any:
    """The value at ``path`` or MISSING."""
    node = root
    for segment in path:
        node = child(node, segment)
        if node is MISSING:
            return MISSING
    return node


def _replace(node: Any, segment: str, value: Any, path: Path) -> Any:
    if type(node) is PMap:
        return node.set(segment, value)
    if type(node) is PList:
        i = index_of(node, segment)
        if i is None:
            raise IndexError(f"list index out of range: {format_path(path)!r}")
        return node.set(i, value)
    raise TypeError(f"cannot write {format_path(path)!r}: its parent is not a map or list")


def set_in(root: Any, path: Path, value: Any) -> Any:
    """A new root with ``value`` at ``path`` (parents must exist); path-copying."""
    if not path:
        return value
    parent = get_in(root, path[:-1])
    if parent is MISSING:
        raise KeyError(f"cannot write {format_path(path)!r}: {format_path(path[:-1])!r} is missing")
    return set_in(root, path[:-1], _replace(parent, path[-1], value, path))


def delete_in(root: Any, path: Path) -> Any:
    """A new root without ``path``; ``KeyError``/``IndexError`` when absent."""
    parent = get_in(root, path[:-1])
    last = path[-1]
    if type(parent) is PMap:
        if last not in parent:
            raise KeyError(f"cannot delete {format_path(path)!r}: no such key")
        new: Any = parent.delete(last)
    elif type(parent) is PList:
        i = index_of(parent, last)
        if i is None:
            raise IndexError(f"cannot delete {format_path(path)!r}: list index out of range")
        items = parent.items
        new = parent.drop_last() if i == len(items) - 1 else PList(items[:i] + items[i + 1 :])
    else:
        raise KeyError(f"cannot delete {format_path(path)!r}: its parent is missing")
    return set_in(root, path[:-1], new)
