"""The subprocess of the crash tests: ``python -m theus_conformance.stores._child FACTORY DIR
RUN_ID [KILL_AT]``. Commits forever on a durable engine, printing each committed version once
its commit returned; with ``KILL_AT`` the store's write of that version kills the process
inside its transaction."""

from __future__ import annotations

import pathlib
import sys


def main() -> None:
    """Run the committing loop."""
    from theus import TheusEngine

    from . import resolve_factory

    factory, directory, run_id = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
    under_test = resolve_factory(factory)(directory)
    store = under_test.open()
    if len(sys.argv) > 4 and under_test.kill_inside is not None:
        under_test.kill_inside(store, int(sys.argv[4]))
    engine = TheusEngine({"domain": {"n": 0, "items": []}}, store=store, run_id=run_id)
    while True:
        with engine.transaction() as tx:
            n = tx.get("domain.n")
            tx.update(data={"domain.n": n + 1})
            tx.append("domain.items", {"i": n + 1, "pad": "x" * (n % 7)})
            tx.outbox.add("step", {"n": n + 1})
        sys.stdout.write(f"{engine.state.version}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
