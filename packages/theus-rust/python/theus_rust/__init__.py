"""The Theus Rust backend: the semantics of ``spec/`` at native speed.

Registered under the ``theus.backends`` entry-point group as ``rust`` (priority 100). Use it
through ``theus.TheusEngine(backend="rust")`` (or just ``TheusEngine()``: it has the highest
priority); nothing here is needed directly.

The engine core, snapshots, transactions, ``ctx`` and the views are Rust classes from
``theus_rust._native``; sync processes run end to end in Rust (capability ``native-execute``).
The hub is native too (``Hub``): commits publish their signals without calling Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from theus.protocols import EngineOptions
from theus.signals import SignalHub

from ._native import Ctx, Engine, Handle, Hub, ListView, MapView, Receiver, Snapshot, Tx

__all__ = [
    "Ctx",
    "Engine",
    "Handle",
    "Hub",
    "ListView",
    "MapView",
    "Receiver",
    "RustBackend",
    "Snapshot",
    "Tx",
    "backend",
]
__version__ = "0.1.0"

Mapping.register(MapView)
Mapping.register(Snapshot)
Sequence.register(ListView)
SignalHub.register(Hub)


class RustBackend:
    """The backend object the entry point names."""

    name = "rust"
    priority = 100
    version = __version__
    capabilities = frozenset({"threads", "async", "native-execute", "native-conditions"})

    def create_hub(self, capacity: int = 1024) -> Hub:
        """A new native hub (``theus_rust._native.Hub``; ``theus.hub.LocalHub`` stays available
        to every backend)."""
        return Hub(capacity)

    def create_engine(self, context: Mapping[str, Any], options: EngineOptions) -> Engine:
        """A new native engine core with ``context`` as version 0."""
        return Engine(context, options)

    def __repr__(self) -> str:
        return f"<theus backend {self.name!r} {self.version}>"


backend = RustBackend()
