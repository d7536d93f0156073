"""The engine core: versions, the commit critical section and conflict detection (spec/05)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from theus import messages
from theus.contracts import Contract, ProcessSpec
from theus.errors import ConflictError, ContextError, NestedExecutionError
from theus.paths import Path, format_path, parse_path
from theus.protocols import EngineOptions
from theus.zones import Zone

from ._changes import changes_of, minimal
from ._pmap import MISSING, PMap
from ._transaction import Transaction
from ._tree import delete_in, freeze, get_in, set_in, thaw
from ._views import MapView, wrap

__all__ = ["HISTORY", "CommitLock", "Handle", "ReferenceEngine", "Snapshot"]

HISTORY = 1024  # commits whose write sets are kept for conflict checks (spec/05: at least 1024)


class CommitLock:
    """The engine's commit lock, aware of the thread that holds it (spec/05).

    A thread that asks for it while it already holds it — a signal handler or a destructor
    running inside a commit's critical section or an exclusive transaction — gets
    ``NestedExecutionError`` at once instead of deadlocking.

    Under contention a releasing thread yields once, so that a thread already waiting gets the
    lock before the releaser can take it again (a thread committing in a tight loop would
    otherwise starve the others: the releaser still holds the GIL when the waiter wakes).
    """

    __slots__ = ("_lock", "_waiting")

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entry is refused; RLock knows its owner atomically
        self._waiting = 0

    def acquire(self) -> None:
        """Take the lock (blocks while another thread commits)."""
        lock = self._lock
        if lock._is_owned():  # type: ignore[attr-defined]
            raise _reentered()
        if lock.acquire(blocking=False):
            return
        self._waiting += 1
        try:
            lock.acquire()
        finally:
            self._waiting -= 1

    def release(self) -> None:
        """Release the lock; yield to a waiting thread if there is one."""
        self._lock.release()
        if self._waiting:
            time.sleep(0)

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _reentered() -> NestedExecutionError:
    return NestedExecutionError(
        "the engine was called from code running inside one of its own commits on this thread "
        "(a signal handler or a destructor); call it after the commit returns"
    )


_CLOSED = "this TheusEngine is closed; nothing was committed"


@dataclass(frozen=True)
class Handle:
    """A process compiled for this engine."""

    spec: ProcessSpec
    contract: Contract


class Snapshot:
    """One immutable version of the state: a mapping of namespaces to read-only views (a
    registered ``collections.abc.Mapping``).

    Its fields live in a slot whose descriptor only this module holds (removed from the class
    below): ``object.__setattr__`` cannot change them. Snapshots are made by the engine
    (:func:`make_snapshot`); ``__init__`` always refuses (spec/01).
    """

    __slots__ = ("_s",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("snapshots are immutable and made by the engine; __init__ cannot run")

    @property
    def version(self) -> int:
        """The version: 0 for the initial context, +1 per commit."""
        return _snap_state(self)[0]  # type: ignore[no-any-return]

    def __copy__(self) -> Snapshot:
        return self

    def __deepcopy__(self, memo: Any) -> Snapshot:
        return self

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("snapshots cannot be pickled; pickle snapshot.to_dict()")

    def __reduce__(self) -> Any:
        raise TypeError("snapshots cannot be pickled; pickle snapshot.to_dict()")

    @property
    def domain(self) -> MapView:
        """The ``domain`` namespace."""
        return self["domain"]  # type: ignore[no-any-return]

    @property
    def global_(self) -> MapView:
        """The ``global`` namespace."""
        return self["global"]  # type: ignore[no-any-return]

    @property
    def signals(self) -> Mapping[str, Any]:
        """Signals committed by the commit that made this version (path → value)."""
        return MappingProxyType(
            {format_path(p): wrap(v, p, None) for p, v in snapshot_signals(self).items()}
        )

    def __getitem__(self, namespace: str) -> Any:
        value = snapshot_root(self).get(namespace) if isinstance(namespace, str) else MISSING
        if value is MISSING:
            raise KeyError(namespace)
        return wrap(value, (namespace,), None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            pass
        # Theus 3 spellings (spec/19): aliases, ``state.data``; ``state.signal`` says what to write
        alias = _STATE_ALIASES.get(name)
        if alias is not None and alias in self:
            return self[alias]
        if name == "data":
            return self
        if name == "signal":
            raise AttributeError(messages.state_signal_hint())
        raise AttributeError(f"the state has no namespace {name!r}")

    def __iter__(self) -> Iterator[str]:
        return iter(snapshot_root(self).keys())

    def __len__(self) -> int:
        return len(snapshot_root(self))

    def __contains__(self, namespace: object) -> bool:
        return namespace in snapshot_root(self)

    def keys(self) -> list[str]:
        """The namespace names, in key order."""
        return snapshot_root(self).keys()

    def items(self) -> list[tuple[str, Any]]:
        """``(name, view)`` pairs."""
        return [(name, wrap(value, (name,), None)) for name, value in snapshot_root(self).items()]

    def values(self) -> list[Any]:
        """The namespaces as views."""
        return [wrap(value, (name,), None) for name, value in snapshot_root(self).items()]

    def get(self, path: str, default: Any = None) -> Any:
        """The value at a dotted path, or ``default``."""
        segments = parse_path(path)
        if segments in snapshot_signals(self):
            return wrap(snapshot_signals(self)[segments], segments, None)
        value = get_in(snapshot_root(self), segments)
        return default if value is MISSING else wrap(value, segments, None)

    def to_dict(self) -> dict[str, Any]:
        """A deep, plain, mutable copy of the data tree."""
        return thaw(snapshot_root(self))  # type: ignore[no-any-return]

    def __setattr__(self, name: str, value: Any) -> None:
        raise ContextError(messages.read_only("assign", name))

    def __setitem__(self, name: str, value: Any) -> None:
        self.__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        raise ContextError(messages.read_only("delete", name))

    def __delitem__(self, name: str) -> None:
        self.__delattr__(name)

    def __repr__(self) -> str:
        return f"<Snapshot version={self.version} namespaces={snapshot_root(self).keys()}>"


Mapping.register(Snapshot)
_STATE_ALIASES = {"domain_ctx": "domain", "global_ctx": "global"}
_SNAP_SLOT = Snapshot.__dict__["_s"]
_snap_state = _SNAP_SLOT.__get__
_set_snap_state = _SNAP_SLOT.__set__
delattr(Snapshot, "_s")  # only this module can reach the slot now


def make_snapshot(version: int, root: PMap, signals: Iterable[tuple[Path, Any]]) -> Snapshot:
    """A new snapshot (without ``__init__``, which refuses)."""
    snapshot = Snapshot.__new__(Snapshot)
    _set_snap_state(snapshot, (version, root, dict(signals)))
    return snapshot


def snapshot_root(snapshot: Snapshot) -> PMap:
    """The stored tree of ``snapshot`` (the engine's; no attribute of the snapshot exposes it,
    so a namespace may be named ``root``)."""
    return _snap_state(snapshot)[1]  # type: ignore[no-any-return]


def snapshot_signals(snapshot: Snapshot) -> dict[Path, Any]:
    """The signals of ``snapshot``'s version by path (the engine's; do not change)."""
    return _snap_state(snapshot)[2]  # type: ignore[no-any-return]


def _conflict(mine: set[Path], prefixes: set[Path], theirs: Iterable[Path]) -> Path | None:
    """A path of ``theirs`` that overlaps one of ``mine``, or None."""
    for path in theirs:
        if path in mine or path in prefixes:
            return path
        for i in range(1, len(path)):
            if path[:i] in mine:
                return path
    return None


class ReferenceEngine:
    """The reference engine core: one current snapshot, swapped under a short lock."""

    def __init__(self, context: Mapping[str, Any], options: EngineOptions) -> None:
        self.strict_guards = options.strict_guards
        self.strict_cas = options.strict_cas
        self.pipeline = options.pipeline
        self._has_before = False
        root = PMap()
        for name, value in context.items():
            root = root.set(name, freeze(value, (name,), Zone.DATA, lambda v: v))
        self._current = make_snapshot(options.version, root, ())
        self._lock = CommitLock()
        self._history: deque[tuple[int, frozenset[Path]]] = deque(maxlen=HISTORY)
        self._closed = False
        self.pipeline.watch(self._watch, frozenset())

    def snapshot(self) -> Snapshot:
        """The current snapshot."""
        return self._current

    @staticmethod
    def parts(snapshot: Snapshot) -> tuple[PMap, dict[Path, Any]]:
        """The stored tree and the signals of ``snapshot`` (for its transactions)."""
        state = _snap_state(snapshot)
        return state[1], state[2]

    def compile(self, spec: ProcessSpec) -> Handle:
        """Compile a process's contract for this engine."""
        return Handle(spec, spec.contract())

    def begin(self, handle: Handle | None, exclusive: bool = False) -> Transaction:
        """A transaction on the current snapshot; ``exclusive`` holds the commit lock until
        the transaction closes (spec/05), so nothing can commit in between."""
        if self._closed:
            raise ContextError("this TheusEngine is closed")
        if exclusive:
            self._lock.acquire()
            try:
                return Transaction(self, handle, self._current, self._lock)
            except BaseException:
                self._lock.release()
                raise
        return Transaction(self, handle, self._current)

    def commit(self, tx: Transaction, strict: bool) -> Snapshot:
        """Commit ``tx`` (spec/05) through the engine's pipeline (spec/15): ``before_commit``
        hooks, then, under the lock, the fast path or the conflict check and rebase, and the
        queueing of the landed commit; after the lock, its ``after_commit`` hooks.

        The replaced snapshot stays referenced by ``latest`` (and ``tx.base``) until this
        method has released the lock, so values only it reached are freed after the lock is
        released: no destructor runs in the critical section.
        """
        strict = strict or self.strict_cas
        if self._closed:
            raise ContextError(_CLOSED)
        outbox = bool(tx.outbox)
        if not tx.writes and not tx.signals and not outbox:
            return self._current  # nothing to commit: no version, no hook (spec/05)
        pipeline = self.pipeline
        changes = None
        if self._has_before:
            changes = changes_of(tx)
            pipeline.before_commit(changes)  # may reject: nothing has landed
        wanted = pipeline.wants(bool(tx.signals), outbox)
        if wanted:
            changes = changes or changes_of(tx)
        ticket = 0
        with nullcontext() if tx.held is not None else self._lock:
            if self._closed:
                raise ContextError(_CLOSED)
            latest = self._current
            root = tx.root
            if latest.version != tx.version:
                self._check(tx, latest, strict)
                root = snapshot_root(latest)
                for path in minimal(tx.writes):
                    value = get_in(tx.root, path)
                    if value is not MISSING:
                        root = set_in(root, path, value)
                    elif get_in(root, path) is not MISSING:
                        root = delete_in(root, path)
            snap = make_snapshot(latest.version + 1, root, tx.signals.items())
            self._history.append((snap.version, frozenset(tx.writes)))
            self._current = snap
            if wanted:
                ticket = pipeline.enqueue(snap, changes)  # type: ignore[arg-type]  # in commit order
        tx.open = False  # its views end with its commit: after_commit sees them ended (15)
        held, tx.held = tx.held, None
        if held is not None:  # an exclusive transaction's hold ends with its commit
            held.release()
        if ticket:
            pipeline.drain(ticket)
        return snap

    def _watch(self, before: tuple[Any, ...], after: frozenset[str]) -> None:
        self._has_before = bool(before)

    def close(self) -> None:
        """Refuse every later commit and ``begin`` (spec/11); waits for a commit in progress."""
        with self._lock:
            self._closed = True
        self.pipeline.unwatch(self._watch)  # no cycle keeps the closed core's state alive

    def _check(self, tx: Transaction, latest: Snapshot, strict: bool) -> None:
        behind = latest.version - tx.version
        if strict:
            raise ConflictError(messages.cas_strict(tx.version, latest.version))
        if behind > len(self._history):
            raise ConflictError(messages.conflict_history(tx.version, HISTORY, latest.version))
        mine = tx.reads | tx.writes
        prefixes = {p[:i] for p in mine for i in range(1, len(p))}
        for version, written in reversed(self._history):
            if version <= tx.version:
                break
            hit = _conflict(mine, prefixes, written)
            if hit is not None:
                raise ConflictError(
                    messages.conflict_changed(format_path(hit), version, tx.version)
                )
