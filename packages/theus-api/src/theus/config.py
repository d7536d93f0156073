"""Theus 3's ``theus.config`` import path (spec/19): loading an audit recipe from YAML.

``ConfigFactory.load_recipe(path)`` returns this engine's :class:`~theus.audit_recipe.AuditRecipe`
(spec/17), which ``TheusEngine(audit_recipe=...)`` takes as it is.
"""

from __future__ import annotations

import os

from .audit_recipe import AuditRecipe, load_recipe
from .errors import SchemaViolationError

__all__ = ["AuditRecipe", "ConfigFactory", "SchemaViolationError"]


class ConfigFactory:
    """Theus 3's recipe loader."""

    @staticmethod
    def load_recipe(path: str) -> AuditRecipe:
        """The recipe in the YAML file ``path``; ``FileNotFoundError`` when it does not exist,
        ``AuditRecipeError`` naming file:line:column when it is invalid."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"audit recipe not found: {path}")
        return load_recipe(path)

    @staticmethod
    def load_audit_recipe() -> AuditRecipe | None:
        """``audit_recipe.yaml`` in the current directory, or None when there is none (an
        invalid file raises, it is never skipped)."""
        path = "audit_recipe.yaml"
        return load_recipe(path) if os.path.exists(path) else None
