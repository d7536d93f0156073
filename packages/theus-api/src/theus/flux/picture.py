"""Pictures of Flux workflows: Mermaid and Graphviz DOT text (spec/20-cli-and-pictures.md §4).

:func:`to_mermaid` and :func:`to_dot` draw a :class:`theus.flux.model.Workflow` as its control
flow (``kind="flow"``) or as the state flow of its processes' contracts (``kind="state"``),
optionally coloured by a run's events (``run=``). Both are pure functions of their arguments:
nothing is fetched, the same input gives the same text. :func:`render` turns DOT text into SVG
or PNG through a local Graphviz ``dot``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..contracts import ProcessSpec
from .model import (
    IfStep,
    Loc,
    ParallelStep,
    PauseStep,
    ProcessStep,
    RunStep,
    Step,
    WhileStep,
    Workflow,
)

__all__ = ["Kind", "render", "to_dot", "to_mermaid"]

Kind = Literal["flow", "state"]
#: the ids of the start and end nodes (``end`` is a Mermaid keyword)
START, END = "flux_start", "flux_end"
#: statuses of the run overlay, worst first
_RANK = {"failed": 4, "started": 3, "paused": 2, "done": 1, "not_reached": 0}
_FILL = {
    "done": ("#c8e6c9", "#2e7d32"),
    "failed": ("#ffcdd2", "#c62828"),
    "started": ("#fff9c4", "#f9a825"),
    "paused": ("#bbdefb", "#1565c0"),
    "not_reached": ("#eeeeee", "#9e9e9e"),
}


# --------------------------------------------------------------------------- the graph


@dataclass
class _Node:
    id: str
    label: str
    #: process, if, while, fork, join, terminal, path, condition
    shape: str
    cluster: str | None
    loc: Loc | None = None
    status: str | None = None


@dataclass
class _Edge:
    src: str
    dst: str
    label: str | None = None
    back: bool = False


@dataclass
class _Cluster:
    id: str
    label: str
    parent: str | None


@dataclass
class _Graph:
    direction: str = "TB"
    nodes: list[_Node] = field(default_factory=list)
    edges: list[_Edge] = field(default_factory=list)
    clusters: list[_Cluster] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def node(
        self, label: str, shape: str, cluster: str | None, loc: Loc | None = None, prefix: str = "n"
    ) -> _Node:
        """A new node with the next id of ``prefix`` (``n1``, ``n2``, ...)."""
        self.counts[prefix] = number = self.counts.get(prefix, 0) + 1
        node = _Node(f"{prefix}{number}", label, shape, cluster, loc)
        self.nodes.append(node)
        return node


Pending = list[tuple[str, str | None]]


class _FlowBuilder:
    """Steps -> nodes and edges. ``pending`` are the open edges (source id, label) that the
    next node receives."""

    def __init__(self) -> None:
        self.graph = _Graph()
        #: every step node, with the while-loop nodes enclosing it (outermost first)
        self.enclosing: dict[str, tuple[str, ...]] = {}
        #: control node id -> ids of the process nodes inside it and after it
        self.whiles: list[tuple[_Node, WhileStep]] = []

    def connect(self, pending: Pending, dst: str) -> None:
        for src, label in pending:
            self.graph.edges.append(_Edge(src, dst, label))

    def build(
        self,
        steps: Sequence[Step],
        pending: Pending,
        cluster: str | None,
        loops: tuple[str, ...],
    ) -> Pending:
        for step in steps:
            pending = self.step(step, pending, cluster, loops)
        return pending

    def step(
        self, step: Step, pending: Pending, cluster: str | None, loops: tuple[str, ...]
    ) -> Pending:
        g = self.graph
        if isinstance(step, ProcessStep):
            node = g.node(step.process, "process", cluster, step.loc)
            self.enclosing[node.id] = loops
            self.connect(pending, node.id)
            return [(node.id, None)]
        if isinstance(step, IfStep):
            node = g.node("if", "if", cluster, step.loc)
            self.enclosing[node.id] = loops
            self.connect(pending, node.id)
            then = self.build(step.then, [(node.id, step.condition.text)], cluster, loops)
            other = self.build(step.else_, [(node.id, "else")], cluster, loops)
            return then + other
        if isinstance(step, WhileStep):
            node = g.node("while", "while", cluster, step.loc)
            self.enclosing[node.id] = loops
            self.whiles.append((node, step))
            self.connect(pending, node.id)
            inner = (*loops, node.id)
            body = self.build(step.body, [(node.id, step.condition.text)], cluster, inner)
            label = (
                "repeat" if step.max_iterations is None else f"repeat (max {step.max_iterations})"
            )
            for src, _ in body:
                g.edges.append(_Edge(src, node.id, label, back=True))
            return [(node.id, "done")]
        if isinstance(step, ParallelStep):
            fork = g.node("fork", "fork", cluster, step.loc)
            self.enclosing[fork.id] = loops
            self.connect(pending, fork.id)
            ends: Pending = []
            for branch in step.branches:
                ends += self.build(branch, [(fork.id, None)], cluster, loops)
            join = g.node("join", "join", cluster)
            self.enclosing[join.id] = loops
            self.connect(ends, join.id)
            return [(join.id, None)]
        if isinstance(step, RunStep):
            label = "run" if step.workflow is None else f"run {_basename(step.workflow)}"
            sub = _Cluster(f"c{len(g.clusters) + 1}", label, cluster)
            g.clusters.append(sub)
            return self.build(step.steps, pending, sub.id, loops)
        if isinstance(step, PauseStep):
            node = g.node(f"pause: {step.into}", "pause", cluster, step.loc)
            self.enclosing[node.id] = loops
            self.connect(pending, node.id)
            return [(node.id, None)]
        raise TypeError(f"not a workflow step: {step!r}")  # pragma: no cover


def _basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _flow(workflow: Workflow) -> tuple[_Graph, _FlowBuilder]:
    builder = _FlowBuilder()
    g = builder.graph
    g.nodes.append(_Node(START, "start", "terminal", None))
    last = builder.build(workflow.steps, [(START, None)], None, ())
    g.nodes.append(_Node(END, "end", "terminal", None))
    builder.connect(last, END)
    return g, builder


def _contracts(
    workflow: Workflow, contracts: Mapping[str, ProcessSpec] | None
) -> Mapping[str, ProcessSpec]:
    specs = contracts if contracts is not None else workflow.contracts
    if specs is None:
        raise ValueError(
            "kind='state' needs the processes' contracts: load the workflow with processes= a "
            "name -> ProcessSpec map, or pass contracts="
        )
    for name in workflow.process_names():
        if name not in specs:
            raise ValueError(f"kind='state': no contract for process {name!r}")
    return specs


def _state(workflow: Workflow, specs: Mapping[str, ProcessSpec]) -> _Graph:
    g = _Graph(direction="LR")
    paths: dict[str, str] = {}
    procs: dict[str, _Node] = {}

    def path_node(text: str) -> str:
        if text not in paths:
            paths[text] = g.node(text, "path", None, prefix="s").id
        return paths[text]

    def add(src: str, dst: str, label: str) -> None:
        if not any(e.src == src and e.dst == dst and e.label == label for e in g.edges):
            g.edges.append(_Edge(src, dst, label))

    for step in _walk(workflow.steps):
        if isinstance(step, ProcessStep):
            if step.process not in procs:
                node = procs[step.process] = g.node(step.process, "process", None, prefix="p")
                spec = specs[step.process]
                for pattern in spec.inputs:
                    add(path_node(pattern.text), node.id, "reads")
                for pattern in spec.outputs:
                    add(node.id, path_node(pattern.text), "writes")
        elif isinstance(step, IfStep | WhileStep):
            kind = "if" if isinstance(step, IfStep) else "while"
            cond = g.node(f"{kind} {step.condition.text}", "condition", None, step.loc, "k")
            for read in step.condition.reads:
                if read.partition(".")[0] not in workflow.inputs:
                    add(path_node(read), cond.id, "reads")
    return g


def _walk(steps: Sequence[Step]) -> Iterable[Step]:
    """Every step in source order (nesting is capped at 64 by the loader)."""
    for step in steps:
        yield step
        if isinstance(step, IfStep):
            yield from _walk((*step.then, *step.else_))
        elif isinstance(step, WhileStep):
            yield from _walk(step.body)
        elif isinstance(step, RunStep):
            yield from _walk(step.steps)
        elif isinstance(step, ParallelStep):
            for branch in step.branches:
                yield from _walk(branch)


# --------------------------------------------------------------------------- run overlay


def _topic(event: Any) -> str:
    topic = getattr(event, "topic", None)
    if isinstance(topic, str):
        return topic.rpartition(":")[2]
    name = type(event).__name__  # StepStarted -> step_started
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _key(loc: Any) -> tuple[Any, ...] | None:
    if loc is None:
        return None
    return (loc.file, loc.line, loc.column, getattr(loc, "key_path", ""))


@dataclass
class _Overlay:
    by_loc: dict[tuple[Any, ...], str]
    #: loc key of a step -> the iteration tuples it started in
    iterations: dict[tuple[Any, ...], set[tuple[int, ...]]]
    completed: bool
    failed: bool
    #: loc keys of the steps the run paused at (``flux:paused`` events)
    paused: set[tuple[Any, ...]] = field(default_factory=set)


def _overlay(run: Iterable[Any]) -> _Overlay:
    status: dict[tuple[Any, ...], str] = {}
    iterations: dict[tuple[Any, ...], set[tuple[int, ...]]] = {}
    completed = failed = False
    paused: set[tuple[Any, ...]] = set()
    for event in run:
        topic = _topic(event)
        key = _key(getattr(event, "loc", None))
        if topic == "run_completed":
            completed = True
        elif topic == "run_failed":
            failed = True
        if key is None:
            continue
        if topic == "paused":
            paused.add(key)
            continue
        new = {"step_started": "started", "step_committed": "done", "step_failed": "failed"}
        if topic not in new:
            continue
        if topic == "step_started":
            iterations.setdefault(key, set()).add(tuple(getattr(event, "iterations", ()) or ()))
            status.setdefault(key, "started")
        elif topic == "step_failed" or status.get(key) != "failed":
            status[key] = new[topic]
    return _Overlay(status, iterations, completed, failed, paused)


def _apply_flow(g: _Graph, builder: _FlowBuilder, run: Iterable[Any]) -> None:
    ov = _overlay(run)
    reached_at = -1  # the last node index a started step occupies
    started_loops: dict[str, set[tuple[int, ...]]] = {}
    for index, node in enumerate(g.nodes):
        key = _key(node.loc)
        if key is not None and key in ov.paused:
            node.status = "paused"
            reached_at = max(reached_at, index)
            continue
        if node.shape != "process":
            continue
        node.status = ov.by_loc.get(key, "not_reached") if key else "not_reached"
        if node.status != "not_reached":
            reached_at = max(reached_at, index)
            loops = builder.enclosing.get(node.id, ())
            for depth, loop_id in enumerate(loops):
                for its in ov.iterations.get(key, set()) if key else set():
                    if len(its) > depth:
                        started_loops.setdefault(loop_id, set()).add(its[: depth + 1])
    for index, node in enumerate(g.nodes):
        if node.shape == "process" or node.status == "paused":
            continue
        if node.id == END:
            node.status = "done" if ov.completed else "failed" if ov.failed else "not_reached"
        elif node.id == START:
            node.status = "done" if reached_at >= 0 or ov.completed or ov.failed else "not_reached"
        else:
            node.status = "done" if index <= reached_at or ov.completed else "not_reached"
    for node, _step in builder.whiles:
        count = len(started_loops.get(node.id, ()))
        node.label = f"while ({count} iteration{'s' if count != 1 else ''})"


def _apply_state(g: _Graph, workflow: Workflow, run: Iterable[Any]) -> None:
    ov = _overlay(run)
    worst: dict[str, str] = {}
    for step in _walk(workflow.steps):
        if isinstance(step, ProcessStep):
            key = _key(step.loc)
            status = ov.by_loc.get(key, "not_reached") if key else "not_reached"
            if key is not None and key in ov.paused:
                status = "paused"
            if _RANK[status] >= _RANK[worst.get(step.process, "not_reached")]:
                worst[step.process] = status
    for node in g.nodes:
        if node.shape == "process":
            node.status = worst.get(node.label, "not_reached")


def _graph(
    workflow: Workflow,
    kind: Kind,
    run: Iterable[Any] | None,
    contracts: Mapping[str, ProcessSpec] | None,
) -> _Graph:
    if not isinstance(workflow, Workflow):
        raise TypeError(f"expected a theus.flux.Workflow, not {type(workflow).__name__}")
    events = None if run is None else list(run)
    if kind == "flow":
        g, builder = _flow(workflow)
        if events is not None:
            _apply_flow(g, builder, events)
        return g
    if kind == "state":
        g = _state(workflow, _contracts(workflow, contracts))
        if events is not None:
            _apply_state(g, workflow, events)
        return g
    raise ValueError(f"kind must be 'flow' or 'state', not {kind!r}")


# --------------------------------------------------------------------------- Mermaid


def _mm(text: str) -> str:
    """Text inside a Mermaid quoted label (entity codes for the characters it parses)."""
    out = text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;")
    return out.replace(">", "#gt;").replace("\n", " ")


_MM_SHAPE = {
    "process": ('["', '"]'),
    "if": ('{"', '"}'),
    "while": ('{"', '"}'),
    "fork": ('{{"', '"}}'),
    "join": ('{{"', '"}}'),
    "terminal": ('(["', '"])'),
    "path": ('[("', '")]'),
    "condition": ('{{"', '"}}'),
    "pause": ('[/"', '"/]'),
}


def to_mermaid(
    workflow: Workflow,
    kind: Kind = "flow",
    run: Iterable[Any] | None = None,
    contracts: Mapping[str, ProcessSpec] | None = None,
) -> str:
    """The workflow as a Mermaid ``flowchart`` (spec/20 §4).

    ``kind`` — ``"flow"`` (control flow) or ``"state"`` (which process reads and writes which
    paths, from the contracts); ``run`` — the events of a run to colour nodes by status;
    ``contracts`` — ``name -> ProcessSpec`` for ``kind="state"`` when the workflow has none.
    """
    g = _graph(workflow, kind, run, contracts)
    lines = [f"flowchart {g.direction}"]
    children: dict[str | None, list[_Cluster]] = {}
    for c in g.clusters:
        children.setdefault(c.parent, []).append(c)
    members: dict[str | None, list[_Node]] = {}
    for n in g.nodes:
        members.setdefault(n.cluster, []).append(n)

    def emit(cluster: str | None, indent: str) -> None:
        for n in members.get(cluster, []):
            left, right = _MM_SHAPE[n.shape]
            lines.append(f"{indent}{n.id}{left}{_mm(n.label)}{right}")
        for c in children.get(cluster, []):
            lines.append(f'{indent}subgraph {c.id}["{_mm(c.label)}"]')
            emit(c.id, indent + "    ")
            lines.append(f"{indent}end")

    emit(None, "    ")
    for e in g.edges:
        arrow = "-.->" if e.back else "-->"
        label = "" if e.label is None else f'|"{_mm(e.label)}"|'
        lines.append(f"    {e.src} {arrow}{label} {e.dst}")
    statuses = [n for n in g.nodes if n.status is not None]
    if statuses:
        for status, (fill, stroke) in _FILL.items():
            ids = [n.id for n in statuses if n.status == status]
            if ids:
                lines.append(f"    classDef {status} fill:{fill},stroke:{stroke}")
                lines.append(f"    class {','.join(ids)} {status}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- DOT


def _dq(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_DOT_SHAPE = {
    "process": 'shape=box, style="rounded,filled"',
    "if": 'shape=diamond, style="filled"',
    "while": 'shape=diamond, style="filled"',
    "fork": 'shape=box, style="filled", height=0.08, width=1.5, fixedsize=true, fontsize=1',
    "join": 'shape=box, style="filled", height=0.08, width=1.5, fixedsize=true, fontsize=1',
    "terminal": 'shape=oval, style="filled"',
    "path": 'shape=cylinder, style="filled"',
    "condition": 'shape=hexagon, style="filled"',
    "pause": 'shape=parallelogram, style="filled"',
}


def to_dot(
    workflow: Workflow,
    kind: Kind = "flow",
    run: Iterable[Any] | None = None,
    contracts: Mapping[str, ProcessSpec] | None = None,
) -> str:
    """The workflow as a Graphviz ``digraph`` (the arguments of :func:`to_mermaid`)."""
    g = _graph(workflow, kind, run, contracts)
    title = workflow.name or _basename(workflow.source)
    lines = [
        "digraph workflow {",
        f"    label={_dq(title)};",
        "    labelloc=t;",
        f"    rankdir={g.direction};",
        '    node [fontname="Helvetica", fillcolor="#ffffff"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    children: dict[str | None, list[_Cluster]] = {}
    for c in g.clusters:
        children.setdefault(c.parent, []).append(c)
    members: dict[str | None, list[_Node]] = {}
    for n in g.nodes:
        members.setdefault(n.cluster, []).append(n)

    def attrs(n: _Node) -> str:
        parts = [
            f"label={_dq('' if n.shape in ('fork', 'join') else n.label)}",
            _DOT_SHAPE[n.shape],
        ]
        if n.shape in ("fork", "join"):
            parts.append('fillcolor="#424242"')
        elif n.status is not None:
            fill, stroke = _FILL[n.status]
            parts.append(f'fillcolor="{fill}", color="{stroke}"')
        return ", ".join(parts)

    def emit(cluster: str | None, indent: str) -> None:
        for n in members.get(cluster, []):
            lines.append(f"{indent}{n.id} [{attrs(n)}];")
        for c in children.get(cluster, []):
            lines.append(f"{indent}subgraph cluster_{c.id} {{")
            lines.append(f"{indent}    label={_dq(c.label)};")
            lines.append(f'{indent}    style="rounded,dashed";')
            emit(c.id, indent + "    ")
            lines.append(f"{indent}}}")

    emit(None, "    ")
    for e in g.edges:
        opts = []
        if e.label is not None:
            opts.append(f"label={_dq(e.label)}")
        if e.back:
            opts.append("style=dashed, constraint=false")
        suffix = f" [{', '.join(opts)}]" if opts else ""
        lines.append(f"    {e.src} -> {e.dst}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- rendering


def render(dot_text: str, fmt: Literal["svg", "png"] = "svg", *, timeout: float = 60.0) -> bytes:
    """``dot_text`` rendered by the local Graphviz ``dot`` as ``fmt`` (``svg`` or ``png``).

    Raises :class:`RuntimeError` when ``dot`` is not installed or fails.
    """
    if fmt not in ("svg", "png"):
        raise ValueError(f"fmt must be 'svg' or 'png', not {fmt!r}")
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError(
            "Graphviz `dot` is not installed (Debian: apt-get install graphviz); "
            "write .mmd or .dot instead"
        )
    done = subprocess.run(
        [exe, f"-T{fmt}"],
        input=dot_text.encode(),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        problem = done.stderr.decode(errors="replace").strip().replace("\n", "; ")
        raise RuntimeError(f"Graphviz `dot` failed (exit {done.returncode}): {problem}")
    return done.stdout
