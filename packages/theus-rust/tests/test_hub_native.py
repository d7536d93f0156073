"""Backend-internal tests of the native hub (``theus_rust._native.Hub``): the engine publishes
its signals natively, one Signal object per message whoever receives it, receivers are held
weakly, a dropped awaitable forgets its waiter, Ctrl-C interrupts a blocked publish."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import threading

import pytest

from theus import Signal, SignalHub, TheusEngine
from theus_rust import Hub, Receiver


def test_the_rust_backend_hub_is_native() -> None:
    hub = SignalHub(backend="rust")
    assert type(hub) is Hub
    assert isinstance(hub, SignalHub)
    assert isinstance(hub.subscribe(), Receiver)
    engine = TheusEngine(context={"domain": {}}, backend="rust")
    try:
        assert type(engine.signals) is Hub
    finally:
        engine.close()


def test_engine_signals_are_one_object_for_every_receiver() -> None:
    engine = TheusEngine(context={"domain": {"n": 0}}, backend="rust")
    try:
        rx1 = engine.signals.subscribe()
        rx2 = engine.signals.subscribe(topics=["domain.sig_*"])
        value = ["payload"]
        with engine.transaction() as tx:
            tx.update(signal={"domain.sig_a": value, "domain.sig_b": 2})
        a1, b1 = rx1.try_recv(), rx1.try_recv()
        a2, b2 = rx2.try_recv(), rx2.try_recv()
        assert type(a1) is Signal
        assert a1 == Signal("domain.sig_a", ["payload"], 1)
        assert b1 == Signal("domain.sig_b", 2, 1)
        assert a1 is a2 and b1 is b2
    finally:
        engine.close()


def test_a_dropped_receiver_is_forgotten() -> None:
    hub = Hub(4)
    rx = hub.subscribe(policy="block", capacity=1)
    assert hub.receiver_count == 1
    hub.publish(1)
    del rx
    gc.collect()
    assert hub.receiver_count == 0
    assert hub.publish(2, timeout=0) == 0


def test_messages_are_released_when_they_leave() -> None:
    class Tracked:
        alive = 0

        def __init__(self) -> None:
            Tracked.alive += 1

        def __del__(self) -> None:
            Tracked.alive -= 1

    hub = Hub(3)
    rx = hub.subscribe()
    for _ in range(10):
        hub.publish(Tracked())
    assert Tracked.alive == 3  # the dropped ones were released
    del rx
    gc.collect()
    assert Tracked.alive == 0


def test_a_destructor_may_publish_on_the_hub() -> None:
    hub = Hub(1)
    rx = hub.subscribe()

    class Republish:
        def __del__(self) -> None:
            hub.publish("from a destructor")

    hub.publish(Republish())
    other = hub.subscribe(capacity=10)
    hub.publish("next")  # drops the Republish object out of rx's queue: its last reference
    assert other.recv_many(10, timeout=0) == ["next", "from a destructor"]
    assert rx.lagged == 2  # "next" made room for the destructor's message


def test_a_cancelled_async_wait_leaves_no_waiter() -> None:
    hub = Hub()
    rx = hub.subscribe()

    async def scenario() -> object:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(rx.recv_async(), 0.01)
        hub.publish("kept")
        return await rx.recv_async()

    assert asyncio.run(scenario()) == "kept"
    assert hub.delivery_failures == 0


def test_a_waiter_on_a_closed_loop_is_counted() -> None:
    hub = Hub()
    rx = hub.subscribe()
    loop = asyncio.new_event_loop()
    task = loop.create_task(rx.recv_async())
    loop.run_until_complete(asyncio.sleep(0.01))
    loop.close()
    assert hub.publish("m") == 1
    assert hub.delivery_failures == 1
    assert rx.try_recv() == "m"
    del task


def test_recv_async_is_a_coroutine() -> None:
    hub = Hub()
    rx = hub.subscribe()
    hub.publish(5)
    assert asyncio.run(rx.recv_async()) == 5
    hub.publish_many([1, 2, 3])
    assert asyncio.run(rx.recv_many_async(10)) == [1, 2, 3]


def test_a_blocked_publish_releases_the_gil() -> None:
    hub = Hub()
    rx = hub.subscribe(policy="block", capacity=1)
    hub.publish(0)
    ticks = []

    def tick() -> None:
        for i in range(50):
            ticks.append(i)

    t = threading.Thread(target=tick)
    t.start()
    with pytest.raises(TimeoutError):
        hub.publish(1, timeout=0.2)
    t.join()
    assert len(ticks) == 50
    assert rx.recv_many(10) == [0]


def test_ctrl_c_interrupts_a_blocked_publish() -> None:
    code = textwrap.dedent(
        """
        import _thread, signal, threading
        # Ctrl-C works even in a child started with SIGINT ignored (a background CI job)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from theus_rust import Hub
        hub = Hub()
        rx = hub.subscribe(policy="block", capacity=1)
        hub.publish(0)
        threading.Timer(0.2, _thread.interrupt_main).start()
        try:
            hub.publish(1)
        except KeyboardInterrupt:
            assert len(rx) == 1
            raise SystemExit(7)
        raise SystemExit(1)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], timeout=60, check=False)
    assert done.returncode == 7


def test_ctrl_c_interrupts_a_blocked_recv() -> None:
    code = textwrap.dedent(
        """
        import _thread, signal, threading
        # Ctrl-C works even in a child started with SIGINT ignored (a background CI job)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from theus_rust import Hub
        rx = Hub().subscribe()
        threading.Timer(0.2, _thread.interrupt_main).start()
        try:
            rx.recv()
        except KeyboardInterrupt:
            raise SystemExit(7)
        raise SystemExit(1)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], timeout=60, check=False)
    assert done.returncode == 7


def test_a_reader_that_never_reads_keeps_memory_flat() -> None:
    code = textwrap.dedent(
        """
        import resource, sys
        from theus_rust import Hub
        hub = Hub(1024)
        rx = hub.subscribe()
        msg = object()
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * resource.getpagesize()
        hub.publish_many(msg for _ in range(200_000))
        before = rss()
        for _ in range(20):
            hub.publish_many([msg] * 100_000)
        grown = rss() - before
        assert len(rx) == 1024, len(rx)
        assert rx.lagged == 2_200_000 - 1024, rx.lagged
        sys.exit(0 if grown < 8 * 2**20 else 3)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], timeout=120, check=False)
    assert done.returncode == 0


def test_engine_commits_wait_for_a_block_receiver_and_lose_nothing() -> None:
    engine = TheusEngine(context={"domain": {"n": 0}}, backend="rust")
    try:
        rx = engine.signals.subscribe(policy="block", capacity=1)

        def commit_all() -> None:
            for i in range(200):
                with engine.transaction() as tx:
                    tx.update(data={"domain.n": i}, signal={"domain.sig_n": i})

        t = threading.Thread(target=commit_all)
        t.start()
        got = [rx.recv(timeout=30) for _ in range(200)]
        t.join(30)
        assert [(s.value, s.version) for s in got] == [(i, i + 1) for i in range(200)]
    finally:
        engine.close()


def test_ctrl_c_during_a_blocked_commit_publishes_the_other_signals() -> None:
    code = textwrap.dedent(
        """
        import _thread, signal, threading
        # Ctrl-C works even in a child started with SIGINT ignored (a background CI job)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from theus import TheusEngine
        engine = TheusEngine(context={"domain": {}}, backend="rust")
        rx = engine.signals.subscribe(policy="block", capacity=1)
        lag = engine.signals.subscribe(capacity=10)
        with engine.transaction() as tx:
            tx.update(signal={"domain.sig_first": 0})
        # one interrupt per blocked signal (spec/08: the others are still published)
        threading.Timer(0.2, _thread.interrupt_main).start()
        threading.Timer(0.6, _thread.interrupt_main).start()
        try:
            with engine.transaction() as tx:
                tx.update(signal={"domain.sig_a": 1, "domain.sig_b": 2})
        except KeyboardInterrupt:
            pass
        else:
            raise SystemExit(1)
        assert engine.state.version == 2, engine.state.version
        # each signal waited for room and was interrupted: no receiver got either
        assert [s.name for s in lag.recv_many(10, timeout=0)] == ["domain.sig_first"]
        raise SystemExit(7)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], timeout=60, check=False)
    assert done.returncode == 7
