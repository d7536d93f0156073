"""Type Shield (spec/16): Pydantic models checked before every commit. (Placeholder.)"""

from __future__ import annotations

from typing import Any

from .pipeline import Stage

__all__ = ["SchemaStage"]


class SchemaStage(Stage):
    """The pipeline stage checking commits against a schema."""

    name = "schema"

    def __init__(self, schema: Any) -> None:
        raise NotImplementedError("schema validation (Type Shield) is not implemented yet")
