"""What a backend implements (spec/14-backend-protocol.md).

``theus`` owns the facade, contracts, errors, return mapping and retries; a backend provides the
state, the transaction and the hub through these protocols.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .contracts import ProcessSpec
from .outbox import OutboxBuffer
from .pipeline import CommitPipeline
from .update import Update

__all__ = ["Backend", "EngineCore", "EngineOptions", "HubCore", "Receiver", "TxCore"]


@runtime_checkable
class Receiver(Protocol):
    """One subscription to a hub (spec/08): the messages published after it was made."""

    def recv(self, timeout: float | None = None) -> Any:
        """Block for the next message; ``TimeoutError`` when ``timeout`` passes."""
        ...

    def try_recv(self) -> Any:
        """The next message, or ``SignalEmpty``."""
        ...

    def recv_many(self, max_n: int, timeout: float | None = None) -> list[Any]:
        """Wait for one message, then return up to ``max_n``; ``[]`` on timeout."""
        ...

    async def recv_async(self) -> Any:
        """Await the next message."""
        ...

    async def recv_many_async(self, max_n: int) -> list[Any]:
        """Await one message, then return up to ``max_n``."""
        ...

    @property
    def lagged(self) -> int:
        """Messages missed in total (policy ``lag``)."""
        ...

    def close(self) -> None:
        """Unsubscribe."""
        ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


@runtime_checkable
class HubCore(Protocol):
    """A broadcast channel (spec/08)."""

    def publish(self, message: Any, timeout: float | None = None) -> int:
        """Deliver ``message`` to every receiver that accepts it; return how many got it."""
        ...

    def publish_many(self, messages: Iterable[Any], timeout: float | None = None) -> int:
        """Publish each message in order; the sum of the receivers reached."""
        ...

    def subscribe(
        self, policy: str = "lag", capacity: int | None = None, topics: Iterable[str] | None = None
    ) -> Receiver:
        """A new receiver."""
        ...

    def close(self) -> None:
        """Close the hub and every receiver."""
        ...


@dataclass(frozen=True)
class EngineOptions:
    """Engine settings handed to :meth:`Backend.create_engine`."""

    strict_guards: bool
    strict_cas: bool
    hub: HubCore
    #: the engine's commit pipeline (spec/15): the core calls its hooks around every commit
    pipeline: CommitPipeline
    #: the version of the initial context (restoring from a checkpoint starts there)
    version: int = 0


@runtime_checkable
class TxCore(Protocol):
    """One transaction on a draft of the state (spec/05)."""

    ctx: Any
    version: int
    wrote: bool
    #: the attempt's outbox buffer (spec/15); its messages are released by the commit
    outbox: OutboxBuffer

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

    def create_hub(self, capacity: int = 1024) -> HubCore:
        """A new hub whose receivers hold ``capacity`` messages by default."""
        ...

    def create_engine(self, context: Mapping[str, Any], options: EngineOptions) -> EngineCore:
        """A new engine core holding ``context`` as version ``options.version``."""
        ...
