"""The GIL is released during long native commit work (REQUIREMENTS: release the GIL around
native work that touches no Python objects and can be long).

A host transaction writes a very large number of paths; another commit lands before it commits,
so its commit must check conflicts against, and rebase, the whole write set in Rust. While the
main thread is inside that one native call (``tx.commit()``), a second Python thread keeps
taking timestamps. If the call held the GIL throughout, no timestamp could fall well inside the
call's window; because the call detaches, many do.
"""

from __future__ import annotations

import sys
import threading
import time

from theus import TheusEngine
from theus.update import Update

WRITES = 300_000
MARGIN = 0.02  # seconds at each end of the window where a forced GIL switch could land


def test_commit_of_a_large_write_set_releases_the_gil():
    engine = TheusEngine(context={"domain": {}, "global": {"other": 0}}, backend="rust")
    core = engine.core
    tx = core.begin(None)
    try:
        tx.apply(Update(tuple(("set", ("domain", f"k{i}"), i) for i in range(WRITES))))
        # another commit lands: tx's commit must conflict-check and rebase its write set
        with engine.transaction() as other:
            other.update(data={"global.other": 1})

        stamps: list[float] = []
        stop = threading.Event()
        started = threading.Event()

        def ticker() -> None:
            started.set()
            n = 0
            while not stop.is_set():
                n += 1
                if n % 64 == 0:
                    stamps.append(time.perf_counter())

        old_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.005)
        thread = threading.Thread(target=ticker, daemon=True)
        thread.start()
        started.wait()
        try:
            t0 = time.perf_counter()
            snapshot = tx.commit()
            t1 = time.perf_counter()
        finally:
            stop.set()
            thread.join()
            sys.setswitchinterval(old_interval)
    finally:
        tx.close()

    assert snapshot.version == 2
    assert snapshot.global_.other == 1 and snapshot.domain[f"k{WRITES - 1}"] == WRITES - 1
    duration = t1 - t0
    assert duration > 4 * MARGIN, f"the native commit was too short to observe ({duration:.3f} s)"
    inside = [s for s in stamps if t0 + MARGIN < s < t1 - MARGIN]
    assert len(inside) > 100, (
        f"the other thread made no progress during a {duration:.3f} s native commit "
        f"({len(inside)} timestamps inside it): the GIL was held"
    )


def test_waiting_for_the_commit_lock_releases_the_gil():
    """An exclusive transaction holds the commit lock; a commit from another thread waits for
    it detached, so the holder (which needs the GIL to finish) is never deadlocked."""
    engine = TheusEngine(context={"domain": {"a": 0, "b": 0}}, backend="rust")
    core = engine.core
    held = core.begin(None, True)  # exclusive: holds the commit lock until close
    done = threading.Event()

    def commit_other() -> None:
        with engine.transaction() as tx:
            tx.update(data={"domain.b": 1})
        done.set()

    thread = threading.Thread(target=commit_other)
    thread.start()
    try:
        time.sleep(0.05)
        assert not done.is_set(), "the other commit must wait for the exclusive transaction"
        held.apply(Update((("set", ("domain", "a"), 1),)))
        assert held.commit().version == 1
    finally:
        held.close()
    thread.join(timeout=5)
    assert done.is_set()
    assert engine.state.version == 2
    assert engine.state.domain.a == 1 and engine.state.domain.b == 1
