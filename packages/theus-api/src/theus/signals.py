"""Signals and the hub facade (spec/08-signals.md)."""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

__all__ = ["Signal", "SignalHub"]


class Signal(NamedTuple):
    """A signal-zone write, published after its commit."""

    name: str
    value: Any
    version: int


class SignalHub(abc.ABC):  # noqa: B024 - an ABC used for virtual subclassing only
    """A broadcast channel. ``SignalHub()`` returns the selected backend's hub.

    ``hub.publish(msg)`` reaches every receiver made by ``hub.subscribe()``; receivers offer
    ``recv(timeout)``, ``try_recv()``, ``await recv_async()``, ``close()`` and iteration.
    Backend hub classes are registered as virtual subclasses, so ``isinstance`` works.
    """

    def __new__(cls, backend: Any = None) -> Any:
        from ._discovery import select_backend

        return select_backend(backend).create_hub()


def _register_local_hub() -> None:
    from .hub import LocalHub

    SignalHub.register(LocalHub)


_register_local_hub()
