"""spec/18 §5-§7 — the Flux machine on every backend: events and their order, addresses and
iterations, step-by-step runs, stopping and resuming from a position, dry runs, async runs,
background runs, and the entry points' argument checks."""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
import threading
from typing import Any

import pytest

from theus import FluxError, NestedExecutionError, WorkflowError, WorkflowLimitError, process
from theus.flux import (
    Position,
    RunCompleted,
    RunStarted,
    StepCommitted,
    StepFailed,
    StepStarted,
)


def _wf(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _engine(make_engine: Any) -> Any:
    engine = make_engine({"domain": {"n": 0, "log": [], "a": 0, "b": 0}, "global": {}})
    runs: dict[str, int] = {}

    def counted(name: str) -> None:
        runs[name] = runs.get(name, 0) + 1

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def inc(ctx: Any) -> None:
        counted("inc")
        ctx.domain.n += 1

    @process(inputs=["domain.n", "domain.log"], outputs=["domain.log"])
    def note(ctx: Any, tag: str = "") -> None:
        counted("note")
        ctx.domain.log.append(f"{tag}{ctx.domain.n}")

    @process(outputs=["domain.a"])
    def set_a(ctx: Any) -> None:
        counted("set_a")
        ctx.domain.a = 1

    @process(outputs=["domain.b"])
    def set_b(ctx: Any) -> None:
        counted("set_b")
        ctx.domain.b = 2

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def boom(ctx: Any) -> None:
        ctx.domain.n = 999
        raise RuntimeError("boom!")

    @process(inputs=["domain.n"])
    def peek(ctx: Any) -> int:
        counted("peek")
        return int(ctx.domain.n)

    for fn in (inc, note, set_a, set_b, boom, peek):
        engine.register(fn)
    engine.runs = runs
    return engine


LOOP = _wf(
    """
    name: loop
    steps:
      - inc
      - flux: while
        condition: domain.n < 3
        do: [inc, note]
      - flux: if
        condition: domain.n == 3
        then: [note]
        else: [inc]
    """
)


def _kinds(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def _steps(events: list[Any]) -> list[tuple[str, str, tuple[int, ...], tuple[int, ...]]]:
    return [
        (type(e).__name__, e.process, e.address, e.iterations)
        for e in events
        if isinstance(e, StepStarted | StepCommitted | StepFailed)
    ]


# -- events ---------------------------------------------------------------------------------
def test_events_of_a_run_in_order_with_addresses_and_iterations(make_engine):
    engine = _engine(make_engine)
    events: list[Any] = []
    run = engine.execute_workflow(LOOP, on_event=events.append)
    assert run.executed == ("inc", "inc", "note", "inc", "note", "note")
    assert engine.state.domain.log.to_list() == ["2", "3", "3"]
    assert [e.seq for e in events] == list(range(len(events)))
    assert len({e.run_id for e in events}) == 1 and events[0].run_id == run.run_id
    assert isinstance(events[0], RunStarted) and events[0].name == "loop"
    assert isinstance(events[-1], RunCompleted) and events[-1].run is run
    assert _steps(events) == [
        ("StepStarted", "inc", (0,), ()),
        ("StepCommitted", "inc", (0,), ()),
        ("StepStarted", "inc", (1, 0, 0), (1,)),
        ("StepCommitted", "inc", (1, 0, 0), (1,)),
        ("StepStarted", "note", (1, 0, 1), (1,)),
        ("StepCommitted", "note", (1, 0, 1), (1,)),
        ("StepStarted", "inc", (1, 0, 0), (2,)),
        ("StepCommitted", "inc", (1, 0, 0), (2,)),
        ("StepStarted", "note", (1, 0, 1), (2,)),
        ("StepCommitted", "note", (1, 0, 1), (2,)),
        ("StepStarted", "note", (2, 0, 0), ()),
        ("StepCommitted", "note", (2, 0, 0), ()),
    ]
    committed = [e for e in events if isinstance(e, StepCommitted)]
    assert [e.version for e in committed] == [1, 2, 3, 4, 5, 6]
    assert all(e.duration >= 0 for e in committed)
    assert committed[-1].loc is not None and committed[-1].loc.key_path == "steps[2].then[0]"
    assert (committed[-1].loc.line, committed[-1].loc.column) == (9, 12)
    assert run.version == engine.state.version == 6 and run.ops == 10
    assert run.state.version == 6 and not run.dry_run


def test_else_branch_address_uses_block_one(make_engine):
    engine = _engine(make_engine)
    events: list[Any] = []
    wf = _wf(
        """
        steps:
          - flux: if
            condition: domain.n > 0
            then: [note]
            else: [inc, note]
        """
    )
    engine.execute_workflow(wf, on_event=events.append)
    assert [s[2] for s in _steps(events)[::2]] == [(0, 1, 0), (0, 1, 1)]


def test_events_reach_the_hub_by_topic(make_engine):
    engine = _engine(make_engine)
    rx = engine.signals.subscribe(topics=["flux:*"])
    only_commits = engine.signals.subscribe(topics=["flux:step_committed"])
    engine.execute_workflow("steps: [inc, inc]\n")
    got = [rx.try_recv() for _ in range(len(rx))]
    assert [e.topic for e in got] == [
        "flux:run_started",
        "flux:step_started",
        "flux:step_committed",
        "flux:step_started",
        "flux:step_committed",
        "flux:run_completed",
    ]
    assert [e.version for e in (only_commits.try_recv(), only_commits.try_recv())] == [1, 2]
    assert len(only_commits) == 0


def test_a_failing_step_reports_step_failed_then_run_failed(make_engine):
    engine = _engine(make_engine)
    events: list[Any] = []
    with pytest.raises(WorkflowError, match=r"<string>:1:14: steps\[1\]: process 'boom' failed: "
                       r"RuntimeError: boom!") as info:  # fmt: skip
        engine.execute_workflow("steps: [inc, boom, inc]\n", on_event=events.append)
    assert info.value.executed == ("inc",)
    assert engine.state.domain.n == 1  # the first step stays; boom's write never landed
    assert _kinds(events) == ["RunStarted", "StepStarted", "StepCommitted", "StepStarted",
                              "StepFailed", "RunFailed"]  # fmt: skip
    failed = events[4]
    assert isinstance(failed.error, RuntimeError) and failed.process == "boom"
    assert events[5].error is info.value
    assert events[5].loc is not None and (events[5].loc.line, events[5].loc.column) == (1, 14)


def test_a_condition_error_fails_the_run_with_its_location(make_engine):
    engine = _engine(make_engine)
    events: list[Any] = []
    wf = "steps:\n  - inc\n  - flux: if\n    condition: domain.missing > 1\n    then: [inc]\n"
    with pytest.raises(FluxError, match=r"<string>:4:16: steps\[1\]\.condition: .*missing"):
        engine.execute_workflow(wf, on_event=events.append)
    assert _kinds(events)[-1] == "RunFailed" and engine.state.domain.n == 1


def test_a_callback_that_raises_is_logged_and_the_run_goes_on(make_engine, caplog):
    engine = _engine(make_engine)
    seen: list[Any] = []

    def bad(event: Any) -> None:
        raise ValueError("observer broke")

    with caplog.at_level(logging.ERROR, logger="theus"):
        run = engine.execute_workflow("steps: [inc, inc]\n", on_event=[bad, seen.append])
    assert run.executed == ("inc", "inc") and len(seen) == 6
    assert "on_event callback" in caplog.text


# -- step by step ---------------------------------------------------------------------------
def test_iter_workflow_runs_nothing_between_calls(make_engine):
    engine = _engine(make_engine)
    it = engine.iter_workflow("steps: [inc, inc]\n")
    assert isinstance(next(it), RunStarted) and engine.state.version == 0
    started = next(it)
    assert isinstance(started, StepStarted) and engine.state.version == 0
    assert it.position.to_json()["stack"] == [[0, 0, 0]]
    committed = next(it)
    assert isinstance(committed, StepCommitted) and engine.state.domain.n == 1
    assert it.position.to_json()["stack"] == [[0, 1, 0]]
    rest = list(it)
    assert _kinds(rest) == ["StepStarted", "StepCommitted", "RunCompleted"]
    assert it.run is not None and it.run.executed == ("inc", "inc") and it.position.done


def test_iter_workflow_raises_after_run_failed(make_engine):
    engine = _engine(make_engine)
    it = engine.iter_workflow("steps: [boom]\n")
    kinds = [type(next(it)).__name__ for _ in range(4)]
    assert kinds == ["RunStarted", "StepStarted", "StepFailed", "RunFailed"]
    with pytest.raises(WorkflowError, match="boom"):
        next(it)


@pytest.mark.parametrize("stop_after", range(1, 12))
def test_stop_anywhere_and_resume_from_the_position(make_engine, stop_after):
    straight = _engine(make_engine)
    expected = straight.execute_workflow(LOOP).executed
    engine = _engine(make_engine)
    it = engine.iter_workflow(LOOP, run_id="r1")
    first = [next(it) for _ in range(stop_after)]
    it.close()
    saved = json.loads(json.dumps(it.position.to_json()))
    events: list[Any] = []
    run = engine.execute_workflow(LOOP, position=saved, run_id="r1", on_event=events.append)
    assert engine.state.to_dict() == straight.state.to_dict()
    assert engine.runs == straight.runs  # no committed step ran twice
    assert events[0].resumed and events[0].seq == first[-1].seq + 1
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + len(events)))
    done = [e.process for e in first if isinstance(e, StepCommitted)]
    assert done + list(run.executed) == list(expected)


def test_resume_inside_a_parallel_step(make_engine):
    wf = "steps:\n  - flux: parallel\n    branches: [[set_a, inc], [set_b]]\n  - note\n"
    engine = _engine(make_engine)
    position = Position.from_json(
        {"format": 1, "ops": 2, "seq": 0, "stack": [[0, 0, 0], {"branches": [[[0, 1, 0]], None]}]}
    )
    run = engine.execute_workflow(wf, position=position)
    assert run.executed == ("inc", "note")  # branch 0 from its second step; branch 1 ended
    assert engine.state.domain.to_dict()["a"] == 0 and engine.state.domain.b == 0
    assert engine.state.domain.n == 1 and engine.state.domain.log.to_list() == ["1"]


@pytest.mark.parametrize(
    "stack",
    [
        [[0, 9, 0]],  # past the end
        [[1, 0, 0]],  # the top level has block 0 only
        [[0, 0, 0], [0, 0, 0]],  # a process step owns no block
        [[0, 1, 0], [0, 0, 0]],  # a while body needs an iteration
        [[0, 0, 0], {"branches": [None]}],  # a fork on a process step
        [{"branches": []}],
    ],
)
def test_a_position_that_does_not_fit_is_rejected_before_anything_runs(make_engine, stack):
    engine = _engine(make_engine)
    wf = "steps:\n  - inc\n  - flux: while\n    condition: domain.n < 3\n    do: [inc]\n"
    with pytest.raises(FluxError, match="position"):
        engine.execute_workflow(wf, position={"format": 1, "ops": 0, "seq": 0, "stack": stack})
    assert engine.state.version == 0


@pytest.mark.parametrize(
    "data",
    [None, {}, {"format": 2, "ops": 0, "seq": 0, "stack": []}, {"format": 1, "ops": -1,
     "seq": 0, "stack": []}, {"format": 1, "ops": 0, "seq": 0, "stack": [[0, 0]]}],
)  # fmt: skip
def test_malformed_positions(data):
    with pytest.raises(FluxError):
        Position.from_json(data)


def test_close_stops_before_the_next_step(make_engine):
    engine = _engine(make_engine)
    it = engine.iter_workflow("steps: [inc, inc, inc]\n")
    for _ in range(3):  # RunStarted, StepStarted, StepCommitted
        next(it)
    next(it)  # StepStarted of the second inc: it has not run
    it.close()
    assert engine.state.domain.n == 1
    assert it.position.to_json()["stack"] == [[0, 1, 0]]
    with pytest.raises(StopIteration):
        next(it)


# -- limits ---------------------------------------------------------------------------------
def test_max_ops_and_max_iterations(make_engine):
    engine = _engine(make_engine)
    with pytest.raises(WorkflowLimitError, match=r"max_ops=3"):
        engine.execute_workflow("steps: [inc, inc, inc, inc]\n", max_ops=3)
    assert engine.state.domain.n == 3
    wf = "steps:\n  - flux: while\n    condition: 'True'\n    max_iterations: 2\n    do: [inc]\n"
    with pytest.raises(WorkflowLimitError, match=r"<string>:2:5: steps\[0\]: .*max_iterations=2"):
        engine.execute_workflow(wf)
    assert engine.state.domain.n == 5


# -- dry runs -------------------------------------------------------------------------------
def test_dry_run_commits_nothing_and_returns_the_would_be_state(make_engine):
    engine = _engine(make_engine)
    engine.execute("inc")
    rx = engine.signals.subscribe()
    events: list[Any] = []
    run = engine.execute_workflow(LOOP, dry_run=True, on_event=events.append)
    assert run.dry_run and run.state.domain.n == 3 and run.version == 5
    assert run.state.domain.log.to_list() == ["3", "3"]
    assert engine.state.version == 1 and engine.state.domain.n == 1  # untouched
    assert len(rx) == 0  # nothing on the engine's hub
    assert events[0].dry_run and isinstance(events[-1], RunCompleted)
    real = engine.execute_workflow(LOOP)
    assert real.state.to_dict() == run.state.to_dict()


def test_dry_run_of_a_failing_workflow_leaves_the_engine_alone(make_engine):
    engine = _engine(make_engine)
    with pytest.raises(WorkflowError):
        engine.execute_workflow("steps: [inc, boom]\n", dry_run=True)
    assert engine.state.version == 0


# -- async and background -------------------------------------------------------------------
@pytest.mark.requires("async")
def test_aexecute_workflow_with_async_processes_and_parallel_tasks(make_engine):
    engine = _engine(make_engine)

    @process(inputs=["domain.n"], outputs=["domain.n"])
    async def ainc(ctx: Any) -> None:
        await asyncio.sleep(0)
        ctx.domain.n += 10

    engine.register(ainc)
    events: list[Any] = []
    wf = "steps:\n  - ainc\n  - flux: parallel\n    branches: [[set_a], [set_b, ainc]]\n  - note\n"
    run = asyncio.run(engine.aexecute_workflow(wf, on_event=events.append))
    assert run.executed == ("ainc", "set_a", "set_b", "ainc", "note")
    assert engine.state.domain.n == 20 and engine.state.domain.log.to_list() == ["20"]
    assert _kinds(events)[0] == "RunStarted" and _kinds(events)[-1] == "RunCompleted"
    assert [e.seq for e in events] == list(range(len(events)))


@pytest.mark.requires("async")
def test_aexecute_workflow_failure(make_engine):
    engine = _engine(make_engine)
    with pytest.raises(WorkflowError, match="boom"):
        asyncio.run(engine.aexecute_workflow("steps: [inc, boom]\n"))
    assert engine.state.domain.n == 1


def test_start_workflow_runs_in_the_background(make_engine):
    engine = _engine(make_engine)
    handle = engine.start_workflow(LOOP)
    run = handle.result(timeout=30)
    assert run is not None and run.executed[-1] == "note" and handle.done
    kinds = [type(e).__name__ for e in handle.events(timeout=5)]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunCompleted"


def test_start_workflow_cancel_stops_between_steps(make_engine):
    engine = _engine(make_engine)
    gate = threading.Event()
    release = threading.Event()

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def slow(ctx: Any) -> None:
        gate.set()
        release.wait(10)
        ctx.domain.n += 1

    engine.register(slow)
    handle = engine.start_workflow("steps: [slow, slow, slow]\n")
    assert gate.wait(10)
    handle.cancel()
    release.set()
    assert handle.result(timeout=30) is None
    assert engine.state.domain.n == 1  # the running step finished and committed; no more
    assert handle.position.to_json()["stack"] == [[0, 1, 0]]


def test_start_workflow_failure_is_raised_by_result(make_engine):
    engine = _engine(make_engine)
    handle = engine.start_workflow("steps: [boom]\n")
    with pytest.raises(WorkflowError, match="boom"):
        handle.result(timeout=30)


# -- parallel -------------------------------------------------------------------------------
def test_parallel_events_carry_branch_addresses(make_engine):
    engine = _engine(make_engine)
    events: list[Any] = []
    wf = "steps:\n  - flux: parallel\n    branches: [[set_a, inc], [set_b]]\n"
    run = engine.execute_workflow(wf, on_event=events.append)
    assert run.executed == ("set_a", "inc", "set_b")
    addresses = {(e.process, e.address) for e in events if isinstance(e, StepCommitted)}
    assert addresses == {("set_a", (0, 0, 0)), ("inc", (0, 0, 1)), ("set_b", (0, 1, 0))}
    assert [e.seq for e in events] == list(range(len(events)))


def test_a_failing_branch_lets_the_others_finish(make_engine):
    engine = _engine(make_engine)
    wf = "steps:\n  - flux: parallel\n    branches: [[boom], [set_b]]\n  - inc\n"
    with pytest.raises(WorkflowError, match="boom"):
        engine.execute_workflow(wf)
    assert engine.state.domain.b == 2 and engine.state.domain.n == 0


# -- entry point checks ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_ops": 0}, "max_ops"),
        ({"max_ops": True}, "max_ops"),
        ({"dry_run": 1}, "dry_run"),
        ({"run_id": ""}, "run_id"),
        ({"on_event": 3}, "on_event"),
        ({"inputs": {"nope": 1}}, "unknown input"),
    ],
)
def test_bad_arguments_are_type_errors_before_anything_runs(make_engine, kwargs, match):
    engine = _engine(make_engine)
    with pytest.raises(TypeError, match=match):
        engine.execute_workflow("steps: [inc]\n", **kwargs)
    assert engine.state.version == 0


def test_a_workflow_from_inside_a_process_is_nested(make_engine):
    engine = _engine(make_engine)

    @process(inputs=["domain.n"])
    def outer(ctx: Any) -> None:
        engine.execute_workflow("steps: [inc]\n")

    engine.register(outer)
    with pytest.raises(NestedExecutionError):
        engine.execute(outer)
    with pytest.raises(WorkflowError) as info:
        engine.execute_workflow("steps: [outer]\n")
    assert isinstance(info.value.__cause__, NestedExecutionError)


def test_with_expressions_read_the_snapshot_when_the_step_starts(make_engine):
    engine = _engine(make_engine)
    wf = "steps:\n  - inc\n  - process: note\n    with: {tag: {expr: \"str(domain.n) + ':'\"}}\n"
    engine.execute_workflow(wf)
    assert engine.state.domain.log.to_list() == ["1:1"]


def test_a_changed_file_is_loaded_again(make_engine, tmp_path):
    engine = _engine(make_engine)
    path = tmp_path / "wf.yaml"
    path.write_text("steps: [inc]\n")
    assert engine.execute_workflow(path).executed == ("inc",)
    path.write_text("steps: [inc, note, inc]\n")
    assert engine.execute_workflow(str(path)).executed == ("inc", "note", "inc")


def test_workflow_without_observers_still_returns_the_run(make_engine):
    engine = _engine(make_engine)
    run = engine.execute_workflow(LOOP)
    assert run.executed == ("inc", "inc", "note", "inc", "note", "note") and run.ops == 10


def test_current_step_is_visible_to_the_step_and_its_before_commit(make_engine):
    from theus import Stage
    from theus.flux.machine import current_step

    engine = _engine(make_engine)
    seen: list[Any] = []

    class Watch(Stage):
        name = "watch"

        def before_commit(self, changes: Any) -> None:
            step = current_step.get()
            if step is not None:
                seen.append(("stage", step.process, step.address, step.iterations))

    engine.pipeline.add(Watch())

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def probe(ctx: Any) -> None:
        step = current_step.get()
        assert step is not None
        seen.append(("body", step.run_id, step.position().to_json()["stack"]))
        ctx.domain.n += 1

    engine.register(probe)
    wf = "steps:\n  - inc\n  - flux: while\n    condition: domain.n < 3\n    do: [probe]\n"
    engine.execute_workflow(wf, run_id="rid")
    assert current_step.get() is None
    assert seen == [
        ("stage", "inc", (0,), ()),
        ("body", "rid", [[0, 1, 0], [0, 0, 1]]),
        ("stage", "probe", (1, 0, 0), (1,)),
        ("body", "rid", [[0, 1, 0], [0, 0, 2]]),
        ("stage", "probe", (1, 0, 0), (2,)),
    ]
