"""spec/18 §4 — running Flux workflows with the reference interpreter (theus.flux.run), on
every backend: step sequences, conditions on the latest snapshot, signals, arguments, limits,
failures, parallel branches, and load errors that leave the state untouched."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from theus import FluxError, WorkflowError, WorkflowLimitError, process
from theus.flux import parse_workflow, run_workflow


def _engine(make_engine: Any, **domain: Any) -> Any:
    engine = make_engine(
        {"domain": {"count": 0, "log": [], "a": 0, "b": 0, **domain}, "global": {"mode": "x"}}
    )

    @process(inputs=["domain.count"], outputs=["domain.count"])
    def bump(ctx: Any, by: int = 1) -> None:
        ctx.domain.count += by

    @process(outputs=["domain.count"])
    def reset(ctx: Any) -> None:
        ctx.domain.count = 0

    @process(inputs=["domain.log"], outputs=["domain.log"])
    def note(ctx: Any, text: str = "-") -> None:
        ctx.domain.log.append(text)

    @process(outputs=["domain.sig_go"])
    def go(ctx: Any) -> None:
        ctx.domain.sig_go = True

    @process(outputs=["domain.a"])
    def set_a(ctx: Any) -> None:
        ctx.domain.a = 1

    @process(inputs=["domain.count"], outputs=["domain.b"], retries=50)
    def set_b(ctx: Any) -> None:
        ctx.domain.b = ctx.domain.count + 1

    @process(outputs=["global.mode"])
    def fast(ctx: Any) -> None:
        ctx.global_.mode = "fast"

    @process(inputs=["domain.count"], outputs=["domain.count"])
    def boom(ctx: Any) -> None:
        ctx.domain.count = 999
        raise RuntimeError("boom!")

    for fn in (bump, reset, note, go, set_a, set_b, fast, boom):
        engine.register(fn)
    return engine


def _wf(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


THEUS3 = _wf(
    """
    steps:
      - reset
      - process: bump
      - flux: while
        condition: domain['count'] < 4
        do:
          - bump
          - process: note
      - flux: if
        condition: domain.count == 4
        then: [fast]
        else: [reset]
      - flux: run
        steps:
          - flux: if
            condition: global.mode == 'fast'
            then:
              - note
    """
)


def test_theus3_shapes_run_in_order(make_engine: Any) -> None:
    engine = _engine(make_engine)
    run = run_workflow(engine, THEUS3)
    assert run.executed == ("reset", "bump", "bump", "note", "bump", "note", "bump", "note",
                            "fast", "note")  # fmt: skip
    state = engine.state
    assert state.domain.count == 4 and state.global_.mode == "fast"
    assert list(state.domain.log) == ["-", "-", "-", "-"]
    assert run.version == state.version == 10
    # ops: 5 top-level steps, 3 iterations and the 6 steps in them, `fast`, the `run`'s `if`
    # and its `note`
    assert run.ops == 5 + 3 + 6 + 1 + 1 + 1
    assert run.duration >= 0


@pytest.mark.parametrize(("start", "iterations"), [(0, 5), (3, 2), (5, 0), (9, 0)])
def test_while_reads_the_latest_snapshot(make_engine: Any, start: int, iterations: int) -> None:
    engine = _engine(make_engine, count=start)
    run = run_workflow(
        engine, "steps:\n  - {flux: while, condition: domain.count < 5, do: [bump]}\n"
    )
    assert run.executed == ("bump",) * iterations
    assert engine.state.domain.count == max(start, 5)


def test_signals_live_one_version(make_engine: Any) -> None:
    engine = _engine(make_engine)
    text = _wf(
        """
        steps:
          - go
          - flux: if
            condition: signal.sig_go == True and cmd.get('sig_go')
            then: [{process: note, with: {text: seen}}]
          - flux: if
            condition: signal.get('sig_go') is None
            then: [{process: note, with: {text: gone}}]
        """
    )
    run_workflow(engine, text)
    assert list(engine.state.domain.log) == ["seen", "gone"]


def test_with_arguments_literal_and_expression(make_engine: Any) -> None:
    engine = _engine(make_engine, count=2)
    text = _wf(
        """
        inputs: {step: 3}
        steps:
          - {process: bump, with: {by: 10}}
          - {process: bump, with: {by: {expr: "domain.count * 2 + step"}}}
          - {process: note, with: {text: {expr: "str(domain.count)"}}}
        """
    )
    run_workflow(engine, text)
    assert engine.state.domain.count == 12 + 27
    assert list(engine.state.domain.log) == ["39"]
    engine2 = _engine(make_engine, count=2)
    run_workflow(engine2, text, inputs={"step": 0})
    assert engine2.state.domain.count == 12 + 24


def test_inputs_checked(make_engine: Any) -> None:
    engine = _engine(make_engine)
    text = "inputs: {n: null}\nsteps:\n  - {flux: while, condition: domain.count < n, do: [bump]}\n"
    with pytest.raises(FluxError, match="input 'n' has no default"):
        run_workflow(engine, text)
    with pytest.raises(TypeError, match="unknown input 'm'"):
        run_workflow(engine, text, inputs={"n": 1, "m": 2})
    assert engine.state.version == 0
    assert run_workflow(engine, text, inputs={"n": 3}).executed == ("bump",) * 3


def test_failing_step_stops_the_run_and_keeps_earlier_commits(make_engine: Any) -> None:
    engine = _engine(make_engine)
    text = "steps:\n  - bump\n  - bump\n  - flux: run\n    steps:\n      - boom\n  - bump\n"
    with pytest.raises(WorkflowError) as info:
        run_workflow(engine, text)
    err = info.value
    assert not isinstance(err, WorkflowLimitError)
    assert str(err).startswith("<string>:6:9: steps[2].steps[0]: process 'boom' failed: ")
    assert "RuntimeError: boom!" in str(err)
    assert isinstance(err.__cause__, RuntimeError)
    assert (err.process, err.executed, err.line, err.column) == ("boom", ("bump", "bump"), 6, 9)
    assert engine.state.domain.count == 2 and engine.state.version == 2


@pytest.mark.parametrize(("max_ops", "done"), [(1, 0), (2, 0), (3, 1), (4, 1), (5, 2), (7, 3)])
def test_max_ops(make_engine: Any, max_ops: int, done: int) -> None:
    # ops: `while` 1, then per iteration 1 + 1 (the step)
    engine = _engine(make_engine)
    text = "steps:\n  - flux: while\n    condition: 'True'\n    do: [bump]\n"
    with pytest.raises(WorkflowLimitError, match=f"max_ops={max_ops}") as info:
        run_workflow(engine, text, max_ops=max_ops)
    assert info.value.file == "<string>" and info.value.line in (2, 4)
    assert engine.state.domain.count == done
    assert info.value.executed == ("bump",) * done


def test_max_ops_from_file_and_default(make_engine: Any) -> None:
    engine = _engine(make_engine)
    text = "max_ops: 5\nsteps:\n  - {flux: while, condition: 'True', do: [bump]}\n"
    with pytest.raises(WorkflowLimitError, match="max_ops=5"):
        run_workflow(engine, text)
    with pytest.raises(WorkflowLimitError, match="max_ops=10000"):
        run_workflow(engine, "steps:\n  - {flux: while, condition: 'True', do: []}\n")
    with pytest.raises(TypeError, match="max_ops"):
        run_workflow(engine, text, max_ops=0)


@pytest.mark.parametrize("limit", [1, 3])
def test_max_iterations(make_engine: Any, limit: int) -> None:
    engine = _engine(make_engine)
    text = (
        "steps:\n  - flux: while\n    condition: domain.count < 100\n"
        f"    max_iterations: {limit}\n    do: [bump]\n"
    )
    with pytest.raises(WorkflowLimitError, match=f"max_iterations={limit}") as info:
        run_workflow(engine, text)
    assert (info.value.line, info.value.column) == (2, 5)
    assert engine.state.domain.count == limit
    # a loop that ends in time is fine
    engine2 = _engine(make_engine, count=100 - limit)
    assert run_workflow(engine2, text).executed == ("bump",) * limit


def test_parallel_branches_commit(make_engine: Any) -> None:
    engine = _engine(make_engine, count=4)
    text = _wf(
        """
        steps:
          - flux: parallel
            branches:
              - [set_a, {process: note, with: {text: a}}]
              - [set_b]
          - note
        """
    )
    run = run_workflow(engine, text)
    assert run.executed == ("set_a", "note", "set_b", "note")
    state = engine.state
    assert (state.domain.a, state.domain.b, list(state.domain.log)) == (1, 5, ["a", "-"])
    assert state.version == 4


@pytest.mark.parametrize(
    ("branches", "needle"),
    [
        ("[[bump], [reset]]", "'bump'"),
        ("[[note], [set_a, {flux: if, condition: 'True', then: [note]}]]", "'note'"),
        ("[[set_a], [set_b], [bump, set_a]]", "'set_a'"),
    ],
)
def test_parallel_overlap_rejected_before_anything_runs(
    make_engine: Any, branches: str, needle: str
) -> None:
    engine = _engine(make_engine)
    text = f"steps:\n  - bump\n  - flux: parallel\n    branches: {branches}\n"
    with pytest.raises(FluxError, match="may write the same key") as info:
        run_workflow(engine, text)
    assert needle in str(info.value)
    assert (info.value.line, info.value.column) == (4, 15)
    assert engine.state.version == 0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("steps:\n  - bump\n  - nope\n", "unknown process 'nope'"),
        ("steps:\n  - bump\n  - {flux: if, condition: 'x.y', then: []}\n", "unknown name 'x'"),
        ("steps:\n  - bump\n  - {flux: if, condition: domain.count, then: bump}\n", "list"),
        ("steps:\n  - bump\n  - {flux: if, condition: '().__class__', then: []}\n", "__class__"),
        ("steps:\n  - bump\n  - [", "malformed YAML"),
    ],
)
def test_load_errors_leave_the_state_untouched(make_engine: Any, text: str, needle: str) -> None:
    engine = _engine(make_engine)
    with pytest.raises(FluxError, match=needle) as info:
        run_workflow(engine, text)
    assert info.value.line == 3
    assert engine.state.version == 0 and engine.state.domain.count == 0


def test_condition_evaluation_error(make_engine: Any) -> None:
    engine = _engine(make_engine)
    text = "steps:\n  - bump\n  - {flux: if, condition: domain.nothere > 1, then: []}\n"
    with pytest.raises(FluxError, match="domain.nothere is missing") as info:
        run_workflow(engine, text)
    assert str(info.value).startswith("<string>:3:27: steps[1].condition: evaluating ")
    assert engine.state.domain.count == 1


def test_workflow_from_file_and_object(make_engine: Any, tmp_path: Any) -> None:
    engine = _engine(make_engine)
    (tmp_path / "inner.yaml").write_text("steps: [bump, bump]\n")
    main = tmp_path / "main.yaml"
    main.write_text("steps:\n  - {flux: run, workflow: inner.yaml}\n  - note\n")
    assert run_workflow(engine, str(main)).executed == ("bump", "bump", "note")
    assert run_workflow(engine, main).executed == ("bump", "bump", "note")
    program = parse_workflow("steps: [bump]\n")
    assert run_workflow(engine, program).executed == ("bump",)
    assert engine.state.domain.count == 5
    with pytest.raises(TypeError):
        run_workflow(engine, 42)


@pytest.mark.parametrize("rounds", [1, 5])
def test_parallel_branches_reading_what_another_writes_go_through_occ(
    make_engine: Any, rounds: int
) -> None:
    # `set_b` reads domain.count, which `bump` writes in the other branch: no write overlap,
    # so the workflow loads; each commit is checked by the engine's concurrency control.
    engine = _engine(make_engine, count=4)
    branch_a = ", ".join(["bump"] * rounds)
    text = f"steps:\n  - flux: parallel\n    branches: [[{branch_a}], [set_b]]\n"
    run = run_workflow(engine, text)
    assert run.executed == ("bump",) * rounds + ("set_b",)
    state = engine.state
    assert state.domain.count == 4 + rounds
    assert 5 <= state.domain.b <= 5 + rounds
    assert state.version == rounds + 1


def test_parallel_failure_raises_after_every_branch_ended(make_engine: Any) -> None:
    engine = _engine(make_engine)
    text = "steps:\n  - flux: parallel\n    branches: [[set_a], [boom], [note]]\n  - bump\n"
    with pytest.raises(WorkflowError, match="process 'boom' failed") as info:
        run_workflow(engine, text)
    assert (info.value.line, info.value.column) == (3, 26)
    state = engine.state
    # the other branches ran to their end and committed; the step after did not run
    assert state.domain.a == 1 and list(state.domain.log) == ["-"]
    assert state.domain.count == 0
