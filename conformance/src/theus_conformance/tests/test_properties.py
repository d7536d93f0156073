"""Property-based tests: random operation sequences against a plain-dict model of the spec
(apply the writes on success, nothing on failure). Invariants: atomicity, immutability of old
snapshots, version increments, no lost updates under threads."""

from __future__ import annotations

import copy
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from theus import TheusEngine, process
from theus_conformance.support import drain
from theus_conformance.tests import _ops

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

INITIAL = {"domain": {"a": 1, _ops.COUNTER: 0}, "global": {}}


def _check_step(engine, model, version, op, snapshots):
    before = engine.state
    expected, new_model, new_version = _ops.model_apply(model, version, op)
    actual = _ops.run(engine, op)
    assert _ops.model_outcome_matches(expected, actual), (op, expected, actual)
    state = engine.state
    if not expected.ok or new_version == version:
        assert state is before, f"{op!r} changed engine.state although it committed nothing"
    assert state.version == new_version, op
    assert state.to_dict() == new_model, op
    if state is not before:
        snapshots.append((state, copy.deepcopy(new_model)))
    return new_model, new_version


@SETTINGS
@given(ops=st.lists(_ops.operations, min_size=1, max_size=12))
def test_operation_sequences_follow_the_model(backend, ops):
    with TheusEngine(context=INITIAL, backend=backend) as engine:
        model, version = copy.deepcopy(INITIAL), 0
        snapshots = [(engine.state, copy.deepcopy(INITIAL))]
        for op in ops:
            model, version = _check_step(engine, model, version, op, snapshots)
        for snapshot, expected in snapshots:  # old snapshots never change
            assert snapshot.to_dict() == expected
        assert [s.version for s, _ in snapshots] == list(range(len(snapshots)))


class EngineVersusModel(RuleBasedStateMachine):
    """The same model, driven rule by rule."""

    backend = "reference"  # replaced per run

    def __init__(self):
        super().__init__()
        self.engine = None

    @initialize()
    def start(self):
        self.engine = TheusEngine(context=INITIAL, backend=self.backend)
        self.model, self.version = copy.deepcopy(INITIAL), 0
        self.snapshots = [(self.engine.state, copy.deepcopy(INITIAL))]

    def _do(self, op):
        self.model, self.version = _check_step(
            self.engine, self.model, self.version, op, self.snapshots
        )

    @rule(op=_ops.host_ops)
    def host_transaction(self, op):
        self._do(op)

    @rule(op=_ops.inplace_ops)
    def process_in_place(self, op):
        self._do(op)

    @rule(op=_ops.return_ops)
    def process_returning(self, op):
        self._do(op)

    @rule(op=_ops.cas_ops)
    def compare_and_swap(self, op):
        self._do(op)

    @invariant()
    def old_snapshots_unchanged(self):
        if self.engine is None:
            return
        for snapshot, expected in self.snapshots[-5:]:
            assert snapshot.to_dict() == expected

    def teardown(self):
        if self.engine is not None:
            self.engine.close()


def test_state_machine_against_the_model(backend):
    machine = type("EngineVersusModelRun", (EngineVersusModel,), {"backend": backend})
    run_state_machine_as_test(
        machine,
        settings=settings(SETTINGS, max_examples=15, stateful_step_count=15),
    )


@pytest.mark.requires("threads")
@SETTINGS
@given(threads=st.integers(2, 4), per_thread=st.integers(1, 40), retries=st.integers(1, 3))
def test_no_lost_updates_under_threads(backend, threads, per_thread, retries):
    with TheusEngine(context={"domain": {"n": 0}}, backend=backend) as engine:

        @process(inputs=["domain.n"], outputs=["domain.n"], retries=retries)
        def increment(ctx):
            ctx.domain.n = ctx.domain.n + 1

        engine.register(increment)
        errors = []
        barrier = threading.Barrier(threads)

        def work():
            try:
                barrier.wait(10)
                for _ in range(per_thread):
                    engine.execute("increment")
            except BaseException as exc:
                errors.append(exc)

        pool = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(60)
        assert errors == []  # spec/05: sync, retries >= 1: no call raises
        assert engine.state.domain.n == threads * per_thread
        assert engine.state.version == threads * per_thread


@SETTINGS
@given(
    fail_at=st.integers(0, 5),
    writes=st.lists(st.tuples(_ops.keys, _ops.values), min_size=1, max_size=6),
)
def test_failure_anywhere_commits_nothing(backend, fail_at, writes):
    with TheusEngine(context=INITIAL, backend=backend) as engine:
        rx = engine.signals.subscribe()
        before = engine.state

        @process(outputs=["domain"])
        def partial(ctx):
            for i, (k, v) in enumerate(writes):
                if i == fail_at:
                    raise _ops.Boom("midway")
                ctx.domain[k] = v
                ctx.domain[f"sig_{k}"] = v
            raise _ops.Boom("at the end")

        with pytest.raises(_ops.Boom):
            engine.execute(partial)
        assert engine.state is before
        assert drain(rx) == []
