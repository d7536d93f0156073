"""Dotted paths and contract patterns (spec/02-paths-and-patterns.md).

A *path* is a tuple of string segments, written ``"domain.orders.3.status"``. A *pattern* may also
use ``*`` (one segment) and ``**`` (any number of segments, including none).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import InvalidContractError, InvalidPathError

__all__ = [
    "MAX_DEPTH",
    "Path",
    "Pattern",
    "format_path",
    "has_surrogate",
    "overlaps",
    "parse_path",
    "parse_pattern",
    "shorten",
]

Path = tuple[str, ...]

MAX_DEPTH = 256
"""The most segments a path in the tree may have (spec/01 depth limit; the namespace counts)."""

_LITERAL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|0|[1-9][0-9]*")
_WILDCARDS = frozenset({"*", "**"})


def has_surrogate(text: str) -> bool:
    """True if ``text`` holds a lone surrogate (not valid Unicode; spec/01 keys)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def shorten(text: str, limit: int = 120) -> str:
    """``repr(text)``, cut in the middle when longer than ``limit`` characters."""
    shown = repr(text)
    if len(shown) <= limit:
        return shown
    half = limit // 2
    return f"{shown[:half]}...{shown[-half:]} ({len(text)} characters)"


def parse_path(text: object) -> Path:
    """Split a dotted path into segments, validating it (spec/02)."""
    if not isinstance(text, str):
        raise InvalidPathError(f"a path must be a str, not {type(text).__name__}: {text!r}")
    if has_surrogate(text):
        raise InvalidPathError(
            f"invalid path {shorten(text)}: it contains a lone surrogate; "
            "paths must be valid Unicode"
        )
    segments = tuple(text.split("."))
    if len(segments) > MAX_DEPTH:
        raise InvalidPathError(
            f"invalid path {shorten(text)}: {len(segments)} segments, more than the "
            f"limit of {MAX_DEPTH}"
        )
    for segment in segments:
        if not segment or segment in _WILDCARDS:
            raise InvalidPathError(
                f"invalid path {text!r}: segments must be non-empty and not '*' or '**'"
            )
    return segments


def format_path(path: Iterable[str]) -> str:
    """The dotted text of a path."""
    return ".".join(path)


def overlaps(a: Path, b: Path) -> bool:
    """True when one path is a prefix of the other (a path overlaps itself)."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _step(pattern: Path, states: frozenset[int], segment: str) -> frozenset[int]:
    """Advance the pattern automaton over one path segment."""
    out: set[int] = set()
    for i in states:
        if i == len(pattern):
            continue
        part = pattern[i]
        if part == "**":
            out.add(i)  # ``**`` swallows the segment and stays
        elif part == "*" or part == segment:
            out.add(i + 1)
    return _closure(pattern, out)


def _closure(pattern: Path, states: Iterable[int]) -> frozenset[int]:
    """Add the positions reachable by letting ``**`` match nothing."""
    out = set(states)
    todo = list(out)
    while todo:
        i = todo.pop()
        if i < len(pattern) and pattern[i] == "**" and i + 1 not in out:
            out.add(i + 1)
            todo.append(i + 1)
    return frozenset(out)


@dataclass(frozen=True)
class Pattern:
    """A validated contract pattern. ``covers`` and ``leads_to`` follow spec/02."""

    text: str
    segments: Path = field(repr=False)

    @property
    def has_wildcard(self) -> bool:
        """True if the pattern contains ``*`` or ``**``."""
        return any(s in _WILDCARDS for s in self.segments)

    @property
    def literal_prefix(self) -> Path:
        """The segments before the first wildcard."""
        out: list[str] = []
        for s in self.segments:
            if s in _WILDCARDS:
                break
            out.append(s)
        return tuple(out)

    def covers(self, path: Path) -> bool:
        """The pattern matches ``path`` or one of its prefixes."""
        end = len(self.segments)
        states = _closure(self.segments, (0,))
        if end in states:
            return True
        for segment in path:
            states = _step(self.segments, states, segment)
            if not states:
                return False
            if end in states:
                return True
        return False

    def leads_to(self, path: Path) -> bool:
        """``path`` can be extended into a path the pattern matches."""
        states = _closure(self.segments, (0,))
        for segment in path:
            states = _step(self.segments, states, segment)
            if not states:
                return False
        return True

    def matches(self, path: Path) -> bool:
        """The pattern matches exactly ``path``."""
        states = _closure(self.segments, (0,))
        for segment in path:
            states = _step(self.segments, states, segment)
        return len(self.segments) in states


def parse_pattern(text: object, *, where: str = "pattern") -> Pattern:
    """Validate a contract pattern; ``where`` names the argument in error messages."""
    if not isinstance(text, str):
        raise InvalidContractError(
            f"{where}: a pattern must be a str, not {type(text).__name__}: {text!r}"
        )
    segments = tuple(text.split("."))
    for i, segment in enumerate(segments):
        if segment in _WILDCARDS:
            if i == 0:
                raise InvalidContractError(
                    f"{where}: pattern {text!r} cannot start with a wildcard; "
                    "name the namespace first (e.g. 'domain.**')"
                )
            continue
        if not _LITERAL.fullmatch(segment):
            raise InvalidContractError(
                f"{where}: pattern {text!r} has an invalid segment {segment!r}; segments are "
                "identifiers, decimal indices, '*' or '**'"
            )
    return Pattern(text, segments)
