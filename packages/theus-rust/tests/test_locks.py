"""No Python code under an internal lock; the commit lock knows its owner; close(); nothing
raises after a commit landed (issue 6, classes 2-4; decisions D2, D3, D4).

Hang-prone scenarios run in a subprocess with a timeout and assert its exit code.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from theus import ContextError, NestedExecutionError, TheusEngine
from theus.pipeline import CommitPipeline
from theus.protocols import EngineOptions
from theus.signals import SignalStage
from theus.update import Update
from theus_rust._native import Engine


def _run(script: str, *args: str, timeout: float = 60) -> str:
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:  # a hang
        pytest.fail(f"the subprocess hung: {exc}")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


DESTRUCTOR_SCRIPT = """
    import sys
    from theus import NestedExecutionError, TheusEngine, process

    mode, how = sys.argv[1], sys.argv[2]
    engine = TheusEngine(context={"domain": {"x": None, "y": 0}}, backend="rust")
    seen = []

    class Touchy:
        def __del__(self):
            try:
                if mode == "read":
                    seen.append(("read", engine.state.version, engine.state.domain.y))
                elif mode == "transaction":
                    with engine.transaction() as tx:
                        tx.update(data={"domain.y": 100})
                    seen.append(("committed", engine.state.version))
                else:  # core: a transaction of the engine core directly
                    from theus.update import Update
                    tx = engine.core.begin(None)
                    try:
                        tx.apply(Update((("set", ("domain", "y"), 7),)))
                        seen.append(("committed", tx.commit().version))
                    finally:
                        tx.close()
            except NestedExecutionError:
                seen.append(("nested",))

    @process(outputs=["domain.x"])
    def replace(ctx):
        ctx.domain.x = None

    def put():
        with engine.transaction() as tx:
            tx.update(data={"domain.x": Touchy()})

    for round_ in range(20):
        put()
        before = engine.state.version
        if how == "process":
            engine.execute(replace)
        elif how == "cas":
            engine.compare_and_swap(before, data={"domain.x": None})
        else:
            with engine.transaction() as tx:
                tx.update(data={"domain.x": None})
            del tx
        assert len(seen) == round_ + 1, seen
        kind = seen[-1][0]
        if kind == "read":
            assert seen[-1][1] == before + 1, seen[-1]
        elif kind == "committed":
            assert engine.state.version == before + 2, (before, engine.state.version)
        else:
            # only the facade's nested-call rule may refuse (a destructor inside execute)
            assert how == "process" and mode == "transaction", (mode, how)
            assert engine.state.version == before + 1
    print("ok", len(seen))
"""


@pytest.mark.parametrize("how", ["transaction", "process", "cas"])
@pytest.mark.parametrize("mode", ["read", "transaction", "core"])
def test_a_destructor_touching_the_engine_during_a_commit_does_not_deadlock(mode, how):
    assert _run(DESTRUCTOR_SCRIPT, mode, how) == "ok 20"


SIGALRM_SCRIPT = """
    import signal, sys
    from theus import NestedExecutionError, TheusEngine, process

    N = int(sys.argv[1])
    engine = TheusEngine(context={"domain": {"n": 0, "h": 0}}, backend="rust")
    receiver = engine.signals.subscribe(capacity=100_000)
    calls = {"committed": 0, "nested": 0, "other": [], "busy": False}

    def handler(signum, frame):
        if calls["busy"]:  # a handler interrupted by the next one: skip (its own conflict)
            return
        calls["busy"] = True
        try:
            with engine.transaction() as tx:
                tx.update(data={"domain.h": calls["committed"] + 1}, signal={"domain.sig_h": 1})
            calls["committed"] += 1
        except NestedExecutionError:
            calls["nested"] += 1
        except BaseException as exc:  # any other outcome fails the test below
            calls["other"].append(repr(exc))
        finally:
            calls["busy"] = False

    @process(inputs=["domain.n"], outputs=["domain.n", "domain.sig_tick"])
    def tick(ctx):
        ctx.domain.n = ctx.domain.n + 1
        ctx.domain.sig_tick = ctx.domain.n

    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)
    try:
        for i in range(N):
            if i % 2:
                engine.execute(tick)
            else:
                with engine.transaction() as tx:
                    tx.update(data={"domain.n": engine.state.domain.n + 1},
                              signal={"domain.sig_tick": i})
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    assert not calls["other"], calls["other"]
    state = engine.state
    assert state.domain.n == N, state.domain.n
    assert state.domain.h == calls["committed"]
    assert state.version == N + calls["committed"], (state.version, calls)
    assert len(receiver) == N + calls["committed"]
    print("ok", calls["committed"] + calls["nested"] > 0)
"""


def test_a_signal_handler_committing_while_the_main_thread_commits_never_hangs():
    # Each handler call commits, or (when it fires inside the main thread's own commit, e.g.
    # during signal publication) gets NestedExecutionError at once.
    assert _run(SIGALRM_SCRIPT, "3000", timeout=120) == "ok True"


def _opts(hub):
    return EngineOptions(True, False, hub, CommitPipeline([SignalStage(hub)]))


def _set(*pairs):
    return Update(tuple(("set", tuple(path.split(".")), value) for path, value in pairs))


class Hub:
    """A hub that records what it gets and fails on some messages."""

    def __init__(self, fail_on=(), error=None):
        self.got = []
        self.fail_on = set(fail_on)
        self.error = error if error is not None else RuntimeError("Event loop is closed")

    def publish(self, message):
        self.got.append(message.name)
        if message.name in self.fail_on:
            raise self.error
        return 1


def test_a_failing_publish_after_the_commit_is_logged_not_raised(caplog):
    hub = Hub(fail_on={"domain.sig_b"})
    core = Engine({"domain": {"x": 0}}, _opts(hub))
    tx = core.begin(None)
    tx.apply(_set(("domain.x", 1), ("domain.sig_a", 1), ("domain.sig_b", 2), ("domain.sig_c", 3)))
    with caplog.at_level(logging.WARNING, logger="theus"):
        snapshot = tx.commit()
    tx.close()
    assert snapshot.version == 1 and core.version == 1
    assert hub.got == ["domain.sig_a", "domain.sig_b", "domain.sig_c"]  # the others still got it
    [record] = [r for r in caplog.records if r.name == "theus"]
    assert record.levelno == logging.WARNING
    assert "domain.sig_b" in record.getMessage() and "version 1" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


def test_every_failing_publish_is_logged_and_all_are_delivered(caplog):
    hub = Hub(fail_on={"domain.sig_a", "domain.sig_c"}, error=ValueError("dead receiver"))
    core = Engine({"domain": {}}, _opts(hub))
    for version in (1, 2):
        tx = core.begin(None)
        tx.apply(_set(("domain.sig_a", 1), ("domain.sig_b", 2), ("domain.sig_c", 3)))
        with caplog.at_level(logging.WARNING, logger="theus"):
            assert tx.commit().version == version
        tx.close()
    assert hub.got == ["domain.sig_a", "domain.sig_b", "domain.sig_c"] * 2
    assert len([r for r in caplog.records if r.name == "theus"]) == 4


def test_an_interrupt_while_publishing_is_re_raised_after_the_commit_and_delivery():
    hub = Hub(fail_on={"domain.sig_a"}, error=KeyboardInterrupt())
    core = Engine({"domain": {}}, _opts(hub))
    tx = core.begin(None)
    tx.apply(_set(("domain.sig_a", 1), ("domain.sig_b", 2)))
    with pytest.raises(KeyboardInterrupt):
        tx.commit()
    tx.close()
    assert core.version == 1
    assert hub.got == ["domain.sig_a", "domain.sig_b"]
    # the lock was released: the next commit lands
    tx = core.begin(None)
    tx.apply(_set(("domain.x", 1)))
    assert tx.commit().version == 2


def test_a_failing_publish_does_not_fail_execute(caplog):
    hub = Hub(fail_on={"domain.sig_go"})
    engine = TheusEngine(context={"domain": {"n": 0}}, backend="rust")
    core = Engine({"domain": {"n": 0}}, _opts(hub))

    from theus import process

    @process(inputs=["domain.n"], outputs=["domain.n", "domain.sig_go"])
    def go(ctx):
        ctx.domain.n = ctx.domain.n + 1
        ctx.domain.sig_go = ctx.domain.n
        # (after in-place writes only an exact mapping is applied, spec/06)

    spec, _ = engine._entry(go)
    handle = core.compile(spec)
    with caplog.at_level(logging.WARNING, logger="theus"):
        for n in range(1, 4):
            assert core.execute(handle, {}) is None
            assert core.version == n
    assert len([r for r in caplog.records if r.name == "theus"]) == 3


def test_the_holder_of_an_exclusive_transaction_re_entering_gets_nested_error():
    core = Engine({"domain": {"x": 0}}, _opts(Hub()))
    held = core.begin(None, True)
    try:
        other = core.begin(None)
        other.apply(_set(("domain.x", 1)))
        with pytest.raises(NestedExecutionError):
            other.commit()
        other.close()
        with pytest.raises(NestedExecutionError):
            core.begin(None, True)
        with pytest.raises(NestedExecutionError):
            core.close()
        held.apply(_set(("domain.x", 2)))
        assert held.commit().version == 1
    finally:
        held.close()
    tx = core.begin(None)
    tx.apply(_set(("domain.x", 3)))
    assert tx.commit().version == 2
    tx.close()


def test_close_refuses_later_commits_and_begins_and_is_idempotent():
    core = Engine({"domain": {"x": 0}}, _opts(Hub()))
    open_before = core.begin(None)
    open_before.apply(_set(("domain.x", 1)))
    assert not core.closed
    core.close()
    assert core.closed
    core.close()
    message = "this TheusEngine is closed; nothing was committed"
    with pytest.raises(ContextError, match=message):
        open_before.commit()
    open_before.close()
    with pytest.raises(ContextError, match="closed"):
        core.begin(None)
    with pytest.raises(ContextError, match="closed"):
        core.begin(None, True)
    assert core.version == 0
    assert core.snapshot().domain.x == 0


def test_close_refuses_execute_without_running_the_process():
    engine = TheusEngine(context={"domain": {"n": 0}}, backend="rust")
    core = Engine({"domain": {"n": 0}}, _opts(Hub()))
    ran = []

    from theus import process

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def bump(ctx):
        ran.append(1)
        ctx.domain.n = ctx.domain.n + 1

    spec, _ = engine._entry(bump)
    handle = core.compile(spec)
    core.execute(handle, {})
    core.close()
    with pytest.raises(ContextError, match="closed"):
        core.execute(handle, {})
    assert ran == [1] and core.version == 1


CLOSE_SCRIPT = """
    import threading, time
    from theus import ContextError
    from theus.pipeline import CommitPipeline
    from theus.protocols import EngineOptions
    from theus.update import Update
    from theus_rust._native import Engine

    class Hub:
        def publish(self, message):
            return 0

    OPTIONS = EngineOptions(True, False, Hub(), CommitPipeline())

    core = Engine({"domain": {"x": 0}}, OPTIONS)
    # An exclusive transaction in flight on another thread: close waits for it, and its commit
    # lands; after close returned nothing commits.
    started, release = threading.Event(), threading.Event()
    results = []

    def holder():
        tx = core.begin(None, True)
        started.set()
        release.wait(10)
        tx.apply(Update((("set", ("domain", "x"), 1),)))
        results.append(tx.commit().version)
        tx.close()

    worker = threading.Thread(target=holder)
    worker.start()
    started.wait(10)
    closer = threading.Thread(target=core.close)
    closer.start()
    time.sleep(0.05)
    assert closer.is_alive() and not core.closed  # waiting for the exclusive transaction
    release.set()
    closer.join(10)
    worker.join(10)
    assert not closer.is_alive() and not worker.is_alive()
    assert results == [1] and core.version == 1 and core.closed

    # Committers racing close(): every commit either lands before close returned or fails.
    core = Engine({"domain": {"x": 0}}, OPTIONS)
    landed, refused = [], []
    stop = threading.Event()

    def committer(k):
        i = 0
        while not stop.is_set():
            i += 1
            tx = core.begin(None) if not core.closed else None
            if tx is None:
                return
            try:
                tx.apply(Update((("set", ("domain", f"t{k}"), i),)))
                landed.append(tx.commit().version)
            except ContextError as exc:
                assert "closed" in str(exc)
                refused.append(k)
            finally:
                tx.close()

    threads = [threading.Thread(target=committer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    core.close()
    at_close = core.version
    stop.set()
    for t in threads:
        t.join(10)
    assert core.version == at_close == len(landed), (core.version, at_close, len(landed))
    print("ok")
"""


def test_close_waits_for_a_commit_in_flight_and_nothing_commits_after_it():
    assert _run(CLOSE_SCRIPT) == "ok"
