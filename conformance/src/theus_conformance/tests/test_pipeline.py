"""spec/15 — the commit pipeline: every commit path passes ``before_commit`` (which may reject:
nothing lands, nothing is published) and ``after_commit`` (in commit order, never failing the
call); ``changes`` is the write set with values; engines may start at a given version."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from theus import ConflictError, StateUpdate, process
from theus.pipeline import Change, Changes, Stage
from theus_conformance.support import drain, run_threads


class Reject(Exception):
    pass


class Recorder(Stage):
    """Records both hooks; rejects commits that write a path named in ``refuse``."""

    name = "recorder"

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.refuse = set(refuse)
        self.before: list[Changes] = []
        self.after: list[tuple[int, Changes]] = []

    def before_commit(self, changes: Changes) -> None:
        self.before.append(changes)
        for change in changes:
            if change.dotted in self.refuse:
                raise Reject(change.dotted)

    def after_commit(self, snapshot, changes: Changes) -> None:
        self.after.append((snapshot.version, changes))


def plain(value):
    """A change's value as plain data (views thawed)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "to_list"):
        return value.to_list()
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


def summary(changes: Changes) -> list[tuple[str, str, object]]:
    return [(c.kind, c.dotted, plain(c.value)) for c in changes]


@process(inputs=["domain"], outputs=["domain"])
def inplace(ctx):
    ctx.domain.x = 2
    ctx.domain.sig_go = "yes"


@process(inputs=["domain.x"], outputs=["domain.x"])
def returns(ctx):
    return ctx.domain.x + 10


@process(outputs=["domain.x", "domain.sig_go"])
def returns_update(ctx):
    return StateUpdate(data={"domain.x": 7}, signal={"domain.sig_go": 1})


@process(inputs=["domain.x"], outputs=["domain.x", "domain.sig_go"])
async def async_inplace(ctx):
    await asyncio.sleep(0)
    ctx.domain.x = 3
    ctx.domain.sig_go = "a"


def _host(engine):
    with engine.transaction() as tx:
        tx.update(data={"domain.x": 5}, signal={"domain.sig_go": "h"})


def _cas(engine):
    engine.compare_and_swap(engine.state.version, data={"domain.x": 6}, signal={"domain.sig_go": 1})


PATHS = {
    "in-place": lambda e: e.execute(inplace),
    "return": lambda e: e.execute(returns),
    "state-update": lambda e: e.execute(returns_update),
    "async-from-sync": lambda e: e.execute(async_inplace),
    "async": lambda e: asyncio.run(e.aexecute(async_inplace)),
    "host": _host,
    "cas": _cas,
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_before_commit_rejects_on_every_commit_path(make_engine, path):
    engine = make_engine({"domain": {"x": 1}})
    stage = Recorder(refuse=("domain.x",))
    engine.pipeline.add(stage)
    rx = engine.signals.subscribe()
    before = engine.state
    with pytest.raises(Reject, match=r"domain\.x"):
        PATHS[path](engine)
    assert engine.state is before and engine.state.version == 0
    assert engine.state.domain.x == 1
    assert drain(rx) == []
    assert stage.after == []
    assert len(stage.before) == 1  # a rejection is not re-run


@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_commit_path_reaches_both_hooks_once(make_engine, path):
    engine = make_engine({"domain": {"x": 1}})
    stage = Recorder()
    engine.pipeline.add(stage)
    rx = engine.signals.subscribe()
    PATHS[path](engine)
    assert engine.state.version == 1
    assert len(stage.before) == 1
    [(version, changes)] = stage.after
    assert version == 1
    assert summary(changes) == summary(stage.before[0])
    assert any(c.dotted == "domain.x" for c in changes)
    expected_process = None if path in ("host", "cas") else _name_of(path)
    assert changes.process == expected_process
    assert changes.base.version == 0
    if path != "return":
        assert [s.version for s in drain(rx)] == [1]


def _name_of(path: str) -> str:
    return {
        "in-place": "inplace",
        "return": "returns",
        "state-update": "returns_update",
        "async-from-sync": "async_inplace",
        "async": "async_inplace",
    }[path]


def test_changes_hold_the_write_set_with_values_sorted_then_signals(make_engine):
    engine = make_engine({"domain": {"a": 1, "log": [1], "m": {"k": 1}, "old": 0, "arr": [0, 1]}})
    stage = Recorder()
    engine.pipeline.add(stage)

    @process(inputs=["domain"], outputs=["domain"])
    def many(ctx):
        ctx.domain.sig_z = "first"
        ctx.domain.m.k = 2
        ctx.domain.m.j = {"deep": [1, 2]}  # below domain.m: not an entry of its own
        ctx.domain.m = ctx.domain.m  # assigning a view to itself writes nothing new
        ctx.domain.log.append(2)
        ctx.domain.log.extend([3, 4])
        del ctx.domain.old
        ctx.domain.b = [1, {"x": 2}]
        ctx.domain.arr[0] = 9
        ctx.domain.sig_a = {"v": 1}

    engine.execute(many)
    [changes] = stage.before
    assert summary(changes) == [
        ("set", "domain.arr.0", 9),
        ("set", "domain.b", [1, {"x": 2}]),
        ("append", "domain.log", (2, 3, 4)),
        ("set", "domain.m.j", {"deep": [1, 2]}),
        ("set", "domain.m.k", 2),
        ("delete", "domain.old", None),
        ("set", "domain.sig_z", "first"),
        ("set", "domain.sig_a", {"v": 1}),
    ]
    assert all(isinstance(c, Change) and isinstance(c.path, tuple) for c in changes)
    assert len(changes) == 8 and changes[0] == changes[:1][0]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("ctx.domain.log.append(9)", "append"),
        ("ctx.domain.log[0] = 5; ctx.domain.log.append(9)", "set"),
        ("ctx.domain.log.append(9); ctx.domain.log[0] = 5", "set"),
        ("ctx.domain.log.append(9); ctx.domain.log.pop(0)", "set"),
        ("ctx.domain.log.insert(0, 9)", "set"),
        ("ctx.domain.log += [9]", "append"),
        ("ctx.domain.log.append(9); ctx.domain.log.sort()", "set"),
    ],
)
def test_append_changes_only_for_lists_that_only_grew_at_their_end(make_engine, body, kind):
    engine = make_engine({"domain": {"log": [1, 2]}})
    stage = Recorder()
    engine.pipeline.add(stage)

    @process(inputs=["domain.log"], outputs=["domain.log"])
    def work(ctx):
        exec(body, {"ctx": ctx})

    engine.execute(work)
    [change] = stage.before[0]
    assert change.kind == kind
    if kind == "append":
        assert plain(change.value) == (9,)
    else:
        assert plain(change.value) == engine.state.domain.log.to_list()


def test_a_pure_process_append_is_an_append_change(make_engine):
    engine = make_engine({"domain": {"log": [1]}})
    stage = Recorder()
    engine.pipeline.add(stage)

    @process(inputs=["domain.log"], outputs=["domain.log"], semantic="pure")
    def add(ctx):
        ctx.domain.log.append(2)

    engine.execute(add)
    assert summary(stage.before[0]) == [("append", "domain.log", (2,))]


def test_host_append_and_delete_operations(make_engine):
    engine = make_engine({"domain": {"log": [1], "gone": 1}})
    stage = Recorder()
    engine.pipeline.add(stage)
    with engine.transaction() as tx:
        tx.append("domain.log", {"a": 1})
        tx.delete("domain.gone")
    assert summary(stage.before[0]) == [
        ("delete", "domain.gone", None),
        ("append", "domain.log", ({"a": 1},)),
    ]


def test_a_commit_that_writes_nothing_passes_no_hook(make_engine):
    engine = make_engine({"domain": {"x": 1}})
    stage = Recorder()
    engine.pipeline.add(stage)

    @process(inputs=["domain.x"], outputs=["domain.x"])
    def reads(ctx):
        ctx.domain.x

    engine.execute(reads)
    with engine.transaction():
        pass
    assert engine.state.version == 0
    assert stage.before == [] and stage.after == []


def test_a_conflicted_attempt_passes_before_commit_again_and_after_commit_once(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    stage = Recorder()
    engine.pipeline.add(stage)
    entered, go = threading.Event(), threading.Event()
    runs = []

    @process(inputs=["domain.x"], outputs=["domain.x"], retries=3)
    def slow(ctx):
        runs.append(ctx.domain.x)
        if len(runs) == 1:
            entered.set()
            go.wait(10)
        ctx.domain.x += 1

    worker = threading.Thread(target=engine.execute, args=(slow,))
    worker.start()
    assert entered.wait(10)
    with engine.transaction() as tx:
        tx.update(data={"domain.x": 100})
    go.set()
    worker.join(10)
    assert engine.state.domain.x == 101 and len(runs) == 2
    assert [c.process for c in stage.before] == [None, "slow", "slow"]
    assert [(v, c.process) for v, c in stage.after] == [(1, None), (2, "slow")]
    assert stage.before[2].base.version == 1


def test_after_commit_sees_commits_in_commit_order_under_concurrency(make_engine):
    engine = make_engine({"domain": {f"c{i}": 0 for i in range(4)}})
    stage = Recorder()
    engine.pipeline.add(stage)

    def work(i):
        @process(inputs=[f"domain.c{i}"], outputs=[f"domain.c{i}"], name=f"w{i}")
        def bump(ctx):
            setattr(ctx.domain, f"c{i}", getattr(ctx.domain, f"c{i}") + 1)

        for _ in range(200):
            engine.execute(bump)

    run_threads(4, work)
    versions = [v for v, _ in stage.after]
    assert versions == list(range(1, 801))
    assert all(c.base.version < v for v, c in stage.after)


def test_a_call_returns_after_its_own_after_commit_ran(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    stage = Recorder()
    engine.pipeline.add(stage)

    def work(i):
        @process(inputs=["domain.x"], outputs=["domain.x"], name=f"p{i}")
        def bump(ctx):
            ctx.domain.x += 1

        for _ in range(100):
            engine.execute(bump)
            seen = {v for v, _ in stage.after}
            assert engine.state.version in seen or engine.state.version > max(seen)

    run_threads(3, work)
    assert [v for v, _ in stage.after] == list(range(1, 301))


def test_an_after_commit_failure_is_logged_and_the_commit_stands(make_engine, caplog):
    engine = make_engine({"domain": {"x": 0}})

    class Broken(Stage):
        name = "broken"

        def after_commit(self, snapshot, changes):
            raise RuntimeError("observer down")

    later = Recorder()
    engine.pipeline.add(Broken())
    engine.pipeline.add(later)
    rx = engine.signals.subscribe()
    with caplog.at_level(logging.WARNING, logger="theus"):
        assert engine.execute(returns) == 10
    assert engine.state.domain.x == 10
    assert [v for v, _ in later.after] == [1]  # the next stage still ran
    records = [r for r in caplog.records if r.name == "theus"]
    assert records and "broken" in records[0].getMessage()
    assert records[0].exc_info is not None and records[0].exc_info[0] is RuntimeError
    assert drain(rx) == []


def test_an_interrupt_in_after_commit_is_raised_after_the_commit_landed(make_engine):
    engine = make_engine({"domain": {"x": 0}})

    class Interrupt(Stage):
        name = "interrupt"
        fired = False

        def after_commit(self, snapshot, changes):
            if not self.fired:
                self.fired = True
                raise KeyboardInterrupt

    later = Recorder()
    engine.pipeline.add(Interrupt())
    engine.pipeline.add(later)
    with pytest.raises(KeyboardInterrupt):
        engine.execute(inplace)
    assert engine.state.version == 1 and engine.state.domain.x == 2
    assert [v for v, _ in later.after] == [1]
    engine.execute(returns)  # the engine still works, in order
    assert [v for v, _ in later.after] == [1, 2]


def test_stages_can_be_removed_and_inserted(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    first, second = Recorder(), Recorder()
    order: list[str] = []
    first.before_commit = lambda changes: order.append("first")  # type: ignore[method-assign]
    second.before_commit = lambda changes: order.append("second")  # type: ignore[method-assign]
    engine.pipeline.add(second)
    engine.pipeline.add(first, index=0)
    engine.execute(returns)
    assert order == ["first", "second"]
    engine.pipeline.remove(first)
    engine.execute(returns)
    assert order == ["first", "second", "second"]
    with pytest.raises(ValueError):
        engine.pipeline.remove(first)
    with pytest.raises(TypeError):
        engine.pipeline.add(object())  # type: ignore[arg-type]
    names = [s.name for s in engine.pipeline.stages]
    assert names[:2] == ["signals", "outbox"] and names[-1] == "recorder"


def test_two_engines_have_their_own_pipelines(make_engine):
    one, two = make_engine({"domain": {"x": 0}}), make_engine({"domain": {"x": 0}})
    stage = Recorder(refuse=("domain.x",))
    one.pipeline.add(stage)
    two.execute(returns)
    assert two.state.domain.x == 10
    with pytest.raises(Reject):
        one.execute(returns)


def test_a_failed_strict_cas_passes_before_commit_but_not_after(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    stage = Recorder()
    engine.pipeline.add(stage)
    with pytest.raises(ConflictError):
        engine.compare_and_swap(5, data={"domain.x": 1})
    assert stage.after == [] and engine.state.version == 0


@pytest.mark.parametrize("version", [0, 1, 41, 2**40])
def test_an_engine_can_start_at_a_given_version(make_engine, version):
    engine = make_engine({"domain": {"x": 1}}, version=version)
    assert engine.state.version == version
    rx = engine.signals.subscribe()
    engine.execute(inplace)
    assert engine.state.version == version + 1
    assert [s.version for s in drain(rx)] == [version + 1]
    with engine.transaction() as tx:
        assert tx.version == version + 1
        tx.update(data={"domain.x": 3})
    assert engine.state.version == version + 2


@pytest.mark.parametrize("bad", [-1, "3", 1.0, True, None])
def test_a_bad_start_version_is_refused(make_engine, bad):
    with pytest.raises(TypeError, match="version"):
        make_engine({"domain": {}}, version=bad)


def test_an_outbox_message_alone_makes_a_version(make_engine):
    engine = make_engine({"domain": {"x": 1}})
    stage = Recorder()
    engine.pipeline.add(stage)

    @process(inputs=["domain.x"])
    def notify(ctx):
        ctx.outbox.add("mail", {"to": ctx.domain.x})

    engine.execute(notify)
    assert engine.state.version == 1
    [(_version, changes)] = stage.after
    assert list(changes) == []
    [message] = changes.outbox
    assert (message.topic, message.payload, message.version, message.index) == (
        "mail",
        {"to": 1},
        1,
        0,
    )
    assert stage.before[0].outbox[0].version == 0  # numbered only once committed


@pytest.mark.parametrize("topic", ["", None, 3, b"t"])
def test_an_outbox_topic_must_be_a_non_empty_string(make_engine, topic):
    engine = make_engine({"domain": {}})

    @process()
    def bad(ctx):
        ctx.outbox.add(topic, 1)

    with pytest.raises(TypeError, match="topic"):
        engine.execute(bad)
    assert engine.state.version == 0
