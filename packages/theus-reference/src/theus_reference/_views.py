"""Read-only views of snapshots and guarded views of a transaction's draft (spec/01, spec/04).

A view has a path and either a fixed node (a snapshot view: read-only, unguarded) or a
transaction (a guarded view: every access goes through the transaction, which checks the
contract, records reads and writes, and resolves the path in its draft).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from theus import messages
from theus.errors import ContextError
from theus.paths import Path, format_path

from ._pmap import MISSING, PMap
from ._pvec import PList
from ._tree import register_views, thaw

if TYPE_CHECKING:
    from ._transaction import Transaction

__all__ = ["ListView", "MapView", "view_state", "wrap"]


def wrap(value: Any, path: Path, tx: Transaction | None) -> Any:
    """What a read returns: a view for the tree's containers, the value itself otherwise."""
    if type(value) is PMap:
        view: _View = _new(MapView)
    elif type(value) is PList:
        view = _new(ListView)
    else:
        return value
    _set_state(view, (path, tx, value))
    return view


def _read_only(path: Path, what: str) -> ContextError:
    return ContextError(messages.read_only(what, format_path(path)))


# the verb a read-only list view names in its error, per list operation (spec/12)
_LIST_VERBS = {
    "insert": "insert into",
    "pop": "pop from",
    "remove": "remove from",
    "delitem": "delete from",
}


class _View:
    # One slot, (path, transaction or None, node), read and written only through the slot's
    # descriptor kept in this module (it is removed from the class below): no attribute of a
    # view reaches its transaction (spec/04), and every other name reads a key (spec/01).
    __slots__ = ("_s",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("views are made by the engine; read them from a snapshot or ctx")

    def __copy__(self) -> Any:
        return _plain(self)

    def __deepcopy__(self, memo: Any) -> Any:
        return _plain(self)

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("views cannot be pickled; pickle view.to_dict() / view.to_list()")

    def __reduce__(self) -> Any:
        raise TypeError("views cannot be pickled; pickle view.to_dict() / view.to_list()")


_SLOT = _View.__dict__["_s"]
_state = _SLOT.__get__
_set_state = _SLOT.__set__
delattr(_View, "_s")  # only this module can reach the slot now
_new = object.__new__


def view_state(view: _View) -> tuple[Path, Transaction | None, Any]:
    """``(path, transaction or None, node)`` of a view (for this package only)."""
    return _state(view)  # type: ignore[no-any-return]


def _whole(path: Path, tx: Transaction | None, node: Any) -> Any:
    """The node, observed as a whole (a recorded read of this path in a transaction)."""
    return node if tx is None else tx.observe(path, type(node))


def _writer(path: Path, tx: Transaction | None, what: str, key: Any = None) -> Transaction:
    if tx is None:
        raise _read_only(path if key is None else (*path, str(key)), what)
    return tx


def _plain(view: _View) -> Any:
    return thaw(_whole(*_state(view)))


def _read(view: _View, key: Any, attr: bool) -> Any:
    path, tx, node = _state(view)
    if tx is not None:
        return tx.read_key(path, key, attr)
    value = node.get(key) if isinstance(key, str) else MISSING
    if value is MISSING:
        if attr:
            raise AttributeError(f"no key {key!r} at {format_path(path)!r}")
        raise KeyError(key)
    return wrap(value, (*path, key), None)


class MapView(_View):
    """A map in the tree: ``view.key``, ``view["key"]``; writes only inside a process.

    A ``collections.abc.Mapping`` (registered, not inherited, so that no private class
    attribute shadows a key).
    """

    __slots__ = ()

    # -- reads -----------------------------------------------------------------------------
    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") and key.endswith("__"):
            raise AttributeError(key)
        return _read(self, key, True)

    def __getitem__(self, key: str) -> Any:
        return _read(self, key, False)

    def get(self, key: str, default: Any = None) -> Any:
        """``view[key]``, or ``default`` when the key is missing."""
        try:
            return _read(self, key, False)
        except KeyError:
            return default

    def __len__(self) -> int:
        return len(_whole(*_state(self)))

    def __iter__(self) -> Iterator[str]:
        return iter(_whole(*_state(self)).keys())

    def __contains__(self, key: object) -> bool:
        return key in _whole(*_state(self))

    def keys(self) -> list[str]:
        """The keys, in key order."""
        return _whole(*_state(self)).keys()  # type: ignore[no-any-return]

    def items(self) -> list[tuple[str, Any]]:
        """``(key, value)`` pairs in key order; containers as views."""
        path, tx, node = _state(self)
        return [(k, wrap(v, (*path, k), tx)) for k, v in _whole(path, tx, node).items()]

    def values(self) -> list[Any]:
        """The values in key order; containers as views."""
        return [v for _, v in self.items()]

    def to_dict(self) -> dict[str, Any]:
        """A deep plain copy."""
        return _plain(self)  # type: ignore[no-any-return]

    def copy(self) -> dict[str, Any]:
        """A deep plain copy (same as ``to_dict``)."""
        return _plain(self)  # type: ignore[no-any-return]

    def __or__(self, other: Any) -> Any:
        if isinstance(other, MapView):
            other = other.to_dict()
        if not isinstance(other, dict):
            return NotImplemented
        return self.to_dict() | other

    def __ror__(self, other: Any) -> Any:
        if not isinstance(other, dict):
            return NotImplemented
        return other | self.to_dict()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MapView):
            other = other.to_dict()
        if not isinstance(other, Mapping):
            return NotImplemented
        return self.to_dict() == dict(other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        path = format_path(_state(self)[0])
        try:
            return f"MapView({path!r}, {self.to_dict()!r})"
        except Exception:
            return f"MapView({path!r})"

    # -- writes ----------------------------------------------------------------------------
    def __setattr__(self, key: str, value: Any) -> None:
        path, tx, _ = _state(self)
        _writer(path, tx, "assign", key).write_key(path, key, value)

    def __setitem__(self, key: str, value: Any) -> None:
        path, tx, _ = _state(self)
        _writer(path, tx, "assign", key).write_key(path, key, value)

    def __delattr__(self, key: str) -> None:
        path, tx, _ = _state(self)
        _writer(path, tx, "delete", key).delete_key(path, key, True)

    def __delitem__(self, key: str) -> None:
        path, tx, _ = _state(self)
        _writer(path, tx, "delete", key).delete_key(path, key, False)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Write every pair of ``other`` and ``kwargs``."""
        path, tx, _ = _state(self)
        writer = _writer(path, tx, "update")
        pairs = dict(other)
        pairs.update(kwargs)
        for key, value in pairs.items():
            writer.write_key(path, key, value)

    def pop(self, key: str, *default: Any) -> Any:
        """Remove ``key`` and return its value (or ``default`` when absent)."""
        path, tx, _ = _state(self)
        writer = _writer(path, tx, "pop from")
        try:
            value = _read(self, key, False)
        except KeyError:
            if default:
                return default[0]
            raise
        if isinstance(value, _View):
            value = _plain(value)
        writer.delete_key(path, key, False)
        return value

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last pair in key order."""
        path, tx, _ = _state(self)
        _writer(path, tx, "pop from")
        keys = self.keys()
        if not keys:
            raise KeyError(f"popitem(): {format_path(path)!r} is empty")
        return keys[-1], self.pop(keys[-1])

    def setdefault(self, key: str, default: Any = None) -> Any:
        """``view[key]``, inserting ``default`` first if the key is missing."""
        path, tx, _ = _state(self)
        writer = _writer(path, tx, "insert into")
        if key in self:
            return _read(self, key, False)
        writer.write_key(path, key, default)
        return _read(self, key, False)

    def clear(self) -> None:
        """Remove every key."""
        path, tx, _ = _state(self)
        writer = _writer(path, tx, "clear")
        writer.refuse_meta_below(path)
        for key in self.keys():
            writer.delete_key(path, key, False)


def _mutate(view: _View, op: str, *args: Any) -> Any:
    path, tx, _ = _state(view)
    return _writer(path, tx, _LIST_VERBS.get(op, op)).mutate_list(path, op, args)


class ListView(_View):
    """A list in the tree; mutators write only inside a process.

    A ``collections.abc.Sequence`` (registered, not inherited).
    """

    __slots__ = ()

    def __getitem__(self, index: Any) -> Any:
        path, tx, node = _state(self)
        if isinstance(index, slice):
            items = _whole(path, tx, node).items
            start, stop, step = index.indices(len(items))
            return [wrap(items[i], (*path, str(i)), tx) for i in range(start, stop, step)]
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"list indices must be integers, not {type(index).__name__}")
        if index < 0:
            index += len(_whole(path, tx, node))
            if index < 0:
                raise IndexError(f"list index out of range at {format_path(path)!r}")
        if tx is not None:
            return tx.read_index(path, index)
        if index >= len(node):
            raise IndexError(f"list index out of range at {format_path(path)!r}")
        return wrap(node.get(index), (*path, str(index)), None)

    def __len__(self) -> int:
        return len(_whole(*_state(self)))

    def __iter__(self) -> Iterator[Any]:
        path, tx, node = _state(self)
        items = _whole(path, tx, node).items
        out: list[Any] = [wrap(v, (*path, str(i)), tx) for i, v in enumerate(items)]
        return iter(out)

    def __reversed__(self) -> Iterator[Any]:
        items: list[Any] = list(ListView.__iter__(self))
        return iter(items[::-1])

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
        return _plain(self)  # type: ignore[no-any-return]

    def copy(self) -> list[Any]:
        """A deep plain copy (Theus 3's ``list.copy()``; same as ``to_list``)."""
        return self.to_list()

    def __add__(self, other: Any) -> Any:
        if isinstance(other, ListView):
            other = other.to_list()
        if not isinstance(other, list):
            return NotImplemented
        return self.to_list() + other

    def __radd__(self, other: Any) -> Any:
        if not isinstance(other, list):
            return NotImplemented
        return other + self.to_list()

    def __mul__(self, n: Any) -> Any:
        if isinstance(n, float):
            return NotImplemented
        try:
            count = operator.index(n)
        except TypeError:
            return NotImplemented
        return self.to_list() * count

    def __rmul__(self, n: Any) -> Any:
        return self.__mul__(n)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ListView):
            other = other.to_list()
        if not isinstance(other, list | tuple):
            return NotImplemented
        return self.to_list() == list(other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        path = format_path(_state(self)[0])
        try:
            return f"ListView({path!r}, {self.to_list()!r})"
        except Exception:
            return f"ListView({path!r})"

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"cannot set attribute {key!r} on a list view")

    # -- writes ----------------------------------------------------------------------------
    def append(self, value: Any) -> None:
        """Append ``value``."""
        _mutate(self, "append", value)

    def extend(self, values: Any) -> None:
        """Append every item of ``values``."""
        _mutate(self, "extend", list(values))

    def __iadd__(self, values: Any) -> ListView:
        _mutate(self, "extend", list(values))
        return self

    def insert(self, index: int, value: Any) -> None:
        """Insert ``value`` before ``index``."""
        _mutate(self, "insert", index, value)

    def pop(self, index: int = -1) -> Any:
        """Remove and return the item at ``index`` (default last)."""
        return _mutate(self, "pop", index)

    def remove(self, value: Any) -> None:
        """Remove the first item equal to ``value``."""
        _mutate(self, "remove", value)

    def clear(self) -> None:
        """Remove every item."""
        _mutate(self, "clear")

    def sort(self, *, key: Any = None, reverse: bool = False) -> None:
        """Sort in place (in the draft)."""
        _mutate(self, "sort", key, reverse)

    def reverse(self) -> None:
        """Reverse in place (in the draft)."""
        _mutate(self, "reverse")

    def __setitem__(self, index: int, value: Any) -> None:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"list indices must be integers, not {type(index).__name__}")
        path, tx, _ = _state(self)
        _writer(path, tx, "assign", index).set_item(path, index, value)

    def __delitem__(self, index: int) -> None:
        _mutate(self, "delitem", index)


Mapping.register(MapView)
Sequence.register(ListView)


def _stored_content(view: Any) -> Any:
    """What a view stands for when written where no transaction resolves it (the engine's
    ``context=``): a snapshot view's node; a guarded view cannot be stored (spec/04)."""
    path, tx, node = _state(view)
    if tx is not None:
        raise ContextError(
            f"the view of {format_path(path)!r} belongs to a transaction and cannot be stored "
            "here; write view.to_dict() / view.to_list() instead"
        )
    return node


register_views((MapView, ListView), _stored_content)
