"""The Theus reference backend: the semantics of ``spec/`` in readable pure Python.

Registered under the ``theus.backends`` entry-point group as ``reference`` (priority 10). Use it
through ``theus.TheusEngine(backend="reference")``; nothing here is needed directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from theus.protocols import EngineOptions
from theus.signals import SignalHub

from ._engine import ReferenceEngine, Snapshot
from ._hub import Hub, Receiver

__all__ = ["Hub", "Receiver", "ReferenceBackend", "ReferenceEngine", "Snapshot", "backend"]
__version__ = "0.1.0"


class ReferenceBackend:
    """The backend object the entry point names."""

    name = "reference"
    priority = 10
    version = __version__
    capabilities = frozenset({"threads", "async"})

    def create_hub(self) -> Hub:
        """A new hub."""
        return Hub()

    def create_engine(self, context: Mapping[str, Any], options: EngineOptions) -> ReferenceEngine:
        """A new engine core with ``context`` as version 0."""
        return ReferenceEngine(context, options)

    def __repr__(self) -> str:
        return f"<theus backend {self.name!r} {self.version}>"


SignalHub.register(Hub)
backend = ReferenceBackend()
