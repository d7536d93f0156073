"""Persistent (immutable) containers with structural sharing.

``PMap`` is a hash array mapped trie: a small map is a plain ``dict`` copied on write; a large one
is a tree of 32-slot nodes whose leaves are small ``dict`` buckets, so a change copies one bucket
and the nodes above it (O(log n)), and every untouched part is shared with the previous version.
Iteration is in key order (spec/01), so it does not depend on hashing.

``PList``, the frozen list, is in ``_pvec``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["MISSING", "PMap"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

_SMALL = 16  # maps up to this size are a single dict
_BUCKET = 8  # a trie bucket larger than this splits into a node
_WIDTH = 32

Node = list[Any]  # 32 slots: None, a bucket dict, or a sub-node list


def _split(bucket: dict[str, Any], shift: int) -> Node:
    node: Node = [None] * _WIDTH
    for key, value in bucket.items():
        i = (hash(key) >> shift) & 31
        if node[i] is None:
            node[i] = {}
        node[i][key] = value
    if shift < 60:
        for i, child in enumerate(node):
            if child is not None and len(child) > _BUCKET:
                node[i] = _split(child, shift + 5)
    return node


def _get(node: Node, key: str) -> Any:
    h = hash(key)
    shift = 0
    while True:
        child = node[(h >> shift) & 31]
        if child is None:
            return MISSING
        if type(child) is dict:
            return child.get(key, MISSING)
        node = child
        shift += 5


def _set(node: Node, key: str, h: int, value: Any, shift: int) -> tuple[Node, bool]:
    i = (h >> shift) & 31
    child = node[i]
    new = list(node)
    if child is None:
        new[i] = {key: value}
        return new, True
    if type(child) is dict:
        added = key not in child
        bucket = dict(child)
        bucket[key] = value
        new[i] = _split(bucket, shift + 5) if len(bucket) > _BUCKET and shift < 60 else bucket
        return new, added
    new[i], added = _set(child, key, h, value, shift + 5)
    return new, added


def _delete(node: Node, key: str, h: int, shift: int) -> Node | None:
    """A copy of ``node`` without ``key``, or None if ``key`` is absent."""
    i = (h >> shift) & 31
    child = node[i]
    if child is None:
        return None
    new = list(node)
    if type(child) is dict:
        if key not in child:
            return None
        bucket = dict(child)
        del bucket[key]
        new[i] = bucket or None
        return new
    sub = _delete(child, key, h, shift + 5)
    if sub is None:
        return None
    new[i] = sub
    return new


def _walk(node: Node) -> Iterator[tuple[str, Any]]:
    for child in node:
        if child is None:
            continue
        if type(child) is dict:
            yield from child.items()
        else:
            yield from _walk(child)


class PMap:
    """An immutable ``str``-keyed map; ``set``/``delete`` return new maps sharing structure."""

    __slots__ = ("_small", "_trie", "_size")

    def __init__(self, small: dict[str, Any] | None = None) -> None:
        self._small: dict[str, Any] | None = small if small is not None else {}
        self._trie: Node | None = None
        self._size = len(self._small)
        if self._size > _SMALL:
            self._trie, self._small = _split(self._small, 0), None

    @classmethod
    def _of_trie(cls, trie: Node, size: int) -> PMap:
        m = cls.__new__(cls)
        m._small, m._trie, m._size = None, trie, size
        return m

    def get(self, key: str, default: Any = MISSING) -> Any:
        """The value at ``key`` or ``default``."""
        if self._small is not None:
            return self._small.get(key, default)
        assert self._trie is not None
        value = _get(self._trie, key)
        return default if value is MISSING else value

    def set(self, key: str, value: Any) -> PMap:
        """A new map with ``key`` bound to ``value``."""
        if self._small is not None:
            small = dict(self._small)
            small[key] = value
            return PMap(small)
        assert self._trie is not None
        trie, added = _set(self._trie, key, hash(key), value, 0)
        return PMap._of_trie(trie, self._size + added)

    def delete(self, key: str) -> PMap:
        """A new map without ``key``; ``KeyError`` if absent."""
        if self._small is not None:
            small = dict(self._small)
            del small[key]
            return PMap(small)
        assert self._trie is not None
        trie = _delete(self._trie, key, hash(key), 0)
        if trie is None:
            raise KeyError(key)
        return PMap._of_trie(trie, self._size - 1)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not MISSING

    def keys(self) -> list[str]:
        """Keys in sorted order."""
        return sorted(self._small if self._small is not None else (k for k, _ in self._walk()))

    def items(self) -> list[tuple[str, Any]]:
        """``(key, value)`` pairs in key order."""
        pairs = self._small.items() if self._small is not None else self._walk()
        return sorted(pairs, key=lambda kv: kv[0])

    def _walk(self) -> Iterator[tuple[str, Any]]:
        assert self._trie is not None
        return _walk(self._trie)

    def __repr__(self) -> str:
        return f"PMap({dict(self.items())!r})"
