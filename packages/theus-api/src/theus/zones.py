"""Zones by key prefix (spec/03-zones.md)."""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = ["ZONE_PREFIXES", "Zone", "zone_of", "zone_of_key"]


class Zone(enum.Enum):
    """The zone of a path decides how its values are stored and which writes are allowed."""

    DATA = "data"
    SIGNAL = "signal"
    META = "meta"
    HEAVY = "heavy"
    LOG = "log"


ZONE_PREFIXES: tuple[tuple[str, Zone], ...] = (
    ("sig_", Zone.SIGNAL),
    ("cmd_", Zone.SIGNAL),
    ("meta_", Zone.META),
    ("heavy_", Zone.HEAVY),
    ("log_", Zone.LOG),
)


def zone_of_key(key: str) -> Zone | None:
    """The zone a key's prefix selects, or None for an ordinary key."""
    if "_" not in key:  # every zone prefix ends in "_": most keys are decided here
        return None
    for prefix, zone in ZONE_PREFIXES:
        if key.startswith(prefix):
            return zone
    return None


def zone_of(path: Iterable[str]) -> Zone:
    """The zone of a path: the first segment with a zone prefix decides; else DATA."""
    for segment in path:
        zone = zone_of_key(segment)
        if zone is not None:
            return zone
    return Zone.DATA
