"""A transaction's write set with its values, as the commit pipeline receives it (spec/15)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from theus.paths import Path
from theus.pipeline import Change, Changes

from ._pmap import MISSING
from ._tree import get_in
from ._views import wrap

if TYPE_CHECKING:
    from ._transaction import Transaction

__all__ = ["changes_of", "minimal"]


def minimal(paths: set[Path]) -> list[Path]:
    """The written paths that are not below another written path."""
    out: list[Path] = []
    for path in sorted(paths, key=len):
        if not any(path[: len(p)] == p for p in out):
            out.append(path)
    return out


def changes_of(tx: Transaction) -> Changes:
    """``tx``'s changes: minimal written paths sorted, then its signals in write order."""
    items: list[Change] = []
    root = tx.root
    for path in sorted(minimal(tx.writes)):
        value = get_in(root, path)
        if value is MISSING:
            items.append(Change("delete", path, None))
            continue
        start = tx.appends.get(path)
        if start is None:
            items.append(Change("set", path, wrap(value, path, None)))
        else:
            added: tuple[Any, ...] = tuple(
                wrap(v, (*path, str(i)), None) for i, v in enumerate(value.items[start:], start)
            )
            items.append(Change("append", path, added))
    for path, value in tx.signals.items():
        items.append(Change("set", path, wrap(value, path, None)))
    name = tx.contract.spec.name if tx.contract is not None else None
    return Changes(items, name, tx.base, tx.outbox.messages)
