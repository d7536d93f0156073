"""Workflow pictures (spec/20 §4): golden Mermaid/DOT text, the state kind, the run overlay,
rendering through Graphviz.

Regenerate the golden files after an intended change with ``THEUS_UPDATE_GOLDEN=1 pytest``.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from theus.flux import Loc, load_workflow, parse_workflow, picture
from theus.flux.model import IfStep, ProcessStep, WhileStep, iter_steps

HERE = Path(__file__).resolve().parent
DATA = HERE / "cli_data"
GOLDEN = HERE / "golden"
EXAMPLE = HERE.parents[2] / "examples" / "flux"


@pytest.fixture(scope="module")
def procs() -> Any:
    sys.path.insert(0, str(DATA))
    try:
        import procs as module  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(DATA))
    return module


@pytest.fixture(scope="module")
def review() -> Any:
    sys.path.insert(0, str(EXAMPLE))
    try:
        import review as module  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(EXAMPLE))
    return module


def specs_of(module: Any) -> dict[str, Any]:
    return {
        v.__theus_process__.name: v.__theus_process__
        for v in vars(module).values()
        if hasattr(v, "__theus_process__")
    }


def relative(wf_path: Path, processes: Any = None) -> Any:
    """Load with a path relative to the repository, so `Loc.file` (and the text) is stable."""
    cwd = os.getcwd()
    os.chdir(HERE.parents[2])
    try:
        return load_workflow(os.path.relpath(wf_path), processes=processes)
    finally:
        os.chdir(cwd)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("THEUS_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.is_file(), f"{path} is missing: run with THEUS_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from its golden file"


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Ev:
    """A stand-in run event with the attributes of spec/18 §5's events."""

    topic: str
    loc: Loc | None = None
    process: str = ""
    iterations: tuple[int, ...] = ()
    run_id: str = "r1"
    seq: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def events_for(wf: Any, plan: list[tuple[str, str, tuple[int, ...]]], ok: bool) -> list[Ev]:
    """``plan``: (process, outcome started|committed|failed, iterations) in run order;
    ``name#k`` is the k-th step of that name in source order (default the first)."""
    steps: dict[str, list[ProcessStep]] = {}
    for s in iter_steps(wf.steps):
        if isinstance(s, ProcessStep):
            steps.setdefault(s.process, []).append(s)
    out = [Ev("flux:run_started")]
    for ref, outcome, its in plan:
        name, _, k = ref.partition("#")
        step = steps[name][int(k or 1) - 1]
        out.append(Ev("flux:step_started", step.loc, name, its))
        if outcome == "committed":
            out.append(Ev("flux:step_committed", step.loc, name, its))
        elif outcome == "failed":
            out.append(Ev("flux:step_failed", step.loc, name, its))
    out.append(Ev("flux:run_completed" if ok else "flux:run_failed"))
    return out


REVIEW_RUN = [
    ("fetch", "committed", ()),
    ("draft", "committed", (1,)),
    ("grade", "committed", (1,)),
    ("spellcheck", "committed", (1,)),
    ("score", "committed", (1,)),
    ("draft", "committed", (2,)),
    ("grade", "committed", (2,)),
    ("spellcheck", "committed", (2,)),
    ("score", "committed", (2,)),
    ("draft", "committed", (3,)),
    ("grade", "committed", (3,)),
    ("spellcheck", "failed", (3,)),
]


# --------------------------------------------------------------------------- golden files


@pytest.mark.parametrize("fmt", ["mmd", "dot"])
def test_review_flow_golden(review, fmt):
    wf = relative(EXAMPLE / "review.yaml", specs_of(review))
    text = wf.to_mermaid() if fmt == "mmd" else wf.to_dot()
    check_golden(f"review.flow.{fmt}", text)


@pytest.mark.parametrize("fmt", ["mmd", "dot"])
def test_review_state_golden(review, fmt):
    wf = relative(EXAMPLE / "review.yaml", specs_of(review))
    text = wf.to_mermaid(kind="state") if fmt == "mmd" else wf.to_dot(kind="state")
    check_golden(f"review.state.{fmt}", text)


@pytest.mark.parametrize("fmt", ["mmd", "dot"])
def test_review_overlay_golden(review, fmt):
    wf = relative(EXAMPLE / "review.yaml", specs_of(review))
    run = events_for(wf, REVIEW_RUN, ok=False)
    text = wf.to_mermaid(run=run) if fmt == "mmd" else wf.to_dot(run=run)
    check_golden(f"review.run.{fmt}", text)


@pytest.mark.parametrize("fmt", ["mmd", "dot"])
def test_every_construct_golden(procs, fmt):
    wf = relative(DATA / "flows" / "all.yaml", specs_of(procs))
    text = wf.to_mermaid() if fmt == "mmd" else wf.to_dot()
    check_golden(f"all.flow.{fmt}", text)


# --------------------------------------------------------------------------- structure


def test_pictures_are_deterministic(procs):
    a = load_workflow(DATA / "flows" / "all.yaml", processes=specs_of(procs))
    b = load_workflow(DATA / "flows" / "all.yaml", processes=specs_of(procs))
    assert a.to_mermaid() == b.to_mermaid()
    assert a.to_dot(kind="state") == b.to_dot(kind="state")


def test_if_edges_carry_the_condition_text():
    wf = parse_workflow(
        "steps:\n  - flux: if\n    condition: domain.x > 3\n    then: [a]\n    else: [b]\n"
    )
    mm = wf.to_mermaid()
    assert 'n1 -->|"domain.x #gt; 3"| n2' in mm
    assert 'n1 -->|"else"| n3' in mm
    dot = wf.to_dot()
    assert 'n1 -> n2 [label="domain.x > 3"];' in dot
    assert 'n1 -> n3 [label="else"];' in dot


def test_if_without_else_goes_past_the_if():
    wf = parse_workflow("steps:\n  - flux: if\n    condition: domain.x\n    then: [a]\n  - b\n")
    mm = wf.to_mermaid()
    assert 'n1 -->|"else"| n3' in mm  # n3 is b
    assert "n2 --> n3" in mm


def test_while_back_edge_names_max_iterations():
    text = "steps:\n  - flux: while\n    condition: domain.x\n    {}do: [a, b]\n"
    bounded = parse_workflow(text.format("max_iterations: 7\n    "))
    assert 'n3 -.->|"repeat (max 7)"| n1' in bounded.to_mermaid()
    assert 'n3 -> n1 [label="repeat (max 7)", style=dashed, constraint=false];' in bounded.to_dot()
    unbounded = parse_workflow(text.format(""))
    assert 'n3 -.->|"repeat"| n1' in unbounded.to_mermaid()
    assert '|"done"| flux_end' in unbounded.to_mermaid()


def test_empty_while_body_is_a_self_loop():
    wf = parse_workflow("steps:\n  - flux: while\n    condition: domain.x\n    do: []\n")
    assert 'n1 -.->|"repeat"| n1' in wf.to_mermaid()


def test_parallel_is_fork_and_join():
    wf = parse_workflow("steps:\n  - flux: parallel\n    branches: [[a, b], [c], []]\n")
    mm = wf.to_mermaid()
    assert 'n1{{"fork"}}' in mm and 'n5{{"join"}}' in mm
    for edge in ("n1 --> n2", "n2 --> n3", "n3 --> n5", "n1 --> n4", "n4 --> n5", "n1 --> n5"):
        assert edge in mm


def test_nested_runs_are_nested_clusters(procs):
    wf = load_workflow(DATA / "flows" / "all.yaml", processes=specs_of(procs))
    mm = wf.to_mermaid()
    outer = mm.index('subgraph c1["run"]')
    inner = mm.index('subgraph c2["run common.yaml"]')
    assert outer < inner
    assert mm[inner:].split("\n")[0].startswith('subgraph c2["run common.yaml"]')
    # c2 is indented inside c1
    assert '\n        subgraph c2["run common.yaml"]' in mm
    dot = wf.to_dot()
    assert "subgraph cluster_c1 {" in dot and "        subgraph cluster_c2 {" in dot
    assert 'label="run common.yaml";' in dot


def test_labels_are_escaped():
    wf = parse_workflow(
        "steps:\n  - flux: if\n    condition: \"global.get('m', \\\"a#b\\\") != '<x>'\"\n"
        "    then: [a]\n"
    )
    mm = wf.to_mermaid()
    assert "global.get('m', #quot;a#35;b#quot;) != '#lt;x#gt;'" in mm
    dot = wf.to_dot()
    assert "label=\"global.get('m', \\\"a#b\\\") != '<x>'\"" in dot


def test_node_ids_follow_source_order():
    wf = parse_workflow("steps: [a, b, c]\n")
    assert wf.to_mermaid().splitlines()[1:6] == [
        '    flux_start(["start"])',
        '    n1["a"]',
        '    n2["b"]',
        '    n3["c"]',
        '    flux_end(["end"])',
    ]


# --------------------------------------------------------------------------- kind="state"


def test_state_kind_draws_reads_and_writes(procs):
    wf = load_workflow(DATA / "flows" / "ok.yaml", processes=specs_of(procs))
    mm = wf.to_mermaid(kind="state")
    assert mm.startswith("flowchart LR\n")
    # inc reads and writes domain.count; total reads it and writes domain.total
    assert 's1[("domain.count")]' in mm
    assert 's1 -->|"reads"| p1' in mm and 'p1 -->|"writes"| s1' in mm
    assert 'k1{{"while domain.count #lt; limit"}}' in mm
    assert 's1 -->|"reads"| k1' in mm
    assert "limit" not in mm.replace("domain.count #lt; limit", "")  # an input is not a path
    assert 'p4 -->|"writes"| s4' in mm  # total -> domain.total
    assert '[("domain.total")]' in mm


def test_state_kind_needs_contracts(procs):
    wf = load_workflow(DATA / "flows" / "ok.yaml")
    assert wf.contracts is None
    with pytest.raises(ValueError, match="kind='state' needs the processes' contracts"):
        wf.to_mermaid(kind="state")
    with pytest.raises(ValueError, match="no contract for process 'left'"):
        wf.to_dot(kind="state", contracts={"inc": specs_of(procs)["inc"]})
    assert "p1" in wf.to_dot(kind="state", contracts=specs_of(procs))


def test_workflow_records_only_the_contracts_it_uses(procs):
    wf = load_workflow(DATA / "flows" / "fails.yaml", processes=specs_of(procs))
    assert sorted(wf.contracts) == ["boom", "inc", "total"]
    names = load_workflow(DATA / "flows" / "fails.yaml", processes=["inc", "boom", "total"])
    assert names.contracts is None


def test_bad_arguments():
    wf = parse_workflow("steps: [a]\n")
    with pytest.raises(ValueError, match="kind must be 'flow' or 'state'"):
        wf.to_mermaid(kind="states")
    with pytest.raises(TypeError, match="expected a theus.flux.Workflow"):
        picture.to_dot("steps: [a]\n")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- run overlay


def status_of(mm: str, node: str) -> str:
    for line in mm.splitlines():
        if line.strip().startswith("class ") and node in line.split()[1].split(","):
            return line.split()[-1]
    raise AssertionError(f"{node} has no status")


def test_overlay_colours_done_failed_and_not_reached(review):
    wf = load_workflow(EXAMPLE / "review.yaml", processes=specs_of(review))
    mm = wf.to_mermaid(run=events_for(wf, REVIEW_RUN, ok=False))
    ids = {}
    for line in mm.splitlines():
        if '["' in line:
            ids[line.split('["')[1].split('"]')[0]] = line.strip().split("[")[0]
    assert status_of(mm, ids["fetch"]) == "done"
    assert status_of(mm, ids["grade"]) == "done"
    assert status_of(mm, ids["spellcheck"]) == "failed"
    assert status_of(mm, ids["publish"]) == "not_reached"
    assert status_of(mm, ids["archive"]) == "not_reached"
    assert status_of(mm, "flux_start") == "done"
    assert status_of(mm, "flux_end") == "failed"
    assert '{"while (3 iterations)"}' in mm


def test_overlay_started_step_and_completed_run(procs):
    wf = load_workflow(DATA / "flows" / "fails.yaml", processes=specs_of(procs))
    run = events_for(wf, [("inc", "committed", ()), ("boom", "started", ())], ok=True)
    mm = wf.to_mermaid(run=run)
    assert status_of(mm, "n1") == "done"
    assert status_of(mm, "n2") == "started"
    assert status_of(mm, "n3") == "not_reached"
    assert status_of(mm, "flux_end") == "done"
    dot = wf.to_dot(run=run)
    assert 'n2 [label="boom", shape=box, style="rounded,filled", fillcolor="#fff9c4"' in dot


def test_overlay_counts_nested_loop_iterations(procs):
    wf = load_workflow(DATA / "flows" / "all.yaml", processes=specs_of(procs))
    plan = [("inc", "committed", ())]
    # the outer loop runs 2 iterations, the inner one (total#2) 3, then 1: 4 in all
    for outer, inner_n in ((1, 3), (2, 1)):
        for inner in range(1, inner_n + 1):
            plan.append(("total#2", "committed", (outer, inner)))
        plan.append(("inc#2", "committed", (outer,)))
    mm = wf.to_mermaid(run=events_for(wf, plan, ok=False))
    whiles = [line for line in mm.splitlines() if '{"while' in line]
    assert whiles == [
        '    n4{"while (2 iterations)"}',
        '    n5{"while (4 iterations)"}',
        '    n8{"while (0 iterations)"}',
    ]
    assert status_of(mm, "n3") == "not_reached"  # the `if`'s then: never taken
    assert status_of(mm, "n6") == "done" and status_of(mm, "n7") == "done"


def test_overlay_ignores_events_of_other_workflows():
    wf = parse_workflow("steps: [a]\n", file="x.yaml")
    other = Loc("y.yaml", 1, 9, "steps[0]")
    mm = wf.to_mermaid(run=[Ev("flux:step_committed", other, "a")])
    assert status_of(mm, "n1") == "not_reached"


def test_overlay_in_state_kind_takes_the_worst_status(procs):
    text = "steps: [inc, inc, total]\n"
    wf = parse_workflow(text, file="w.yaml", processes=specs_of(procs))
    steps = [s for s in wf.steps if isinstance(s, ProcessStep)]
    run = [
        Ev("flux:step_started", steps[0].loc, "inc"),
        Ev("flux:step_committed", steps[0].loc, "inc"),
        Ev("flux:step_started", steps[1].loc, "inc"),
        Ev("flux:step_failed", steps[1].loc, "inc"),
    ]
    mm = wf.to_mermaid(kind="state", run=run)
    assert status_of(mm, "p1") == "failed"
    assert status_of(mm, "p2") == "not_reached"


def test_condition_nodes_exist_for_every_if_and_while(procs):
    wf = load_workflow(DATA / "flows" / "all.yaml", processes=specs_of(procs))
    conds = [s for s in iter_steps(wf.steps) if isinstance(s, IfStep | WhileStep)]
    assert wf.to_mermaid(kind="state").count('{{"if ') + wf.to_mermaid(kind="state").count(
        '{{"while '
    ) == len(conds)


# --------------------------------------------------------------------------- rendering


needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz `dot` is not installed (apt-get install graphviz)"
)


@needs_dot
def test_render_svg_and_png(review):
    wf = load_workflow(EXAMPLE / "review.yaml", processes=specs_of(review))
    svg = picture.render(wf.to_dot(), "svg")
    assert b"<svg" in svg and b"spellcheck" in svg and b"repeat (max 10)" in svg
    png = picture.render(wf.to_dot(kind="state"), "png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


@needs_dot
def test_render_reports_dot_errors():
    with pytest.raises(RuntimeError, match="Graphviz `dot` failed"):
        picture.render("digraph { a -> }", "svg")


def test_render_without_dot(monkeypatch):
    monkeypatch.setattr(picture.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"Graphviz `dot` is not installed \(Debian: apt-get"):
        picture.render("digraph { a }", "svg")
    with pytest.raises(ValueError, match="fmt must be 'svg' or 'png'"):
        picture.render("digraph { a }", "pdf")  # type: ignore[arg-type]
