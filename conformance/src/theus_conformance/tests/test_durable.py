"""spec/21 — durable engines on each backend: reopen, the durable format and its refusals,
history, at, fork, diff, the pipeline position of the durable stage, argument checks."""

from __future__ import annotations

import datetime
import decimal
import random
import signal
import subprocess
import sys
import uuid

import pytest

from theus import ContextError, StoreConflictError, StoreError, process
from theus.pipeline import Stage
from theus.stores import SqliteStore


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "d.db")
    yield s
    s.close()


@process(inputs=["domain.n"], outputs=["domain.n", "domain.log_steps", "domain.sig_done"])
def step(ctx):
    ctx.domain.n += 1
    ctx.domain.log_steps.append(ctx.domain.n)
    ctx.domain.sig_done = True
    ctx.outbox.add("stepped", {"n": ctx.domain.n})


def test_new_run_then_reopen_restores_version_and_state(make_engine, store):
    engine = make_engine({"domain": {"n": 0, "log_steps": []}}, store=store, run_id="r1")
    assert engine.run_id == "r1" and engine.store is store
    for _ in range(4):
        engine.execute(step)
    again = make_engine({"domain": {"n": 999}}, store=store, run_id="r1")  # context not used
    assert again.state.version == 4
    assert again.state.to_dict() == engine.state.to_dict()
    assert dict(again.state.signals) == {}  # signals are not restored
    again.register(step)
    again.execute("step")
    assert again.state.get("domain.n") == 5
    assert [(m.version, m.index) for m in store.outbox("r1")] == [(v, 0) for v in range(1, 6)]


def test_new_run_starts_at_the_given_version(make_engine, store):
    engine = make_engine({"domain": {"n": 0}}, store=store, run_id="r", version=10)
    with engine.transaction() as tx:
        tx.update(data={"domain.n": 1})
    assert make_engine(store=store, run_id="r").state.version == 11
    with pytest.raises(ValueError, match=r"cannot be given when reopening run 'r'"):
        make_engine(store=store, run_id="r", version=3)


def test_random_run_id_and_path_store(make_engine, tmp_path):
    engine = make_engine(store=str(tmp_path / "p.db"))
    assert isinstance(engine.run_id, str) and len(engine.run_id) == 32
    with engine.transaction() as tx:
        tx.update(data={"domain.x": 1})
    engine.close()
    with SqliteStore(tmp_path / "p.db") as s:
        assert s.head(engine.run_id) == 1


_VALUES = [
    0,
    2**70,
    -1.25,
    float("-inf"),
    "text",
    b"\x00bytes",
    (1, ("a", None)),
    frozenset({"b", "a"}),
    datetime.datetime(2026, 1, 2, 3, 4, 5),
    datetime.date(1999, 12, 31),
    datetime.time(23, 59),
    datetime.timedelta(hours=5),
    decimal.Decimal("-0.001"),
    uuid.UUID(int=12345),
    {"nested": {"list": [1, {"$": "not a tag"}]}},
    [[], {}, [[1]]],
    {1, 2},
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_at_equals_every_recorded_version(make_engine, store, seed):
    rng = random.Random(seed)
    engine = make_engine({"domain": {"m": {}, "l": []}}, store=store, run_id="r")
    recorded = {0: engine.state.to_dict()}
    for _ in range(40):
        with engine.transaction() as tx:
            roll = rng.random()
            key = f"k{rng.randrange(5)}"
            if roll < 0.5:
                tx.update(data={f"domain.m.{key}": rng.choice(_VALUES)})
            elif roll < 0.65 and tx.get(f"domain.m.{key}") is not None:
                tx.delete(f"domain.m.{key}")
            elif roll < 0.85:
                tx.append("domain.l", rng.choice(_VALUES))
            else:
                tx.update(data={"domain.l": [rng.choice(_VALUES)]})
        recorded[engine.state.version] = engine.state.to_dict()
    for version, data in recorded.items():
        snap = engine.at(version)
        assert snap.version == version
        assert snap.to_dict() == data
    reopened = make_engine(store=store, run_id="r")
    assert reopened.state.to_dict() == recorded[engine.state.version]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"domain.x": object()},
            r"cannot store 'domain\.x' durably: values of type builtins\.object",
        ),
        (
            {"domain.x": {"a": [1, 1j]}},
            r"cannot store 'domain\.x\.a\.1' durably: .*builtins\.complex",
        ),
        ({"domain.x": {"heavy_h": 1}}, r"cannot store 'domain\.x\.heavy_h' durably: heavy values"),
        (
            {"domain.x": (1, {2: 3})},
            r"cannot store 'domain\.x\.1' durably: a map key 2 is not a str",
        ),
    ],
)
def test_values_outside_the_format_reject_the_commit(make_engine, store, data, message):
    engine = make_engine({"domain": {"x": 0}}, store=store, run_id="r")
    with pytest.raises(TypeError, match=message):
        with engine.transaction() as tx:
            tx.update(data=data)
    assert engine.state.version == 0 and store.head("r") == 0
    with engine.transaction() as tx:
        tx.update(data={"domain.x": 1})
    assert store.head("r") == 1


def test_heavy_writes_and_bad_payloads_are_refused(make_engine, store):
    engine = make_engine({"domain": {}}, store=store, run_id="r")
    with pytest.raises(TypeError, match=r"'domain\.heavy_blob' durably: heavy values"):
        with engine.transaction() as tx:
            tx.update(heavy={"domain.heavy_blob": bytearray(10)})
    with pytest.raises(TypeError, match=r"outbox message 0 \('t'\): cannot store"):
        with engine.transaction() as tx:
            tx.outbox.add("t", {"f": lambda: 1})
    assert engine.state.version == 0 and list(engine.outbox.pending) == []


def test_unstorable_initial_context_makes_no_run(make_engine, store):
    with pytest.raises(TypeError, match=r"cannot store 'domain\.o' durably"):
        make_engine({"domain": {"o": object()}}, store=store, run_id="r")
    assert store.get_run("r") is None


def test_history_newest_first_with_process_and_paths(make_engine, store):
    engine = make_engine({"domain": {"n": 0, "log_steps": []}}, store=store, run_id="r")
    engine.execute(step)
    with engine.transaction() as tx:
        tx.update(data={"domain.b": 1, "domain.a": 2})
    engine.execute(step)
    entries = engine.history()
    assert [e.version for e in entries] == [3, 2, 1]
    assert [e.process for e in entries] == ["step", None, "step"]
    assert entries[1].paths == ("domain.a", "domain.b")
    assert entries[0].paths == ("domain.log_steps", "domain.n", "domain.sig_done")
    assert entries[0].time >= entries[2].time
    assert [e.version for e in engine.history(limit=1)] == [3]
    assert [e.version for e in engine.history(before=3, limit=5)] == [2, 1]
    with pytest.raises(TypeError):
        engine.history(limit="1")
    with pytest.raises(ValueError):
        engine.history(before=-1)


def test_fork_copies_processes_and_leaves_the_source_alone(make_engine, store):
    engine = make_engine({"domain": {"n": 0, "log_steps": []}}, store=store, run_id="src")
    engine.register(step)
    for _ in range(3):
        engine.execute(step)
    child = engine.fork(1, run_id="kid")
    try:
        assert child.backend == engine.backend
        child.execute("step")
        assert child.state.get("domain.n") == 2 and child.state.version == 2
        assert engine.state.get("domain.n") == 3 and store.head("src") == 3
        assert engine.at(2).get("domain.n") == 2
        assert store.get_run("kid").parent_run == "src"
    finally:
        child.close()
    with pytest.raises(StoreConflictError):
        engine.fork(1, run_id="kid")


def test_diff_between_versions(make_engine, store):
    engine = make_engine(
        {"domain": {"a": 1, "b": {"c": 1, "d": 2}, "e": 1}}, store=store, run_id="r"
    )
    with engine.transaction() as tx:
        tx.update(data={"domain.a": 1.0, "domain.b.c": 5, "domain.f": [1]}, delete=["domain.e"])
    changes = engine.diff(0, 1)
    assert [(c.kind, c.dotted, c.value) for c in changes] == [
        ("set", "domain.a", 1.0),
        ("set", "domain.b.c", 5),
        ("delete", "domain.e", None),
        ("set", "domain.f", [1]),
    ]
    assert engine.diff(1, 1) == ()
    back = engine.diff(1, 0)
    assert ("set", "domain.e", 1) in [(c.kind, c.dotted, c.value) for c in back]


def test_durable_stage_sits_before_outbox_and_runs_before_it(make_engine, store):
    engine = make_engine({"domain": {}}, store=store, run_id="r")
    names = [s.name for s in engine.pipeline.stages]
    assert names.index("durable") + 1 == names.index("outbox")
    seen = []

    class Probe(Stage):
        name = "probe"

        def after_commit(self, snapshot, changes):
            seen.append(store.head("r") == snapshot.version)

    engine.pipeline.add(Probe())
    sub = engine.outbox.subscribe(lambda m: seen.append(store.head("r") >= m.version))
    with engine.transaction() as tx:
        tx.update(data={"domain.x": 1})
        tx.outbox.add("t", 1)
    assert engine.outbox.flush(timeout=30)
    sub.close()
    assert seen == [True, True]


def test_a_second_writer_makes_the_stale_engine_refuse(make_engine, store):
    a = make_engine({"domain": {"n": 0}}, store=store, run_id="r")
    b = make_engine(store=store, run_id="r")
    with a.transaction() as tx:
        tx.update(data={"domain.n": 1})
    with pytest.raises(
        StoreConflictError,
        match=r"another writer stored version 1 \(this engine "
        r"is at version 0\)",
    ):
        with b.transaction() as tx:
            tx.update(data={"domain.n": 2})
    assert b.state.version == 0 and b.state.get("domain.n") == 0


class _FailingAppend(SqliteStore):
    """A store whose version writes fail once ``fail`` is set (a full disk, say)."""

    fail = False

    def append(self, run_id, record, **kwargs):
        if self.fail:
            raise StoreError("disk full (simulated)")
        super().append(run_id, record, **kwargs)


def test_a_store_write_failing_after_the_commit_landed_does_not_fail_the_call(
    make_engine, tmp_path, caplog
):
    store = _FailingAppend(tmp_path / "f.db")
    engine = make_engine({"domain": {"n": 0}}, store=store, run_id="r")
    with engine.transaction() as tx:
        tx.update(data={"domain.n": 1})
    store.fail = True
    with caplog.at_level("WARNING", logger="theus"):
        with engine.transaction() as tx:  # the commit lands; storing it fails: logged only
            tx.update(data={"domain.n": 2})
    assert engine.state.version == 2 and engine.state.get("domain.n") == 2
    assert any("durable" in r.getMessage() and r.exc_info for r in caplog.records)
    assert store.head("r") == 1  # version 2 is not durable
    store.fail = False
    with pytest.raises(StoreError, match=r"storing an earlier commit failed .*disk full"):
        with engine.transaction() as tx:
            tx.update(data={"domain.n": 3})
    assert engine.state.version == 2
    store.close()
    reopened = make_engine(store=SqliteStore(tmp_path / "f.db"), run_id="r")
    assert reopened.state.version == 1 and reopened.state.get("domain.n") == 1


def _send(engine, *topics):
    with engine.transaction() as tx:
        for topic in topics:
            tx.outbox.add(topic, {"t": topic, "when": engine.state.version})


def test_undelivered_outbox_messages_are_released_again_after_a_reopen(make_engine, store):
    engine = make_engine({"domain": {}}, store=store, run_id="r")
    _send(engine, "a", "b")  # version 1: nobody subscribed, so nothing is delivered
    _send(engine, "c")
    engine.close()
    again = make_engine(store=store, run_id="r")
    assert [(m.topic, m.version, m.index) for m in again.outbox.pending] == [
        ("a", 1, 0),
        ("b", 1, 1),
        ("c", 2, 0),
    ]
    assert again.outbox.pending[0].payload == {"t": "a", "when": 0}
    got = []
    sub = again.outbox.subscribe(lambda m: got.append((m.topic, m.version, m.index)))
    assert again.outbox.flush(timeout=30)
    assert got == [("a", 1, 0), ("b", 1, 1), ("c", 2, 0)]
    sub.close()
    again.close()
    third = make_engine(store=store, run_id="r")  # everything was delivered: nothing again
    assert third.outbox.pending == ()
    _send(third, "d")
    assert [m.topic for m in third.outbox.drain()] == ["d"]
    third.close()
    assert store.delivered("r") == (3, 1)


def test_a_reopen_releases_from_the_oldest_undelivered_message(make_engine, store):
    engine = make_engine({"domain": {}}, store=store, run_id="r")
    _send(engine, "a")
    _send(engine, "b", "c")
    assert [m.topic for m in engine.outbox.drain(max_n=2)] == ["a", "b"]
    engine.close()  # "c" (version 2, index 1) is still pending: the mark stops there
    assert store.delivered("r") == (2, 1)
    again = make_engine(store=store, run_id="r")
    assert [(m.topic, m.version, m.index) for m in again.outbox.pending] == [("c", 2, 1)]
    again.close()


def test_outbox_messages_of_a_killed_process_are_delivered_after_a_reopen(
    make_engine, backend, tmp_path
):
    path = tmp_path / "k.db"
    code = f"""
import os, signal
from theus import TheusEngine
from theus.stores import SqliteStore
engine = TheusEngine({{"domain": {{}}}}, backend={backend!r}, store=SqliteStore({str(path)!r}),
                     run_id="k")
for i in range(3):
    with engine.transaction() as tx:
        tx.update(data={{"domain.n": i}})
        tx.outbox.add("sent", i)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    again = make_engine(store=SqliteStore(path), run_id="k")
    assert again.state.get("domain.n") == 2
    assert [(m.payload, m.version) for m in again.outbox.drain()] == [(0, 1), (1, 2), (2, 3)]
    again.close()


def test_a_failed_store_write_poisons_the_engine(make_engine, store):
    engine = make_engine({"domain": {}}, store=store, run_id="r")
    store.close()
    with pytest.raises(StoreError):
        with engine.transaction() as tx:
            tx.update(data={"domain.x": 1})
    assert engine.state.version == 0


def test_without_a_store(make_engine):
    engine = make_engine()
    assert engine.run_id is None and engine.store is None
    for call in (
        lambda: engine.history(),
        lambda: engine.at(0),
        lambda: engine.fork(0),
        lambda: engine.diff(0, 0),
        lambda: engine.resume_workflow("steps: []\n"),
    ):
        with pytest.raises(ContextError, match=r"needs a durable engine"):
            call()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"store": 3}, TypeError),
        ({"run_id": "r"}, TypeError),
        ({"store": "X", "run_id": ""}, TypeError),
        ({"store": "X", "run_id": 5}, TypeError),
    ],
)
def test_argument_checks(make_engine, tmp_path, kwargs, error):
    if kwargs.get("store") == "X":
        kwargs = {**kwargs, "store": str(tmp_path / "x.db")}
    with pytest.raises(error):
        make_engine(**kwargs)


def test_at_of_a_missing_version(make_engine, store):
    engine = make_engine(store=store, run_id="r")
    with pytest.raises(StoreError, match=r"run 'r' has no version 5 \(stored: 0\.\.0\)"):
        engine.at(5)
    with pytest.raises(TypeError):
        engine.at("0")


# -- workflows: the stored position (spec/21 §8) ----------------------------------------------


_REFERENCE = {}


def _run_child(backend, directory, mode, k, factory):
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "theus_conformance.tests._durable_child",
            backend,
            str(directory),
            mode,
            str(k),
            factory,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if mode in ("none", "answer"):
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)
    assert proc.returncode == -9, proc.stderr
    return None


_SQLITE = "theus_conformance.stores:sqlite_store"
_POSTGRES = "theus_conformance.stores:postgres_store"
# every commit k on SQLite; on PostgreSQL the first, one inside the while loop, both parallel
# branches and the last
_MATRIX = [(_SQLITE, k) for k in range(1, 9)] + [(_POSTGRES, k) for k in (1, 3, 6, 7, 8)]


@pytest.mark.parametrize("mode", ["before", "after"])
@pytest.mark.parametrize(
    ("factory", "k"),
    _MATRIX,
    ids=[f"{f.rpartition('_')[0].rpartition(':')[2]}-{k}" for f, k in _MATRIX],
)
def test_workflow_killed_at_any_commit_resumes_exactly(backend, tmp_path, mode, factory, k):
    from theus_conformance.stores import PostgresUnavailable, resolve_factory
    from theus_conformance.tests._durable_child import STEP_COMMITS

    crashed = tmp_path / "crashed"
    crashed.mkdir()
    try:
        under_test = resolve_factory(factory)(crashed)
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    key = (backend, factory)
    reference = _REFERENCE.get(key)
    if reference is None:  # the uninterrupted run, once per backend and store
        (tmp_path / "clean").mkdir()
        reference = _REFERENCE[key] = _run_child(backend, tmp_path / "clean", "none", 0, factory)
    assert reference["version"] == STEP_COMMITS
    assert _run_child(backend, crashed, mode, k, factory) is None
    store = under_test.open()
    try:
        assert store.head("wf") == (k - 1 if mode == "before" else k)
    finally:
        store.close()
    resumed = _run_child(backend, crashed, "none", 0, factory)
    assert resumed["state"] == reference["state"]
    assert resumed["version"] == STEP_COMMITS
    assert resumed["run_id"] == "flux-run"
    counts = {key: v for key, v in resumed["state"]["domain"].items() if key.startswith("cnt_")}
    assert counts == {
        "cnt_a": 1,
        "cnt_loop_body": 3,
        "cnt_b": 1,
        "cnt_never": 0,
        "cnt_left": 1,
        "cnt_right": 1,
        "cnt_c": 1,
    }
    done_before = k - 1 if mode == "before" else k
    assert len(resumed["executed"]) == STEP_COMMITS - done_before


_PAUSE_MATRIX = [_SQLITE, _POSTGRES]


@pytest.mark.parametrize("mode", ["before", "after"])
@pytest.mark.parametrize("factory", _PAUSE_MATRIX, ids=["sqlite", "postgres"])
def test_workflow_killed_at_a_pause_resumes_exactly(backend, tmp_path, mode, factory):
    """spec/21 §9: a kill inside the transaction that persists a pause leaves no request (the
    resumed run reaches the pause again); a kill after it leaves the run paused."""
    from theus_conformance.stores import PostgresUnavailable, resolve_factory

    crashed = tmp_path / "crashed"
    crashed.mkdir()
    try:
        under_test = resolve_factory(factory)(crashed)
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    (tmp_path / "clean").mkdir()
    paused = _run_child(backend, tmp_path / "clean", "none", "pause", factory)
    assert paused["status"] == "paused" and paused["executed"] == ["a"]
    reference = _run_child(backend, tmp_path / "clean", "answer", "pause", factory)
    assert reference["status"] == "completed" and reference["executed"] == ["b"]

    assert _run_child(backend, crashed, mode, "pause", factory) is None
    store = under_test.open()
    try:
        assert store.head("wf") == 1  # a's commit
        assert len(store.pending("wf")) == (0 if mode == "before" else 1)
    finally:
        store.close()
    again = _run_child(backend, crashed, "none", "pause", factory)
    assert again["status"] == "paused"
    assert again["executed"] == []  # a is not run again (nor is anything past the pause)
    store = under_test.open()
    try:
        assert len(store.pending("wf")) == 1
    finally:
        store.close()
    done = _run_child(backend, crashed, "answer", "pause", factory)
    assert done["state"] == reference["state"] and done["version"] == reference["version"]
    assert done["state"]["domain"]["cnt_a"] == 1 and done["state"]["domain"]["cnt_b"] == 1
    assert done["state"]["domain"]["answer"] == "yes"


def test_resume_workflow_needs_a_stored_position(make_engine, store):
    engine = make_engine(store=store, run_id="r")
    with pytest.raises(StoreError, match=r"run 'r' has no stored workflow position"):
        engine.resume_workflow("steps: []\n")
