"""spec/18 §1, §2.5, §4 — Theus 3 workflow shapes run with the step sequence Theus 3 gives on
the same state, and where this version deliberately differs, the documented difference.

What Theus 3 (3.0.x) does, as the expectations below assume: a workflow is its top-level
``steps:`` list; a step is a process name, ``process: name``, or ``flux: if`` / ``while`` /
``run``. Steps run in order; a condition is evaluated on the state as the last process left
it: an ``if`` once when it is reached, a ``while`` before each iteration. Signals are those of
the latest version only (a later commit drops them). Every step reached counts one operation
against ``max_ops`` and so does every ``while`` iteration (also of an empty body); exceeding it
stops the run with a ``RuntimeError``. Each sequence below is written out by hand from those
rules for the given start state.

Differences (spec/18 §1, §2.5): signal values are typed, not strings (``== 'True'`` becomes
``== True``, and the string spelling logs a warning naming its location); what Theus 3 ignored
(unknown keys, a non-list ``then``, a missing ``steps``/``then``, a step with both ``process``
and ``flux``) or found only while running (an unknown process) is a load error with a location
before anything runs; a failing process raises ``WorkflowError`` (a ``RuntimeError``) with the
cause chained; ``condition: true`` (a YAML boolean) is allowed; ``domain.count`` and
``global.x`` read the state.
"""

from __future__ import annotations

import logging
import textwrap
from typing import Any

import pytest

from theus import FluxError, WorkflowError, WorkflowLimitError, process
from theus.flux import StepCommitted


def _engine(make_engine: Any, **domain: Any) -> Any:
    engine = make_engine({"domain": {"count": 0, "ticks": 0, **domain}, "global": {"mode": "slow"}})

    @process(inputs=["domain.count"], outputs=["domain.count"])
    def inc(ctx: Any) -> None:
        ctx.domain.count += 1

    @process(inputs=["domain.count"], outputs=["domain.count"])
    def dec(ctx: Any) -> None:
        ctx.domain.count -= 1

    @process(inputs=["domain.ticks"], outputs=["domain.ticks"])
    def tick(ctx: Any) -> None:
        ctx.domain.ticks += 1

    @process(outputs=["domain.sig_stop"])
    def stop(ctx: Any) -> None:
        ctx.domain.sig_stop = True

    @process(outputs=["domain.cmd_go"])
    def go(ctx: Any) -> None:
        ctx.domain.cmd_go = True

    @process(inputs=["domain.count", "domain.ticks"], outputs=["domain.sig_stop", "domain.ticks"])
    def check(ctx: Any) -> None:
        if ctx.domain.count >= 3:
            ctx.domain.sig_stop = True
        else:
            ctx.domain.ticks += 1

    @process(outputs=["global.mode"])
    def fast(ctx: Any) -> None:
        ctx.global_.mode = "fast"

    @process(inputs=["domain.count"], outputs=["domain.count"])
    def fail(ctx: Any) -> None:
        ctx.domain.count = -100
        raise ValueError("bad input")

    for fn in (inc, dec, tick, stop, go, check, fast, fail):
        engine.register(fn)
    return engine


def _wf(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _run(engine: Any, text: str, **kwargs: Any) -> tuple[str, ...]:
    """Run ``text``; the processes it ran, checked against its StepCommitted events."""
    events: list[Any] = []
    run = engine.execute_workflow(text, on_event=events.append, **kwargs)
    assert tuple(e.process for e in events if isinstance(e, StepCommitted)) == run.executed
    assert run.version == engine.state.version
    return tuple(run.executed)


LINEAR = _wf(
    """
    steps:
      - inc
      - process: tick
      - inc
    """
)

WHILE = _wf(
    """
    steps:
      - tick
      - flux: while
        condition: "domain['count'] < 3"
        do:
          - inc
          - process: tick
      - tick
    """
)

IF_ELSE = _wf(
    """
    steps:
      - flux: if
        condition: "domain['count'] >= 2"
        then: [inc]
        else:
          - dec
          - dec
      - flux: if
        condition: "domain['count'] == 3"
        then:
          - process: tick
    """
)

NESTED = _wf(
    """
    steps:
      - flux: while
        condition: "domain['count'] < 4"
        do:
          - inc
          - flux: if
            condition: "domain['count'] % 2 == 0"
            then:
              - flux: run
                steps:
                  - flux: while
                    condition: "domain['ticks'] < domain['count']"
                    do: [tick]
            else: [fast]
    """
)

IF_ONCE = _wf(
    """
    steps:
      - flux: if
        condition: "domain['count'] == 0"
        then:
          - inc
          - flux: run
            steps: [inc, tick]
          - flux: if
            condition: "domain['count'] == 0"
            then: [dec]
            else: [tick]
    """
)

GET_DEFAULT = _wf(
    """
    steps:
      - flux: while
        condition: "domain.get('count', 0) < 2 and domain.get('missing', 0) == 0"
        do: [inc]
    """
)

# the Theus 3 agent loop `signal.get('sig_stop') != 'True'`, migrated (spec/18 §2.5)
AGENT = _wf(
    """
    steps:
      - flux: while
        condition: "signal.get('sig_stop') != True"
        do:
          - inc
          - check
      - tick
    """
)

SIGNAL_ONE_VERSION = _wf(
    """
    steps:
      - stop
      - flux: if
        condition: "signal.get('sig_stop') == True"
        then: [tick]
      - flux: if
        condition: "signal.get('sig_stop') == True"
        then: [inc]
        else: [dec]
      - go
      - flux: if
        condition: "cmd.get('cmd_go')"
        then:
          - flux: run
            steps: [inc]
    """
)


@pytest.mark.parametrize(
    ("text", "start", "sequence", "end"),
    [
        (LINEAR, {}, ("inc", "tick", "inc"), {"count": 2, "ticks": 1}),
        (LINEAR, {"count": 7}, ("inc", "tick", "inc"), {"count": 9, "ticks": 1}),
        (WHILE, {}, ("tick",) + ("inc", "tick") * 3 + ("tick",), {"count": 3, "ticks": 5}),
        (WHILE, {"count": 2}, ("tick", "inc", "tick", "tick"), {"count": 3, "ticks": 3}),
        (WHILE, {"count": 7}, ("tick", "tick"), {"count": 7, "ticks": 2}),
        (IF_ELSE, {"count": 2}, ("inc", "tick"), {"count": 3, "ticks": 1}),
        (IF_ELSE, {}, ("dec", "dec"), {"count": -2, "ticks": 0}),
        (IF_ELSE, {"count": 5}, ("inc",), {"count": 6, "ticks": 0}),
        (
            NESTED,
            {},
            ("inc", "fast", "inc", "tick", "tick", "inc", "fast", "inc", "tick", "tick"),
            {"count": 4, "ticks": 4},
        ),
        (NESTED, {"count": 3}, ("inc", "tick", "tick", "tick", "tick"), {"count": 4, "ticks": 4}),
        (NESTED, {"count": 1, "ticks": 9}, ("inc", "inc", "fast", "inc"), {"count": 4, "ticks": 9}),
        (IF_ONCE, {}, ("inc", "inc", "tick", "tick"), {"count": 2, "ticks": 2}),
        (IF_ONCE, {"count": 1}, (), {"count": 1, "ticks": 0}),
        (GET_DEFAULT, {}, ("inc", "inc"), {"count": 2, "ticks": 0}),
        (GET_DEFAULT, {"missing": 1}, (), {"count": 0, "ticks": 0}),
        (AGENT, {}, ("inc", "check") * 3 + ("tick",), {"count": 3, "ticks": 3}),
        (AGENT, {"count": 5}, ("inc", "check", "tick"), {"count": 6, "ticks": 1}),
        (SIGNAL_ONE_VERSION, {}, ("stop", "tick", "dec", "go", "inc"), {"count": 0, "ticks": 1}),
    ],
)
def test_theus3_shapes_give_the_theus3_step_sequence(
    make_engine: Any, text: str, start: dict[str, int], sequence: tuple[str, ...],
    end: dict[str, int],
) -> None:  # fmt: skip
    engine = _engine(make_engine, **start)
    assert _run(engine, text) == sequence
    state = engine.state
    assert {k: state.domain[k] for k in end} == end
    assert state.version == len(sequence)


NESTED_LIMIT = _wf(
    """
    steps:
      - inc
      - flux: run
        steps:
          - flux: while
            condition: "True"
            do: [tick, tick]
    """
)


@pytest.mark.parametrize(
    ("max_ops", "ticks"),
    # ops: inc 1, run 2, while 3, then per iteration 1 + 2 ticks: 4 5 6, 7 8 9, 10 ...
    [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1), (6, 2), (8, 3), (9, 4), (10, 4), (11, 5)],
)
def test_max_ops_counts_as_theus3(make_engine: Any, max_ops: int, ticks: int) -> None:
    engine = _engine(make_engine)
    with pytest.raises(WorkflowLimitError, match=f"max_ops={max_ops}") as info:
        _run(engine, NESTED_LIMIT, max_ops=max_ops)
    # Theus 3 raised RuntimeError("Flux Safety Trip ..."): `except RuntimeError` still works
    assert isinstance(info.value, RuntimeError)
    assert info.value.executed == ("inc",) + ("tick",) * ticks
    assert engine.state.domain.ticks == ticks and engine.state.domain.count == 1


@pytest.mark.parametrize("max_ops", [1, 5, 50])
def test_an_empty_while_body_still_counts(make_engine: Any, max_ops: int) -> None:
    # Theus 3.0.23 and later count every iteration, so an empty body cannot spin forever
    engine = _engine(make_engine)
    text = "steps:\n  - tick\n  - flux: while\n    condition: 'True'\n    do: []\n"
    with pytest.raises(WorkflowLimitError, match=f"max_ops={max_ops}") as info:
        _run(engine, text, max_ops=max_ops)
    assert info.value.executed == ("tick",)
    assert (info.value.line, info.value.column) == (3, 5)


# -- documented differences ---------------------------------------------------------------


def test_string_compared_signal_warns_and_is_typed(
    make_engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    theus3 = AGENT.replace("!= True", "!= 'True'")
    engine = _engine(make_engine)
    with caplog.at_level(logging.WARNING, logger="theus"):
        with pytest.raises(WorkflowLimitError, match="max_ops=20"):
            # Theus 3 stops after 3 iterations; here True != 'True' holds for ever
            _run(engine, theus3, max_ops=20)
    warned = [r.getMessage() for r in caplog.records if r.name == "theus"]
    assert any(
        m.startswith("<string>:3:17: ") and "'True'" in m and "typed" in m for m in warned
    ), warned
    # the migrated spelling gives the Theus 3 sequence
    engine2 = _engine(make_engine)
    assert _run(engine2, AGENT) == ("inc", "check") * 3 + ("tick",)


@pytest.mark.parametrize(
    ("text", "needle", "line", "column"),
    [
        # Theus 3 ignored the unknown key and ran `inc` twice
        ("steps:\n  - inc\n  - {process: inc, retries: 3}\n", "unknown key 'retries'", 3, 20),
        # Theus 3 read a non-list `then` as an empty block
        ("steps:\n  - inc\n  - flux: if\n    condition: 'True'\n    then: tick\n",
         "must be a list of steps", 5, 11),
        # Theus 3 ran a document without `steps:` as an empty workflow
        ("step:\n  - inc\n", "did you mean 'steps'", 1, 1),
        # Theus 3 allowed an `if` without `then`
        ("steps:\n  - inc\n  - flux: if\n    condition: 'False'\n    else: [tick]\n",
         "needs `then:`", 3, 5),
        # Theus 3 ran the process of a step that also says `flux:`
        ("steps:\n  - inc\n  - {process: tick, flux: run, steps: []}\n",
         "unknown key 'process'", 3, 6),
        # Theus 3 ran `inc`, then failed on the unknown name
        ("steps:\n  - inc\n  - process: nosuch\n", "unknown process 'nosuch'", 3, 14),
    ],
)  # fmt: skip
def test_what_theus3_ignored_is_a_load_error(
    make_engine: Any, text: str, needle: str, line: int, column: int
) -> None:
    engine = _engine(make_engine)
    with pytest.raises(FluxError, match=needle) as info:
        engine.execute_workflow(text)
    assert (info.value.line, info.value.column) == (line, column)
    assert str(info.value).startswith(f"<string>:{line}:{column}: ")
    assert engine.state.version == 0 and engine.state.domain.count == 0


def test_a_failing_process_is_a_workflow_error_with_its_cause(make_engine: Any) -> None:
    # Theus 3 let the process's own exception through; earlier steps stayed committed there too
    engine = _engine(make_engine)
    text = "steps:\n  - inc\n  - flux: run\n    steps: [tick, fail, inc]\n"
    with pytest.raises(WorkflowError) as info:
        _run(engine, text)
    err = info.value
    assert isinstance(err, RuntimeError) and isinstance(err.__cause__, ValueError)
    assert str(err) == (
        "<string>:4:19: steps[1].steps[1]: process 'fail' failed: ValueError: bad input"
    )
    assert (err.process, err.executed) == ("fail", ("inc", "tick"))
    state = engine.state
    assert (state.domain.count, state.domain.ticks, state.version) == (1, 1, 2)


@pytest.mark.parametrize(("start", "sequence"), [(0, ("inc",) * 3), (2, ("inc",)), (5, ())])
def test_what_theus3_could_not_say(make_engine: Any, start: int, sequence: tuple[str, ...]) -> None:
    # a YAML boolean condition (a Theus 3 parse error), attribute reads and `global`
    engine = _engine(make_engine, count=start)
    text = _wf(
        """
        steps:
          - flux: if
            condition: true
            then:
              - flux: while
                condition: domain.count < 3 and global.mode != 'fast'
                do: [inc]
        """
    )
    assert _run(engine, text) == sequence
    assert engine.state.domain.count == max(start, 3)
