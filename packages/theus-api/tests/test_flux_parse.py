"""spec/18 §1, §3 — loading Flux workflows: the language, every load error with its position."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from theus import FluxError, TheusError, process
from theus.contracts import spec_of
from theus.flux import (
    Expr,
    IfStep,
    ParallelStep,
    ProcessStep,
    RunStep,
    WhileStep,
    iter_steps,
    load_workflow,
    parse_workflow,
    patterns_overlap,
)
from theus.paths import parse_pattern

NAMES = {"a", "b", "c", "bump", "init"}
NS = ("domain", "global")


def parse(text: str, **kw: Any) -> Any:
    kw.setdefault("processes", NAMES)
    kw.setdefault("namespaces", NS)
    return parse_workflow(textwrap.dedent(text), file="wf.yaml", **kw)


def test_theus3_forms() -> None:
    wf = parse(
        """
        steps:
          - init
          - process: bump
          - flux: while
            condition: domain['count'] < 3
            do:
              - bump
          - flux: if
            condition: signal.get('cmd_go') == True
            then: [a]
            else: [b]
          - flux: run
            steps: [c]
        """
    )
    kinds = [type(s) for s in wf.steps]
    assert kinds == [ProcessStep, ProcessStep, WhileStep, IfStep, RunStep]
    assert wf.process_names() == ("a", "b", "bump", "c", "init")
    assert [s.process for s in iter_steps(wf.steps) if isinstance(s, ProcessStep)] == [
        "init", "bump", "bump", "a", "b", "c",
    ]  # fmt: skip
    first = wf.steps[0]
    assert (first.loc.file, first.loc.line, first.loc.column) == ("wf.yaml", 3, 5)
    assert first.loc.key_path == "steps[0]"
    loop = wf.steps[2]
    assert isinstance(loop, WhileStep)
    assert (loop.condition.line, loop.condition.column) == (6, 16)
    assert loop.condition.key_path == "steps[2].condition"


def test_extensions() -> None:
    wf = parse(
        """
        name: demo
        description: a demo
        inputs: {limit: 3, who: null}
        max_ops: 50
        steps:
          - process: bump
            with: {by: 2, tags: [x, y], n: {expr: "domain.count + limit"}}
          - flux: while
            condition: true
            max_iterations: 4
            do: [bump]
          - flux: parallel
            branches:
              - [a]
              - [b, c]
        """
    )
    assert (wf.name, wf.description, dict(wf.inputs), wf.max_ops) == (
        "demo", "a demo", {"limit": 3, "who": None}, 50,
    )  # fmt: skip
    step = wf.steps[0]
    assert isinstance(step, ProcessStep)
    assert step.with_["by"] == 2 and step.with_["tags"] == ["x", "y"]
    arg = step.with_["n"]
    assert isinstance(arg, Expr)
    assert arg.expression.evaluate({"domain": {"count": 1}, "limit": 3}) == 4
    loop = wf.steps[1]
    assert isinstance(loop, WhileStep) and loop.max_iterations == 4
    assert loop.condition.test({}) is True
    par = wf.steps[2]
    assert isinstance(par, ParallelStep) and len(par.branches) == 2
    assert [len(b) for b in par.branches] == [1, 2]
    assert len(list(wf.expressions())) == 2


def test_anchors_and_merge_keys() -> None:
    wf = parse(
        """
        common: &loop {flux: while, condition: "domain.x < 1", do: [a]}
        steps: []
        """.replace("common: &loop", "steps_: &loop")
        if False
        else """
        steps:
          - &s {process: a}
          - *s
          - {<<: *s, with: {k: 1}}
        """
    )
    assert [s.process for s in wf.steps] == ["a", "a", "a"]
    assert wf.steps[2].with_ == {"k": 1}


# ------------------------------------------------------------------------------------------
# every load error: class, file, line, column, key path

ERRORS = [
    # (yaml, line, column, key path or None, message fragment)
    ("steps: [a, b\n", 2, 1, None, "malformed YAML"),
    ("steps:\n  - a\n - b\n", 3, 2, None, "malformed YAML"),
    ("steps: {a: 1}\n", 1, 8, "steps", "must be a list of steps, not a mapping"),
    ("", None, None, None, "empty workflow"),
    ("- a\n- b\n", 1, 1, None, "top level must be a mapping"),
    ("name: x\n", 1, 1, None, "needs a top-level `steps:`"),
    ("steps: []\nstpes: []\n", 2, 1, "stpes", "unknown key 'stpes'"),
    ("steps:\n  - nope\n", 2, 5, "steps[0]", "unknown process 'nope'"),
    ("steps:\n  - process: bmup\n", 2, 14, "steps[0].process", "did you mean 'bump'"),
    ("steps:\n  - 3\n", 2, 5, "steps[0]", "a step must be a process name"),
    ("steps:\n  - [a]\n", 2, 5, "steps[0]", "a step must be a process name or a mapping"),
    ("steps:\n  - {with: {x: 1}}\n", 2, 5, "steps[0]", "needs `process:` or `flux:`"),
    ("steps:\n  - {process: a, wiht: {}}\n", 2, 18, "steps[0].wiht", "unknown key 'wiht'"),
    ("steps:\n  - {process: a, with: [1]}\n", 2, 24, "steps[0].with", "must be a mapping"),
    ("steps:\n  - {process: a, with: {1x: 1}}\n", 2, 25, "steps[0].with.1x", "identifier"),
    ("steps:\n  - {flux: iff}\n", 2, 12, "steps[0].flux", "unknown flux kind 'iff'"),
    (
        "steps:\n  - flux: if\n    condition: domain.x\n    then: a\n",
        4, 11, "steps[0].then", "must be a list of steps, not the scalar 'a'",
    ),
    (
        "steps:\n  - flux: if\n    condition: domain.x\n    thne: [a]\n",
        4, 5, "steps[0].thne", "unknown key 'thne'",
    ),
    ("steps:\n  - flux: if\n    then: [a]\n", 2, 5, "steps[0]", "needs `condition:`"),
    ("steps:\n  - flux: while\n    condition: domain.x\n", 2, 5, "steps[0]", "needs `do:`"),
    (
        "steps:\n  - flux: while\n    condition: domain.x\n    do: [a]\n    max_iterations: 0\n",
        5, 21, "steps[0].max_iterations", "positive integer",
    ),
    (
        "steps:\n  - flux: while\n    condition: 3\n    do: [a]\n",
        3, 16, "steps[0].condition", "must be an expression",
    ),
    (
        "steps:\n  - flux: while\n    condition: domain.x.__class__\n    do: [a]\n",
        3, 25, "steps[0].condition", "'__class__' is not allowed",
    ),
    (
        "steps:\n  - flux: while\n    condition: \"domain.x < 9**9**9\"\n    do: [a]\n",
        3, 28, "steps[0].condition", "power result too large",
    ),
    (
        "steps:\n  - flux: while\n    condition: 'foo.x'\n    do: [a]\n",
        3, 17, "steps[0].condition", "unknown name 'foo'",
    ),
    ("steps:\n  - {flux: run}\n", 2, 5, "steps[0]", "exactly one of `steps:` or `workflow:`"),
    (
        "steps:\n  - {flux: run, steps: [a], workflow: x.yaml}\n",
        2, 5, "steps[0]", "exactly one of",
    ),
    ("steps:\n  - {flux: parallel, branches: [[a]]}\n", 2, 32, "steps[0].branches", "at least 2"),
    (
        "steps:\n  - {flux: parallel, branches: [[a], b]}\n",
        2, 38, "steps[0].branches[1]", "must be a list of steps",
    ),
    ("max_ops: -1\nsteps: []\n", 1, 10, "max_ops", "positive integer"),
    ("max_ops: true\nsteps: []\n", 1, 10, "max_ops", "positive integer"),
    ("name: 3\nsteps: []\n", 1, 7, "name", "must be a str"),
    ("inputs: {_x: 1}\nsteps: []\n", 1, 10, "inputs._x", "input name"),
    ("inputs: [a]\nsteps: []\n", 1, 9, "inputs", "must be a mapping"),
    ("inputs: {domain: 1}\nsteps:\n  - {flux: if, condition: '1', then: []}\n", None, None,
     None, "input name 'domain'"),
    ("steps: []\nsteps: []\n", 2, 1, "steps", "duplicate key 'steps'"),
    ("steps:\n  - {process: a, process: b}\n", 2, 18, "steps[0].process", "duplicate key"),
    ("steps:\n  - {flux: run, workflow: nothere.yaml}\n", 2, 27, "steps[0].workflow",
     "cannot read the included workflow"),
    ("steps: !!python/object:os.system [a]\n", 1, 8, "steps", "unsupported YAML tag"),
    ("steps:\n  - {process: a, with: {k: {expr: '().__class__'}}}\n", 2, 39,
     "steps[0].with.k.expr", "'__class__'"),
    ("steps:\n  - {process: a, with: {k: {expr: '1', x: 2}}}\n", 2, 28, "steps[0].with.k",
     "no other keys"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "column", "key_path", "needle"), ERRORS)
def test_load_errors(
    text: str, line: int | None, column: int | None, key_path: str | None, needle: str
) -> None:
    with pytest.raises(FluxError) as info:
        parse_workflow(text, file="wf.yaml", processes=NAMES, namespaces=NS)
    err = info.value
    assert isinstance(err, TheusError) and isinstance(err, ValueError)
    assert needle in str(err)
    assert err.file == "wf.yaml"
    if line is not None:
        assert (err.line, err.column) == (line, column), str(err)
        assert str(err).startswith(f"wf.yaml:{line}:{column}: ")
    if key_path is not None:
        assert err.key_path == key_path, str(err)


def test_nesting_cap() -> None:
    text = "steps:\n" + "".join(
        "  " * (2 * i + 1) + "- flux: run\n" + "  " * (2 * i + 2) + "steps:\n" for i in range(70)
    )
    text += "  " * 141 + "- a\n"
    with pytest.raises(FluxError, match="nested more than 64"):
        parse_workflow(text, processes=NAMES)


def test_no_process_check_without_processes() -> None:
    wf = parse_workflow("steps: [anything]\n")
    assert wf.process_names() == ("anything",)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        parse_workflow(b"steps: []")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        parse_workflow("steps: []", processes="abc")


# ------------------------------------------------------------------------------------------
# files and includes


def _write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_include_relative_to_the_including_file(tmp_path: Path) -> None:
    _write(tmp_path, "sub/inner.yaml", "steps: [b, {flux: run, workflow: leaf.yaml}]\n")
    _write(tmp_path, "sub/leaf.yaml", "steps: [c]\n")
    main = _write(
        tmp_path, "main.yaml", "steps:\n  - a\n  - {flux: run, workflow: sub/inner.yaml}\n"
    )
    wf = load_workflow(main, processes=NAMES)
    run = wf.steps[1]
    assert isinstance(run, RunStep) and run.workflow is not None
    assert run.workflow.endswith(os.path.join("sub", "inner.yaml"))
    names = [s.process for s in iter_steps(wf.steps) if isinstance(s, ProcessStep)]
    assert names == ["a", "b", "c"]
    leaf = [s for s in iter_steps(wf.steps) if isinstance(s, ProcessStep)][2]
    assert leaf.loc.file.endswith("leaf.yaml") and leaf.loc.line == 1


def test_include_errors_name_the_included_file(tmp_path: Path) -> None:
    _write(tmp_path, "bad.yaml", "steps:\n  - nope\n")
    main = _write(tmp_path, "main.yaml", "steps:\n  - {flux: run, workflow: bad.yaml}\n")
    with pytest.raises(FluxError, match="unknown process 'nope'") as info:
        load_workflow(main, processes=NAMES)
    assert info.value.file is not None and info.value.file.endswith("bad.yaml")
    assert (info.value.line, info.value.column) == (2, 5)


@pytest.mark.parametrize("key", ["inputs: {x: 1}", "max_ops: 3"])
def test_included_file_may_not_set_inputs_or_max_ops(tmp_path: Path, key: str) -> None:
    _write(tmp_path, "inc.yaml", f"{key}\nsteps: []\n")
    main = _write(tmp_path, "main.yaml", "steps:\n  - {flux: run, workflow: inc.yaml}\n")
    with pytest.raises(FluxError, match="not allowed in an included workflow"):
        load_workflow(main)


def test_include_cycles(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "steps:\n  - {flux: run, workflow: b.yaml}\n")
    _write(tmp_path, "b.yaml", "steps:\n  - {flux: run, workflow: a.yaml}\n")
    _write(tmp_path, "self.yaml", "steps:\n  - {flux: run, workflow: ./self.yaml}\n")
    with pytest.raises(FluxError, match=r"include cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_workflow(tmp_path / "a.yaml")
    with pytest.raises(FluxError, match="include cycle") as info:
        load_workflow(tmp_path / "self.yaml")
    assert (info.value.line, info.value.column) == (2, 27)
    # the same file included twice (not a cycle) is fine
    _write(tmp_path, "leaf.yaml", "steps: [a]\n")
    _write(
        tmp_path,
        "twice.yaml",
        "steps:\n  - {flux: run, workflow: leaf.yaml}\n  - {flux: run, workflow: leaf.yaml}\n",
    )
    assert load_workflow(tmp_path / "twice.yaml").process_names() == ("a",)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FluxError, match="cannot read the workflow"):
        load_workflow(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"steps:\n  - caf\xe9\n")
    with pytest.raises(FluxError, match="not valid UTF-8") as info:
        load_workflow(bad)
    assert (info.value.line, info.value.column) == (2, 8)


def test_text_includes_use_base_dir(tmp_path: Path) -> None:
    _write(tmp_path, "leaf.yaml", "steps: [a]\n")
    wf = parse_workflow("steps:\n  - {flux: run, workflow: leaf.yaml}\n", base_dir=str(tmp_path))
    assert wf.process_names() == ("a",)


# ------------------------------------------------------------------------------------------
# parallel write overlap (contracts)


@process(outputs=["domain.a"])
def write_a(ctx: Any) -> None: ...


@process(outputs=["domain.a.x"])
def write_ax(ctx: Any) -> None: ...


@process(outputs=["domain.b", "domain.sig_b"])
def write_b(ctx: Any) -> None: ...


@process(outputs=["domain.*.x"])
def write_star_x(ctx: Any) -> None: ...


@process(inputs=["domain.a"])
def read_a(ctx: Any) -> None: ...


SPECS = {f.__name__: spec_of(f) for f in (write_a, write_ax, write_b, write_star_x, read_a)}


def _par(left: str, right: str) -> str:
    return f"steps:\n  - flux: parallel\n    branches:\n      - [{left}]\n      - [{right}]\n"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("write_a", "write_ax"),
        ("write_ax", "write_a"),
        ("write_a", "write_a"),
        ("write_star_x", "write_ax"),
        ("read_a, write_b", "{flux: if, condition: 'True', then: [write_b]}"),
    ],
)
def test_parallel_overlap_rejected(left: str, right: str) -> None:
    with pytest.raises(FluxError, match="branches 0 and 1 may write the same key") as info:
        parse_workflow(_par(left, right), file="p.yaml", processes=SPECS)
    assert (info.value.line, info.value.column) == (4, 7)
    assert "wf" not in str(info.value) and "p.yaml:" in str(info.value)


@pytest.mark.parametrize(
    ("left", "right"),
    [("write_a", "write_b"), ("read_a", "write_b"), ("read_a", "read_a"), ("write_ax", "write_b")],
)
def test_parallel_disjoint_accepted(left: str, right: str) -> None:
    wf = parse_workflow(_par(left, right), processes=SPECS)
    assert isinstance(wf.steps[0], ParallelStep)


def test_parallel_overlap_needs_specs() -> None:
    # names only: no contracts, no overlap check
    parse_workflow(_par("write_a", "write_a"), processes=set(SPECS))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("domain.a", "domain.a", True),
        ("domain.a", "domain.a.b", True),
        ("domain.a", "domain.ab", False),
        ("domain.*", "domain.x.y", True),
        ("domain.*.x", "domain.y.z", False),
        ("domain.*.x", "domain.y.x", True),
        ("domain.**", "global.a", False),
        ("domain.**", "domain", True),
        ("domain.a.**.z", "domain.*.q", True),
        ("domain.a.*.z", "domain.b.**", False),
        ("global.x", "domain.x", False),
    ],
)
def test_patterns_overlap(a: str, b: str, expected: bool) -> None:
    pa, pb = parse_pattern(a), parse_pattern(b)
    assert patterns_overlap(pa, pb) is expected
    assert patterns_overlap(pb, pa) is expected


@pytest.mark.parametrize("depth", [100, 2000])
def test_deep_yaml_is_an_error_with_a_position(depth: int) -> None:
    text = "steps: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(FluxError) as info:
        parse_workflow(text, file="deep.yaml")
    assert info.value.line == 1 and info.value.column is not None
    assert ("nest" if depth > 1000 else "a step must be") in str(info.value)
