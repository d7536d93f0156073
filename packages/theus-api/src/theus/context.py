"""Theus 3's context base classes (``theus.context``, spec/19).

A Theus 3 program builds its context as objects::

    class System(BaseSystemContext):
        def __init__(self):
            self.global_ctx = MyGlobal()   # a Pydantic model, a dataclass, ...
            self.domain_ctx = MyDomain()

    engine = TheusEngine(System())

``TheusEngine`` turns such an object into its namespaces once, when it is made (``to_dict()``,
Pydantic models, dataclasses; ``domain_ctx``/``global_ctx`` are ``domain``/``global``). The
object is not kept in sync afterwards: read the state from ``engine.state``.
"""

from __future__ import annotations

from typing import Any

from .compat._support import as_context

__all__ = ["BaseDomainContext", "BaseGlobalContext", "BaseSystemContext"]


class _Base:
    """Plain attribute holder whose ``to_dict()`` gives its public attributes as plain data."""

    def __init__(self, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """The public attributes (not starting with ``_``), converted to plain data."""
        converted = as_context({k: v for k, v in vars(self).items() if not k.startswith("_")})
        return dict(converted or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


class BaseGlobalContext(_Base):
    """The ``global`` namespace as an object (Theus 3)."""


class BaseDomainContext(_Base):
    """The ``domain`` namespace as an object (Theus 3)."""


class BaseSystemContext(_Base):
    """The whole context as an object: attributes are namespaces (``domain``/``domain_ctx``,
    ``global_ctx``/``global_``, or any other name); attributes left ``None`` are left out."""

    def to_dict(self) -> dict[str, Any]:
        """The namespaces, aliases resolved, ``None`` attributes left out."""
        public = {k: v for k, v in vars(self).items() if not k.startswith("_") and v is not None}
        return dict(as_context(public) or {})
