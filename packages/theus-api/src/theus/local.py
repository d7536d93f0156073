"""``ctx.local``: scratch space for one attempt of one process call (spec/09).

Backend-independent: every backend hands a fresh ``Local`` to each attempt.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Local"]


class Local:
    """``ctx.local``: scratch for one attempt of one call (spec/09)."""

    def __getitem__(self, key: str) -> Any:
        try:
            return self.__dict__[key]
        except KeyError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        self.__dict__[key] = value

    def __delitem__(self, key: str) -> None:
        del self.__dict__[key]

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key`` or ``default``."""
        return self.__dict__.get(key, default)

    def __repr__(self) -> str:
        return f"Local({self.__dict__!r})"
