"""Signals and the hub facade (spec/08-signals.md)."""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from .pipeline import Changes, Stage

if TYPE_CHECKING:
    from .protocols import Receiver

__all__ = ["Signal", "SignalHub", "SignalStage"]

log = logging.getLogger("theus")


class Signal(NamedTuple):
    """A signal-zone write, published after its commit."""

    name: str
    value: Any
    version: int


class SignalHub(abc.ABC):  # noqa: B024 - an ABC used for virtual subclassing only
    """A broadcast channel (spec/08). ``SignalHub(capacity=1024, backend=None)`` returns a hub
    of the selected backend.

    ``hub.publish(msg, timeout=None)`` reaches every receiver made by
    ``hub.subscribe(policy="lag" | "block", capacity=None, topics=None)``; receivers offer
    ``recv(timeout)``, ``try_recv()``, ``recv_many(max_n, timeout)``, ``await recv_async()``,
    ``await recv_many_async(max_n)``, sync and async iteration, ``len``, ``lagged`` and
    ``close()``. Backend hub classes are registered as virtual subclasses, so ``isinstance``
    works.
    """

    def __new__(cls, capacity: int = 1024, backend: Any = None) -> Any:
        from ._discovery import select_backend
        from .hub import check_capacity

        return select_backend(backend).create_hub(check_capacity(capacity, "capacity"))

    # The interface every backend's hub implements (for type checkers; never called here).
    def publish(self, message: Any, timeout: float | None = None) -> int:
        """Deliver ``message`` to every receiver that accepts it; return how many got it."""
        raise NotImplementedError

    def publish_many(self, messages: Iterable[Any], timeout: float | None = None) -> int:
        """Publish each message in order; return the sum of the receivers reached."""
        raise NotImplementedError

    def subscribe(
        self, policy: str = "lag", capacity: int | None = None, topics: Iterable[str] | None = None
    ) -> Receiver:
        """A new receiver: ``policy`` ``"lag"`` or ``"block"``, optional topic patterns."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the hub and every receiver."""
        raise NotImplementedError


def _register_local_hub() -> None:
    from .hub import LocalHub

    SignalHub.register(LocalHub)


_register_local_hub()


class SignalStage(Stage):
    """The built-in pipeline stage that publishes a landed commit's signals on the engine's
    hub, in commit order (spec/08, spec/15). A hub that raises is logged, never propagated."""

    name = "signals"
    native = "signals"
    wants = "signals"

    def __init__(self, hub: Any) -> None:
        self.hub = hub

    def after_commit(self, snapshot: Any, changes: Changes) -> None:
        """Publish ``snapshot``'s signals as :class:`Signal` messages."""
        interrupt: BaseException | None = None
        version = snapshot.version
        for name, value in snapshot.signals.items():
            try:
                self.hub.publish(Signal(name, value, version))
            except Exception:
                log.warning(
                    "version %d was committed, but its signal %r could not be published",
                    version,
                    name,
                    exc_info=True,
                )
            except BaseException as exc:
                interrupt = interrupt or exc
        if interrupt is not None:
            raise interrupt
