"""The re-run policy of a process (spec/05), as data: the generic runner and a backend's native
attempt loop both read it, so neither hard-codes its numbers."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["BACKOFF_BASE", "RetryPolicy"]

BACKOFF_BASE = 0.0005  # seconds: re-run k >= 2 sleeps uniform(0, BACKOFF_BASE * 2**(k-2))


@dataclass(frozen=True)
class RetryPolicy:
    """How a process that lost a conflict is re-run (spec/05).

    - ``retries``: re-runs after the first attempt (the process's ``retries=``);
    - ``backoff_base``: re-run ``k >= 2`` first sleeps a random time in
      ``[0, backoff_base * 2**(k-2)]`` seconds; the first re-run starts at once;
    - ``exclusive_last``: the last re-run of a *sync* process holds the engine's commit order
      from its begin to its commit, so it cannot lose (async processes never do this).
    """

    retries: int = 3
    backoff_base: float = BACKOFF_BASE
    exclusive_last: bool = True

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The jittered sleep before re-run ``attempt`` (1-based); 0 for the first re-run.

        A sync process that lost usually lost because its thread was preempted mid-transaction;
        re-running at once, while the thread holds a fresh GIL slice, nearly always wins,
        whereas sleeping would hand the GIL away again.
        """
        if attempt <= 1:
            return 0.0
        return rng.uniform(0.0, self.backoff_base * (1 << min(attempt - 2, 62)))

    def exclusive(self, attempt: int) -> bool:
        """Whether attempt ``attempt`` (0-based) of a sync process is the exclusive last one."""
        return self.exclusive_last and 0 < attempt == self.retries
