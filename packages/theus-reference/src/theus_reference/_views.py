"""Read-only views of snapshots and guarded views of a transaction's draft (spec/01, spec/04).

A view has a path and either a fixed node (a snapshot view: read-only, unguarded) or a
transaction (a guarded view: every access goes through the transaction, which checks the
contract, records reads and writes, and resolves the path in its draft).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from theus.errors import ContextError
from theus.paths import Path, format_path

from ._pmap import MISSING, PMap
from ._pvec import PList
from ._tree import thaw

if TYPE_CHECKING:
    from ._transaction import Transaction

__all__ = ["ListView", "MapView", "wrap"]


def wrap(value: Any, path: Path, tx: Transaction | None) -> Any:
    """What a read returns: a view for the tree's containers, the value itself otherwise."""
    if type(value) is PMap:
        return MapView(path, tx, value)
    if type(value) is PList:
        return ListView(path, tx, value)
    return value


def _read_only(path: Path, what: str) -> ContextError:
    return ContextError(
        f"cannot {what} {format_path(path)!r}: snapshots are immutable. Write it from a "
        f"@process with {format_path(path)!r} in outputs=[...], or with engine.transaction()"
    )


class _View:
    __slots__ = ("_path", "_tx", "_node")

    def __init__(self, path: Path, tx: Transaction | None, node: Any) -> None:
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_tx", tx)
        object.__setattr__(self, "_node", node)

    def _whole(self) -> Any:
        """The node, observed as a whole (a recorded read of this path in a transaction)."""
        return self._node if self._tx is None else self._tx.observe(self._path)

    def _write(self, what: str, key: Any = None) -> Transaction:
        if self._tx is None:
            path = self._path if key is None else (*self._path, str(key))
            raise _read_only(path, what)
        return self._tx

    def __reduce__(self) -> Any:
        raise TypeError("views cannot be pickled; use to_dict()/to_list()")


class MapView(_View, Mapping[str, Any]):
    """A map in the tree: ``view.key``, ``view["key"]``; writes only inside a process."""

    __slots__ = ()

    # -- reads -----------------------------------------------------------------------------
    def _get(self, key: str, attr: bool) -> Any:
        tx = self._tx
        if tx is not None:
            return tx.read_key(self._path, key, attr)
        value = self._node.get(key) if isinstance(key, str) else MISSING
        if value is MISSING:
            if attr:
                raise AttributeError(f"no key {key!r} at {format_path(self._path)!r}")
            raise KeyError(key)
        return wrap(value, (*self._path, key), None)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") and key.endswith("__"):
            raise AttributeError(key)
        return self._get(key, True)

    def __getitem__(self, key: str) -> Any:
        return self._get(key, False)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        """``view[key]``, or ``default`` when the key is missing."""
        try:
            return self._get(key, False)
        except KeyError:
            return default

    def __len__(self) -> int:
        return len(self._whole())

    def __iter__(self) -> Iterator[str]:
        return iter(self._whole().keys())

    def __contains__(self, key: object) -> bool:
        return key in self._whole()

    def keys(self) -> list[str]:  # type: ignore[override]
        """The keys, in key order."""
        return self._whole().keys()  # type: ignore[no-any-return]

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        """``(key, value)`` pairs in key order; containers as views."""
        return [(k, wrap(v, (*self._path, k), self._tx)) for k, v in self._whole().items()]

    def values(self) -> list[Any]:  # type: ignore[override]
        """The values in key order; containers as views."""
        return [v for _, v in self.items()]

    def to_dict(self) -> dict[str, Any]:
        """A deep plain copy."""
        return thaw(self._whole())  # type: ignore[no-any-return]

    def copy(self) -> dict[str, Any]:
        """A deep plain copy (same as ``to_dict``)."""
        return self.to_dict()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MapView):
            other = other.to_dict()
        if not isinstance(other, Mapping):
            return NotImplemented
        return self.to_dict() == dict(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        try:
            return f"MapView({format_path(self._path)!r}, {self.to_dict()!r})"
        except Exception:
            return f"MapView({format_path(self._path)!r})"

    # -- writes ----------------------------------------------------------------------------
    def __setattr__(self, key: str, value: Any) -> None:
        self._write("assign", key).write_key(self._path, key, value)

    def __setitem__(self, key: str, value: Any) -> None:
        self._write("assign", key).write_key(self._path, key, value)

    def __delattr__(self, key: str) -> None:
        self._write("delete", key).delete_key(self._path, key, True)

    def __delitem__(self, key: str) -> None:
        self._write("delete", key).delete_key(self._path, key, False)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Write every pair of ``other`` and ``kwargs``."""
        tx = self._write("update")
        pairs = dict(other)
        pairs.update(kwargs)
        for key, value in pairs.items():
            tx.write_key(self._path, key, value)

    def pop(self, key: str, *default: Any) -> Any:
        """Remove ``key`` and return its value (or ``default`` when absent)."""
        tx = self._write("pop from")
        try:
            value = self._get(key, False)
        except KeyError:
            if default:
                return default[0]
            raise
        if isinstance(value, _View):
            value = thaw(value._whole())
        tx.delete_key(self._path, key, False)
        return value

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last pair in key order."""
        self._write("pop from")
        keys = self.keys()
        if not keys:
            raise KeyError(f"popitem(): {format_path(self._path)!r} is empty")
        return keys[-1], self.pop(keys[-1])

    def setdefault(self, key: str, default: Any = None) -> Any:
        """``view[key]``, inserting ``default`` first if the key is missing."""
        tx = self._write("insert into")
        if key in self:
            return self._get(key, False)
        tx.write_key(self._path, key, default)
        return self._get(key, False)

    def clear(self) -> None:
        """Remove every key."""
        tx = self._write("clear")
        for key in self.keys():
            tx.delete_key(self._path, key, False)


class ListView(_View, Sequence[Any]):
    """A list in the tree; mutators write only inside a process."""

    __slots__ = ()

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            items = self._whole().items
            start, stop, step = index.indices(len(items))
            return [
                wrap(items[i], (*self._path, str(i)), self._tx) for i in range(start, stop, step)
            ]
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"list indices must be integers, not {type(index).__name__}")
        if index < 0:
            index += len(self._whole())
            if index < 0:
                raise IndexError(f"list index out of range at {format_path(self._path)!r}")
        if self._tx is not None:
            return self._tx.read_index(self._path, index)
        node = self._node
        if index >= len(node):
            raise IndexError(f"list index out of range at {format_path(self._path)!r}")
        return wrap(node.get(index), (*self._path, str(index)), None)

    def __len__(self) -> int:
        return len(self._whole())

    def __iter__(self) -> Iterator[Any]:
        items = self._whole().items
        return iter([wrap(v, (*self._path, str(i)), self._tx) for i, v in enumerate(items)])

    def __contains__(self, value: object) -> bool:
        return value in self.to_list()

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        """The first index of ``value``."""
        items = self.to_list()
        return items.index(value, start, len(items) if stop is None else stop)

    def count(self, value: Any) -> int:
        """How many items equal ``value``."""
        return self.to_list().count(value)

    def to_list(self) -> list[Any]:
        """A deep plain copy."""
        return thaw(self._whole())  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ListView):
            other = other.to_list()
        if not isinstance(other, list | tuple):
            return NotImplemented
        return self.to_list() == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        try:
            return f"ListView({format_path(self._path)!r}, {self.to_list()!r})"
        except Exception:
            return f"ListView({format_path(self._path)!r})"

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"cannot set attribute {key!r} on a list view")

    # -- writes ----------------------------------------------------------------------------
    def _mutate(self, op: str, *args: Any) -> Any:
        return self._write(op).mutate_list(self._path, op, args)

    def append(self, value: Any) -> None:
        """Append ``value``."""
        self._mutate("append", value)

    def extend(self, values: Any) -> None:
        """Append every item of ``values``."""
        self._mutate("extend", list(values))

    def __iadd__(self, values: Any) -> ListView:
        self._mutate("extend", list(values))
        return self

    def insert(self, index: int, value: Any) -> None:
        """Insert ``value`` before ``index``."""
        self._mutate("insert", index, value)

    def pop(self, index: int = -1) -> Any:
        """Remove and return the item at ``index`` (default last)."""
        return self._mutate("pop", index)

    def remove(self, value: Any) -> None:
        """Remove the first item equal to ``value``."""
        self._mutate("remove", value)

    def clear(self) -> None:
        """Remove every item."""
        self._mutate("clear")

    def sort(self, *, key: Any = None, reverse: bool = False) -> None:
        """Sort in place (in the draft)."""
        self._mutate("sort", key, reverse)

    def reverse(self) -> None:
        """Reverse in place (in the draft)."""
        self._mutate("reverse")

    def __setitem__(self, index: int, value: Any) -> None:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"list indices must be integers, not {type(index).__name__}")
        self._write("assign", index).set_item(self._path, index, value)

    def __delitem__(self, index: int) -> None:
        self._mutate("delitem", index)
