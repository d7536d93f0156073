"""spec/18 §8, spec/21 §9 — human in the loop on every backend: `flux: pause` and
`interrupt()`, paused runs, `engine.pending()`, `engine.resume(run_id, token, value)` (same
token twice, unknown and expired tokens), durable pauses reopened by a fresh engine, two
resumers racing, and steps that write nothing advancing the stored position."""

from __future__ import annotations

import textwrap
import threading
import time
from typing import Any

import pytest

from theus import (
    FluxError,
    PauseExpiredError,
    ResumeTokenError,
    StoreConflictError,
    WorkflowError,
    interrupt,
    process,
)
from theus.flux import RunCompleted, RunPaused, RunStarted, StepCommitted, parse_workflow
from theus.pipeline import Stage
from theus.stores import SqliteStore

CONTEXT = {"domain": {"n": 0, "answer": None, "note": None, "cnt_a": 0, "cnt_b": 0, "cnt_c": 0}}

WORKFLOW = textwrap.dedent(
    """\
    steps:
      - a
      - flux: pause
        prompt: {question: "ship it?", options: [ship, wait]}
        into: domain.answer
      - b
      - ask
      - c
    """
)

#: calls of processes that write nothing (they cannot count in the state)
NOOP_CALLS: list[str] = []


def _counter(name: str) -> Any:
    @process(name=name, inputs=[f"domain.cnt_{name}"], outputs=[f"domain.cnt_{name}"])
    def body(ctx: Any) -> None:
        setattr(ctx.domain, f"cnt_{name}", getattr(ctx.domain, f"cnt_{name}") + 1)

    return body


@process(inputs=["domain.n"], outputs=["domain.n"])
def ask(ctx: Any) -> Any:
    ctx.domain.n += 10
    return interrupt({"why": "check n"}, into="domain.note")


@process(inputs=["domain.n"], outputs=[])
def look(ctx: Any) -> None:
    NOOP_CALLS.append("look")


def _setup(engine: Any) -> Any:
    for name in ("a", "b", "c"):
        engine.register(_counter(name))
    engine.register(ask)
    engine.register(look)
    return engine


def _plain(make_engine: Any) -> Any:
    return _setup(make_engine(CONTEXT))


def _counts(engine: Any) -> dict[str, int]:
    data = engine.state.to_dict()["domain"]
    return {k: v for k, v in data.items() if k.startswith("cnt_")}


# -- loading (spec/18 §1, §3) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  - flux: pause\n    into: domain.x\n", r"<string>:2:5: steps\[0\]: .*needs `prompt:`"),
        ("  - flux: pause\n    prompt: hi\n", r"<string>:2:5: steps\[0\]: .*needs `into:`"),
        (
            "  - flux: pause\n    prompt: hi\n    into: nowhere.x\n",
            r"<string>:4:11: steps\[0\]\.into: 'nowhere\.x' is in no namespace",
        ),
        (
            "  - flux: pause\n    prompt: hi\n    into: domain..x\n",
            r"<string>:4:11: steps\[0\]\.into: invalid path",
        ),
        (
            "  - flux: pause\n    prompt: hi\n    into: domain\n",
            r"<string>:4:11: steps\[0\]\.into: 'domain' names a whole namespace",
        ),
        (
            "  - flux: pause\n    prompt: hi\n    into: domain.sig_x\n",
            r"<string>:4:11: steps\[0\]\.into: 'domain\.sig_x' is not a data-zone path",
        ),
        (
            "  - flux: pause\n    prompt: hi\n    into: domain.x\n    timeout: 0\n",
            r"<string>:5:14: steps\[0\]\.timeout: must be a positive number of seconds",
        ),
        (
            "  - flux: pause\n    prompt: hi\n    into: domain.x\n    timeout: soon\n",
            r"<string>:5:14: steps\[0\]\.timeout: must be a positive number",
        ),
        (
            "  - flux: pause\n    prompt: hi\n    into: domain.x\n    then: []\n",
            r"<string>:5:5: steps\[0\]\.then: unknown key 'then' in a `flux: pause` step",
        ),
        (
            "  - flux: parallel\n    branches: [[a], [{flux: pause, prompt: p, into: domain.x}]]\n",
            r"<string>:3:15: steps\[0\]\.branches: a `flux: pause` step cannot be inside",
        ),
    ],
)
def test_pause_load_errors_name_file_line_column(body: str, message: str) -> None:
    with pytest.raises(FluxError, match=message):
        parse_workflow("steps:\n" + body, namespaces=("domain",), processes=("a",))


def test_pause_loads_prompt_as_plain_data() -> None:
    wf = parse_workflow(
        "steps:\n  - flux: pause\n    prompt: {expr: not evaluated, n: [1, 2]}\n"
        "    into: domain.x\n    timeout: 2.5\n"
    )
    step = wf.steps[0]
    assert step.prompt == {"expr": "not evaluated", "n": [1, 2]}
    assert (step.into, step.timeout, str(step.loc)) == ("domain.x", 2.5, "<string>:2:5")


# -- a plain engine (spec/18 §8, spec/21 §9) ----------------------------------------------------


def test_pause_stops_the_run_and_resume_continues_without_rerunning(make_engine: Any) -> None:
    engine = _plain(make_engine)
    events: list[Any] = []
    run = engine.execute_workflow(WORKFLOW, run_id="r1", on_event=events.append)
    assert run.status == "paused" and run.paused and run.executed == ("a",)
    request = run.pending
    assert request is not None
    assert (request.run_id, request.into, request.kind) == ("r1", "domain.answer", "pause")
    assert request.prompt == {"question": "ship it?", "options": ["ship", "wait"]}
    assert request.location == "<string>:3:5" and request.address == (1,)
    assert request.deadline is None and abs(request.created - time.time()) < 60
    assert len(request.token) >= 22
    assert isinstance(events[-1], RunPaused) and events[-1].topic == "flux:paused"
    assert events[-1].pending == request and events[-1].run is run
    assert engine.pending() == [request]
    version = engine.state.version

    events.clear()
    second = engine.resume("r1", request.token, "yes", on_event=events.append)
    assert engine.state.get("domain.answer") == "yes"
    # a committed, then the answer (one host commit), b, ask (its in-place write), then paused
    assert second.status == "paused" and second.executed == ("b", "ask")
    assert engine.state.get("domain.n") == 10
    assert engine.state.version == version + 3
    assert isinstance(events[0], RunStarted) and events[0].resumed
    assert [e.process for e in events if isinstance(e, StepCommitted)] == ["b", "ask"]
    ask_request = second.pending
    assert ask_request is not None and ask_request.kind == "interrupt"
    assert ask_request.into == "domain.note" and ask_request.prompt == {"why": "check n"}
    assert ask_request.location == "<string>:7:5"
    assert engine.pending() == [ask_request]

    done = engine.resume("r1", ask_request.token, {"ok": True})
    assert done.status == "completed" and done.executed == ("c",) and done.pending is None
    assert engine.state.get("domain.note") == {"ok": True}
    assert _counts(engine) == {"cnt_a": 1, "cnt_b": 1, "cnt_c": 1}
    assert engine.pending() == []


def test_the_same_token_twice_is_a_no_op_returning_the_same_result(make_engine: Any) -> None:
    engine = _plain(make_engine)
    token = engine.execute_workflow(WORKFLOW, run_id="r").pending.token
    first = engine.resume("r", token, "yes")
    version = engine.state.version
    again = engine.resume("r", token, "a different answer")
    assert again is first
    assert engine.state.version == version and engine.state.get("domain.answer") == "yes"
    assert _counts(engine) == {"cnt_a": 1, "cnt_b": 1, "cnt_c": 0}


def test_unknown_stale_and_foreign_tokens_are_refused(make_engine: Any) -> None:
    engine = _plain(make_engine)
    token = engine.execute_workflow(WORKFLOW, run_id="r").pending.token
    version = engine.state.version
    for run_id, bad in (("r", "not-a-token"), ("other-run", token)):
        with pytest.raises(ResumeTokenError, match=r"has no pending request with this token"):
            engine.resume(run_id, bad, "x")
    with pytest.raises(TypeError):
        engine.resume("r", "", "x")
    assert engine.state.version == version and engine.pending()[0].token == token


def test_an_expired_request_cannot_be_answered(make_engine: Any) -> None:
    engine = _plain(make_engine)
    wf = "steps:\n  - flux: pause\n    prompt: quick\n    into: domain.answer\n    timeout: 0.05\n"
    run = engine.execute_workflow(wf, run_id="r")
    request = run.pending
    assert request.deadline == pytest.approx(request.created + 0.05)
    time.sleep(0.1)
    with pytest.raises(PauseExpiredError, match=r"<string>:2:5: the pause of run 'r' expired at"):
        engine.resume("r", request.token, "late")
    assert engine.state.get("domain.answer") is None
    assert engine.pending() == [request]  # still listed, with its deadline


def test_iterator_and_handle_end_with_the_paused_run(make_engine: Any) -> None:
    engine = _plain(make_engine)
    iterator = engine.iter_workflow(WORKFLOW, run_id="it")
    events = list(iterator)
    assert isinstance(events[-1], RunPaused) and not any(
        isinstance(e, RunCompleted) for e in events
    )
    assert iterator.run is not None and iterator.run.paused
    handle = engine.start_workflow(WORKFLOW, run_id="h")
    result = handle.result(timeout=30)
    assert result is not None and result.paused and result.pending.run_id == "h"
    assert {r.run_id for r in engine.pending()} == {"it", "h"}


def test_interrupt_in_a_parallel_branch_fails_after_its_commit(make_engine: Any) -> None:
    engine = _plain(make_engine)
    wf = "steps:\n  - flux: parallel\n    branches: [[a], [ask]]\n"
    with pytest.raises(WorkflowError, match=r"returned interrupt\(\) inside a `flux: parallel`"):
        engine.execute_workflow(wf)
    assert engine.state.get("domain.n") == 10 and engine.pending() == []


def test_interrupt_checks_its_arguments_and_outside_a_workflow_pauses_nothing(
    make_engine: Any,
) -> None:
    from theus.errors import InvalidPathError

    with pytest.raises(InvalidPathError):
        interrupt("p", into="domain..x")
    with pytest.raises(TypeError):
        interrupt("p", into="domain.x", timeout=-1)
    engine = _plain(make_engine)
    engine.execute("ask")  # a plain call: its write lands, nothing pauses
    assert engine.state.get("domain.n") == 10 and engine.pending() == []


def test_a_loop_pauses_once_per_iteration(make_engine: Any) -> None:
    engine = _plain(make_engine)
    wf = textwrap.dedent(
        """\
        steps:
          - flux: while
            condition: domain.cnt_a < 3
            do:
              - a
              - flux: pause
                prompt: {expr: "not evaluated"}
                into: domain.answer
        """
    )
    run = engine.execute_workflow(wf, run_id="loop")
    seen = []
    while run.paused:
        seen.append(run.pending.iterations)
        run = engine.resume("loop", run.pending.token, len(seen))
    assert seen == [(1,), (2,), (3,)]
    assert engine.state.get("domain.answer") == 3 and _counts(engine)["cnt_a"] == 3


# -- durable engines (spec/21 §9) ---------------------------------------------------------------


class _Gate(Stage):
    """Holds each engine's first commit until both engines reached it (a real race: both
    passed their checks against the store before either stores)."""

    name = "gate"

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier
        self.passed = False

    def before_commit(self, changes: Any) -> None:
        if not self.passed:
            self.passed = True
            self.barrier.wait(30)


def _durable(make_engine: Any, path: Any, run_id: str = "wf") -> Any:
    return _setup(make_engine(CONTEXT, store=str(path), run_id=run_id))


def test_a_durable_pause_is_answered_by_a_fresh_engine(make_engine: Any, tmp_path: Any) -> None:
    wf_file = tmp_path / "wf.yaml"
    wf_file.write_text(WORKFLOW)
    db = tmp_path / "d.db"
    first = _durable(make_engine, db)
    run = first.execute_workflow(str(wf_file), run_id="wf")
    token = run.pending.token
    first.close()

    again = _durable(make_engine, db)
    [request] = again.pending()
    assert request.token == token and request.store_run == "wf"
    assert request.workflow == str(wf_file) and request.loc.file == str(wf_file)
    waiting = again.resume_workflow(str(wf_file))  # waits on the answer: nothing runs
    assert waiting.paused and waiting.pending == request and waiting.executed == ()
    second = again.resume("wf", token, "yes")  # the workflow file comes from the request
    assert second.paused and second.executed == ("b", "ask")
    again.close()

    third = _durable(make_engine, db)
    [ask_request] = third.pending()
    assert ask_request.kind == "interrupt"
    # the answered token again, on another engine: nothing happens; the run waits on `ask`
    repeat = third.resume("wf", token, "other")
    assert repeat.paused and repeat.pending == ask_request
    done = third.resume("wf", ask_request.token, "fine")
    assert done.status == "completed" and done.executed == ("c",)
    assert _counts(third) == {"cnt_a": 1, "cnt_b": 1, "cnt_c": 1}
    assert (third.state.get("domain.answer"), third.state.get("domain.note")) == ("yes", "fine")
    history = [(h.process, h.paths) for h in reversed(third.history())]
    assert history == [
        ("a", ("domain.cnt_a",)),
        (None, ("domain.answer",)),
        ("b", ("domain.cnt_b",)),
        ("ask", ("domain.n",)),
        (None, ("domain.note",)),
        ("c", ("domain.cnt_c",)),
    ]
    finished = third.resume("wf", token, "x")
    assert finished.status == "answered" and finished.executed == ()
    third.close()


def test_a_prompt_outside_the_durable_format_is_refused(make_engine: Any, tmp_path: Any) -> None:
    engine = _durable(make_engine, tmp_path / "d.db")

    @process(outputs=["domain.n"])
    def odd(ctx: Any) -> Any:
        ctx.domain.n = 1
        return interrupt(object(), into="domain.note")

    engine.register(odd)
    with pytest.raises(WorkflowError, match=r"the prompt of the pause at <string>:1:9"):
        engine.execute_workflow("steps: [odd]\n")
    assert engine.state.version == 0 and engine.pending() == []


def test_two_resumers_racing_on_one_token_exactly_one_wins(make_engine: Any, tmp_path: Any) -> None:
    db = tmp_path / "d.db"
    first = _durable(make_engine, db)
    token = first.execute_workflow(WORKFLOW, run_id="wf").pending.token
    first.close()
    engines = [_durable(make_engine, db), _durable(make_engine, db)]
    gate = threading.Barrier(2)
    for engine in engines:
        engine.pipeline.add(_Gate(gate))
    outcomes: list[Any] = [None, None]

    def answer(i: int) -> None:
        try:
            outcomes[i] = engines[i].resume("wf", token, f"answer-{i}", workflow=WORKFLOW)
        except (StoreConflictError, WorkflowError) as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    wins = [o for o in outcomes if not isinstance(o, Exception)]
    losses = [o for o in outcomes if isinstance(o, Exception)]
    assert len(wins) == 1 and len(losses) == 1, outcomes
    loss = losses[0]
    cause = loss if isinstance(loss, StoreConflictError) else loss.__cause__
    assert isinstance(cause, StoreConflictError), loss
    for engine in engines:
        engine.close()
    final = _durable(make_engine, db)
    winner = outcomes.index(wins[0])
    assert final.state.get("domain.answer") == f"answer-{winner}"
    assert _counts(final) == {"cnt_a": 1, "cnt_b": 1, "cnt_c": 0}
    final.close()


def test_two_engines_racing_resume_workflow_exactly_one_wins(
    make_engine: Any, tmp_path: Any
) -> None:
    db = tmp_path / "d.db"
    wf = "steps: [a, b, c]\n"
    first = _durable(make_engine, db)
    iterator = first.iter_workflow(wf, run_id="wf")
    for event in iterator:
        if isinstance(event, StepCommitted):
            break  # a stored; stop the run as a crash would
    iterator.close()
    first.close()
    engines = [_durable(make_engine, db), _durable(make_engine, db)]
    gate = threading.Barrier(2)
    for engine in engines:
        engine.pipeline.add(_Gate(gate))
    outcomes: list[Any] = [None, None]

    def go(i: int) -> None:
        try:
            outcomes[i] = engines[i].resume_workflow(wf)
        except WorkflowError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    losses = [o for o in outcomes if isinstance(o, Exception)]
    assert len(losses) == 1, outcomes
    assert isinstance(losses[0].__cause__, StoreConflictError)
    for engine in engines:
        engine.close()
    final = _durable(make_engine, db)
    assert _counts(final) == {"cnt_a": 1, "cnt_b": 1, "cnt_c": 1}
    final.close()


def test_a_step_that_writes_nothing_advances_the_stored_position(
    make_engine: Any, tmp_path: Any
) -> None:
    db = tmp_path / "d.db"
    wf = "steps: [a, look, b]\n"
    NOOP_CALLS.clear()
    first = _durable(make_engine, db)
    iterator = first.iter_workflow(wf, run_id="wf")
    committed = []
    for event in iterator:
        if isinstance(event, StepCommitted):
            committed.append(event.process)
            if event.process == "look":
                break
    iterator.close()
    first.close()
    with SqliteStore(db) as store:
        version, text = store.position("wf")
        assert version == 1 and '"stack":[[0,2,0]]' in text.replace(" ", "")
    again = _durable(make_engine, db)
    run = again.resume_workflow(wf)
    assert run.executed == ("b",) and NOOP_CALLS == ["look"]
    assert _counts(again) == {"cnt_a": 1, "cnt_b": 1, "cnt_c": 0}
    again.close()


@process(inputs=["domain.n"], outputs=["domain.n"])
async def ask_async(ctx: Any) -> Any:
    ctx.domain.n += 1
    return interrupt("async?", into="domain.note")


@pytest.mark.parametrize("durable", [False, True], ids=["plain", "durable"])
def test_an_async_process_interrupts_too(make_engine: Any, tmp_path: Any, durable: bool) -> None:
    wf = "steps: [a, ask_async, b]\n"
    kwargs = {"store": str(tmp_path / "d.db"), "run_id": "wf"} if durable else {}
    engine = _setup(make_engine(CONTEXT, **kwargs))
    engine.register(ask_async)
    run = engine.execute_workflow(wf, run_id="wf")  # the async process runs on the engine loop
    assert run.paused and run.pending.kind == "interrupt" and run.executed == ("a", "ask_async")
    if durable:
        engine.close()
        engine = _setup(make_engine(CONTEXT, **kwargs))
        engine.register(ask_async)
        [request] = engine.pending()
        assert request == run.pending
    done = engine.resume("wf", run.pending.token, "ok", workflow=wf)
    assert done.status == "completed" and done.executed == ("b",)
    assert engine.state.get("domain.n") == 1 and engine.state.get("domain.note") == "ok"


def test_aexecute_workflow_pauses_and_the_hub_gets_run_paused(make_engine: Any) -> None:
    import asyncio

    engine = _plain(make_engine)
    rx = engine.signals.subscribe(topics=["flux:*"])
    run = asyncio.run(engine.aexecute_workflow(WORKFLOW, run_id="as"))
    assert run.paused and run.executed == ("a",)
    got = [rx.try_recv() for _ in range(len(rx))]
    assert [e.topic for e in got][-2:] == ["flux:step_committed", "flux:paused"]
    assert got[-1].pending == run.pending
    done = engine.resume("as", run.pending.token, "yes")
    assert done.paused and done.executed == ("b", "ask")


def test_a_dry_run_may_pause_and_leaves_no_request(make_engine: Any) -> None:
    engine = _plain(make_engine)
    run = engine.execute_workflow(WORKFLOW, dry_run=True, run_id="dry")
    assert run.paused and run.dry_run and run.executed == ("a",)
    assert run.state.to_dict()["domain"]["cnt_a"] == 1
    assert engine.state.version == 0 and engine.pending() == []  # nothing here: the fork's
    with pytest.raises(ResumeTokenError):
        engine.resume("dry", run.pending.token, "yes")


def test_steps_that_write_nothing_keep_the_stored_position_small(
    make_engine: Any, tmp_path: Any
) -> None:
    import json

    db = tmp_path / "d.db"
    engine = _durable(make_engine, db)
    NOOP_CALLS.clear()
    run = engine.execute_workflow("steps: [" + ", ".join(["look"] * 150) + "]\n", run_id="wf")
    assert len(run.executed) == 150 and len(NOOP_CALLS) == 150
    version, text = engine.store.position("wf")
    data = json.loads(text)
    assert version == 0 and data["position"]["stack"] == []  # the run's end position
    assert len(data["steps"]) == 64 and data["steps"][-1]["loc"][3] == "steps[149]"
    engine.close()


def test_the_schema_applies_to_the_answer_and_a_refused_one_changes_nothing(
    make_engine: Any,
) -> None:
    from theus import SchemaViolationError

    pydantic = pytest.importorskip("pydantic")

    class Domain(pydantic.BaseModel):
        n: int = 0
        answer: int | None = None
        note: Any = None
        cnt_a: int = 0
        cnt_b: int = 0
        cnt_c: int = 0

    engine = _setup(make_engine(CONTEXT, schema={"domain": Domain}))
    run = engine.execute_workflow(WORKFLOW, run_id="s")
    version = engine.state.version
    with pytest.raises(SchemaViolationError):
        engine.resume("s", run.pending.token, "not an int")
    assert engine.state.version == version and engine.pending() == [run.pending]
    done = engine.resume("s", run.pending.token, 7)  # the request is still open
    assert done.paused and engine.state.get("domain.answer") == 7
