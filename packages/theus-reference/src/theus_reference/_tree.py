"""Freezing values into the tree and path-copying updates (spec/01, spec/05)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from theus.errors import ContextError, DepthLimitError
from theus.paths import MAX_DEPTH, Path, format_path, has_surrogate
from theus.zones import Zone, zone_of_key

from ._pmap import MISSING, PMap
from ._pvec import PList

__all__ = [
    "check_height",
    "check_key",
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


def check_key(key: object, path: Path) -> str:
    """``key`` if it is a valid key of a map at ``path`` (spec/01), else ``ContextError``."""
    if (
        not isinstance(key, str)
        or not key
        or "." in key
        or key in ("*", "**")
        or has_surrogate(key)
    ):
        raise ContextError(
            f"invalid key {key!r} under {show_path(path)!r}: keys are non-empty str without "
            "'.', other than '*' and '**', and valid Unicode (no lone surrogates)"
        )
    return key


_VIEW_TYPES: tuple[type, ...] = ()


def _identity(view: Any) -> Any:
    return view


_view_content: Callable[[Any], Any] = _identity


def register_views(types: tuple[type, ...], content: Callable[[Any], Any]) -> None:
    """Let ``freeze`` store views by content when ``unwrap`` leaves them (``_views`` calls it)."""
    global _VIEW_TYPES, _view_content
    _VIEW_TYPES, _view_content = types, content


def show_path(path: Path) -> str:
    """The dotted text of ``path``, with the middle elided when it has many segments."""
    if len(path) <= 16:
        return format_path(path)
    return f"{format_path(path[:8])}...({len(path) - 16} segments)...{format_path(path[-8:])}"


def _too_deep(path: Path, base: int, ancestors: list[Any]) -> DepthLimitError:
    """The error for a value reached at ``path`` (longer than MAX_DEPTH).

    ``ancestors[i]`` is the container being frozen at ``path[: base + i]``; when one of them
    repeats the value contains itself, and the error names where the cycle closes.
    """
    first: dict[int, int] = {}
    for j, container in enumerate(ancestors):
        i = first.setdefault(id(container), j)
        if i != j:
            return DepthLimitError(
                f"the value written at {show_path(path[:base])!r} contains itself: the "
                f"{_kind(container)} at {show_path(path[: base + i])!r} appears again inside "
                f"itself at {show_path(path[: base + j])!r}; a cyclic value cannot be stored"
            )
    return DepthLimitError(
        f"the value written at {show_path(path[:base])!r} is nested too deeply: "
        f"{show_path(path[: MAX_DEPTH + 1])!r} would have more than {MAX_DEPTH} segments "
        f"(the depth limit)"
    )


def _kind(value: Any) -> str:
    return "list" if isinstance(value, list) else "map"


def check_height(node: Any, path: Path) -> None:
    """``DepthLimitError`` if the stored ``node`` does not fit at ``path`` (iterative)."""
    room = MAX_DEPTH - len(path)  # how many levels may sit below ``path``
    if room < 0:
        raise DepthLimitError(
            f"cannot store a value at {show_path(path[: MAX_DEPTH + 1])!r}: more than "
            f"{MAX_DEPTH} segments (the depth limit)"
        )
    stack: list[tuple[Any, Path]] = [(node, ())]
    while stack:
        current, below = stack.pop()
        if type(current) is PMap:
            children: list[tuple[str, Any]] = current.items()
        elif type(current) is PList:
            children = [(str(i), v) for i, v in enumerate(current)]
        else:
            continue
        for key, item in children:
            inner = (*below, key)
            if len(inner) > room:
                raise DepthLimitError(
                    f"cannot store the value at {show_path(path)!r}: its item "
                    f"{show_path((*path, *inner))!r} would have more than {MAX_DEPTH} "
                    "segments (the depth limit)"
                )
            if is_node(item):
                stack.append((item, inner))


def freeze(
    value: Any,
    path: Path,
    zone: Zone,
    unwrap: Callable[[Any], Any],
    origin: Callable[[Any], int] | None = None,
) -> Any:
    """The stored form of ``value`` written at ``path`` (in ``zone``).

    Maps and lists become ``PMap``/``PList`` recursively (the caller's object is copied), sets
    become frozensets, heavy values stay as they are, views are replaced by ``unwrap(view)``.
    No value may end up deeper than ``MAX_DEPTH`` segments, and a value containing itself is
    refused (``DepthLimitError``, spec/01). A stored container (from ``unwrap``) is re-checked
    when ``origin(view)`` (the length of the path it came from; unknown: always) is shorter
    than the path it is written at. One Python frame per level of nesting.
    """
    return _freeze(value, path, zone, unwrap, origin, len(path), [])


def _freeze(
    value: Any,
    path: Path,
    zone: Zone,
    unwrap: Callable[[Any], Any],
    origin: Callable[[Any], int] | None,
    base: int,
    ancestors: list[Any],
) -> Any:
    if len(path) > MAX_DEPTH:
        raise _too_deep(path, base, ancestors)
    if zone is Zone.HEAVY:
        if unwrap(value) is not value or type(value) in _VIEW_TYPES:
            raise ContextError(
                f"cannot store a view at {show_path(path)!r}: heavy values are kept by "
                "reference and a view is a window on a transaction; write "
                "view.to_dict() / view.to_list() instead"
            )
        return value
    unwrapped = unwrap(value)
    if unwrapped is not value:  # a view: its content, re-checked when written deeper
        if is_node(unwrapped) and (origin is None or origin(value) < len(path)):
            check_height(unwrapped, path)
        return unwrapped
    if type(value) is PMap or type(value) is PList:  # frozen (and checked) by a first phase
        return value
    if type(value) in _VIEW_TYPES:  # a view ``unwrap`` left (the engine's context=): by content
        content = _view_content(value)
        if is_node(content) and (origin is None or origin(value) < len(path)):
            check_height(content, path)
        return content
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        ancestors.append(value)
        for key, item in value.items():
            key = check_key(key, path)
            inner: Zone = zone
            if zone is Zone.DATA:
                inner = zone_of_key(key) or Zone.DATA
                if inner is Zone.SIGNAL:
                    raise ContextError(
                        f"the map written at {show_path(path)!r} contains signal key {key!r}; "
                        "signals are transient: write the signal path itself"
                    )
            out[key] = _freeze(item, (*path, key), inner, unwrap, origin, base, ancestors)
        ancestors.pop()
        return PMap(out)
    if isinstance(value, list):
        items: list[Any] = []
        ancestors.append(value)
        for i, item in enumerate(value):
            items.append(_freeze(item, (*path, str(i)), zone, unwrap, origin, base, ancestors))
        ancestors.pop()
        return PList(items)
    if isinstance(value, set):
        return frozenset(value)
    return value


def thaw(value: Any) -> Any:
    """A deep, plain, mutable copy of a stored value (iterative: any depth, any stack)."""
    if not is_node(value):
        return value
    top: Any = {} if type(value) is PMap else []
    stack: list[tuple[Any, Any]] = [(value, top)]
    while stack:
        node, target = stack.pop()
        if type(node) is PMap:
            for key, item in node.items():
                if is_node(item):
                    inner: Any = {} if type(item) is PMap else []
                    stack.append((item, inner))
                    item = inner
                target[key] = item
        else:
            for item in node:
                if is_node(item):
                    inner = {} if type(item) is PMap else []
                    stack.append((item, inner))
                    item = inner
                target.append(item)
    return top


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
