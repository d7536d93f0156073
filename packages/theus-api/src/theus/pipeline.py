"""The commit pipeline (spec/15-commit-pipeline.md): one ordered list of stages per engine,
with two moments around every commit.

- ``before_commit(changes)`` runs before the commit is attempted, outside the commit lock. A
  stage that raises rejects the commit: nothing lands, nothing is published or released, and
  the exception reaches the caller (a process is not re-run).
- ``after_commit(snapshot, changes)`` runs once the new version is visible, outside the commit
  lock, each stage seeing the commits in commit order. What it raises is logged on the
  ``theus`` logger and never makes the call fail (the commit stands); an interrupt
  (``KeyboardInterrupt``) is re-raised once every stage has run.

Every commit of every path (process attempts, host transactions, compare-and-swap; sync, async
and native) goes through the same pipeline: no commit site validates or publishes by itself.
Backends call :meth:`CommitPipeline.before_commit`, :meth:`CommitPipeline.enqueue` (under their
commit lock, in commit order) and :meth:`CommitPipeline.drain` (after releasing it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, NamedTuple, overload

from .paths import Path, format_path
from .zones import Zone, zone_of

__all__ = [
    "Change",
    "Changes",
    "CommitPipeline",
    "OutboxMessage",
    "Stage",
]

log = logging.getLogger("theus")

ChangeKind = Literal["set", "delete", "append"]


class Change(NamedTuple):
    """One entry of a commit's write set, with its value.

    - ``("set", path, value)``: ``path`` now holds ``value`` (a scalar, a heavy object, or a
      read-only view of a map or list);
    - ``("delete", path, None)``: ``path`` was removed;
    - ``("append", path, items)``: the list at ``path`` (which existed in the base) only grew at
      its end during the transaction; ``items`` is the tuple of the items appended, in order.
    """

    kind: ChangeKind
    path: Path
    value: Any

    @property
    def dotted(self) -> str:
        """``path`` as a dotted string."""
        return format_path(self.path)


class OutboxMessage(NamedTuple):
    """A message of the transactional outbox (spec/15).

    Added inside a transaction with ``version`` and ``index`` 0; released by the commit that
    carried it, with ``version`` that commit's version and ``index`` its position among the
    commit's messages, so ``(version, index)`` identifies it for idempotent receivers.
    """

    topic: str
    payload: Any
    version: int = 0
    index: int = 0  # type: ignore[assignment]  # (shadows tuple.index, on purpose)


class Changes(Sequence[Change]):
    """The write set of one commit, with values: what ``before_commit`` and ``after_commit``
    receive.

    The tree changes come first, sorted by path, then the signal writes in write order. One
    entry per minimal written path (a path written below another written path is covered by
    the ancestor's entry). Attributes:

    - ``process``: the process's name, or ``None`` for a host transaction or compare-and-swap;
    - ``base``: the snapshot the transaction read;
    - ``outbox``: the outbox messages the commit carries (``version``/``index`` still 0 before
      the commit; :meth:`CommitPipeline.drain` hands stages the numbered ones).
    """

    __slots__ = ("_base", "_base_fn", "_items", "outbox", "process")

    def __init__(
        self,
        items: Sequence[Change],
        process: str | None,
        base: Any,
        outbox: Sequence[OutboxMessage] = (),
    ) -> None:
        self._items: tuple[Change, ...] = tuple(items)
        self.process = process
        self._base = base
        self._base_fn: Any = None
        self.outbox: tuple[OutboxMessage, ...] = tuple(outbox)

    @property
    def base(self) -> Any:
        """The snapshot the transaction read. (A backend may hand it over as a zero-argument
        callable in ``_base_fn``, made into the snapshot object on first use.)"""
        fn = self._base_fn
        if fn is not None:
            self._base = fn()
            self._base_fn = None
        return self._base

    @overload
    def __getitem__(self, index: int) -> Change: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Change]: ...

    def __getitem__(self, index: int | slice) -> Change | Sequence[Change]:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Change]:
        return iter(self._items)

    def numbered(self, version: int) -> Changes:
        """These changes with the outbox messages numbered for commit ``version``."""
        if not self.outbox:
            return self
        out = Changes(self._items, self.process, None)
        out._base, out._base_fn = self._base, self._base_fn
        out.outbox = tuple(m._replace(version=version, index=i) for i, m in enumerate(self.outbox))
        return out

    def __repr__(self) -> str:
        return (
            f"<Changes process={self.process!r} base={getattr(self.base, 'version', None)} "
            f"{[f'{c.kind} {c.dotted}' for c in self._items]} outbox={len(self.outbox)}>"
        )


class Stage:
    """A pipeline stage. Override ``before_commit``, ``after_commit`` or both; a hook that is
    not overridden is never called (it costs nothing).

    ``native`` names a built-in stage a backend may run natively instead of calling it (the
    Rust backend publishes signals on its native hub without a Python call).
    """

    name: str = "stage"
    native: str | None = None
    #: which commits ``after_commit`` is for: ``"always"`` (every commit with a new version),
    #: ``"signals"`` (only commits that carry signals), ``"outbox"`` (only commits that carry
    #: outbox messages). A backend skips the hand-over of commits no stage wants.
    wants: str = "always"

    def before_commit(self, changes: Changes) -> None:
        """Check ``changes`` before the commit; raise to reject it."""

    def after_commit(self, snapshot: Any, changes: Changes) -> None:
        """React to a landed commit (``snapshot`` is its new version)."""


def _overrides(stage: Stage, hook: str) -> bool:
    return getattr(type(stage), hook) is not getattr(Stage, hook)


def _wanted(wants: str, changes: Changes) -> bool:
    if wants == "outbox":
        return bool(changes.outbox)
    if wants == "signals":
        return any(_is_signal(c.path) for c in changes)
    return True


def _is_signal(path: Path) -> bool:
    return zone_of(path) is Zone.SIGNAL


class CommitPipeline:
    """The ordered stages of one engine, and the ordered hand-over of landed commits to their
    ``after_commit`` hooks.

    The facade builds it (with its built-in stages) and passes it to the backend in
    :class:`theus.protocols.EngineOptions`. A backend :meth:`watch`-es it to learn the hooks it
    must call; it never runs a stage in its commit lock's critical section.
    """

    def __init__(self, stages: Sequence[Stage] = ()) -> None:
        self._stages: list[Stage] = list(stages)
        self._watchers: list[
            Callable[[tuple[Callable[[Changes], None], ...], frozenset[str]], None]
        ] = []
        self._lock = threading.Lock()
        # the drain: landed commits waiting for their after_commit hooks, by ticket
        self._pending: dict[int, tuple[Any, Changes] | None] = {}
        self._ticket = 0  # last ticket handed out by enqueue (under the backend's commit lock)
        self._next = 1  # the next ticket to dispatch
        # re-entrant: a signal handler on a thread inside it may commit and drain
        self._cond = threading.Condition(threading.RLock())
        self._dispatcher: int | None = None  # thread ident of the thread dispatching
        self._native: frozenset[str] = frozenset()
        self._before: tuple[Callable[[Changes], None], ...] = ()
        self._after: tuple[Stage, ...] = ()
        self._wants: frozenset[str] = frozenset()

    # -- stages ------------------------------------------------------------------------------
    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stages, in order."""
        return tuple(self._stages)

    def add(self, stage: Stage, *, index: int | None = None) -> None:
        """Insert ``stage`` (at the end, or before position ``index``)."""
        if not isinstance(stage, Stage):
            raise TypeError(f"a pipeline stage must be a theus.pipeline.Stage, not {stage!r}")
        with self._lock:
            if stage in self._stages:
                raise ValueError(f"stage {stage.name!r} is already in the pipeline")
            if index is None:
                self._stages.append(stage)
            else:
                self._stages.insert(index, stage)
            self._changed()

    def remove(self, stage: Stage) -> None:
        """Remove ``stage`` (``ValueError`` if absent)."""
        with self._lock:
            self._stages.remove(stage)
            self._changed()

    def find(self, name: str) -> Stage | None:
        """The first stage called ``name``, or None."""
        return next((s for s in self._stages if s.name == name), None)

    def watch(
        self,
        callback: Callable[[tuple[Callable[[Changes], None], ...], frozenset[str]], None],
        native: frozenset[str],
    ) -> None:
        """Tell ``callback(before_hooks, after_wants)`` now and whenever the stages change.

        ``native`` names the built-in stages the backend runs itself (``"signals"``): those
        are not called by :meth:`before_commit` / :meth:`drain` and do not count. A backend
        watches once, when its engine core is made. ``before_hooks`` is the tuple of the
        ``before_commit`` hooks in order (a backend may call them itself, one call each, instead
        of :meth:`before_commit`); ``after_wants`` is the set of
        :attr:`Stage.wants` of the other ``after_commit`` stages: the backend enqueues a
        commit when it contains ``"always"``, or ``"signals"`` and the commit carries
        signals, or ``"outbox"`` and it carries outbox messages.
        """
        with self._lock:
            self._native = native
            self._watchers.append(callback)
            self._changed()

    def unwatch(
        self,
        callback: Callable[[tuple[Callable[[Changes], None], ...], frozenset[str]], None],
    ) -> None:
        """Stop telling ``callback`` (given to :meth:`watch`); nothing if it is not watching.
        A closed core unwatches, so that the pipeline does not keep it alive."""
        with self._lock:
            if callback in self._watchers:
                self._watchers.remove(callback)

    def _changed(self) -> None:
        before = tuple(
            s.before_commit
            for s in self._stages
            if s.native not in self._native and _overrides(s, "before_commit")
        )
        after = tuple(
            s
            for s in self._stages
            if s.native not in self._native and _overrides(s, "after_commit")
        )
        self._before, self._after = before, after
        wants = frozenset(s.wants for s in after)
        self._wants = wants
        for callback in self._watchers:
            callback(before, wants)

    def wants(self, signals: bool, outbox: bool) -> bool:
        """Whether a commit carrying ``signals``/``outbox`` must be enqueued."""
        w = self._wants
        return "always" in w or (signals and "signals" in w) or (outbox and "outbox" in w)

    # -- the two moments ---------------------------------------------------------------------
    def before_commit(self, changes: Changes) -> None:
        """Run every ``before_commit`` hook in order; the first that raises rejects."""
        for hook in self._before:
            hook(changes)

    def enqueue(self, snapshot: Any, changes: Changes, ticket: int | None = None) -> int:
        """Queue a landed commit for its ``after_commit`` hooks; return its ticket.

        Tickets number the queued commits 1, 2, 3, ... in commit order. Without ``ticket``
        the pipeline numbers them, so the call MUST be made inside the backend's commit
        critical section, right after the new version became visible (it runs no user
        code). A backend that cannot make Python objects there reserves the number itself
        in the critical section (its own counter, from 1) and passes it here after releasing
        the lock; a reserved number MUST be handed over (``snapshot`` None skips it), or the
        commits after it wait for it.
        """
        if ticket is None:
            self._ticket += 1
            ticket = self._ticket
        entry = None if snapshot is None else (snapshot, changes.numbered(snapshot.version))
        # No lock: one atomic dict store. (Taking ``_cond`` here, inside the backend's commit
        # lock, could deadlock with a signal handler committing on a thread that holds
        # ``_cond``.) The thread that enqueues always drains next, so nobody needs waking.
        self._pending[ticket] = entry
        return ticket

    def drain(self, ticket: int) -> None:
        """Run the ``after_commit`` hooks of every queued commit up to ``ticket``, in order.

        Called by the backend after releasing its commit lock. One thread at a time dispatches;
        a thread whose commit another thread is dispatching (or whose turn has not come: an
        earlier commit is still being handed over) waits until it was dispatched. A hook that
        calls back into this from the dispatching thread returns at once (its commit is
        dispatched right after the current one).
        """
        me = threading.get_ident()
        cond = self._cond
        while True:
            with cond:
                if self._next > ticket or self._dispatcher == me:
                    return
                if self._dispatcher is not None or self._next not in self._pending:
                    cond.wait()
                    continue
                self._dispatcher = me
            try:
                self._dispatch()
            finally:
                with cond:
                    self._dispatcher = None
                    cond.notify_all()

    def _dispatch(self) -> None:
        """Dispatch consecutive handed-over commits from ``_next`` on."""
        interrupt: BaseException | None = None
        pending = self._pending
        while True:
            with self._cond:
                if self._next not in pending:
                    break
                entry = pending.pop(self._next)
            if entry is not None:
                snapshot, changes = entry
                for stage in self._after:
                    if not _wanted(stage.wants, changes):
                        continue
                    try:
                        stage.after_commit(snapshot, changes)
                    except Exception:
                        log.warning(
                            "after_commit of pipeline stage %r failed for version %d",
                            stage.name,
                            snapshot.version,
                            exc_info=True,
                        )
                    except BaseException as exc:  # an interrupt: finish, then re-raise
                        interrupt = interrupt or exc
            with self._cond:
                self._next += 1
                self._cond.notify_all()
        if interrupt is not None:
            raise interrupt

    @property
    def has_before(self) -> bool:
        """Whether any ``before_commit`` hook must be called (native stages excluded)."""
        return bool(self._before)
