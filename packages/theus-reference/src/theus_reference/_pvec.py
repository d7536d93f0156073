"""``PList``: the frozen list of the tree, a persistent vector (spec/05 structural sharing).

A 32-way trie of tuples: leaves hold up to 32 items, inner nodes up to 32 children, the path
to item ``i`` is read off ``i``'s bits, five at a time. Reading, replacing, appending and
removing the last item copy one path (O(log n)) and share everything else with the previous
version. Changes that shift indices (insert, delete in the middle, sort) rebuild the vector, as
they change O(n) positions anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["PList"]

_BITS = 5
_WIDTH = 1 << _BITS
_MASK = _WIDTH - 1

Node = tuple[Any, ...]


def _path_to(shift: int, value: Any) -> Node:
    """A fresh path of single-child nodes from level ``shift`` down to a leaf holding value."""
    node: Node = (value,)
    for _ in range(0, shift, _BITS):
        node = (node,)
    return node


def _set(node: Node, shift: int, i: int, value: Any) -> Node:
    slot = (i >> shift) & _MASK
    new = value if shift == 0 else _set(node[slot], shift - _BITS, i, value)
    return (*node[:slot], new, *node[slot + 1 :])


def _push(node: Node, shift: int, i: int, value: Any) -> Node:
    """``node`` with ``value`` added at index ``i`` (the first free index)."""
    if shift == 0:
        return (*node, value)
    slot = (i >> shift) & _MASK
    if slot < len(node):
        return (*node[:slot], _push(node[slot], shift - _BITS, i, value))
    return (*node, _path_to(shift - _BITS, value))


def _drop_last(node: Node, shift: int, i: int) -> Node | None:
    """``node`` without the item at index ``i`` (the last); None when nothing is left."""
    if shift == 0:
        return node[:-1] or None
    slot = (i >> shift) & _MASK
    child = _drop_last(node[slot], shift - _BITS, i)
    if child is None:
        return node[:slot] or None
    return (*node[:slot], child)


def _walk(node: Node, shift: int) -> Iterator[Any]:
    if shift == 0:
        yield from node
    else:
        for child in node:
            yield from _walk(child, shift - _BITS)


class PList:
    """An immutable list; every change returns a new ``PList`` sharing structure."""

    __slots__ = ("_size", "_shift", "_root")

    def __init__(self, items: Iterable[Any] = ()) -> None:
        level: list[Any] = list(items)
        self._size = len(level)
        self._shift = 0
        nodes = [tuple(level[i : i + _WIDTH]) for i in range(0, len(level), _WIDTH)]
        while len(nodes) > 1:
            nodes = [tuple(nodes[i : i + _WIDTH]) for i in range(0, len(nodes), _WIDTH)]
            self._shift += _BITS
        self._root: Node = nodes[0] if nodes else ()

    @classmethod
    def _of(cls, root: Node, shift: int, size: int) -> PList:
        out = cls.__new__(cls)
        out._root, out._shift, out._size = root, shift, size
        return out

    def __len__(self) -> int:
        return self._size

    def get(self, i: int) -> Any:
        """The item at ``0 <= i < len``."""
        node = self._root
        for shift in range(self._shift, 0, -_BITS):
            node = node[(i >> shift) & _MASK]
        return node[i & _MASK]

    def set(self, i: int, value: Any) -> PList:
        """A new list with item ``i`` replaced."""
        return PList._of(_set(self._root, self._shift, i, value), self._shift, self._size)

    def append(self, value: Any) -> PList:
        """A new list with ``value`` at the end."""
        if self._size == 0:
            return PList._of((value,), 0, 1)
        if self._size == _WIDTH << self._shift:  # the trie is full: grow a level
            shift = self._shift + _BITS
            return PList._of((self._root, _path_to(self._shift, value)), shift, self._size + 1)
        return PList._of(
            _push(self._root, self._shift, self._size, value), self._shift, self._size + 1
        )

    def drop_last(self) -> PList:
        """A new list without its last item (the list must not be empty)."""
        root = _drop_last(self._root, self._shift, self._size - 1) or ()
        shift = self._shift
        while shift and len(root) == 1:  # shrink a level that has a single child
            root, shift = root[0], shift - _BITS
        return PList._of(root, shift, self._size - 1)

    def __iter__(self) -> Iterator[Any]:
        return _walk(self._root, self._shift) if self._size else iter(())

    @property
    def items(self) -> tuple[Any, ...]:
        """All items (O(n): for whole-list reads and index-shifting changes)."""
        return tuple(self)

    def __repr__(self) -> str:
        return f"PList({list(self)!r})"
