"""The Theus reference backend: the semantics of ``spec/`` in readable pure Python.

Registered under the ``theus.backends`` entry-point group as ``reference`` (priority 10). Use it
through ``theus.TheusEngine(backend="reference")``; nothing here is needed directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from theus.hub import LocalHub
from theus.protocols import EngineOptions

from ._engine import ReferenceEngine, Snapshot

__all__ = ["ReferenceBackend", "ReferenceEngine", "Snapshot", "backend"]
__version__ = "0.1.0"


class ReferenceBackend:
    """The backend object the entry point names."""

    name = "reference"
    priority = 10
    version = __version__
    capabilities = frozenset({"threads", "async"})

    def create_hub(self, capacity: int = 1024) -> LocalHub:
        """A new hub (the backend-independent pure-Python one)."""
        return LocalHub(capacity)

    def create_engine(self, context: Mapping[str, Any], options: EngineOptions) -> ReferenceEngine:
        """A new engine core with ``context`` as version 0."""
        return ReferenceEngine(context, options)

    def __repr__(self) -> str:
        return f"<theus backend {self.name!r} {self.version}>"


backend = ReferenceBackend()
