"""spec/18 §4–§7 — differential tests of Flux runs: random valid workflows, run on the backend
under test and on the reference backend, must end in identical states with identical results
and event sequences; a small model interpreter (below) says what that state must be.

The generated programs use a fixed set of processes over int counters in ``domain``
(``inc_X``, ``add_X(by)``, and ``flag``, which raises the signal ``domain.sig_flag``), ``with:``
literal and ``{expr: ...}`` arguments, ``if``/``else``, ``while`` loops that terminate (the
condition tests a counter the body's first step increases; sometimes also a
``max_iterations`` that may be hit), nested ``run`` (inline or ``workflow:`` files) and
``parallel`` steps. Each branch of a parallel step owns a disjoint set of counters: its
processes, conditions and arguments touch only those, and it raises no signal, so the final
state does not depend on how the branches interleave (their events may: for those, each
branch's subsequence and the multiset are compared).

Also: a run stopped with ``iter_workflow(...).close()`` after k events and resumed with
``position=`` (the object, or its JSON text) ends where an uninterrupted run ends, and no
process runs twice.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from theus import TheusEngine, WorkflowError, WorkflowLimitError, process
from theus.flux import Position, StepCommitted
from theus_conformance.support import REFERENCE, require_reference

COUNTERS = ("a", "b", "c", "d")
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------------------------
# the processes (one set per engine; each counts how often its body ran)


def _processes(runs: Counter[str]) -> list[Any]:
    made: list[Any] = []
    for x in COUNTERS:

        def inc(ctx: Any, _x: str = x) -> None:
            runs[f"inc_{_x}"] += 1
            ctx.domain[_x] = ctx.domain[_x] + 1

        def add(ctx: Any, by: int = 1, _x: str = x) -> None:
            runs[f"add_{_x}"] += 1
            ctx.domain[_x] = ctx.domain[_x] + by

        made.append(process(inputs=[f"domain.{x}"], outputs=[f"domain.{x}"], name=f"inc_{x}")(inc))
        made.append(process(inputs=[f"domain.{x}"], outputs=[f"domain.{x}"], name=f"add_{x}")(add))

    def flag(ctx: Any) -> None:
        runs["flag"] += 1
        ctx.domain.sig_flag = True

    made.append(process(outputs=["domain.sig_flag"], name="flag")(flag))
    return made


def _engine(backend: str, counters: dict[str, int]) -> tuple[TheusEngine, Counter[str]]:
    engine = TheusEngine(context={"domain": dict(counters), "global": {}}, backend=backend)
    runs: Counter[str] = Counter()
    for fn in _processes(runs):
        engine.register(fn)
    return engine, runs


# --------------------------------------------------------------------------------------------
# the program: a small tree, rendered to YAML and run by a model interpreter


@dataclass(frozen=True)
class Cond:
    """A condition: its text, its meaning on (counters, signal raised?), and the YAML form."""

    text: str
    fn: Callable[[dict[str, int], bool], bool]
    yaml_bool: bool = False  # rendered as the YAML boolean `true` (text is "True")


@dataclass(frozen=True)
class Proc:
    name: str
    by: int | None = None  # add_X's literal `by`
    by_expr: tuple[str, str] | None = None  # (counter read, text) for `by: {expr: ...}`


@dataclass(frozen=True)
class If:
    cond: Cond
    then: tuple[Any, ...]
    else_: tuple[Any, ...] | None


@dataclass(frozen=True)
class While:
    cond: Cond
    body: tuple[Any, ...]
    max_iterations: int | None


@dataclass(frozen=True)
class Run:
    steps: tuple[Any, ...]
    file: bool  # `workflow: incN.yaml` instead of inline `steps:`


@dataclass(frozen=True)
class Par:
    branches: tuple[tuple[Any, ...], ...]


def _atom(draw: Any, counters: Sequence[str], signals: bool) -> Cond:
    x = draw(st.sampled_from(counters))
    k = draw(st.integers(0, 6))
    kinds = ["lt", "even", "get_ge", "true"] + (["sig", "nosig"] * 2 if signals else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "lt":
        return Cond(f"domain.{x} < {k}", lambda s, _g: s[x] < k)
    if kind == "even":
        return Cond(f"domain['{x}'] % 2 == 0", lambda s, _g: s[x] % 2 == 0)
    if kind == "get_ge":
        return Cond(f"domain.get('{x}', 0) >= {k}", lambda s, _g: s[x] >= k)
    if kind == "sig":
        return Cond("signal.get('sig_flag') == True", lambda _s, g: g)
    if kind == "nosig":
        return Cond("not cmd.get('sig_flag')", lambda _s, g: not g)
    return Cond("True", lambda _s, _g: True, yaml_bool=draw(st.booleans()))


def _cond(draw: Any, counters: Sequence[str], signals: bool) -> Cond:
    first = _atom(draw, counters, signals)
    how = draw(st.sampled_from(["one", "one", "and", "or", "not"]))
    if how == "one":
        return first
    if how == "not":
        return Cond(f"not ({first.text})", lambda s, g: not first.fn(s, g))
    second = _atom(draw, counters, signals)
    if how == "and":
        return Cond(
            f"{first.text} and {second.text}", lambda s, g: first.fn(s, g) and second.fn(s, g)
        )
    return Cond(f"{first.text} or {second.text}", lambda s, g: first.fn(s, g) or second.fn(s, g))


def _proc(draw: Any, counters: Sequence[str], signals: bool) -> Proc:
    choices = ["inc", "add", "add_expr"] + (["flag", "flag"] if signals else [])
    kind = draw(st.sampled_from(choices))
    if kind == "flag":
        return Proc("flag")
    x = draw(st.sampled_from(counters))
    if kind == "inc":
        return Proc(f"inc_{x}")
    if kind == "add":
        return Proc(f"add_{x}", by=draw(st.integers(1, 3)))
    y = draw(st.sampled_from(counters))
    text = draw(st.sampled_from([f"domain.{y} % 3 + 1", f"min(domain['{y}'], 2) + 1"]))
    return Proc(f"add_{x}", by_expr=(y, text))


@st.composite
def _block(
    draw: Any, counters: tuple[str, ...], signals: bool, depth: int, size: int = 3, low: int = 0
) -> Any:
    return tuple(draw(_step(counters, signals, depth)) for _ in range(draw(st.integers(low, size))))


@st.composite
def _step(draw: Any, counters: tuple[str, ...], signals: bool, depth: int) -> Any:
    kinds = ["proc", "proc", "proc"]
    if depth < 3:
        kinds += ["if", "while", "run"]
        if len(counters) >= 2:
            kinds.append("par")
    kind = draw(st.sampled_from(kinds))
    if kind == "proc":
        return _proc(draw, counters, signals)
    inner = depth + 1
    if kind == "if":
        cond = _cond(draw, counters, signals)
        then = draw(_block(counters, signals, inner))
        has_else = draw(st.booleans())
        else_ = draw(_block(counters, signals, inner)) if has_else else None
        return If(cond, then, else_)
    if kind == "while":
        x = draw(st.sampled_from(counters))
        guard = draw(st.integers(2, 7))
        cond = Cond(f"domain.{x} < {guard}", lambda s, _g: s[x] < guard)
        if draw(st.booleans()):
            extra = _atom(draw, counters, signals)
            base = cond
            cond = Cond(
                f"{base.text} and ({extra.text})", lambda s, g: base.fn(s, g) and extra.fn(s, g)
            )
        first = Proc(f"inc_{x}") if draw(st.booleans()) else Proc(f"add_{x}", by=1)
        body = (first, *draw(_block(counters, signals, inner, size=2)))
        limit = draw(st.one_of(st.none(), st.integers(1, 4)))
        return While(cond, body, limit)
    if kind == "run":
        return Run(draw(_block(counters, signals, inner)), draw(st.booleans()))
    # parallel: 2-3 branches, each owning a disjoint non-empty set of counters
    order = draw(st.permutations(counters))
    n = draw(st.integers(2, min(3, len(order))))
    cuts = sorted(draw(st.lists(st.integers(1, len(order) - 1), min_size=n - 1,
                                max_size=n - 1, unique=True)))  # fmt: skip
    parts = [tuple(order[i:j]) for i, j in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    return Par(tuple(draw(_block(p, False, inner)) for p in parts))


@st.composite
def programs(draw: Any) -> tuple[tuple[Any, ...], dict[str, int], int | None]:
    """(top-level steps, initial counters, max_ops or None)."""
    steps = draw(_block(COUNTERS, True, 0, size=5, low=1))
    counters = {x: draw(st.integers(0, 5)) for x in COUNTERS}
    max_ops = draw(st.one_of(st.none(), st.none(), st.integers(1, 40)))
    if max_ops is not None and _has_parallel(steps):
        max_ops = None  # which branch would hit the limit first is free: not compared
    return steps, counters, max_ops


def _has_parallel(steps: Sequence[Any]) -> bool:
    for s in steps:
        if isinstance(s, Par):
            return True
        if any(_has_parallel(b) for b in _blocks(s)):
            return True
    return False


def _blocks(step: Any) -> tuple[tuple[Any, ...], ...]:
    if isinstance(step, If):
        return (step.then, step.else_ or ())
    if isinstance(step, While):
        return (step.body,)
    if isinstance(step, Run):
        return (step.steps,)
    if isinstance(step, Par):
        return step.branches
    return ()


# -- YAML ---------------------------------------------------------------------------------


class _Files:
    """Writes the `workflow:` files of a program into a directory."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.n = 0

    def include(self, steps: tuple[Any, ...]) -> str:
        self.n += 1
        name = f"inc{self.n}.yaml"
        doc = {"steps": [self.render(s) for s in steps]}
        with open(os.path.join(self.directory, name), "w", encoding="utf-8") as f:
            f.write(yaml.safe_dump(doc, sort_keys=False))
        return name

    def render(self, step: Any) -> Any:
        if isinstance(step, Proc):
            if step.by is not None:
                return {"process": step.name, "with": {"by": step.by}}
            if step.by_expr is not None:
                return {"process": step.name, "with": {"by": {"expr": step.by_expr[1]}}}
            return step.name
        if isinstance(step, If):
            out: dict[str, Any] = {"flux": "if", "condition": _cond_yaml(step.cond),
                                   "then": [self.render(s) for s in step.then]}  # fmt: skip
            if step.else_ is not None:
                out["else"] = [self.render(s) for s in step.else_]
            return out
        if isinstance(step, While):
            out = {"flux": "while", "condition": _cond_yaml(step.cond)}
            if step.max_iterations is not None:
                out["max_iterations"] = step.max_iterations
            out["do"] = [self.render(s) for s in step.body]
            return out
        if isinstance(step, Run):
            if step.file:
                return {"flux": "run", "workflow": self.include(step.steps)}
            return {"flux": "run", "steps": [self.render(s) for s in step.steps]}
        assert isinstance(step, Par)
        return {
            "flux": "parallel",
            "branches": [[self.render(s) for s in b] for b in step.branches],
        }


def _cond_yaml(cond: Cond) -> Any:
    return True if cond.yaml_bool else cond.text


def write_program(directory: str, steps: tuple[Any, ...], max_ops: int | None = None) -> str:
    """The main workflow file of ``steps`` (and its included files) in ``directory``."""
    files = _Files(directory)
    doc: dict[str, Any] = {"name": "generated"}
    if max_ops is not None:
        doc["max_ops"] = max_ops
    doc["steps"] = [files.render(s) for s in steps]
    path = os.path.join(directory, "main.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(yaml.safe_dump(doc, sort_keys=False))
    return path


# -- the model ----------------------------------------------------------------------------


class _Limit(Exception):
    pass


class Model:
    """What spec/18 §4 says a run of the program does: final counters, version, executed
    processes (branch 0's first in a parallel step), and whether it hit a limit."""

    def __init__(self, counters: dict[str, int], max_ops: int | None) -> None:
        self.state = dict(counters)
        self.version = 0
        self.signal = False
        self.executed: list[str] = []
        self.ops = 0
        self.max_ops = max_ops if max_ops is not None else 10_000

    def count(self) -> None:
        self.ops += 1
        if self.ops > self.max_ops:
            raise _Limit

    def run(self, steps: Sequence[Any]) -> bool:
        """True when the run completed, False when it hit a limit."""
        try:
            self.block(steps, self.executed)
        except _Limit:
            return False
        return True

    def block(self, steps: Sequence[Any], executed: list[str]) -> None:
        for step in steps:
            self.count()
            if isinstance(step, Proc):
                self.proc(step, executed)
            elif isinstance(step, If):
                taken = step.cond.fn(self.state, self.signal)
                self.block(step.then if taken else step.else_ or (), executed)
            elif isinstance(step, While):
                iteration = 0
                while step.cond.fn(self.state, self.signal):
                    if step.max_iterations is not None and iteration >= step.max_iterations:
                        raise _Limit
                    self.count()
                    iteration += 1
                    self.block(step.body, executed)
            elif isinstance(step, Run):
                self.block(step.steps, executed)
            else:
                failed = False
                for branch in step.branches:  # disjoint: running them one by one is the same
                    done: list[str] = []
                    try:
                        self.block(branch, done)
                    except _Limit:
                        failed = True
                    executed.extend(done)
                if failed:
                    raise _Limit

    def proc(self, step: Proc, executed: list[str]) -> None:
        if step.name == "flag":
            self.signal = True
        else:
            x = step.name.split("_", 1)[1]
            if step.by_expr is not None:
                y, text = step.by_expr
                by = self.state[y] % 3 + 1 if "%" in text else min(self.state[y], 2) + 1
            else:
                by = step.by if step.by is not None else 1
            self.state[x] += by
            self.signal = False
        self.version += 1
        executed.append(step.name)


# --------------------------------------------------------------------------------------------
# running and comparing


@dataclass
class Outcome:
    """What one backend did with one program."""

    events: list[Any]
    state: dict[str, Any]
    version: int
    executed: tuple[str, ...] | None
    error: tuple[type, str] | None
    runs: Counter[str]


def _run(backend: str, path: str, counters: dict[str, int]) -> Outcome:
    engine, runs = _engine(backend, counters)
    events: list[Any] = []
    try:
        try:
            result = engine.execute_workflow(path, on_event=events.append, run_id="r")
            executed, error = result.executed, None
            assert result.version == engine.state.version
        except WorkflowError as exc:
            executed, error = None, (type(exc), str(exc))
        state = engine.state
        return Outcome(events, state.to_dict(), state.version, executed, error, runs)
    finally:
        engine.close()


def _parallel_path(steps: Sequence[Any], address: tuple[int, ...]) -> list[tuple[Any, ...]]:
    """For the step at ``address``: (parallel step's address, branch, whiles above it) of
    every parallel step it is inside, outermost first."""
    out: list[tuple[Any, ...]] = []
    step = steps[address[0]]
    here: tuple[int, ...] = address[:1]
    whiles = 0
    rest = address[1:]
    while rest:
        block, index = rest[0], rest[1]
        if isinstance(step, Par):
            out.append((here, block, whiles))
        if isinstance(step, While):
            whiles += 1
        step = _blocks(step)[block][index]
        here = (*here, block, index)
        rest = rest[2:]
    return out


def _fields(event: Any, versions: bool) -> tuple[Any, ...]:
    kind = type(event).__name__
    loc = event.loc
    where = None if loc is None else (loc.file.rsplit("/", 1)[-1], loc.line, loc.column,
                                      loc.key_path)  # fmt: skip
    if kind in ("StepStarted", "StepCommitted", "StepFailed"):
        version = event.version if versions and kind == "StepCommitted" else None
        return (kind, event.process, event.address, event.iterations, version, where)
    if kind == "RunStarted":
        return (kind, event.name, event.resumed, event.dry_run, tuple(sorted(event.inputs.items())))
    if kind == "RunCompleted":
        run = event.run
        return (kind, run.executed, run.version, run.ops, run.run_id)
    if kind == "RunFailed":
        return (kind, type(event.error), str(event.error), where)
    return (kind,)


def canonical(steps: Sequence[Any], events: Sequence[Any], depth: int = 0) -> list[Any]:
    """The events with each parallel step's part replaced by its branches' subsequences
    (branch order, each in its own order; versions left out: they depend on the
    interleaving)."""
    out: list[Any] = []
    i = 0
    while i < len(events):
        event = events[i]
        address = getattr(event, "address", None)
        path = _parallel_path(steps, address) if address else []
        if len(path) <= depth:
            out.append(_fields(event, versions=depth == 0))
            i += 1
            continue
        here, _, whiles = path[depth]
        key = (here, event.iterations[:whiles])
        groups: dict[int, list[Any]] = {}
        while i < len(events):
            e = events[i]
            a = getattr(e, "address", None)
            p = _parallel_path(steps, a) if a else []
            if len(p) <= depth or (p[depth][0], e.iterations[: p[depth][2]]) != key:
                break
            groups.setdefault(p[depth][1], []).append(e)
            i += 1
        out.append(("parallel", key, [(b, canonical(steps, groups[b], depth + 1))
                                      for b in sorted(groups)]))  # fmt: skip
    return out


def _check_model(steps: tuple[Any, ...], counters: dict[str, int], max_ops: int | None,
                 got: Outcome) -> None:  # fmt: skip
    model = Model(counters, max_ops)
    completed = model.run(steps)
    assert {x: got.state["domain"][x] for x in COUNTERS} == model.state
    assert got.version == model.version
    if completed:
        assert got.error is None, got.error
        assert got.executed == tuple(model.executed)
    else:
        assert got.error is not None and got.error[0] is WorkflowLimitError, got.error


@SETTINGS
@given(program=programs())
def test_random_workflows_match_the_reference(backend: str, program: Any) -> None:
    require_reference(backend)
    steps, counters, max_ops = program
    with tempfile.TemporaryDirectory() as tmp:
        path = write_program(tmp, steps, max_ops)
        tested = _run(backend, path, counters)
        reference = _run(REFERENCE, path, counters)
    assert tested.state == reference.state
    assert tested.version == reference.version
    assert tested.executed == reference.executed
    assert tested.error == reference.error
    assert [e.seq for e in tested.events] == list(range(len(tested.events)))
    assert canonical(steps, tested.events) == canonical(steps, reference.events)
    assert Counter(_fields(e, False) for e in tested.events) == Counter(
        _fields(e, False) for e in reference.events
    )
    commits = sorted(e.version for e in tested.events if isinstance(e, StepCommitted))
    assert commits == sorted(e.version for e in reference.events if isinstance(e, StepCommitted))
    assert commits == list(range(1, tested.version + 1))
    _check_model(steps, counters, max_ops, tested)


@SETTINGS
@given(program=programs())
def test_the_model_agrees_on_every_backend(backend: str, program: Any) -> None:
    steps, counters, max_ops = program
    with tempfile.TemporaryDirectory() as tmp:
        got = _run(backend, write_program(tmp, steps, max_ops), counters)
    _check_model(steps, counters, max_ops, got)


# -- stop and resume ----------------------------------------------------------------------


def _resumed(
    backend: str, path: str, counters: dict[str, int], k: int, via_json: bool
) -> tuple[Outcome, int]:
    """Stop the run after ``k`` events, resume it from its position; (outcome, events seen
    before the stop)."""
    engine, runs = _engine(backend, counters)
    try:
        it = engine.iter_workflow(path, run_id="r")
        events = []
        for _ in range(k):
            try:
                events.append(next(it))
            except (StopIteration, WorkflowError):
                break
        it.close()
        position: Any = it.position
        if via_json:
            position = Position.from_json(json.loads(json.dumps(position.to_json())))
        before = [e.process for e in events if isinstance(e, StepCommitted)]
        try:
            if position.done:
                executed: tuple[str, ...] | None = tuple(before)
                error = None
            else:
                result = engine.execute_workflow(path, position=position, run_id="r")
                executed, error = tuple(before) + result.executed, None
        except WorkflowError as exc:
            executed, error = None, (type(exc), str(exc))
        state = engine.state
        return Outcome([], state.to_dict(), state.version, executed, error, runs), len(events)
    finally:
        engine.close()


@SETTINGS
@given(program=programs(), k=st.integers(1, 30), via_json=st.booleans())
def test_stop_and_resume_ends_where_an_uninterrupted_run_ends(
    backend: str, program: Any, k: int, via_json: bool
) -> None:
    steps, counters, _ = program
    with tempfile.TemporaryDirectory() as tmp:
        path = write_program(tmp, steps)
        whole = _run(backend, path, counters)
        parts, _ = _resumed(backend, path, counters, k, via_json)
    assert parts.state == whole.state
    assert parts.version == whole.version
    assert parts.runs == whole.runs  # no process ran twice, none was skipped
    assert (parts.error is None) == (whole.error is None)
    if whole.error is None and not _has_parallel(steps):
        # inside a parallel step a branch may have committed a step whose event the consumer
        # never took before close(): the executed names are then only known from the counts
        assert parts.executed == whole.executed
