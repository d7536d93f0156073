"""Theus 3's ``theus.structures`` import path (spec/19).

``StateUpdate`` and ``ContextError`` are the engine's own; Theus 3's Rust-backed ``State``,
``FrozenDict``, ``FunctionResult`` and ``ManagedAllocator`` have no counterpart here, and
importing them raises ``ImportError`` saying what to use instead.
"""

from __future__ import annotations

from typing import NoReturn

from .errors import ContextError
from .update import StateUpdate

__all__ = ["ContextError", "StateUpdate"]

_INSTEAD = {
    "State": "engine.state (an immutable snapshot: state.version, state.domain, state.get(path))",
    "FrozenDict": "the read-only views of engine.state (view.to_dict() for a plain copy)",
    "FunctionResult": "a plain return value or a StateUpdate (spec/06)",
    "ManagedAllocator": "heavy_ keys holding your own objects (spec/03); no shared memory yet",
    "ShmArray": "heavy_ keys holding your own arrays (spec/03); shared memory is not built yet",
}  # fmt: skip


def __getattr__(name: str) -> NoReturn:
    instead = _INSTEAD.get(name)
    if instead is None:
        raise AttributeError(f"module 'theus.structures' has no attribute {name!r}")
    raise ImportError(f"theus.structures.{name} (Theus 3) does not exist here; use {instead}")
