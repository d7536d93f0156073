"""The transactional outbox (spec/15): messages added in a transaction, released only by the
commit that carried them."""

from __future__ import annotations

from typing import Any

from .pipeline import Changes, OutboxMessage, Stage

__all__ = ["Outbox", "OutboxBuffer", "OutboxStage"]


class OutboxBuffer:
    """``ctx.outbox`` / ``tx.outbox``: the messages of one transaction attempt.

    ``add(topic, payload)`` records a message; nothing leaves the transaction until its commit
    lands. A failed, rolled-back or conflicted attempt's buffer is discarded (a re-run starts
    with an empty one).
    """

    __slots__ = ("_messages",)

    def __init__(self) -> None:
        self._messages: list[OutboxMessage] = []

    def add(self, topic: str, payload: Any = None) -> None:
        """Queue ``payload`` for ``topic``; released after the commit."""
        if not isinstance(topic, str) or not topic:
            raise TypeError(f"outbox topic must be a non-empty str, not {topic!r}")
        self._messages.append(OutboxMessage(topic, payload))

    @property
    def messages(self) -> tuple[OutboxMessage, ...]:
        """The messages added so far, in order."""
        return tuple(self._messages)

    def __len__(self) -> int:
        return len(self._messages)

    def __bool__(self) -> bool:
        return bool(self._messages)

    def __repr__(self) -> str:
        return f"<OutboxBuffer {len(self._messages)} message(s)>"


class Outbox:
    """The engine's outbox: messages released by landed commits, in commit order.

    (Placeholder of the pipeline commit: released messages are kept as pending; delivery
    comes with the outbox work.)
    """

    def __init__(self) -> None:
        self._pending: list[OutboxMessage] = []
        self._closed = False

    def release(self, messages: tuple[OutboxMessage, ...]) -> None:
        """Take the numbered messages of a landed commit."""
        self._pending.extend(messages)

    @property
    def pending(self) -> tuple[OutboxMessage, ...]:
        """Messages released and not yet delivered, oldest first."""
        return tuple(self._pending)

    def close(self) -> None:
        """Stop delivering. Idempotent."""
        self._closed = True


class OutboxStage(Stage):
    """The built-in stage that releases a landed commit's outbox messages to the engine's
    :class:`Outbox` (spec/15)."""

    name = "outbox"
    wants = "outbox"

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def after_commit(self, snapshot: Any, changes: Changes) -> None:
        """Release ``changes.outbox`` (numbered with the commit's version)."""
        self.outbox.release(changes.outbox)
