"""What a backend implements (spec/14-backend-protocol.md).

``theus`` owns the facade, contracts, errors, return mapping and retries; a backend provides the
state, the transaction and the hub through these protocols.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .contracts import ProcessSpec
from .update import Update

__all__ = ["Backend", "EngineCore", "EngineOptions", "HubCore", "Receiver", "TxCore"]


@runtime_checkable
class Receiver(Protocol):
    """One subscription to a hub: every message published after it was made, in order."""

    def recv(self, timeout: float | None = None) -> Any:
        """Block for the next message; ``TimeoutError`` when ``timeout`` passes."""
        ...

    def try_recv(self) -> Any:
        """The next message, or ``SignalEmpty``."""
        ...

    async def recv_async(self) -> Any:
        """Await the next message."""
        ...

    def close(self) -> None:
        """Unsubscribe."""
        ...

    def __iter__(self) -> Iterator[Any]: ...


@runtime_checkable
class HubCore(Protocol):
    """A broadcast channel (spec/08)."""

    def publish(self, message: Any) -> int:
        """Send ``message`` to every receiver; return how many were reached."""
        ...

    def subscribe(self) -> Receiver:
        """A new receiver."""
        ...


@dataclass(frozen=True)
class EngineOptions:
    """Engine settings handed to :meth:`Backend.create_engine`."""

    strict_guards: bool
    strict_cas: bool
    hub: HubCore


@runtime_checkable
class TxCore(Protocol):
    """One transaction on a draft of the state (spec/05)."""

    ctx: Any
    version: int
    wrote: bool

    def apply(self, update: Update) -> None:
        """Apply writes, checked against contract, zones and semantic."""
        ...

    def get(self, path: str, default: Any = None) -> Any:
        """Read the draft at ``path`` (a recorded read)."""
        ...

    def commit(self, strict: bool = False) -> Any:
        """Commit and return the new snapshot; ``ConflictError`` on conflict."""
        ...

    def close(self) -> None:
        """End the transaction: discard an uncommitted draft, invalidate views."""
        ...


@runtime_checkable
class EngineCore(Protocol):
    """One engine's state store."""

    def snapshot(self) -> Any:
        """The current snapshot."""
        ...

    def compile(self, spec: ProcessSpec) -> Any:
        """Precompile a process; the handle comes back to ``begin``/``execute``."""
        ...

    def begin(self, handle: Any | None, exclusive: bool = False) -> TxCore:
        """Open a transaction for a process (``handle``) or the host (``None``).

        ``exclusive`` holds the engine's commit order until ``close`` (spec/05, spec/14).
        ``ContextError`` once the core is closed.
        """
        ...

    def close(self) -> None:
        """Close the core (spec/11): wait for a commit in progress, then refuse every later
        ``begin`` and commit with ``ContextError``. Idempotent."""
        ...


@runtime_checkable
class Backend(Protocol):
    """The object a ``theus.backends`` entry point names."""

    name: str
    priority: int
    version: str
    capabilities: frozenset[str]

    def create_hub(self) -> HubCore:
        """A new hub."""
        ...

    def create_engine(self, context: Mapping[str, Any], options: EngineOptions) -> EngineCore:
        """A new engine core holding ``context`` as version 0."""
        ...
