"""SignalHub benchmarks (REQUIREMENTS §5), parametrized by backend, with same-run baselines.

Timing method: as in bench_engine.py, no `setup` hooks (this asv_runner re-runs `setup` around
every timed call); each call does a fixed amount of work (`N_*` messages) and builds what it
needs itself (a hub, a receiver, a thread: microseconds against milliseconds of messages).
Divide a median by its `N_*` for the time per message; `report.py` prints messages per second.

- `Publish`: `hub.publish(m)` N_PUBLISH times with one `lag` subscriber (capacity 1024, never
  read: from the 1025th message on every publish also drops one). Baselines: the same loop on
  `queue.SimpleQueue.put` and `asyncio.Queue.put_nowait` (both unbounded; emptied by a fresh
  queue per call).
- `ThreadToThread`: one publisher thread (the benchmark's) -> one receiver thread, policy
  `block` (capacity 1024), N_THREAD messages, none lost (the receiver counts them and the call
  checks the count): publishing one at a time (`publish`) and by `publish_many`, the receiver
  taking batches with `recv_many(4096)`. Baseline: `queue.SimpleQueue` put / get one at a time.
- `AsyncReceive`: N_ASYNC messages received on an asyncio loop (one loop reused), with
  `async for` and with `recv_many_async(4096)`. The producer is a task on the same loop
  publishing chunks of 1024 and yielding (`await asyncio.sleep(0)`) between chunks, the receiver
  a `lag` queue large enough to lose nothing; `thread_` variants publish from another thread into
  a `block` receiver of capacity 1024 (so the loop is really woken). Baseline: `asyncio.Queue`,
  the same producer task (`put_nowait` chunks) and `await q.get()`.
- `LagMemory.track_rss_growth_mb`: a `lag` subscriber that never reads, 10 M publishes; the RSS
  growth in MiB after the first 1 M (must stay flat: near 0).
"""

from __future__ import annotations

import asyncio
import queue
import resource
import threading
from typing import Any

from theus import SignalHub, backends

BACKENDS = tuple(
    name
    for name in ("reference", "rust")
    if any(info.name == name and info.error is None for info in backends())
)
N_PUBLISH = 10_000
N_THREAD = 200_000
N_ASYNC = 100_000
CHUNK = 1024
MSG = object()
_CACHE: dict[tuple[Any, ...], Any] = {}


def _publish_setup(backend: str) -> tuple[Any, Any]:
    key = ("publish", backend)
    if key not in _CACHE:
        hub = SignalHub(backend=backend)
        _CACHE[key] = (hub, hub.subscribe(capacity=1024))
    return _CACHE[key]  # type: ignore[no-any-return]


class Publish:
    """`publish` with one (never read) `lag` subscriber, N_PUBLISH messages per call."""

    number = 20
    params = BACKENDS
    param_names = ("backend",)

    def time_publish_1_subscriber(self, backend: str) -> None:
        hub, _rx = _publish_setup(backend)
        publish = hub.publish
        msg = MSG
        for _ in range(N_PUBLISH):
            publish(msg)


class PublishBaseline:
    """The same loop on `queue.SimpleQueue.put` and `asyncio.Queue.put_nowait`."""

    number = 20

    def time_simplequeue_put(self) -> None:
        put = queue.SimpleQueue().put
        msg = MSG
        for _ in range(N_PUBLISH):
            put(msg)

    def time_asyncio_queue_put_nowait(self) -> None:
        put = asyncio.Queue().put_nowait  # type: ignore[var-annotated]
        msg = MSG
        for _ in range(N_PUBLISH):
            put(msg)


def _consumer(rx: Any, total: int, seen: list[int]) -> threading.Thread:
    def consume() -> None:
        n = 0
        recv_many = rx.recv_many
        while n < total:
            n += len(recv_many(4096, 30))
        seen.append(n)

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    return t


class ThreadToThread:
    """1 publisher thread -> 1 receiver thread, policy `block`, N_THREAD messages, none lost."""

    number = 1
    repeat = (3, 10, 60.0)
    params = BACKENDS
    param_names = ("backend",)
    timeout = 300.0

    def time_block_publish(self, backend: str) -> None:
        hub = SignalHub(backend=backend)
        rx = hub.subscribe(policy="block", capacity=1024)
        seen: list[int] = []
        t = _consumer(rx, N_THREAD, seen)
        publish = hub.publish
        msg = MSG
        for _ in range(N_THREAD):
            publish(msg)
        t.join()
        assert seen == [N_THREAD]

    def time_block_publish_many(self, backend: str) -> None:
        hub = SignalHub(backend=backend)
        rx = hub.subscribe(policy="block", capacity=1024)
        seen: list[int] = []
        t = _consumer(rx, N_THREAD, seen)
        hub.publish_many(_MESSAGES)
        t.join()
        assert seen == [N_THREAD]


_MESSAGES = [MSG] * N_THREAD


class ThreadToThreadBaseline:
    """`queue.SimpleQueue`: one thread puts N_THREAD items, another gets them one by one."""

    number = 1
    repeat = (3, 10, 60.0)

    def time_simplequeue(self) -> None:
        q: queue.SimpleQueue[object] = queue.SimpleQueue()

        def consume() -> None:
            get = q.get
            for _ in range(N_THREAD):
                get()

        t = threading.Thread(target=consume, daemon=True)
        t.start()
        put = q.put
        msg = MSG
        for _ in range(N_THREAD):
            put(msg)
        t.join()


_LOOP: list[asyncio.AbstractEventLoop] = []


def _run(coro: Any) -> Any:
    if not _LOOP:
        _LOOP.append(asyncio.new_event_loop())
    return _LOOP[0].run_until_complete(coro)


async def _produce_chunks(publish_many: Any) -> None:
    chunk = [MSG] * CHUNK
    for _ in range(N_ASYNC // CHUNK):
        publish_many(chunk)
        await asyncio.sleep(0)
    publish_many([MSG] * (N_ASYNC % CHUNK))


async def _async_for(rx: Any, total: int) -> int:
    n = 0
    async for _ in rx:
        n += 1
        if n == total:
            break
    return n


async def _async_batches(rx: Any, total: int) -> int:
    n = 0
    recv_many_async = rx.recv_many_async
    while n < total:
        n += len(await recv_many_async(4096))
    return n


class AsyncReceive:
    """N_ASYNC messages received on an asyncio loop: `async for` and `recv_many_async`."""

    number = 1
    repeat = (3, 10, 60.0)
    params = BACKENDS
    param_names = ("backend",)
    timeout = 300.0

    def _loop_case(self, backend: str, receive: Any) -> None:
        hub = SignalHub(backend=backend)
        rx = hub.subscribe(capacity=N_ASYNC)

        async def scenario() -> int:
            producer = asyncio.ensure_future(_produce_chunks(hub.publish_many))
            n = await receive(rx, N_ASYNC)
            await producer
            return n  # type: ignore[no-any-return]

        assert _run(scenario()) == N_ASYNC
        assert rx.lagged == 0

    def _thread_case(self, backend: str, receive: Any) -> None:
        hub = SignalHub(backend=backend)
        rx = hub.subscribe(policy="block", capacity=1024)
        producer = threading.Thread(target=hub.publish_many, args=(_MESSAGES[:N_ASYNC],))

        async def scenario() -> int:
            producer.start()
            return await receive(rx, N_ASYNC)  # type: ignore[no-any-return]

        assert _run(scenario()) == N_ASYNC
        producer.join()

    def time_async_for(self, backend: str) -> None:
        self._loop_case(backend, _async_for)

    def time_recv_many_async(self, backend: str) -> None:
        self._loop_case(backend, _async_batches)

    def time_thread_async_for(self, backend: str) -> None:
        self._thread_case(backend, _async_for)

    def time_thread_recv_many_async(self, backend: str) -> None:
        self._thread_case(backend, _async_batches)


class AsyncReceiveBaseline:
    """`asyncio.Queue`: the same producer task, `await q.get()` per message."""

    number = 1
    repeat = (3, 10, 60.0)

    def time_asyncio_queue_get(self) -> None:
        async def scenario() -> int:
            q: asyncio.Queue[object] = asyncio.Queue()
            producer = asyncio.ensure_future(_produce_chunks(lambda ms: [*map(q.put_nowait, ms)]))
            get = q.get
            for _ in range(N_ASYNC):
                await get()
            await producer
            return N_ASYNC

        assert _run(scenario()) == N_ASYNC


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class LagMemory:
    """A `lag` subscriber that never reads: RSS growth over 10 M publishes (after 1 M)."""

    params = BACKENDS
    param_names = ("backend",)
    timeout = 600.0
    unit = "MiB"

    def track_rss_growth_mb(self, backend: str) -> float:
        hub = SignalHub(backend=backend)
        rx = hub.subscribe(capacity=1024)
        batch = [MSG] * 100_000
        for _ in range(10):
            hub.publish_many(batch)
        before = _rss_mib()
        for _ in range(90):
            hub.publish_many(batch)
        grown = _rss_mib() - before
        assert len(rx) == 1024
        assert rx.lagged == 10_000_000 - 1024
        return grown
