"""spec/08 — the SignalHub: any object by reference, ``lag`` (exact ``SignalLagged`` counts,
bounded memory) and ``block`` (lossless backpressure) receivers, topics, batches, asyncio,
closing. Every wait that could hang runs under a timeout."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from theus import (
    ContextError,
    Signal,
    SignalEmpty,
    SignalHub,
    SignalLagged,
    TheusEngine,
    TheusError,
)
from theus_conformance.support import drain, run_with_timeout


def _hub(backend, **kw):
    return SignalHub(backend=backend, **kw)


def _drain_lagged(rx):
    """Everything pending, with each SignalLagged report in its place as ('lagged', n)."""
    out = []
    while True:
        try:
            out.append(rx.try_recv())
        except SignalLagged as lag:
            out.append(("lagged", lag.missed))
        except SignalEmpty:
            return out


# --------------------------------------------------------------------------- basics


def test_any_object_by_reference_and_counts(backend):
    hub = _hub(backend)
    rx1, rx2 = hub.subscribe(), hub.subscribe()
    objs = [object(), {"a": [1]}, [1, 2], None, 3.5, b"x", Signal("domain.sig_a", [1], 7)]
    for obj in objs:
        assert hub.publish(obj) == 2
    for rx in (rx1, rx2):
        got = drain(rx)
        assert len(got) == len(objs)
        assert all(a is b for a, b in zip(got, objs, strict=True)), "never copied"
    assert hub.publish_many(iter(objs[:3])) == 6
    assert [m is o for m, o in zip(drain(rx1), objs[:3], strict=True)] == [True] * 3


def test_subscribe_and_hub_arguments_are_checked(backend):
    hub = _hub(backend)
    for bad, exc in [("drop", ValueError), ("LAG", ValueError), (1, TypeError), (None, TypeError)]:
        with pytest.raises(exc):
            hub.subscribe(policy=bad)
    for bad, exc in [(0, ValueError), (-1, ValueError), ("2", TypeError), (1.5, TypeError)]:
        with pytest.raises(exc):
            hub.subscribe(capacity=bad)
        with pytest.raises(exc):
            SignalHub(capacity=bad, backend=backend)
    for bad in ["order.*", 3, [1]]:
        with pytest.raises(TypeError):
            hub.subscribe(topics=bad)
    rx = hub.subscribe()
    for bad, exc in [(0, ValueError), ("1", TypeError)]:
        with pytest.raises(exc):
            rx.recv_many(bad)
    with pytest.raises(ValueError):
        rx.recv(timeout=-1)
    with pytest.raises(ValueError):
        hub.publish(1, timeout=-1)


def test_recv_many_batches_and_timeouts(backend):
    hub = _hub(backend)
    rx = hub.subscribe()
    assert rx.recv_many(10, timeout=0.01) == []
    for i in range(25):
        hub.publish(i)
    assert len(rx) == 25
    assert rx.recv_many(10) == list(range(10))
    assert rx.recv_many(100, timeout=0) == list(range(10, 25))
    assert len(rx) == 0
    with pytest.raises(TimeoutError):
        rx.recv(timeout=0.01)


def test_recv_many_waits_for_the_first_message(backend):
    hub = _hub(backend)
    rx = hub.subscribe()
    timer = threading.Timer(0.05, lambda: hub.publish_many([1, 2, 3]))
    timer.start()
    got = run_with_timeout(lambda: rx.recv_many(10, timeout=10))
    timer.join()
    assert got and got == [1, 2, 3][: len(got)]


def test_publishers_on_many_threads_give_one_order(backend):
    hub = _hub(backend, capacity=4000)
    receivers = [hub.subscribe() for _ in range(3)]

    def work(i):
        for j in range(1000):
            hub.publish((i, j))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    logs = [drain(rx) for rx in receivers]
    assert len(logs[0]) == 4000
    assert logs[0] == logs[1] == logs[2]
    for i in range(4):
        assert [j for k, j in logs[0] if k == i] == list(range(1000))


# --------------------------------------------------------------------------- lag


@pytest.mark.parametrize("capacity", [1, 3, 16])
@pytest.mark.parametrize("published", [0, 1, 2, 15, 16, 17, 100])
def test_lag_reports_the_exact_count_then_continues(backend, capacity, published):
    hub = _hub(backend)
    rx = hub.subscribe(capacity=capacity)
    for i in range(published):
        hub.publish(i)
        assert len(rx) <= capacity, "memory stays bounded by capacity"
    missed = max(0, published - capacity)
    got = _drain_lagged(rx)
    expected = ([("lagged", missed)] if missed else []) + list(range(missed, published))
    assert got == expected
    assert rx.lagged == missed


@pytest.mark.parametrize("receive", ["recv", "recv_many", "try_recv", "iter", "recv_async"])
def test_every_receive_form_reports_lag_first(backend, receive):
    hub = _hub(backend)
    rx = hub.subscribe(capacity=2)
    hub.publish_many(range(5))
    with pytest.raises(SignalLagged) as info:
        if receive == "recv":
            rx.recv(timeout=1)
        elif receive == "recv_many":
            rx.recv_many(10, timeout=1)
        elif receive == "try_recv":
            rx.try_recv()
        elif receive == "iter":
            next(iter(rx))
        else:
            run_with_timeout(lambda: asyncio.run(rx.recv_async()))
    assert info.value.missed == 3
    assert isinstance(info.value, TheusError)
    assert rx.recv_many(10) == [3, 4]


def test_lag_counts_accumulate_over_episodes(backend):
    hub = _hub(backend)
    rx = hub.subscribe(capacity=2)
    hub.publish_many(range(5))  # 3 dropped
    assert _drain_lagged(rx) == [("lagged", 3), 3, 4]
    hub.publish_many(range(10, 14))  # 2 dropped
    assert _drain_lagged(rx) == [("lagged", 2), 12, 13]
    assert rx.lagged == 5
    hub.publish(99)
    assert _drain_lagged(rx) == [99]


def test_a_slow_lag_receiver_never_slows_or_blocks_the_publisher(backend):
    hub = _hub(backend)
    slow = hub.subscribe(capacity=4)
    fast = hub.subscribe(capacity=100_000)
    run_with_timeout(lambda: hub.publish_many(range(50_000)), timeout=60)
    assert len(slow) == 4
    assert slow.lagged == 49_996
    assert len(drain(fast)) == 50_000


def test_engine_signals_lag_exactly(backend):
    engine = TheusEngine(context={"domain": {"n": 0}}, backend=backend)
    try:
        rx = engine.signals.subscribe(capacity=2)
        for i in range(5):
            with engine.transaction() as tx:
                tx.update(data={"domain.n": i}, signal={"domain.sig_n": i})
        got = _drain_lagged(rx)
        assert got[0] == ("lagged", 3)
        assert [(s.name, s.value, s.version) for s in got[1:]] == [
            ("domain.sig_n", 3, 4),
            ("domain.sig_n", 4, 5),
        ]
    finally:
        engine.close()


# --------------------------------------------------------------------------- block


def test_block_loses_nothing_across_threads(backend):
    total = 1_000_000
    hub = _hub(backend)
    rx = hub.subscribe(policy="block", capacity=1024)
    got: list[int] = []

    def consume():
        while len(got) < total:
            got.extend(rx.recv_many(4096, timeout=20))

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    run_with_timeout(lambda: hub.publish_many(range(total)), timeout=120)
    consumer.join(60)
    assert not consumer.is_alive()
    assert len(got) == total
    assert got == list(range(total))
    assert rx.lagged == 0


def test_block_publish_times_out_and_delivers_to_nobody(backend):
    hub = _hub(backend)
    full = hub.subscribe(policy="block", capacity=1)
    other = hub.subscribe()
    assert hub.publish("first") == 2
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        hub.publish("second", timeout=0.05)
    assert time.monotonic() - start >= 0.04
    assert drain(other) == ["first"], "a timed-out publish reached no receiver"
    assert drain(full) == ["first"]
    assert hub.publish("third", timeout=0.05) == 2


def test_block_publisher_waits_until_the_receiver_has_room(backend):
    hub = _hub(backend)
    rx = hub.subscribe(policy="block", capacity=1)
    hub.publish(1)
    done = threading.Event()

    def publish():
        hub.publish(2)
        done.set()

    t = threading.Thread(target=publish, daemon=True)
    t.start()
    assert not done.wait(0.1), "the publisher must wait for room"
    assert rx.recv(timeout=1) == 1
    assert done.wait(10)
    assert rx.recv(timeout=1) == 2


@pytest.mark.parametrize("how", ["close-receiver", "drop-receiver", "close-hub"])
def test_a_blocked_publisher_is_released(backend, how):
    import gc

    hub = _hub(backend)
    rx = hub.subscribe(policy="block", capacity=1)
    hub.publish(1)
    outcome: dict[str, object] = {}

    def publish():
        try:
            outcome["value"] = hub.publish(2)
        except BaseException as exc:
            outcome["value"] = exc

    t = threading.Thread(target=publish, daemon=True)
    t.start()
    time.sleep(0.05)
    if how == "close-receiver":
        rx.close()
    elif how == "drop-receiver":
        del rx
        gc.collect()
    else:
        hub.close()
    t.join(10)
    assert not t.is_alive(), "the blocked publisher was not released"
    if how == "close-hub":
        assert isinstance(outcome["value"], ContextError)
    else:
        assert outcome["value"] == 0


# --------------------------------------------------------------------------- topics


class _Topical:
    def __init__(self, topic):
        self.topic = topic


@pytest.mark.parametrize(
    ("patterns", "accepted"),
    [
        (["order.*"], ["order.paid", "order."]),
        (["order.**"], ["order.paid", "order.a.b", "order."]),
        (["domain.sig_**"], ["domain.sig_x", "domain.sig_a.b", "domain.sig_"]),
        (["*"], ["plain", "order"]),
        (["**"], "all"),
        (["order.paid", "plain"], ["order.paid", "plain"]),
        (["ord?r.*"], []),
        ([], []),
    ],
)
def test_topic_filters(backend, patterns, accepted):
    topics = ["order.paid", "order.a.b", "plain", "domain.sig_x", "domain.sig_a.b", "order"]
    topics += ["order.", "domain.sig_"]
    hub = _hub(backend)
    rx = hub.subscribe(topics=patterns)
    everything = hub.subscribe()
    for topic in topics:
        hub.publish(topic)
    assert drain(rx) == [t for t in topics if accepted == "all" or t in accepted]
    assert len(drain(everything)) == len(topics)


def test_topic_sources_signal_name_attribute_string(backend):
    hub = _hub(backend)
    rx = hub.subscribe(topics=["order.*", "domain.sig_**"])
    messages = [
        Signal("domain.sig_a", 1, 1),
        Signal("domain.x", 1, 1),
        _Topical("order.paid"),
        _Topical(42),  # a non-str topic attribute: no topic
        "order.new",
        object(),  # no topic at all
        {"topic": "order.paid"},  # a dict key is not an attribute
    ]
    for m in messages:
        hub.publish(m)
    got = drain(rx)
    assert got == [messages[0], messages[2], messages[4]]
    assert got[1] is messages[2]


def test_filtered_messages_are_not_counted_as_lag(backend):
    hub = _hub(backend)
    rx = hub.subscribe(capacity=2, topics=["a"])
    for _ in range(10):
        hub.publish("b")
    hub.publish("a")
    assert _drain_lagged(rx) == ["a"]
    assert rx.lagged == 0


def test_engine_signals_filtered_by_topic(backend):
    engine = TheusEngine(context={"domain": {"n": 0}}, backend=backend)
    try:
        rx = engine.signals.subscribe(topics=["domain.sig_keep*"])
        with engine.transaction() as tx:
            tx.update(signal={"domain.sig_keep1": 1, "domain.sig_drop": 2, "domain.sig_keep2": 3})
        assert [(s.name, s.value) for s in drain(rx)] == [
            ("domain.sig_keep1", 1),
            ("domain.sig_keep2", 3),
        ]
    finally:
        engine.close()


# --------------------------------------------------------------------------- closing


def test_close_ends_iteration_after_draining(backend):
    hub = _hub(backend)
    rx = hub.subscribe()
    hub.publish_many([1, 2])
    hub.close()
    assert list(rx) == [1, 2]
    with pytest.raises(ContextError):
        rx.recv(timeout=1)
    with pytest.raises(ContextError):
        hub.publish(3)
    with pytest.raises(ContextError):
        hub.subscribe()
    hub.close()  # idempotent


@pytest.mark.parametrize("closer", ["receiver", "hub"])
@pytest.mark.parametrize("waiter", ["recv", "recv_many", "iter"])
def test_close_wakes_a_blocked_receive(backend, closer, waiter):
    hub = _hub(backend)
    rx = hub.subscribe()
    outcome: dict[str, object] = {}

    def wait():
        try:
            if waiter == "recv":
                outcome["value"] = rx.recv()
            elif waiter == "recv_many":
                outcome["value"] = rx.recv_many(10)
            else:
                outcome["value"] = list(rx)
        except BaseException as exc:
            outcome["value"] = exc

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    time.sleep(0.05)
    (rx if closer == "receiver" else hub).close()
    t.join(10)
    assert not t.is_alive(), "close() must wake the blocked receive"
    if waiter == "iter":
        assert outcome["value"] == []
    else:
        assert isinstance(outcome["value"], ContextError)


@pytest.mark.parametrize("closer", ["receiver", "hub"])
def test_close_wakes_async_waits_and_ends_async_iteration(backend, closer):
    hub = _hub(backend)
    rx = hub.subscribe()

    async def scenario():
        async def iterate():
            return [m async for m in rx]

        task = asyncio.ensure_future(iterate())
        waiter = asyncio.ensure_future(rx.recv_async())
        await asyncio.sleep(0.02)
        hub.publish("x")
        await asyncio.sleep(0.02)
        threading.Thread(target=(rx if closer == "receiver" else hub).close).start()
        got = await asyncio.wait_for(task, 10)
        with pytest.raises(ContextError):
            await asyncio.wait_for(waiter, 10)
        return got

    got = run_with_timeout(lambda: asyncio.run(scenario()))
    assert got in (["x"], [])  # the waiter may have taken "x"


# --------------------------------------------------------------------------- asyncio


def test_async_receive_from_another_thread(backend):
    hub = _hub(backend, capacity=10_000)
    rx = hub.subscribe()
    n = 5000

    async def scenario():
        producer = threading.Thread(target=lambda: hub.publish_many(range(n)))
        producer.start()
        got = []
        async for m in rx:
            got.append(m)
            if len(got) == n:
                break
        more = []
        hub.publish_many(range(3))
        while len(more) < 3:
            more += await rx.recv_many_async(10)
        producer.join()
        return got, more

    got, more = run_with_timeout(lambda: asyncio.run(scenario()))
    assert got == list(range(n))
    assert more == [0, 1, 2]


def test_the_loop_is_woken_only_when_a_receiver_waits(backend):
    hub = _hub(backend)
    rx = hub.subscribe(capacity=10_000)
    calls = []
    waits = [0]

    class CountingLoop(asyncio.SelectorEventLoop):
        def call_soon_threadsafe(self, *args, **kwargs):
            calls.append(1)
            return super().call_soon_threadsafe(*args, **kwargs)

    loop = CountingLoop()
    try:

        async def scenario():
            hub.publish_many(range(1000))  # nobody waits: no wake-up
            first = await rx.recv_many_async(10_000)
            woken_before = len(calls)
            t = threading.Timer(0.05, lambda: hub.publish_many(range(5000)))
            t.start()
            second = []
            while len(second) < 5000:
                waits[0] += 1
                second += await rx.recv_many_async(10_000)
            t.join()
            return first, woken_before, second

        first, woken_before, second = run_with_timeout(lambda: loop.run_until_complete(scenario()))
    finally:
        loop.close()
    assert first == list(range(1000))
    assert woken_before == 0, "messages published while nobody waited woke the loop"
    assert second == list(range(5000))
    assert len(calls) <= waits[0], f"{len(calls)} wake-ups for {waits[0]} waits"
    assert waits[0] < 5000, "one wait per message: messages are not batched"


def test_async_receive_does_not_block_the_loop(backend):
    hub = _hub(backend)
    rx = hub.subscribe()

    async def scenario():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        t = asyncio.ensure_future(ticker())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(rx.recv_async(), 0.1)
        t.cancel()
        return ticks

    assert run_with_timeout(lambda: asyncio.run(scenario())) >= 10
