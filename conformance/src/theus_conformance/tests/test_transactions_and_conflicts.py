"""spec/05 — transactions, read/write sets, optimistic commit, retries, host transactions, CAS
(REQUIREMENTS §4.4).

Conflicts need a commit landing while a transaction is open; the tests land it from a second
thread (another execution context, so not a nested call) while the first waits, which makes
every interleaving deterministic. Those tests need the "threads" capability.
"""

from __future__ import annotations

import threading

import pytest

from theus import ConflictError, StateUpdate, process
from theus_conformance.support import DEADLOCK_TIMEOUT, drain, in_thread


def _commit_from_other_thread(engine, **update):
    return in_thread(lambda: engine.compare_and_swap(engine.state.version, **update))


# ---------------------------------------------------------------------------------------------
# one call, one transaction


def test_all_writes_of_a_call_commit_as_one_version(make_engine):
    engine = make_engine({"domain": {"a": 0, "b": 0}, "global": {"c": 0}})

    @process(outputs=["domain.a", "domain.b", "global.c"])
    def three(ctx):
        ctx.domain.a = 1
        ctx.domain.b = 2
        ctx.global_.c = 3

    engine.execute(three)
    assert engine.state.version == 1
    assert engine.state.to_dict() == {"domain": {"a": 1, "b": 2}, "global": {"c": 3}}


def test_transaction_that_reads_and_writes_nothing_commits_no_version(make_engine):
    engine = make_engine({"domain": {"a": 0}})
    before = engine.state

    @process(inputs=["domain.a"])
    def idle(ctx):
        ctx.local.x = 1
        return "idle"

    def untracked(ctx):
        return None

    assert engine.execute(untracked) is None
    assert engine.state is before
    with engine.transaction() as tx:
        pass
    assert engine.state is before
    assert tx.state is before
    assert engine.execute(idle) == "idle"
    assert engine.state.version == 0


# ---------------------------------------------------------------------------------------------
# conflicts and retries (threads)


@pytest.mark.requires("threads")
def test_conflicting_commit_causes_rerun_without_lost_update(make_engine):
    engine = make_engine({"domain": {"counter": 0}})
    attempts = []

    @process(inputs=["domain.counter"], outputs=["domain.counter"])
    def increment(ctx):
        attempts.append(ctx.version)
        value = ctx.domain.counter
        if len(attempts) == 1:
            _commit_from_other_thread(engine, data={"domain.counter": 100})
        ctx.domain.counter = value + 1

    engine.execute(increment)
    assert attempts == [0, 1]
    assert engine.state.domain.counter == 101
    assert engine.state.version == 2


@pytest.mark.requires("threads")
def test_disjoint_paths_merge(make_engine):
    engine = make_engine({"domain": {"a": 0, "b": 0, "gone": 1}})
    attempts = []

    @process(inputs=["domain.a"], outputs=["domain.a", "domain.gone"])
    def write_a(ctx):
        attempts.append(ctx.version)
        ctx.domain.a = ctx.domain.a + 1
        del ctx.domain.gone
        if len(attempts) == 1:
            _commit_from_other_thread(engine, data={"domain.b": 7})

    engine.execute(write_a)
    assert attempts == [0]
    assert engine.state.version == 2
    assert engine.state.domain == {"a": 1, "b": 7}


@pytest.mark.requires("threads")
def test_read_set_conflicts(make_engine):
    engine = make_engine({"domain": {"a": 0, "b": 1}})
    attempts = []

    @process(inputs=["domain.b"], outputs=["domain.a"])
    def copy_b(ctx):
        attempts.append(ctx.version)
        value = ctx.domain.b
        if len(attempts) == 1:
            _commit_from_other_thread(engine, data={"domain.b": 2})
        ctx.domain.a = value

    engine.execute(copy_b)
    assert attempts == [0, 1]
    assert engine.state.domain == {"a": 2, "b": 2}


@pytest.mark.requires("threads")
def test_read_of_a_missing_key_is_recorded(make_engine):
    engine = make_engine({"domain": {"a": 0}})
    attempts = []

    @process(inputs=["domain.flag"], outputs=["domain.a"])
    def check_flag(ctx):
        attempts.append(ctx.version)
        present = "yes" if ctx.domain.get("flag") is not None else "no"
        if len(attempts) == 1:
            _commit_from_other_thread(engine, data={"domain.flag": True})
        ctx.domain.a = present

    engine.execute(check_flag)
    assert attempts == [0, 1]
    assert engine.state.domain.a == "yes"


@pytest.mark.requires("threads")
def test_navigation_records_no_read(make_engine):
    engine = make_engine({"domain": {"users": {"alice": {"name": "A"}}, "out": None}})
    attempts = []

    @process(inputs=["domain.users.alice.name"], outputs=["domain.out"])
    def read_name(ctx):
        attempts.append(ctx.version)
        name = ctx.domain.users.alice.name
        if len(attempts) == 1:
            _commit_from_other_thread(engine, data={"domain.users.bob": {"name": "B"}})
        ctx.domain.out = name

    engine.execute(read_name)
    assert attempts == [0]
    assert engine.state.domain.out == "A"
    assert engine.state.domain.users.bob.name == "B"


@pytest.mark.requires("threads")
def test_whole_container_read_records_the_container(make_engine):
    engine = make_engine({"domain": {"users": {"alice": {"name": "A"}}, "out": None}})
    attempts = []

    @process(inputs=["domain.users"], outputs=["domain.out"])
    def count_users(ctx):
        attempts.append(ctx.version)
        n = len(ctx.domain.users)
        if len(attempts) == 1:
            _commit_from_other_thread(engine, data={"domain.users.bob": {"name": "B"}})
        ctx.domain.out = n

    engine.execute(count_users)
    assert attempts == [0, 1]
    assert engine.state.domain.out == 2


@pytest.mark.requires("threads")
def test_signal_writes_never_conflict(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    rx = engine.signals.subscribe()
    attempts = []

    @process(outputs=["domain.sig_ping"])
    def ping(ctx):
        attempts.append(ctx.version)
        ctx.domain.sig_ping = "mine"
        if len(attempts) == 1:
            _commit_from_other_thread(
                engine, signal={"domain.sig_ping": "theirs"}, data={"domain.x": 1}
            )

    engine.execute(ping)
    assert attempts == [0]
    messages = [(m.name, m.value, m.version) for m in drain(rx)]
    assert messages == [("domain.sig_ping", "theirs", 1), ("domain.sig_ping", "mine", 2)]


@pytest.mark.requires("threads")
def test_strict_cas_makes_any_intervening_commit_a_conflict(make_engine):
    engine = make_engine({"domain": {"a": 0, "b": 0}}, strict_cas=True)
    attempts = []

    @process(inputs=["domain.a"], outputs=["domain.a"])
    def write_a(ctx):
        attempts.append(ctx.version)
        if len(attempts) == 1:
            _commit_from_other_thread(engine, data={"domain.b": 1})
        ctx.domain.a = ctx.domain.a + 1

    engine.execute(write_a)
    assert attempts == [0, 1]
    assert engine.state.domain == {"a": 1, "b": 1}


@pytest.mark.requires("threads")
def test_no_retries_raises_conflict_error(make_engine):
    engine = make_engine({"domain": {"hot": 0, "mine": 0}})
    rx = engine.signals.subscribe()
    attempts = []

    @process(inputs=["domain.hot"], outputs=["domain.mine", "domain.sig_done"], retries=0)
    def always_loses(ctx):
        attempts.append(ctx.version)
        seen = ctx.domain.hot
        _commit_from_other_thread(engine, data={"domain.hot": seen + 1})
        ctx.domain.mine = seen
        ctx.domain.sig_done = True

    with pytest.raises(ConflictError) as info:
        engine.execute(always_loses)
    message = str(info.value)
    assert "always_loses" in message
    assert "domain.hot" in message
    assert "1" in message  # the attempts
    assert attempts == [0]
    assert engine.state.domain.mine == 0  # nothing of the process committed
    assert engine.state.version == 1  # only the interfering commit
    assert all(m.name != "domain.sig_done" for m in drain(rx))


@pytest.mark.requires("threads")
@pytest.mark.parametrize("retries", [1, 3])
def test_last_rerun_of_a_sync_process_is_exclusive(make_engine, retries):
    """spec/05: the last re-run holds the commit order from begin to commit; other threads'
    commits wait for it, and a sync process with retries >= 1 never raises ConflictError."""
    engine = make_engine({"domain": {"hot": 0, "mine": None}})
    attempts = []
    blocked = []

    def other_commit():
        with engine.transaction() as tx:
            tx.update(data={"domain.hot": engine.state.domain.hot + 100})

    @process(inputs=["domain.hot"], outputs=["domain.mine"], retries=retries)
    def contended(ctx):
        attempts.append(ctx.version)
        seen = ctx.domain.hot
        thread = threading.Thread(target=other_commit, daemon=True)
        thread.start()
        thread.join(0.5 if len(attempts) == retries + 1 else DEADLOCK_TIMEOUT)
        if thread.is_alive():
            blocked.append(thread)  # waits for this exclusive attempt to commit
        ctx.domain.mine = seen

    engine.execute(contended)
    assert len(attempts) == retries + 1
    assert len(blocked) == 1, "in the last re-run, another thread's commit must wait"
    blocked[0].join(DEADLOCK_TIMEOUT)
    assert not blocked[0].is_alive()
    state = engine.state
    assert state.version == retries + 2
    assert state.domain.mine == retries * 100  # the exclusive attempt saw every earlier commit
    assert state.domain.hot == (retries + 1) * 100


@pytest.mark.requires("threads")
def test_merge_carries_a_delete(make_engine):
    engine = make_engine({"domain": {"a": {"deep": 1}, "b": 0}})

    @process(outputs=["domain.a"])
    def drop_a(ctx):
        del ctx.domain.a.deep
        if ctx.version == 0:
            _commit_from_other_thread(engine, data={"domain.b": 1})

    engine.execute(drop_a)
    assert engine.state.domain == {"a": {}, "b": 1}


# ---------------------------------------------------------------------------------------------
# host transactions


def test_host_transaction_update_forms(make_engine):
    heavy = object()
    engine = make_engine({"domain": {"old": 1, "keep": 2, "log_x": []}})
    rx = engine.signals.subscribe()
    with engine.transaction() as tx:
        assert tx.version == 0
        tx.update(data={"domain.x": 1, "domain.y": {"n": [1]}})
        tx.update(
            data={"domain.x": 2},
            heavy={"domain.heavy_m": heavy},
            signal={"domain.sig_go": True},
            delete=["domain.old"],
        )
        tx.append("domain.log_x", "entry")
        assert tx.get("domain.x") == 2  # reads the draft
        assert tx.get("domain.old", "gone") == "gone"
    state = tx.state
    assert state is engine.state
    assert state.version == 1
    assert state.to_dict() == {
        "domain": {"x": 2, "y": {"n": [1]}, "keep": 2, "log_x": ["entry"], "heavy_m": heavy},
        "global": {},
    }
    assert state.domain.heavy_m is heavy
    assert [(m.name, m.value, m.version) for m in drain(rx)] == [("domain.sig_go", True, 1)]


def test_host_transaction_value_replaces_without_merging(make_engine):
    engine = make_engine({"domain": {"cfg": {"a": 1, "b": 2}}})
    with engine.transaction() as tx:
        tx.update(data={"domain.cfg": {"c": 3}})
    assert engine.state.domain.cfg == {"c": 3}


def test_host_transaction_exception_commits_nothing(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    rx = engine.signals.subscribe()
    before = engine.state

    class Boom(Exception):
        pass

    error = Boom("inside")
    with pytest.raises(Boom) as info:
        with engine.transaction() as tx:
            tx.update(data={"domain.x": 1}, signal={"domain.sig_s": 1})
            raise error
    assert info.value is error
    assert engine.state is before
    assert drain(rx) == []


@pytest.mark.requires("threads")
def test_host_transaction_conflict_raises_without_rerun(make_engine):
    engine = make_engine({"domain": {"x": 0}})
    runs = 0
    with pytest.raises(ConflictError):
        with engine.transaction() as tx:
            runs += 1
            tx.update(data={"domain.x": tx.get("domain.x") + 1})
            _commit_from_other_thread(engine, data={"domain.x": 10})
    assert runs == 1
    assert engine.state.domain.x == 10 and engine.state.version == 1


@pytest.mark.requires("threads")
def test_host_transaction_recorded_read_conflicts(make_engine):
    engine = make_engine({"domain": {"x": 0, "y": 0}})
    with pytest.raises(ConflictError):
        with engine.transaction() as tx:
            tx.update(data={"domain.y": tx.get("domain.x")})
            _commit_from_other_thread(engine, data={"domain.x": 10})
    assert engine.state.domain.y == 0


# ---------------------------------------------------------------------------------------------
# compare and swap


def test_compare_and_swap(make_engine):
    engine = make_engine({"domain": {"x": 0, "old": 1}})
    heavy = object()
    rx = engine.signals.subscribe()
    new = engine.compare_and_swap(
        0,
        data={"domain.x": 1},
        heavy={"domain.heavy_h": heavy},
        signal={"domain.sig_cas": "ok"},
        delete=["domain.old"],
    )
    assert new is engine.state
    assert new.version == 1
    assert new.domain.x == 1 and "old" not in new.domain and new.domain.heavy_h is heavy
    assert dict(new.signals) == {"domain.sig_cas": "ok"}
    assert [(m.name, m.version) for m in drain(rx)] == [("domain.sig_cas", 1)]

    before = engine.state
    with pytest.raises(ConflictError):
        engine.compare_and_swap(0, data={"domain.x": 99}, signal={"domain.sig_cas": "lost"})
    with pytest.raises(ConflictError):
        engine.compare_and_swap(5, data={"domain.x": 99})
    assert engine.state is before
    assert drain(rx) == []


def test_compare_and_swap_chain(make_engine):
    engine = make_engine({"domain": {"n": 0}})
    for _ in range(5):
        state = engine.state
        engine.compare_and_swap(state.version, data={"domain.n": state.domain.n + 1})
    assert engine.state.domain.n == 5 and engine.state.version == 5


# ---------------------------------------------------------------------------------------------
# StateUpdate as a value


def test_state_update_is_immutable_value():
    update = StateUpdate(data={"domain.x": 1}, delete=["domain.y"])
    with pytest.raises((AttributeError, TypeError)):
        update.data = {}
    assert update == StateUpdate(data={"domain.x": 1}, delete=["domain.y"])


@pytest.mark.requires("threads")
def test_read_only_transaction_checks_no_conflict(make_engine):
    """spec/14: a transaction that wrote nothing commits no version and checks no conflict."""
    engine = make_engine({"domain": {"a": 1}})
    attempts = []

    @process(inputs=["domain.a"])
    def observe(ctx):
        attempts.append(ctx.version)
        seen = ctx.domain.a
        _commit_from_other_thread(engine, data={"domain.a": seen + 1})
        return seen

    assert engine.execute(observe) == 1
    assert attempts == [0]
    assert engine.state.version == 1 and engine.state.domain.a == 2


@pytest.mark.requires("threads")
def test_history_of_1024_commits_is_kept(make_engine):
    """spec/05: a backend MUST keep the last 1024 commits, so a transaction whose base is 1024
    commits old still merges a disjoint change instead of conflicting."""
    engine = make_engine({"domain": {"mine": 0, "theirs": 0}})

    def land_1024():
        for i in range(1024):
            engine.compare_and_swap(engine.state.version, data={"domain.theirs": i + 1})

    with engine.transaction() as tx:
        tx.update(data={"domain.mine": tx.get("domain.mine") + 1})
        in_thread(land_1024, timeout=120)
    assert engine.state.version == 1025
    assert engine.state.domain == {"mine": 1, "theirs": 1024}


def test_a_list_segment_must_be_an_index(make_engine):
    """spec/01: a path segment that addresses a list item must be an index within it."""
    engine = make_engine({"domain": {"items": [1, 2]}})
    before = engine.state
    for bad in ("domain.items.x", "domain.items.5", "domain.items.01"):
        with pytest.raises(IndexError):
            with engine.transaction() as tx:
                tx.update(data={bad: 0})
        assert engine.state is before
        assert engine.state.get(bad, "default") == "default"
