"""The store conformance tests (spec/21 §4): round trips, history order, conflicts, two
writers on one run, fork isolation, tampered rows, pruning, crash atomicity under SIGKILL.

Every test takes the ``store_under_test`` fixture (the conformance plugin builds it from
``--theus-store``) and the engine tests use the default backend.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from . import StoreUnderTest


def _engine(store: Any, run_id: str, context: dict[str, Any] | None = None) -> Any:
    from theus import TheusEngine

    return TheusEngine(context, store=store, run_id=run_id)


def _record(
    version: int, delta: str = '{"ops":[],"signals":[]}', process: str | None = None
) -> Any:
    from theus.stores import VersionRecord

    return VersionRecord(version, 1000.0 + version, process, (f"domain.k{version}",), delta)


def _new_run(
    store: Any, run_id: str = "r", start: int = 0, snapshot: str = '{"domain":{}}'
) -> None:
    from theus.stores import RunRecord

    store.create_run(RunRecord(run_id, start, start, 1.0), snapshot)


# -- raw protocol ---------------------------------------------------------------------------


def test_round_trip_of_rows(store_under_test: StoreUnderTest) -> None:
    from theus.stores import OutboxRow

    store = store_under_test.open()
    try:
        _new_run(store, "r", 3, '{"domain":{"a":1}}')
        deltas = [
            '{"ops":[["set",["domain","a"],2]],"signals":[]}',
            '{"ops":[["set",["domain","é"],"ü\\u0000"]],"signals":[]}',
            '{"ops":[["delete",["domain","a"],null]],"signals":[]}',
        ]
        for i, delta in enumerate(deltas):
            outbox = [OutboxRow("r", 4 + i, j, f"t{j}", f'{{"j":{j}}}') for j in range(i)]
            store.append(
                "r",
                _record(4 + i, delta, "p" if i else None),
                outbox=outbox,
                position='{"p":1}' if i == 1 else None,
            )
        run = store.get_run("r")
        assert (run.run_id, run.start, run.head) == ("r", 3, 6)
        assert store.head("r") == 6
        chain = store.chain("r", 6)
        assert (chain.snapshot_version, chain.snapshot) == (3, '{"domain":{"a":1}}')
        assert chain.deltas == tuple((4 + i, d) for i, d in enumerate(deltas))
        assert store.chain("r", 3).deltas == ()
        rows = store.versions("r")
        assert [r.version for r in rows] == [6, 5, 4]
        assert [r.process for r in rows] == ["p", "p", None]
        assert rows[1].paths == ("domain.k5",) and rows[1].delta == deltas[1]
        assert [(m.version, m.index, m.topic) for m in store.outbox("r")] == [
            (5, 0, "t0"),
            (6, 0, "t0"),
            (6, 1, "t1"),
        ]
        assert store.position("r") == (5, '{"p":1}')
        assert store.get_run("missing") is None
    finally:
        store.close()


def test_delivery_mark_round_trip(store_under_test: StoreUnderTest) -> None:
    store = store_under_test.open()
    try:
        _new_run(store, "r")
        _new_run(store, "s")
        assert store.delivered("r") is None
        store.set_delivered("r", 4, 1)
        store.set_delivered("s", 2, 0)
        store.set_delivered("r", 5, 0)  # replaces the run's previous mark
        assert store.delivered("r") == (5, 0)
        assert store.delivered("s") == (2, 0)
    finally:
        store.close()
    again = store_under_test.open()
    try:
        assert again.delivered("r") == (5, 0)
    finally:
        again.close()


def test_history_order_limit_before(store_under_test: StoreUnderTest) -> None:
    store = store_under_test.open()
    try:
        _new_run(store)
        for v in range(1, 21):
            store.append("r", _record(v))
        assert [r.version for r in store.versions("r", limit=3)] == [20, 19, 18]
        assert [r.version for r in store.versions("r", before=5)] == [4, 3, 2, 1]
        assert [r.version for r in store.versions("r", limit=2, before=10)] == [9, 8]
        assert store.versions("r", limit=0) == []
        assert store.versions("r", before=1) == []
    finally:
        store.close()


def test_append_out_of_order_and_duplicate_runs_are_refused(
    store_under_test: StoreUnderTest,
) -> None:
    from theus.errors import StoreConflictError, StoreError

    store = store_under_test.open()
    try:
        _new_run(store)
        with pytest.raises(StoreConflictError):
            _new_run(store)
        store.append("r", _record(1))
        for bad in (1, 3, 0):
            with pytest.raises(StoreConflictError):
                store.append("r", _record(bad))
        assert store.head("r") == 1 and len(store.versions("r")) == 1
        with pytest.raises(StoreError):
            store.append("nope", _record(1))
        with pytest.raises(StoreError):
            store.chain("r", 2)
        with pytest.raises(StoreError):
            store.head("nope")
    finally:
        store.close()


def test_two_writers_on_one_version_exactly_one_wins(store_under_test: StoreUnderTest) -> None:
    from theus.errors import StoreConflictError

    a, b = store_under_test.open(), store_under_test.open()
    try:
        _new_run(a)
        outcomes: list[str | None] = []
        for store, delta in (
            (a, '{"ops":[],"signals":[["a",1]]}'),
            (b, '{"ops":[],"signals":[["b",1]]}'),
        ):
            try:
                store.append("r", _record(1, delta))
                outcomes.append(delta)
            except StoreConflictError:
                outcomes.append(None)
        assert outcomes.count(None) == 1
        winner = next(o for o in outcomes if o is not None)
        assert b.chain("r", 1).deltas == ((1, winner),)
    finally:
        a.close()
        b.close()


def test_pending_requests_and_position_only_rows(store_under_test: StoreUnderTest) -> None:
    from theus.errors import StoreConflictError
    from theus.stores import PendingRow

    store = store_under_test.open()
    try:
        _new_run(store)
        _new_run(store, "other")
        store.append("r", _record(1), position='{"p":1}')
        # a position alone, at the head, with a new pending request: one transaction
        asked = PendingRow("r", "tok-1", '{"q":"é?"}', 50.0, 80.5)
        store.put_position("r", 1, '{"p":2}', pending=asked)
        assert store.position("r") == (1, '{"p":2}')  # the newest position at the head
        assert store.pending("r") == [asked] and store.pending() == [asked]
        assert store.pending("other") == []
        assert store.get_pending("r", "tok-1") == asked
        assert (
            store.get_pending("r", "nope") is None and store.get_pending("other", "tok-1") is None
        )
        with pytest.raises(StoreConflictError):  # not at the head: nothing stored
            store.put_position("r", 0, '{"p":9}', pending=PendingRow("r", "x", "{}", 1.0))
        assert store.position("r") == (1, '{"p":2}') and store.get_pending("r", "x") is None
        # the answer: a commit that marks the request answered in the same transaction
        store.append("r", _record(2), position='{"p":3}', answered="tok-1")
        assert store.pending("r") == []
        answered = store.get_pending("r", "tok-1")
        assert answered is not None and answered.answered == 2 and answered.deadline == 80.5
        # answering it again stores nothing, commit or position
        with pytest.raises(StoreConflictError):
            store.append("r", _record(3), answered="tok-1")
        assert store.head("r") == 2
        with pytest.raises(StoreConflictError):
            store.put_position("r", 2, '{"p":4}', answered="tok-1")
        assert store.position("r") == (2, '{"p":3}')
        # a request stored with a commit; answered by a position-only row
        store.append("r", _record(3), pending=PendingRow("r", "tok-2", "{}", 60.0))
        store.put_position("r", 3, '{"p":5}', answered="tok-2")
        assert store.get_pending("r", "tok-2").answered == 3 and store.pending() == []
    finally:
        store.close()


def test_two_resumers_answering_one_request_exactly_one_wins(
    store_under_test: StoreUnderTest,
) -> None:
    from theus.errors import StoreConflictError
    from theus.stores import PendingRow

    a, b = store_under_test.open(), store_under_test.open()
    try:
        _new_run(a)
        a.put_position("r", 0, '{"p":0}', pending=PendingRow("r", "t", "{}", 1.0))
        outcomes = []
        for store, version_row in ((a, True), (b, False)):
            try:
                if version_row:
                    store.append("r", _record(1), answered="t")
                else:
                    store.put_position("r", 0, '{"p":1}', answered="t")
                outcomes.append("won")
            except StoreConflictError:
                outcomes.append("lost")
        assert outcomes == ["won", "lost"]
        assert b.get_pending("r", "t").answered == 1 and b.head("r") == 1
    finally:
        a.close()
        b.close()


def test_closed_store_raises(store_under_test: StoreUnderTest) -> None:
    from theus.errors import StoreError

    store = store_under_test.open()
    _new_run(store)
    store.close()
    store.close()
    with pytest.raises(StoreError):
        store.get_run("r")


# -- through engines ------------------------------------------------------------------------


def test_engine_reopen_round_trip(store_under_test: StoreUnderTest) -> None:
    import datetime
    import decimal
    import uuid

    store = store_under_test.open()
    values = [
        0,
        -(2**80),
        1.5,
        float("inf"),
        "ü",
        b"\x00\xff",
        (1, (2, "x")),
        frozenset({1, 2}),
        None,
        True,
        datetime.datetime(2026, 12, 2, 3, 4, 5, 6),
        datetime.date(2000, 1, 1),
        datetime.time(1, 2),
        datetime.timedelta(days=-1, seconds=5),
        decimal.Decimal("1.10"),
        uuid.UUID(int=7),
        {"$": {"v": 1}},
        [{"a": [1, [2]]}],
    ]
    try:
        engine = _engine(store, "r", {"domain": {"v": None}, "extra": {"x": 1}})
        for value in values:
            with engine.transaction() as tx:
                tx.update(data={"domain.v": value, "extra.x": engine.state.version})
        expected = engine.state.to_dict()
        again = _engine(store, "r")
        assert again.state.version == engine.state.version == len(values)
        assert again.state.to_dict() == expected
        for i, value in enumerate(values):
            got = again.at(i + 1).get("domain.v")
            assert type(got) is type(value) or isinstance(value, (dict, list))
        engine.close()
        again.close()
    finally:
        store.close()


def test_two_engines_resuming_one_run_exactly_one_wins(store_under_test: StoreUnderTest) -> None:
    from theus.errors import StoreConflictError

    sa, sb = store_under_test.open(), store_under_test.open()
    try:
        first = _engine(sa, "r", {"domain": {"n": 0}})
        with first.transaction() as tx:
            tx.update(data={"domain.n": 1})
        first.close()
        a, b = _engine(sa, "r"), _engine(sb, "r")
        wins = []
        for engine, value in ((a, "a"), (b, "b")):
            try:
                with engine.transaction() as tx:
                    tx.update(data={"domain.n": value})
                wins.append(value)
            except StoreConflictError:
                assert engine.state.version == 1  # the refused commit did not land
        assert len(wins) == 1
        assert _engine(sa, "r").state.get("domain.n") == wins[0]
    finally:
        sa.close()
        sb.close()


def test_fork_isolation(store_under_test: StoreUnderTest) -> None:
    store = store_under_test.open()
    try:
        engine = _engine(store, "src", {"domain": {"n": 0}})
        for i in range(1, 6):
            with engine.transaction() as tx:
                tx.update(data={"domain.n": i})
        child = engine.fork(2, run_id="child")
        assert (child.state.version, child.state.get("domain.n")) == (2, 2)
        with child.transaction() as tx:
            tx.update(data={"domain.n": 100})
        run = store.get_run("child")
        assert (run.parent_run, run.parent_version, run.head) == ("src", 2, 3)
        assert store.head("src") == 5 and engine.at(3).get("domain.n") == 3
        assert _engine(store, "child").state.get("domain.n") == 100
        assert _engine(store, "src").state.get("domain.n") == 5
    finally:
        store.close()


@pytest.mark.parametrize(
    "text",
    [
        '{"$":"os.system","v":"echo hacked"}',
        "not json",
        '{"ops":[["set",["domain","n"],NaN]]}',
        "\x80\x04\x95cposix\nsystem\n",
        '{"ops":[["set",["nowhere","x","y"],1]],"signals":[]}',
        '{"ops":[["explode",["domain","n"],1]],"signals":[]}',
        '{"$":"bytes","v":"!!"}',
        '{"ops":[["set",["domain","n"],{"$":"tuple","v":1}]],"signals":[]}',
    ],
)
def test_tampered_row_is_refused(store_under_test: StoreUnderTest, text: str) -> None:
    from theus.errors import StoreCorruptError

    if store_under_test.tamper is None:
        pytest.skip("the store under test gives no tamper hook")
    store = store_under_test.open()
    try:
        engine = _engine(store, "r", {"domain": {"n": 0, "pad": "x" * 500}})
        for i in range(1, 4):
            with engine.transaction() as tx:
                tx.update(data={"domain.n": i})
        engine.close()
        store_under_test.tamper("r", 2, text)
        with pytest.raises(StoreCorruptError, match=r"run 'r' (version|snapshot) 2: "):
            _engine(store, "r")
    finally:
        store.close()


def test_prune_keeps_the_last_versions_readable(store_under_test: StoreUnderTest) -> None:
    from theus.errors import StoreError

    store = store_under_test.open()
    try:
        engine = _engine(store, "r", {"domain": {"n": 0, "big": "x" * 5000}})
        states = {}
        for i in range(1, 31):
            with engine.transaction() as tx:
                tx.update(data={"domain.n": i})
            states[i] = engine.state.to_dict()
        deleted = store.prune("r", keep_last=5)
        assert deleted >= 25
        assert store.get_run("r").start == 26
        for v in range(26, 31):
            assert engine.at(v).to_dict() == states[v]
        with pytest.raises(StoreError):
            engine.at(10)
        assert [h.version for h in engine.history()] == [30, 29, 28, 27, 26]
        with engine.transaction() as tx:
            tx.update(data={"domain.n": 31})
        assert _engine(store, "r").state.get("domain.n") == 31
        store.vacuum()
        assert store.prune("r", keep_last=100) == 0
        for bad in (0, -1):
            with pytest.raises(ValueError):
                store.prune("r", keep_last=bad)
        with pytest.raises(TypeError):
            store.prune("r", keep_last="3")
    finally:
        store.close()


# -- crash atomicity ------------------------------------------------------------------------


def _child(factory: str, directory: Any, run_id: str, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "theus_conformance.stores._child",
            factory,
            str(directory),
            run_id,
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def _check_consistent(store: Any, run_id: str) -> int:
    engine = _engine(store, run_id)
    head = engine.state.version
    n = engine.state.get("domain.n")
    items = engine.state.get("domain.items")
    assert n == head and len(items) == head
    assert [item["i"] for item in items] == list(range(1, head + 1))
    assert [(m.version, m.index) for m in store.outbox(run_id)] == [
        (v, 0) for v in range(1, head + 1)
    ]
    engine.close()
    return int(head)


@pytest.mark.parametrize("after", [1, 7, 25])
def test_sigkill_while_committing_loses_nothing_that_returned(
    store_under_test: StoreUnderTest, store_factory: str, tmp_path: Any, after: int
) -> None:
    seen = 0
    child = _child(store_factory, tmp_path, "crash")
    try:
        assert child.stdout is not None
        for line in child.stdout:
            seen = int(line)
            if seen >= after:
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    store = store_under_test.open()
    try:
        head = _check_consistent(store, "crash")
        assert head >= seen >= after
        again = _child(store_factory, tmp_path, "crash")  # a fresh process resumes the run
        assert again.stdout is not None
        first = int(again.stdout.readline())
        again.send_signal(signal.SIGKILL)
        again.wait()
        assert first == head + 1
        _check_consistent(store, "crash")
    finally:
        store.close()


@pytest.mark.parametrize("version", [1, 2, 9])
def test_sigkill_inside_the_store_transaction_leaves_no_half_commit(
    store_under_test: StoreUnderTest, store_factory: str, tmp_path: Any, version: int
) -> None:
    if store_under_test.kill_inside is None:
        pytest.skip("the store under test gives no kill_inside hook")
    child = _child(store_factory, tmp_path, "inside", str(version))
    out, _ = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL
    assert [int(x) for x in out.split()] == list(range(1, version))
    store = store_under_test.open()
    try:
        assert _check_consistent(store, "inside") == version - 1
        newest = store.versions("inside", limit=1)
        assert [r.version for r in newest] == ([version - 1] if version > 1 else [])
    finally:
        store.close()
