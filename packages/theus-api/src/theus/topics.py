"""Topic filters of hub receivers (spec/08, Topics): which messages a receiver accepts."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["compile_topics", "topic_of"]


def topic_of(message: Any) -> str | None:
    """A message's topic: a ``Signal``'s name, a ``str`` ``topic`` attribute, a ``str`` message
    itself; ``None`` when it has none."""
    from .signals import Signal

    if type(message) is Signal:
        return message.name
    if isinstance(message, str):
        return message
    topic = getattr(message, "topic", None)
    return topic if isinstance(topic, str) else None


def _regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^.]*")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def compile_topics(topics: Iterable[str] | None) -> Callable[[Any], bool] | None:
    """The filter of ``subscribe(topics=...)``; ``None`` (accept everything) for ``None``.

    ``*`` matches a run of characters without ``.``, ``**`` any run; the whole topic must
    match. ``TypeError`` for anything but an iterable of ``str``.
    """
    if topics is None:
        return None
    if isinstance(topics, str) or not isinstance(topics, Iterable):
        raise TypeError(f"topics= must be a list of patterns (str), not {topics!r}")
    patterns = list(topics)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"a topic pattern must be a str, not {pattern!r}")
    if not patterns:
        return lambda message: False
    matcher = re.compile("|".join(f"(?:{_regex(p)})" for p in patterns), re.DOTALL)

    def accepts(message: Any) -> bool:
        topic = topic_of(message)
        return topic is not None and matcher.fullmatch(topic) is not None

    return accepts
