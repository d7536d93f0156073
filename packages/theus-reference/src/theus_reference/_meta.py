"""Meta values as a ``pure`` process sees them (spec/03, meta): absent from whole reads, and
never set, replaced, moved or deleted by its writes."""

from __future__ import annotations

from typing import Any

from theus.paths import Path
from theus.zones import Zone, zone_of_key

from ._pmap import PMap
from ._pvec import PList

__all__ = ["find_meta", "hide_meta"]


def hide_meta(value: Any) -> Any:
    """``value`` (a stored value in the data zone) without its meta-zone keys at any depth; the
    very same object when it holds none. Keys of another zone are kept, not entered."""
    if type(value) is PMap:
        out: dict[str, Any] = {}
        changed = False
        for key, item in value.items():
            zone = zone_of_key(key)
            if zone is Zone.META:
                changed = True
                continue
            if zone is None:
                shown = hide_meta(item)
                changed = changed or shown is not item
                item = shown
            out[key] = item
        return PMap(out) if changed else value
    if type(value) is PList:
        items = value.items
        shown_items = [hide_meta(item) for item in items]
        if any(a is not b for a, b in zip(items, shown_items, strict=True)):
            return PList(shown_items)
    return value


def find_meta(value: Any, path: Path) -> Path | None:
    """The path of the first meta-zone key inside ``value`` (stored at ``path``, data zone),
    or None."""
    if type(value) is PMap:
        for key, item in value.items():
            zone = zone_of_key(key)
            if zone is Zone.META:
                return (*path, key)
            if zone is None and (type(item) is PMap or type(item) is PList):
                hit = find_meta(item, (*path, key))
                if hit is not None:
                    return hit
    elif type(value) is PList:
        for i, item in enumerate(value.items):
            if type(item) is PMap or type(item) is PList:
                hit = find_meta(item, (*path, str(i)))
                if hit is not None:
                    return hit
    return None
