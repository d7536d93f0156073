"""REQUIREMENTS §4.4 under real thread contention: no lost updates, consistent snapshots,
no lost signals. Needs the "threads" capability."""

from __future__ import annotations

import threading

import pytest

from theus import ConflictError, SignalHub, process
from theus_conformance.support import drain, run_threads

pytestmark = pytest.mark.requires("threads")


def _run_threads(n, target):
    run_threads(n, target)


def test_eight_threads_thousand_increments(make_engine):
    engine = make_engine({"domain": {"counter": 0}})

    @process(inputs=["domain.counter"], outputs=["domain.counter"])
    def increment(ctx):
        ctx.domain.counter = ctx.domain.counter + 1

    engine.register(increment)

    def work(_):
        for _ in range(1000):
            engine.execute(increment)

    _run_threads(8, work)
    assert engine.state.domain.counter == 8000
    assert engine.state.version == 8000


def test_cas_loops_from_threads(make_engine):
    engine = make_engine({"domain": {"counter": 0}})

    def work(_):
        for _ in range(200):
            while True:
                state = engine.state
                try:
                    engine.compare_and_swap(
                        state.version, data={"domain.counter": state.domain.counter + 1}
                    )
                    break
                except ConflictError:
                    continue

    _run_threads(4, work)
    assert engine.state.domain.counter == 800
    assert engine.state.version == 800


def test_disjoint_writers_from_threads(make_engine):
    engine = make_engine({"domain": {f"slot{i}": 0 for i in range(4)}})

    def work(i):
        @process(inputs=[f"domain.slot{i}"], outputs=[f"domain.slot{i}"], name=f"fill{i}")
        def fill(ctx):
            ctx.domain[f"slot{i}"] = ctx.domain[f"slot{i}"] + 1

        for _ in range(300):
            engine.execute(fill)

    _run_threads(4, work)
    assert engine.state.domain == {f"slot{i}": 300 for i in range(4)}


def test_readers_always_see_consistent_snapshots(make_engine):
    engine = make_engine({"domain": {"a": 0, "b": 0}})
    done = threading.Event()
    bad = []

    @process(inputs=["domain.a", "domain.b"], outputs=["domain.a", "domain.b"], retries=50)
    def transfer(ctx):
        ctx.domain.a = ctx.domain.a + 1
        ctx.domain.b = ctx.domain.b - 1

    def work(i):
        if i < 2:
            for _ in range(500):
                engine.execute(transfer)
            done.set()
        else:
            while not done.is_set():
                state = engine.state
                a, b = state.domain.a, state.domain.b
                if a + b != 0 or state.domain.a != a:
                    bad.append((state.version, a, b))

    _run_threads(4, work)
    assert bad == []
    assert engine.state.domain == {"a": 1000, "b": -1000}


def test_signals_from_threads_are_never_lost(make_engine):
    engine = make_engine({"domain": {}})
    rx = engine.signals.subscribe()

    def work(i):
        for j in range(250):
            with engine.transaction() as tx:
                tx.update(signal={f"domain.sig_t{i}": j})

    _run_threads(4, work)
    messages = drain(rx)
    assert len(messages) == 1000
    assert [m.version for m in messages] == list(range(1, 1001))  # commit order
    for i in range(4):
        assert [m.value for m in messages if m.name == f"domain.sig_t{i}"] == list(range(250))


def test_hub_publish_from_threads(backend):
    hub = SignalHub(backend=backend)
    rx = hub.subscribe(capacity=8000)

    def work(i):
        for j in range(2000):
            hub.publish((i, j))

    _run_threads(4, work)
    messages = drain(rx)
    assert len(messages) == 8000
    for i in range(4):
        assert [j for (k, j) in messages if k == i] == list(range(2000))
