"""A transaction: a draft of the tree plus the read and write sets (spec/04, spec/05).

Every guarded access of a process goes through here: the contract and zone checks, the
recording of reads and writes, and the path-copying update of the draft.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from theus.contracts import Contract, Semantic
from theus.errors import ContextError, ContractViolationError
from theus.local import Local
from theus.paths import Path, format_path, has_surrogate, parse_path
from theus.update import Update
from theus.zones import Zone

from ._pmap import MISSING
from ._pvec import PList
from ._tree import child, delete_in, freeze, get_in, index_of, is_node, set_in, thaw, zone_root
from ._views import ListView, MapView, _View, wrap

if TYPE_CHECKING:
    from ._engine import CommitLock, Handle, ReferenceEngine, Snapshot

__all__ = ["Context", "Transaction"]


class Transaction:
    """One attempt of one process (or a host transaction when ``handle`` is None)."""

    def __init__(
        self,
        engine: ReferenceEngine,
        handle: Handle | None,
        base: Snapshot,
        held: CommitLock | None = None,
    ) -> None:
        self.engine = engine
        self.held = held  # the engine's commit lock, for an exclusive transaction
        self.base = base
        self.version = base.version
        self.contract: Contract | None = handle.contract if handle is not None else None
        self.semantic = handle.spec.semantic if handle is not None else None
        self.root: Any = base.root  # the draft
        self.reads: set[Path] = set()
        self.writes: set[Path] = set()
        self.signals: dict[Path, Any] = {}
        self.wrote = False
        self.open = True
        self.ctx: Context | None = Context(self) if handle is not None else None

    # -- checks ----------------------------------------------------------------------------
    def _alive(self) -> None:
        if not self.open:
            raise ContextError(
                "this context belongs to a transaction that has ended; "
                "views cannot be used after their process returns"
            )

    def _readable(self, path: Path, zone: Zone) -> bool:
        """Rule 1 of spec/04: True if covered; False if only navigable; raise otherwise."""
        contract = self.contract
        if contract is None:
            return True
        if zone is Zone.META and self.semantic is Semantic.PURE:
            raise ContractViolationError(
                f"pure process {contract.spec.name!r} may not read meta path {format_path(path)!r}"
            )
        if contract.can_read(path) or not self.engine.strict_guards:
            return True
        if contract.navigable(path):
            return False
        raise contract.read_violation(path)

    def _check_write(self, path: Path, kind: str, value: Any = MISSING) -> Zone:
        """Contract, semantic and zone rules for a write of ``kind`` at ``path``."""
        self._alive()
        if len(path) < 2:
            if kind != "set" or path[0] not in self.base.root:
                raise ContextError(
                    f"namespaces are fixed when the engine is made; cannot {kind} {path[0]!r}"
                )
            if not isinstance(value, Mapping | MapView):
                raise TypeError(
                    f"namespace {path[0]!r} must be assigned a mapping, not {type(value).__name__}"
                )
        zone, root_len = zone_root(path)
        contract = self.contract
        where = format_path(path)
        if contract is not None:
            if not contract.can_write(path):
                raise contract.write_violation(path)
            name = contract.spec.name
            if self.semantic is Semantic.PURE and zone in (Zone.META, Zone.SIGNAL):
                raise ContractViolationError(
                    f"pure process {name!r} may not write {zone.value} path {where!r}"
                )
            if self.semantic is Semantic.GUIDE and zone not in (Zone.SIGNAL, Zone.META):
                raise ContractViolationError(
                    f"guide process {name!r} may write only signal and meta paths, not {where!r}"
                )
        if zone is Zone.SIGNAL and (kind != "set" or root_len != len(path)):
            raise ContractViolationError(
                f"cannot {kind} signal path {where!r}: signals are transient values; "
                "assign the signal path itself"
            )
        if zone is Zone.HEAVY and root_len != len(path):
            raise ContextError(
                f"cannot write {where!r}: the heavy value at "
                f"{format_path(path[:root_len])!r} is opaque to the engine"
            )
        if zone is Zone.LOG:
            creating = (
                kind == "set"
                and root_len == len(path)
                and get_in(self.root, path) is MISSING
                and isinstance(value, list | ListView | PList)
            )
            if not (creating or (kind == "append" and root_len == len(path))):
                raise ContractViolationError(
                    f"cannot {kind} {where!r}: the log zone is append-only "
                    f"(only append/extend on {format_path(path[:root_len])!r})"
                )
        return zone

    # -- reads -----------------------------------------------------------------------------
    def node(self, path: Path) -> Any:
        """The draft's value at ``path`` (the view's container)."""
        self._alive()
        value = get_in(self.root, path)
        if value is MISSING:
            raise ContextError(f"{format_path(path)!r} no longer exists in this transaction")
        return value

    def observe(self, path: Path) -> Any:
        """A whole-container read of ``path`` (len, iteration, ==, to_dict ...)."""
        self._alive()
        zone, _ = zone_root(path)
        if not self._readable(path, zone):
            raise self.contract.read_violation(path)  # type: ignore[union-attr]
        self.reads.add(path)
        return self.node(path)

    def _lookup(self, path: Path, value: Any, missing: BaseException) -> Any:
        zone, root_len = zone_root(path)
        covered = self._readable(path, zone)
        if zone is Zone.SIGNAL and root_len == len(path):
            # own writes first, then the base snapshot's; never recorded (spec/03)
            value = self.signals.get(path, self.base.signal_index.get(path, MISSING))
            if not covered:
                raise self.contract.read_violation(path)  # type: ignore[union-attr]
            if value is MISSING:
                raise missing
            return wrap(value, path, None)  # frozen: a read-only view for containers
        if is_node(value) and zone is not Zone.HEAVY:
            return wrap(value, path, self)
        if not covered:
            raise self.contract.read_violation(path)  # type: ignore[union-attr]
        self.reads.add(path)
        if value is MISSING:
            raise missing
        return value

    def read_key(self, parent: Path, key: str, attr: bool) -> Any:
        """``view.key`` / ``view["key"]`` on the map at ``parent``."""
        if not isinstance(key, str):
            raise KeyError(key)
        path = (*parent, key)
        value = child(self.node(parent), key)
        missing: BaseException = (
            AttributeError(f"no key {key!r} at {format_path(parent)!r}") if attr else KeyError(key)
        )
        return self._lookup(path, value, missing)

    def read_index(self, parent: Path, index: int) -> Any:
        """``view[i]`` on the list at ``parent`` (``index`` >= 0)."""
        node = self.node(parent)
        value = node.get(index) if index < len(node) else MISSING
        missing = IndexError(f"list index out of range at {format_path(parent)!r}")
        return self._lookup((*parent, str(index)), value, missing)

    def get(self, path: str, default: Any = None) -> Any:
        """A recorded read of a dotted path (host transactions)."""
        self._alive()
        segments = parse_path(path)
        try:
            return self._lookup(segments, get_in(self.root, segments), KeyError(path))
        except KeyError:
            return default

    # -- writes ----------------------------------------------------------------------------
    def _unwrap(self, value: Any) -> Any:
        if isinstance(value, _View):
            if value._tx is None:
                return value._node
            if value._tx is not self:
                raise ContextError("a view from another transaction cannot be written here")
            return self.observe(value._path)
        return value

    @staticmethod
    def _origin(value: Any) -> int:
        """The length of the path a view came from (0 when unknown: always re-checked)."""
        return len(value._path) if isinstance(value, _View) else 0

    def _store(self, path: Path, zone: Zone, value: Any) -> None:
        self.wrote = True
        if zone is Zone.SIGNAL:
            self.signals[path] = freeze(value, path, Zone.DATA, self._unwrap, self._origin)
            return
        frozen = freeze(value, path, zone, self._unwrap, self._origin)
        self.root = set_in(self.root, path, frozen)
        self.writes.add(path)

    def write_key(self, parent: Path, key: str, value: Any) -> None:
        """``view.key = value`` on the map at ``parent``."""
        if (
            not isinstance(key, str)
            or not key
            or "." in key
            or key in ("*", "**")
            or has_surrogate(key)
        ):
            raise ContextError(
                f"invalid key {key!r} under {format_path(parent)!r}: keys are non-empty str "
                "without '.', other than '*' and '**', and valid Unicode (no lone surrogates)"
            )
        path = (*parent, key)
        if isinstance(value, _View) and value._tx is self and value._path == path:
            return  # ``view.x += [...]`` assigns the mutated view back to itself
        zone = self._check_write(path, "set", value)
        self.node(parent)
        self._store(path, zone, value)

    def delete_key(self, parent: Path, key: str, attr: bool) -> None:
        """``del view.key`` on the map at ``parent``."""
        if not isinstance(key, str):
            raise KeyError(key)
        path = (*parent, key)
        self._check_write(path, "delete")
        if key not in self.node(parent):
            if attr:
                raise AttributeError(f"no key {key!r} at {format_path(parent)!r}")
            raise KeyError(key)
        self._delete(path)

    def _delete(self, path: Path, written: Path | None = None) -> None:
        self.root = delete_in(self.root, path)
        self.writes.add(path if written is None else written)
        self.wrote = True

    def set_item(self, path: Path, index: int, value: Any) -> None:
        """``lst[i] = value``: a write of the item's path (spec/04)."""
        size = len(self.node(path))
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(f"list assignment index out of range at {format_path(path)!r}")
        item = (*path, str(index))
        self._store(item, self._check_write(item, "set", value), value)

    def mutate_list(self, path: Path, op: str, args: tuple[Any, ...]) -> Any:
        """A list mutator on the list at ``path`` (append, extend, insert, pop, ...)."""
        kind = "append" if op in ("append", "extend") else op
        zone = self._check_write(path, kind)
        current = get_in(self.root, path)
        if current is MISSING:
            raise KeyError(f"cannot {op} {format_path(path)!r}: no such list")
        if type(current) is not PList:
            raise TypeError(f"cannot {op} {format_path(path)!r}: it is not a list")
        if op in ("pop", "delitem", "insert") and not isinstance(args[0], slice):
            # ints of any size (spec/01), like a list
            args = (_list_index(op, args[0], len(current), path), *args[1:])
        result = None
        new: PList
        if op in ("append", "extend"):  # O(log n) per item: the vector grows at its end
            new = current
            for value in args[0:1] if op == "append" else args[0]:
                new = new.append(
                    freeze(value, (*path, str(len(new))), zone, self._unwrap, self._origin)
                )
        elif op == "pop" and args[0] in (-1, len(current) - 1) and len(current):
            result = thaw(current.get(len(current) - 1))
            new = current.drop_last()
        else:  # these shift or reorder items: rebuild
            new = PList(self._shifted(path, op, args, list(current.items), zone))
            if op == "pop":
                result = thaw(current.items[args[0]])
        self.root = set_in(self.root, path, new)
        self.writes.add(path)
        self.wrote = True
        return result

    def _shifted(
        self, path: Path, op: str, args: tuple[Any, ...], items: list[Any], zone: Zone
    ) -> list[Any]:
        """The items after an index-shifting list change."""
        if op == "insert":
            items.insert(
                args[0], freeze(args[1], (*path, str(args[0])), zone, self._unwrap, self._origin)
            )
        elif op == "pop":
            items.pop(args[0])
        elif op == "remove":
            plain = [thaw(v) for v in items]
            del items[plain.index(args[0])]
        elif op == "clear":
            items.clear()
        elif op == "sort":
            order = sorted(
                range(len(items)),
                key=lambda i: (
                    thaw(items[i]) if args[0] is None else args[0](wrap(items[i], path, None))
                ),
                reverse=args[1],
            )
            items = [items[i] for i in order]
        elif op == "reverse":
            items.reverse()
        elif op == "delitem":
            del items[args[0]]
        else:  # pragma: no cover - the views call only the ops above
            raise ValueError(op)
        return items

    def apply(self, update: Update) -> None:
        """Apply explicit writes (``tx.update``, ``StateUpdate``, return mapping)."""
        self._alive()
        for kind, path, value in update.ops:
            if kind == "set":
                zone = self._check_write(path, "set", value)
                if zone is not Zone.SIGNAL and get_in(self.root, path[:-1]) is MISSING:
                    raise KeyError(
                        f"cannot write {format_path(path)!r}: "
                        f"{format_path(path[:-1])!r} does not exist"
                    )
                parent = get_in(self.root, path[:-1])
                if zone is not Zone.SIGNAL and not is_node(parent):
                    raise ContextError(
                        f"cannot write {format_path(path)!r}: "
                        f"{format_path(path[:-1])!r} is not a map or list"
                    )
                if type(parent) is PList and index_of(parent, path[-1]) is None:
                    raise IndexError(f"list index out of range: {format_path(path)!r}")
                self._store(path, zone, value)
            elif kind == "delete":
                parent = get_in(self.root, path[:-1])
                if type(parent) is PList:  # an item delete shifts indices: a list write
                    self._check_write(path[:-1], "delitem")
                    if index_of(parent, path[-1]) is None:
                        raise IndexError(f"cannot delete {format_path(path)!r}: no such item")
                    self._delete(path, written=path[:-1])
                    continue
                self._check_write(path, "delete")
                if get_in(self.root, path) is MISSING:
                    raise KeyError(f"cannot delete {format_path(path)!r}: no such key")
                self._delete(path)
            else:
                self.mutate_list(path, "append", (value,))

    # -- end ---------------------------------------------------------------------------------
    def commit(self, strict: bool = False) -> Snapshot:
        """Commit through the engine (spec/05)."""
        self._alive()
        return self.engine.commit(self, strict)

    def close(self) -> None:
        """End the transaction; its views stop working; an exclusive one releases the lock."""
        self.open = False
        held, self.held = self.held, None
        if held is not None:
            held.release()


def _list_index(op: str, index: Any, size: int, path: Path) -> int:
    """``index`` for ``pop``/``del``/``insert`` on a list of ``size`` items, like a Python list
    but for any int: out of range is ``IndexError`` (``insert`` clamps), never OverflowError."""
    i = operator.index(index)
    if op == "insert":
        return min(max(i + size, 0) if i < 0 else i, size)
    if op == "pop" and size == 0:
        raise IndexError("pop from empty list")
    if i < 0:
        i += size
    if not 0 <= i < size:
        what = "pop index" if op == "pop" else "list assignment index"
        raise IndexError(f"{what} out of range at {format_path(path)!r}")
    return i


class Context:
    """The ``ctx`` a process receives: namespaces as guarded views, plus ``local``."""

    __slots__ = ("_tx", "_views", "local")

    def __init__(self, tx: Transaction) -> None:
        object.__setattr__(self, "_tx", tx)
        object.__setattr__(self, "_views", {})
        object.__setattr__(self, "local", Local())

    def __getitem__(self, namespace: str) -> Any:
        tx = self._tx
        tx._alive()
        view = self._views.get(namespace)
        if view is not None:  # a guarded view re-resolves its node on every access
            return view
        path = (namespace,)
        value = child(tx.root, namespace)
        if value is MISSING:
            raise KeyError(f"no namespace {namespace!r}")
        view = tx._lookup(path, value, KeyError(namespace))
        if isinstance(view, MapView):
            self._views[namespace] = view
        return view

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"ctx has no namespace {name!r}") from None

    @property
    def domain(self) -> Any:
        """The ``domain`` namespace."""
        return self["domain"]

    @property
    def global_(self) -> Any:
        """The ``global`` namespace."""
        return self["global"]

    @property
    def version(self) -> int:
        """The base version of this transaction."""
        return self._tx.version

    def __setattr__(self, name: str, value: Any) -> None:
        name = "global" if name == "global_" else name
        self._tx.write_key((), name, value)

    def __repr__(self) -> str:
        return f"<ctx version={self._tx.version}>"
