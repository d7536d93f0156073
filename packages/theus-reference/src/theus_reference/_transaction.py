"""A transaction: a draft of the tree plus the read and write sets (spec/04, spec/05).

Every guarded access of a process goes through here: the contract and zone checks, the
recording of reads and writes, and the path-copying update of the draft.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from theus import messages
from theus.contracts import Contract, Semantic
from theus.errors import ContextError, ContractViolationError
from theus.local import Local
from theus.outbox import OutboxBuffer
from theus.paths import Path, format_path, parse_path
from theus.update import Update
from theus.zones import Zone

from ._meta import find_meta, hide_meta
from ._pmap import MISSING, PMap
from ._pvec import PList
from ._tree import (
    check_key,
    child,
    delete_in,
    freeze,
    get_in,
    index_of,
    is_node,
    set_in,
    thaw,
    zone_root,
)
from ._views import ListView, MapView, _View, view_state, wrap

if TYPE_CHECKING:
    from ._engine import CommitLock, Handle, ReferenceEngine, Snapshot

__all__ = ["Context", "Transaction"]

_SCALARS = frozenset({int, float, str, bytes, bool, type(None)})

_BUSY = (
    "the transaction is busy: one of its operations is in progress on this thread (a view "
    "used re-entrantly, from a destructor or a signal handler)"
)


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
        self.base_root, self.base_signals = engine.parts(base)
        self.root: Any = self.base_root  # the draft
        self.reads: set[Path] = set()
        self.writes: set[Path] = set()
        self.signals: dict[Path, Any] = {}
        # lists only appended to, by path: their length in the base (spec/15 "append" changes)
        self.appends: dict[Path, int] = {}
        self.outbox = OutboxBuffer()
        self.wrote = False
        self.open = True
        # Every operation of the views is atomic (spec/04, views and threads): it runs under
        # this lock; ``busy`` tells a re-entrant use on the same thread from a waiting one.
        self._lock = threading.RLock()
        self._busy = False
        self._pure = self.semantic is Semantic.PURE
        self._shown: dict[int, tuple[Any, Any]] = {}  # pure: node id -> (node, without meta)
        self.ctx: Context | None = _make_ctx(self) if handle is not None else None

    def _enter(self) -> None:
        self._lock.acquire()
        if self._busy:
            self._lock.release()
            raise ContextError(_BUSY)
        self._busy = True

    def _exit(self) -> None:
        self._busy = False
        self._lock.release()

    def _atomic(self, step: Callable[..., Any], *args: Any) -> Any:
        """``step(*args)`` as one atomic operation of this transaction (spec/04)."""
        self._enter()
        try:
            return step(*args)
        finally:
            self._exit()

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
                messages.semantic_read(contract.spec.name, format_path(path))
            )
        if contract.can_read(path) or not self.engine.strict_guards:
            return True
        if contract.navigable(path):
            return False
        raise contract.read_violation(path)

    def _check_write(self, path: Path, kind: str, value: Any = MISSING) -> Zone:
        """Contract, semantic and zone rules for a write of ``kind`` (an operation name of
        :data:`theus.messages.VERBS`) at ``path``."""
        self._alive()
        if len(path) < 2:
            if kind != "set" or path[0] not in self.base_root:
                raise ContextError(messages.namespace_fixed(kind, path[0]))
            if not isinstance(value, Mapping | MapView):
                raise TypeError(
                    f"namespace {path[0]!r} must be assigned a mapping, not {type(value).__name__}"
                )
        zone, root_len = zone_root(path)
        contract = self.contract
        where = format_path(path)
        if contract is not None:
            if not contract.can_write(path):
                raise contract.write_violation(path, kind)
            if (self.semantic is Semantic.PURE and zone in (Zone.META, Zone.SIGNAL)) or (
                self.semantic is Semantic.GUIDE and zone not in (Zone.SIGNAL, Zone.META)
            ):
                raise ContractViolationError(
                    messages.semantic_write(
                        self.semantic.value, contract.spec.name, kind, zone.value, where
                    )
                )
        root = format_path(path[:root_len])
        if zone is Zone.HEAVY and root_len != len(path):
            raise ContextError(messages.heavy_below(kind, where, root))
        if zone is Zone.SIGNAL and root_len != len(path):
            raise ContractViolationError(messages.signal_below(kind, where, root))
        if zone is Zone.SIGNAL and kind != "set":
            raise ContractViolationError(messages.signal_not_assigned(kind, where))
        if zone is Zone.LOG:
            creating = (
                kind == "set"
                and root_len == len(path)
                and get_in(self.root, path) is MISSING
                and isinstance(value, list | ListView | PList)
            )
            appending = kind in ("append", "extend") and root_len == len(path)
            if not (creating or appending):
                raise ContractViolationError(messages.log_append_only(kind, where, root))
        return zone

    # -- reads -----------------------------------------------------------------------------
    def node(self, path: Path, kind: type | None = None) -> Any:
        """The draft's container at ``path`` (a view's), of type ``kind`` when given: a path
        that now holds something else (a scalar, or a list for a map view) means the
        container the view was made for no longer exists."""
        self._alive()
        value = get_in(self.root, path)
        if value is MISSING or not is_node(value) or (kind is not None and type(value) is not kind):
            raise ContextError(f"{format_path(path)!r} no longer exists in this transaction")
        return value

    def observe(self, path: Path, kind: type | None = None) -> Any:
        """A whole-container read of ``path`` (len, iteration, ==, to_dict ...) of type
        ``kind``; for a pure process without the meta values below it (spec/03)."""
        return self._atomic(self._observe, path, self._pure, kind)

    def _observe(self, path: Path, hide: bool, kind: type | None = None) -> Any:
        self._alive()
        zone, _ = zone_root(path)
        if not self._readable(path, zone):
            raise self.contract.read_violation(path)  # type: ignore[union-attr]
        self.reads.add(path)
        node = self.node(path, kind)
        if not hide or zone is not Zone.DATA:
            return node
        cached = self._shown.get(id(node))
        if cached is None or cached[0] is not node:
            cached = (node, hide_meta(node))
            self._shown[id(node)] = cached
        return cached[1]

    def refuse_meta_below(self, path: Path, what: str = "clear") -> None:
        """For a pure process: ``ContractViolationError`` if the value at ``path`` holds meta
        keys (``clear()`` of a map would delete them)."""
        self._enter()
        try:
            self._alive()
            if self._pure and zone_root(path)[0] is Zone.DATA:
                self._no_meta(path, get_in(self.root, path), what)
        finally:
            self._exit()

    def _no_meta(self, path: Path, value: Any, what: str) -> None:
        hit = find_meta(value, path)
        if hit is not None:
            name = self.contract.spec.name if self.contract is not None else "?"
            raise ContractViolationError(
                f"pure process {name!r} may not {what} {format_path(path)!r}: that would "
                f"{what} meta path {format_path(hit)!r}, and a pure process may not write meta "
                "values"
            )

    def _list_change(self, path: Path, old: Any, new: Any, start: int = 0) -> None:
        """Pure: refuse a list change that changes the item at a position whose old or new item
        holds meta keys (spec/03)."""
        if not self._pure or zone_root(path)[0] is not Zone.DATA:
            return
        a, b = old.items, new.items
        for i in range(start, max(len(a), len(b))):
            x = a[i] if i < len(a) else MISSING
            y = b[i] if i < len(b) else MISSING
            if x is not y:
                self._no_meta((*path, str(i)), x, "move or delete")
                self._no_meta((*path, str(i)), y, "set")

    def _lookup(self, path: Path, value: Any, missing: BaseException) -> Any:
        zone, root_len = zone_root(path)
        covered = self._readable(path, zone)
        if zone is Zone.SIGNAL and root_len == len(path):
            # own writes first, then the base snapshot's; never recorded (spec/03)
            value = self.signals.get(path, self.base_signals.get(path, MISSING))
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
        return self._atomic(self._read_key, parent, key, attr)

    def _read_key(self, parent: Path, key: str, attr: bool) -> Any:
        if not isinstance(key, str):
            raise KeyError(key)
        path = (*parent, key)
        value = child(self.node(parent, PMap), key)
        missing: BaseException = (
            AttributeError(f"no key {key!r} at {format_path(parent)!r}") if attr else KeyError(key)
        )
        return self._lookup(path, value, missing)

    def read_index(self, parent: Path, index: int) -> Any:
        """``view[i]`` on the list at ``parent`` (``index`` >= 0)."""
        return self._atomic(self._read_index, parent, index)

    def _read_index(self, parent: Path, index: int) -> Any:
        node = self.node(parent, PList)
        value = node.get(index) if index < len(node) else MISSING
        missing = IndexError(f"list index out of range at {format_path(parent)!r}")
        return self._lookup((*parent, str(index)), value, missing)

    def get(self, path: str, default: Any = None) -> Any:
        """A recorded read of a dotted path (host transactions)."""
        segments = parse_path(path)
        self._enter()
        try:
            self._alive()
            return self._lookup(segments, get_in(self.root, segments), KeyError(path))
        except KeyError:
            return default
        finally:
            self._exit()

    def namespace(self, namespace: str) -> Any:
        """``ctx.ns``: the guarded view (or value) of a namespace."""
        self._enter()
        try:
            self._alive()
            value = child(self.root, namespace)
            if value is MISSING:
                raise KeyError(f"no namespace {namespace!r}")
            return self._lookup((namespace,), value, KeyError(namespace))
        finally:
            self._exit()

    # -- writes ----------------------------------------------------------------------------
    def _unwrap(self, value: Any) -> Any:
        if isinstance(value, _View):
            path, tx, node = view_state(value)
            if tx is None:
                return node
            if tx is not self:
                raise ContextError(messages.foreign_view(format_path(path)))
            return self._observe(path, False)  # its whole content: meta is checked on store
        return value

    @staticmethod
    def _origin(value: Any) -> int:
        """The length of the path a view came from (0 when unknown: always re-checked)."""
        return len(view_state(value)[0]) if isinstance(value, _View) else 0

    def _unwrap_locked(self, value: Any) -> Any:
        if isinstance(value, _View) and view_state(value)[1] is self:
            self._enter()
            try:
                return self._unwrap(value)
            finally:
                self._exit()
        return self._unwrap(value)

    def _convert(self, check: Callable[[], Zone], path: Path, value: Any) -> Any:
        """Phase one of a write: ``check()`` under the lock, then ``value`` frozen outside it
        (converting a user object may run user code: mapping methods, destructors). Phase two
        checks again and stores under the lock; freezing a frozen value returns it as is."""
        self._enter()
        try:
            zone = check()
        finally:
            self._exit()
        zone = Zone.DATA if zone is Zone.SIGNAL else zone
        return freeze(value, path, zone, self._unwrap_locked, self._origin)

    def _store(self, path: Path, zone: Zone, value: Any) -> None:
        self.wrote = True
        if zone is Zone.SIGNAL:
            self.signals[path] = freeze(value, path, Zone.DATA, self._unwrap, self._origin)
            return
        frozen = freeze(value, path, zone, self._unwrap, self._origin)
        if self._pure and zone is Zone.DATA:
            self._no_meta(path, get_in(self.root, path), "replace")
            self._no_meta(path, frozen, "set")
        self.root = set_in(self.root, path, frozen)
        self._wrote_at(path)

    def write_key(self, parent: Path, key: str, value: Any) -> None:
        """``view.key = value`` on the map at ``parent``."""
        check_key(key, parent)
        path = (*parent, key)
        if isinstance(value, _View) and view_state(value)[:2] == (path, self):
            return  # ``view.x += [...]`` assigns the mutated view back to itself

        def check() -> Zone:
            zone = self._check_write(path, "set", value)
            self.node(parent)
            return zone

        if type(value) in _SCALARS:  # converting it runs no user code: one atomic step
            self._enter()
            try:
                self._store(path, check(), value)
            finally:
                self._exit()
            return
        frozen = self._convert(check, path, value)
        self._enter()
        try:
            self._store(path, check(), frozen)
        finally:
            self._exit()

    def delete_key(self, parent: Path, key: str, attr: bool) -> None:
        """``del view.key`` on the map at ``parent``."""
        self._enter()
        try:
            self._delete_key(parent, key, attr)
        finally:
            self._exit()

    def _delete_key(self, parent: Path, key: str, attr: bool) -> None:
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
        if self._pure and zone_root(path)[0] is Zone.DATA:
            parent = get_in(self.root, path[:-1])
            if type(parent) is PList:  # the item goes, the items after it move
                i = index_of(parent, path[-1])
                if i is not None:
                    kept = PList(parent.items[:i] + parent.items[i + 1 :])
                    self._list_change(path[:-1], parent, kept, i)
            else:
                self._no_meta(path, get_in(self.root, path), "delete")
        self.root = delete_in(self.root, path)
        self._wrote_at(path if written is None else written)
        self.wrote = True

    def set_item(self, path: Path, index: int, value: Any) -> None:
        """``lst[i] = value``: a write of the item's path (spec/04)."""
        where: list[Path] = []

        def check() -> Zone:
            size = len(self.node(path))
            i = index + size if index < 0 else index
            if not 0 <= i < size:
                raise IndexError(f"list assignment index out of range at {format_path(path)!r}")
            where[:] = [(*path, str(i))]
            return self._check_write(where[0], "set", value)

        frozen = self._convert(check, (*path, str(index)), value)
        self._enter()
        try:
            zone = check()
            self._store(where[0], zone, frozen)
        finally:
            self._exit()

    def mutate_list(self, path: Path, op: str, args: tuple[Any, ...]) -> Any:
        """A list mutator on the list at ``path`` (append, extend, insert, pop, ...). The user
        code of ``sort(key=)`` and ``remove`` (equality) runs outside the atomic steps."""
        if op in ("sort", "remove"):
            self._enter()
            try:
                items = self._target_list(path, op)[1].items
                shown = [hide_meta(v) if self._pure else v for v in items]
            finally:
                self._exit()
            if op == "sort":
                key = args[0]

                def sort_key(i: int) -> Any:
                    return thaw(shown[i]) if key is None else key(wrap(shown[i], path, None))

                order = sorted(range(len(items)), key=sort_key, reverse=args[1])
                op, args = "reorder", (items, order)
            else:
                op, args = "remove_at", ([thaw(v) for v in shown].index(args[0]),)
        elif op in ("append", "extend", "insert"):

            def check() -> Zone:
                return self._target_list(path, op)[0]

            if op == "insert":
                args = (args[0], self._convert(check, (*path, str(args[0])), args[1]))
            else:
                values = args[0:1] if op == "append" else args[0]
                frozen = [self._convert(check, (*path, "-"), v) for v in values]
                args = (frozen[0],) if op == "append" else (frozen,)
        self._enter()
        try:
            return self._mutate_list(path, op, args)
        finally:
            self._exit()

    def _target_list(self, path: Path, op: str) -> tuple[Zone, PList]:
        zone = self._check_write(path, op)
        current = get_in(self.root, path)
        if current is MISSING:
            raise KeyError(f"cannot {messages.verb(op)} {format_path(path)!r}: no such list")
        if type(current) is not PList:
            raise TypeError(f"cannot {messages.verb(op)} {format_path(path)!r}: it is not a list")
        return zone, current

    def _mutate_list(self, path: Path, op: str, args: tuple[Any, ...]) -> Any:
        zone, current = self._target_list(path, "remove" if op == "remove_at" else op)
        if op in ("pop", "delitem", "insert") and not isinstance(args[0], slice):
            # ints of any size (spec/01), like a list
            args = (_list_index(op, args[0], len(current), path), *args[1:])
        result = None
        new: PList
        start = 0
        if op in ("append", "extend"):  # O(log n) per item: the vector grows at its end
            new = current
            start = len(current)
            for value in args[0:1] if op == "append" else args[0]:
                new = new.append(
                    freeze(value, (*path, str(len(new))), zone, self._unwrap, self._origin)
                )
        elif op == "pop" and args[0] in (-1, len(current) - 1) and len(current):
            result = thaw(current.get(len(current) - 1))
            new = current.drop_last()
            start = len(new)
        else:  # these shift or reorder items: rebuild
            new = PList(self._shifted(path, op, args, list(current.items), zone))
            if op == "pop":
                result = thaw(current.items[args[0]])
        self._list_change(path, current, new, start)
        self.root = set_in(self.root, path, new)
        if op not in ("append", "extend"):
            self._wrote_at(path)
        else:  # still "only appended to" if nothing at or below ``path`` was written before
            if path not in self.appends and not any(w[: len(path)] == path for w in self.writes):
                self.appends[path] = len(current)
            self.writes.add(path)
        self.wrote = True
        return result

    def _wrote_at(self, path: Path) -> None:
        """Record a write of ``path`` that is not an append: lists at or above it are no longer
        only appended to."""
        self.writes.add(path)
        appends = self.appends
        if appends:
            for p in [p for p in appends if path[: len(p)] == p]:
                del appends[p]

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
        elif op == "remove_at":
            del items[args[0]]
        elif op == "clear":
            items.clear()
        elif op == "reorder":  # sort: the order was computed on ``args[0]``'s items
            items = [args[0][i] for i in args[1]]
        elif op == "reverse":
            items.reverse()
        elif op == "delitem":
            del items[args[0]]
        else:  # pragma: no cover - the views call only the ops above
            raise ValueError(op)
        return items

    def apply(self, update: Update) -> None:
        """Apply explicit writes (``tx.update``, ``StateUpdate``, return mapping); each
        operation is atomic (spec/04)."""
        self._alive()
        for kind, path, value in update.ops:
            if kind == "map":  # the nested form of data= (spec/05): a map stays, else {}
                self._enter()
                try:
                    present = type(get_in(self.root, path)) is PMap
                finally:
                    self._exit()
                if present:
                    continue
                kind, value = "set", {}
            if kind == "set":
                frozen = self._convert(partial(self._set_check, path, value), path, value)
                self._enter()
                try:
                    self._store(path, self._set_check(path, value), frozen)
                finally:
                    self._exit()
            elif kind == "delete":
                self._enter()
                try:
                    self._delete_op(path)
                finally:
                    self._exit()
            else:
                self.mutate_list(path, "append", (value,))

    def _set_check(self, path: Path, value: Any) -> Zone:
        zone = self._check_write(path, "set", value)
        if zone is not Zone.SIGNAL:  # the first missing or non-container ancestor is named
            node = self.root
            for i in range(1, len(path)):
                parent, node = node, child(node, path[i - 1])
                if node is MISSING and type(parent) is PList:
                    raise IndexError(
                        f"list index out of range: {format_path(path[:i])!r} "
                        f"(the list has {len(parent)} items)"
                    )
                if node is MISSING:
                    raise KeyError(
                        f"cannot write {format_path(path)!r}: "
                        f"{format_path(path[:i])!r} does not exist"
                    )
                if not is_node(node):
                    raise ContextError(
                        f"cannot write {format_path(path)!r}: "
                        f"{format_path(path[:i])!r} is not a map or list"
                    )
        parent = get_in(self.root, path[:-1])
        if type(parent) is PList and index_of(parent, path[-1]) is None:
            raise IndexError(
                f"list index out of range: {format_path(path)!r} (the list has {len(parent)} items)"
            )
        return zone

    def _delete_op(self, path: Path) -> None:
        parent = get_in(self.root, path[:-1])
        if type(parent) is PList:  # an item delete shifts indices: a list write
            self._check_write(path[:-1], "delitem")
            if index_of(parent, path[-1]) is None:
                raise IndexError(
                    f"cannot delete {format_path(path)!r}: no such item "
                    f"(the list has {len(parent)} items)"
                )
            self._delete(path, written=path[:-1])
            return
        self._check_write(path, "delete")
        if get_in(self.root, path) is MISSING:
            node = self.root
            for segment in path[:-1]:  # an item missing from a list on the way: no such item
                parent, node = node, child(node, segment)
                if node is MISSING and type(parent) is PList:
                    raise IndexError(
                        f"cannot delete {format_path(path)!r}: no such item "
                        f"(the list has {len(parent)} items)"
                    )
            raise KeyError(f"cannot delete {format_path(path)!r}: no such key")
        self._delete(path)

    # -- end ---------------------------------------------------------------------------------
    def commit(self, strict: bool = False) -> Snapshot:
        """Commit through the engine (spec/05)."""
        self._alive()
        return self.engine.commit(self, strict)

    def close(self) -> None:
        """End the transaction; its views stop working; an exclusive one releases the lock.

        The ``ctx`` link is dropped, so that no reference cycle keeps the draft (and the values
        a commit replaced) alive until the cyclic GC runs (spec/05, release).
        """
        self.open = False
        self.ctx = None
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
    """The ``ctx`` a process receives: namespaces as guarded views, plus ``local``.

    Its transaction is kept in a slot whose descriptor only this module holds (spec/04: no
    attribute of ``ctx`` reaches the transaction); ``ctx._tx`` reads a namespace named ``_tx``.
    """

    __slots__ = ("_s", "local")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("ctx is made by the engine")

    def __getitem__(self, namespace: str) -> Any:
        tx, views = _ctx_state(self)
        view = views.get(namespace)
        if view is not None:  # a guarded view re-resolves its node on every access
            tx._alive()
            return view
        view = tx.namespace(namespace)
        if isinstance(view, MapView):
            views[namespace] = view
        return view

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        name = _CTX_ALIASES.get(name, name)  # Theus 3 spellings (spec/19)
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
        return int(_ctx_state(self)[0].version)

    @property
    def outbox(self) -> OutboxBuffer:
        """This attempt's outbox: ``ctx.outbox.add(topic, payload)`` (spec/15)."""
        tx = _ctx_state(self)[0]
        tx._alive()
        return tx.outbox  # type: ignore[no-any-return]

    def __setattr__(self, name: str, value: Any) -> None:
        name = _CTX_ALIASES.get(name, name)
        name = "global" if name == "global_" else name
        _ctx_state(self)[0].write_key((), name, value)

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("ctx cannot be pickled or copied; use ctx.domain.to_dict()")

    def __repr__(self) -> str:
        return f"<ctx version={_ctx_state(self)[0].version}>"


_CTX_ALIASES = {"domain_ctx": "domain", "global_ctx": "global"}
_CTX_SLOT = Context.__dict__["_s"]
_ctx_state = _CTX_SLOT.__get__
_set_ctx_state = _CTX_SLOT.__set__
delattr(Context, "_s")  # only this module can reach the slot now


_set_local = Context.__dict__["local"].__set__


def _make_ctx(tx: Transaction) -> Context:
    """The ``ctx`` of ``tx`` (without ``__init__``, which refuses)."""
    ctx = Context.__new__(Context)
    _set_ctx_state(ctx, (tx, {}))
    _set_local(ctx, Local())
    return ctx
