"""A bounded stress test of spec/05, 08, 10, 11: threads, asyncio tasks (on a user loop and on
the engine loop), a signal handler, destructors that touch the engine, receivers that time out
or are abandoned on closed loops, and ``close()`` while all of that is in flight.

It asserts: nothing hangs; every commit adds exactly one version; every call that returned
committed exactly once and every call that raised committed nothing (each call writes a unique
token into a signal, so the published signals are the commit log); every committed write is
visible in the final state; nothing commits after ``close()`` returned.

It runs in a fresh interpreter with a timeout, so a hang fails this test instead of the suite.
"""

from __future__ import annotations

import sys

import pytest

from theus_conformance.script import run_script

SCENARIO = r"""
import asyncio, gc, itertools, signal, threading, time
from theus import (ConflictError, ContextError, NestedExecutionError, TheusEngine, process)

SECONDS = 3.0
WORKERS = 3
engine = TheusEngine(context={"domain": {"n": 0, "h": 0, "d": 0,
                                          **{f"c{i}": 0 for i in range(WORKERS)},
                                          **{f"a{i}": 0 for i in range(WORKERS)}}},
                     backend=BACKEND)
rx = engine.signals.subscribe(capacity=10**7)   # the commit log: drained at the end

from theus.pipeline import Stage

class Observer(Stage):   # a Python after_commit stage: the ordered hand-over under fire
    name = "observer"
    def __init__(self):
        self.versions = []
    def after_commit(self, snapshot, changes):
        self.versions.append(snapshot.version)

observer = Observer()
engine.pipeline.add(observer)
tokens = itertools.count(1)     # next() and list.append are atomic: safe in signal handlers
ok, failed = [], []              # (token, kind, key) of calls that returned / raised
EXPECTED_FAILURES = (ConflictError, ContextError, NestedExecutionError)

def record(bucket, token, kind, key):
    bucket.append((token, kind, key))  # no lock: a handler may interrupt its own thread here

freed = itertools.count(1)

class Tracked:
    # Replaced by the next commit of its worker: the destructor reads the state and, one time in
    # 20 (each one frees older snapshots, hence more destructors), runs a host transaction.
    def __del__(self):
        engine.state.version
        if next(freed) % 20:
            return
        token = next(tokens)
        try:
            with engine.transaction() as tx:
                tx.update(data={"domain.d": tx.get("domain.d") + 1},
                          signal={"domain.sig_token": token})
        except EXPECTED_FAILURES:
            record(failed, token, "del", "d")
        else:
            record(ok, token, "del", "d")

@process(inputs=["domain"], outputs=["domain"])
def bump(ctx, key, token):
    setattr(ctx.domain, key, getattr(ctx.domain, key) + 1)
    ctx.domain.n += 1
    ctx.domain.heavy_obj = Tracked()
    ctx.domain.sig_token = token

@process(inputs=["domain"], outputs=["domain"], retries=100)
async def abump(ctx, key, token):
    await asyncio.sleep(0)
    setattr(ctx.domain, key, getattr(ctx.domain, key) + 1)
    ctx.domain.n += 1
    ctx.domain.sig_token = token

def call(kind, key, fn):
    token = next(tokens)
    try:
        fn(token)
    except EXPECTED_FAILURES:
        record(failed, token, kind, key)
        return False
    record(ok, token, kind, key)
    return True

stop = threading.Event()

def sync_worker(i):
    while not stop.is_set():
        if not call("sync", f"c{i}", lambda t: engine.execute(bump, key=f"c{i}", token=t)):
            if engine._closed:
                return

def engine_loop_worker():
    # async processes run by engine.execute on the engine's own loop
    while not stop.is_set():
        if not call("loop", "a0", lambda t: engine.execute(abump, key="a0", token=t)):
            if engine._closed:
                return

def asyncio_worker():
    async def runner(j):
        while not stop.is_set():
            token = next(tokens)
            try:
                await engine.aexecute(abump, key=f"a{j}", token=token)
            except EXPECTED_FAILURES:
                record(failed, token, "async", f"a{j}")
                if engine._closed:
                    return
            else:
                record(ok, token, "async", f"a{j}")

    async def impatient_receiver():
        mine = engine.signals.subscribe()
        while not stop.is_set():
            try:
                await asyncio.wait_for(mine.recv_async(), 0.001)
            except (TimeoutError, asyncio.TimeoutError):
                pass

    async def main():
        await asyncio.gather(runner(1), runner(2), impatient_receiver())
    asyncio.run(main())

# a receiver abandoned on a loop closed while it waited
abandoned = engine.signals.subscribe()
dead_loop = asyncio.new_event_loop()
dead_loop.create_task(abandoned.recv_async())
dead_loop.run_until_complete(asyncio.sleep(0.01))
dead_loop.close()

handler_calls = [0]
handler_busy = [False]
def handler(signum, frame):
    if handler_busy[0]:  # a handler interrupted by the next tick: skip, or they pile up
        return
    handler_busy[0] = True
    try:
        handler_calls[0] += 1
        engine.state.version
        token = next(tokens)
        try:
            with engine.transaction() as tx:
                tx.update(data={"domain.h": tx.get("domain.h") + 1},
                          signal={"domain.sig_token": token})
        except EXPECTED_FAILURES:
            record(failed, token, "handler", "h")
        else:
            record(ok, token, "handler", "h")
    finally:
        handler_busy[0] = False

threads = [threading.Thread(target=sync_worker, args=(i,), daemon=True) for i in range(WORKERS)]
threads += [threading.Thread(target=engine_loop_worker, daemon=True),
            threading.Thread(target=asyncio_worker, daemon=True)]
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.05, 0.01)
for t in threads:
    t.start()
deadline = time.monotonic() + SECONDS
while time.monotonic() < deadline:   # the main thread commits too, under the signal handler
    snap = engine.state
    call("host", "cas", lambda t: engine.compare_and_swap(
        snap.version, data={"domain.n": snap.domain.n}, signal={"domain.sig_token": t}))
    del snap
    gc.collect(0)
engine.close()                       # while everything above is still in flight
closed_at = engine.state.version
stop.set()
signal.setitimer(signal.ITIMER_REAL, 0, 0)
for t in threads:
    t.join(30)
    assert not t.is_alive(), f"{t.name} is stranded"
gc.collect()
assert engine.state.version == closed_at, "a commit landed after close() returned"

committed = {}
versions = []
while True:
    try:
        s = rx.try_recv()
    except Exception:
        break
    if s.name == "domain.sig_token":
        committed[s.value] = s.version
        versions.append(s.version)
final = engine.state
ok_tokens = {t for t, _, _ in ok}
failed_tokens = {t for t, _, _ in failed}
assert versions == list(range(1, final.version + 1)), "one version per commit, in order"
assert observer.versions == versions, "after_commit saw every commit, in commit order"
assert set(committed) == ok_tokens, (
    "calls that returned must have committed, calls that raised must not: "
    f"{sorted(set(committed) ^ ok_tokens)[:10]}")
assert not (failed_tokens & set(committed))
counts = {}
for _, kind, key in ok:
    counts[key] = counts.get(key, 0) + 1
d = final.domain
for key in [f"c{i}" for i in range(WORKERS)] + [f"a{i}" for i in range(WORKERS)] + ["h", "d"]:
    assert d[key] == counts.get(key, 0), (key, d[key], counts.get(key, 0))
increments = sum(counts.get(k, 0) for k in d if k[0] in "ca" and k[1:].isdigit())
assert d["n"] == increments, (d["n"], increments)
kinds = {kind for _, kind, _ in ok}
assert {"sync", "loop", "async", "host"} <= kinds, kinds
assert handler_calls[0] > 0
print("OK", final.version, len(ok), len(failed), sorted(kinds), handler_calls[0])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGALRM")
def test_stress_mixed_concurrency_and_close(backend):
    done = run_script(SCENARIO, backend, timeout=90)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert done.stdout.startswith("OK"), done.stdout + done.stderr[-2000:]
