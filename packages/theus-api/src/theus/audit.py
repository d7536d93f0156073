"""Audit recipes (spec/17). (Placeholder.)"""

from __future__ import annotations

from typing import Any

from .contracts import ProcessSpec
from .pipeline import Stage

__all__ = ["Audit"]


class Audit:
    """An engine's audit: its recipe, counters and violation log."""

    stage: Stage

    def __init__(self, recipe: Any) -> None:
        raise NotImplementedError("audit recipes are not implemented yet")

    def check_inputs(self, spec: ProcessSpec, kwargs: dict[str, Any]) -> None:
        """Check a call's keyword arguments against the input rules."""
        raise NotImplementedError
