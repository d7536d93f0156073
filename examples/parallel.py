"""Parallel processes (spec/22): CPU-bound scoring on worker processes, committed as usual.

Run: ``python examples/parallel.py``. Each ``score`` call runs on a worker of the engine's
process pool with the inline ``ctx``; its write comes back as a delta and commits through the
engine's contract and conflict rules. Disjoint keys under one output pattern commit side by side.
"""

from __future__ import annotations

import time

from theus import BatchError, TheusEngine, process

DOCS = {f"d{i}": " ".join(f"w{(i * j) % 97}" for j in range(40_000)) for i in range(4)}


@process(inputs=["domain.docs.*"], outputs=["domain.scores.*"], parallel=True)
def score(ctx, doc: str) -> None:
    words = ctx.domain.docs[doc].split()
    ctx.domain.scores[doc] = sum(len(w) * (i % 7) for i, w in enumerate(words)) % 10_007


def main() -> None:
    with TheusEngine({"domain": {"docs": DOCS, "scores": {}}}) as engine:
        engine.execute(score, doc="d0")  # starts the pool's first worker
        start = time.perf_counter()
        engine.map(score, sorted(DOCS))
        print(f"scored {len(DOCS)} documents in {time.perf_counter() - start:.2f}s")
        print("scores:", dict(sorted(engine.state.domain.scores.to_dict().items())))
        try:
            engine.map(score, ["d1", "missing"])
        except BatchError as error:
            print(f"batch: {len(error.failed)} failed ({error.exceptions[0]!r}), d1 committed")
        print("version:", engine.state.version)


if __name__ == "__main__":
    main()
