"""Loading and validating Flux workflows (spec/18-flux.md).

:func:`parse_workflow` (YAML text) and :func:`load_workflow` (a file) return a
:class:`theus.flux.model.Workflow`; every problem raises :class:`theus.errors.FluxError` naming
the file, line and column, before anything runs.
"""

from __future__ import annotations

import difflib
import importlib
import keyword
import os
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any, NoReturn

from ..contracts import ProcessSpec
from ..errors import FluxError, InvalidPathError
from ..paths import Pattern, format_path, parse_path
from ..zones import Zone, zone_of
from .expr import Expression, compile_expression
from .model import (
    Expr,
    IfStep,
    Loc,
    ParallelStep,
    PauseStep,
    ProcessStep,
    RunStep,
    Step,
    WhileStep,
    Workflow,
    iter_steps,
)

__all__ = ["MAX_INCLUDES", "MAX_NESTING", "load_workflow", "parse_workflow", "patterns_overlap"]

#: deepest nesting of steps (``if`` inside ``while`` inside ``run`` ...), includes counted
MAX_NESTING = 64
#: deepest chain of ``flux: run`` ``workflow:`` includes
MAX_INCLUDES = 16
#: deepest nesting inside a ``with:`` or ``inputs:`` value
_MAX_VALUE_DEPTH = 64

_TOP_KEYS = ("steps", "name", "description", "inputs", "max_ops")
_KIND_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required, optional) keys besides `flux`
    "if": (("condition", "then"), ("else",)),
    "while": (("condition", "do"), ("max_iterations",)),
    "run": ((), ("steps", "workflow")),
    "parallel": (("branches",), ()),
    "pause": (("prompt", "into"), ("timeout",)),
}
_PROCESS_KEYS = ("process", "with")
_COLLECTION_TAGS = ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map", "tag:yaml.org,2002:omap")

Processes = Mapping[str, ProcessSpec] | Collection[str] | None


_YAML: list[Any] = []


def _yaml() -> Any:
    """PyYAML, imported on first use (typed as Any: it ships no type information)."""
    if not _YAML:
        _YAML.append(importlib.import_module("yaml"))
    return _YAML[0]


def _kind(node: Any) -> str:
    yaml = _yaml()
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the scalar {node.value!r}"


def _child(path: str, key: str) -> str:
    return key if not path else f"{path}.{key}"


class _Loader:
    """One file's reading; includes make nested loaders sharing ``stack``."""

    def __init__(
        self,
        text: str,
        file: str,
        processes: Processes,
        namespaces: Collection[str] | None,
        base_dir: str | None,
        stack: tuple[str, ...],
        inputs: Collection[str],
    ) -> None:
        self.text = text
        self.file = file
        self.processes = processes
        self.namespaces = namespaces
        self.base_dir = base_dir
        self.stack = stack
        self.inputs: Collection[str] = inputs
        self.loader: Any = None

    # -- errors ------------------------------------------------------------------------------
    def fail(self, problem: str, node: Any = None, key_path: str | None = None) -> NoReturn:
        if node is None:
            raise FluxError(problem, self.file, None, None, key_path)
        mark = node.start_mark
        raise FluxError(problem, self.file, mark.line + 1, mark.column + 1, key_path)

    def loc(self, node: Any, key_path: str) -> Loc:
        return Loc(self.file, node.start_mark.line + 1, node.start_mark.column + 1, key_path)

    # -- YAML --------------------------------------------------------------------------------
    def compose(self) -> Any:
        """The document's node tree. libyaml's parser reads it when PyYAML has it (several
        times faster); a document it refuses is re-read by the pure-Python parser, so that the
        problem and position reported do not depend on libyaml being installed."""
        yaml = _yaml()
        fast = getattr(yaml, "CSafeLoader", None)
        if fast is not None:
            try:
                self.loader = fast(self.text)
                return self.loader.get_single_node()
            except yaml.YAMLError as exc:
                if "maximum nesting depth" in str(exc):
                    self.yaml_error(exc)
                self.dispose()
                self.loader = None
        try:
            self.loader = yaml.SafeLoader(self.text)
            return self.loader.get_single_node()
        except yaml.YAMLError as exc:
            self.yaml_error(exc)
        except RecursionError:
            raise FluxError("malformed YAML: nested too deeply", self.file) from None

    def yaml_error(self, exc: Any) -> NoReturn:
        yaml = _yaml()
        if isinstance(exc, yaml.MarkedYAMLError):
            mark = exc.problem_mark or exc.context_mark
            problem = ": ".join(p for p in (exc.context, exc.problem) if p) or "malformed YAML"
            line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
            raise FluxError(f"malformed YAML: {problem}", self.file, line, column) from None
        if isinstance(exc, yaml.reader.ReaderError):
            head = self.text[: max(exc.position, 0)]
            line = head.count("\n") + 1
            column = len(head) - (head.rfind("\n") + 1) + 1
            raise FluxError(f"malformed YAML: {exc.reason}", self.file, line, column) from None
        raise FluxError(f"malformed YAML: {exc}", self.file) from None  # pragma: no cover

    def dispose(self) -> None:
        if self.loader is not None and hasattr(self.loader, "dispose"):
            self.loader.dispose()

    def check_tag(self, node: Any, path: str) -> None:
        """Collections carry only YAML's own tags (a scalar's tag is checked when read)."""
        if node.tag not in _COLLECTION_TAGS:
            self.fail(f"unsupported YAML tag {node.tag!r}", node, path)

    def mapping(self, node: Any, path: str) -> dict[str, tuple[Any, Any]]:
        """``key -> (key node, value node)`` of a mapping node, merge keys applied."""
        yaml = _yaml()
        if not isinstance(node, yaml.MappingNode):
            self.fail(f"must be a mapping, not {_kind(node)}", node, path)
        self.check_tag(node, path)
        try:
            self.loader.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            self.fail(f"malformed YAML: {exc.problem}", node, path)
        out: dict[str, tuple[Any, Any]] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.fail(f"keys must be strings, not {_kind(key_node)}", key_node, path)
            if key in out:
                self.fail(f"duplicate key {key!r}", key_node, _child(path, key))
            out[key] = (key_node, value_node)
        return out

    def scalar(self, node: Any, path: str) -> Any:
        yaml = _yaml()
        if not isinstance(node, yaml.ScalarNode):
            self.fail(f"must be a single value, not {_kind(node)}", node, path)
        try:
            return self.loader.construct_object(node)
        except yaml.MarkedYAMLError as exc:
            self.fail(f"cannot read this value: {exc.problem}", node, path)

    def data(self, node: Any, path: str, depth: int = 0) -> Any:
        """A plain value (``with:`` arguments, input defaults), depth-capped."""
        yaml = _yaml()
        if depth > _MAX_VALUE_DEPTH:
            self.fail(f"value nested more than {_MAX_VALUE_DEPTH} levels", node, path)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            self.check_tag(node, path)
            return [self.data(n, f"{path}[{i}]", depth + 1) for i, n in enumerate(node.value)]
        return {
            k: self.data(v, _child(path, k), depth + 1)
            for k, (_, v) in self.mapping(node, path).items()
        }

    def unknown_keys(
        self, keys: Mapping[str, tuple[Any, Any]], allowed: Collection[str], path: str, what: str
    ) -> None:
        for key, (key_node, _) in keys.items():
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.fail(
                    f"unknown key {key!r} in {what} (allowed: {', '.join(allowed)}){hint}",
                    key_node,
                    _child(path, key),
                )

    def positive_int(self, node: Any, path: str) -> int:
        value = self.scalar(node, path)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            self.fail(f"must be a positive integer, not {value!r}", node, path)
        return value

    # -- the document ------------------------------------------------------------------------
    def workflow(self, included: bool = False, depth: int = 0) -> tuple[Any, ...]:
        node = self.compose()
        yaml = _yaml()
        if node is None:
            self.fail("empty workflow: it needs a top-level `steps:` list")
        if not isinstance(node, yaml.MappingNode):
            self.fail(
                f"the top level must be a mapping with a `steps:` list, not {_kind(node)}", node
            )
        top = self.mapping(node, "")
        self.unknown_keys(top, _TOP_KEYS, "", "a workflow")
        if "steps" not in top:
            self.fail("a workflow needs a top-level `steps:` list", node)
        name = description = None
        inputs: dict[str, Any] = {}
        max_ops = None
        for key in ("name", "description"):
            if key in top:
                value = self.scalar(top[key][1], key)
                if not isinstance(value, str):
                    self.fail(f"must be a str, not {value!r}", top[key][1], key)
                if key == "name":
                    name = value
                else:
                    description = value
        if included:
            for key in ("inputs", "max_ops"):
                if key in top:
                    self.fail(
                        f"`{key}:` is not allowed in an included workflow (set it in the file "
                        "that is run)",
                        top[key][0],
                        key,
                    )
        if "inputs" in top:
            inputs_node = top["inputs"][1]
            for key, (key_node, value_node) in self.mapping(inputs_node, "inputs").items():
                if not key.isidentifier() or keyword.iskeyword(key) or key.startswith("_"):
                    self.fail(
                        f"an input name must be an identifier not starting with '_', not {key!r}",
                        key_node,
                        f"inputs.{key}",
                    )
                inputs[key] = self.data(value_node, f"inputs.{key}")
            self.inputs = tuple(inputs)
        if "max_ops" in top:
            max_ops = self.positive_int(top["max_ops"][1], "max_ops")
        steps = self.steps(top["steps"][1], "steps", depth)
        return steps, name, description, inputs, max_ops

    def steps(self, node: Any, path: str, depth: int) -> tuple[Step, ...]:
        yaml = _yaml()
        if not isinstance(node, yaml.SequenceNode):
            self.fail(f"must be a list of steps, not {_kind(node)}", node, path)
        self.check_tag(node, path)
        return tuple(
            self.step(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node.value)
        )

    def step(self, node: Any, path: str, depth: int) -> Step:
        yaml = _yaml()
        if depth > MAX_NESTING:
            self.fail(f"steps nested more than {MAX_NESTING} levels", node, path)
        if isinstance(node, yaml.ScalarNode):
            value = self.scalar(node, path)
            if not isinstance(value, str) or not value:
                self.fail(f"a step must be a process name or a mapping, not {value!r}", node, path)
            return ProcessStep(self.process_name(value, node, path), self.loc(node, path))
        if not isinstance(node, yaml.MappingNode):
            self.fail(f"a step must be a process name or a mapping, not {_kind(node)}", node, path)
        keys = self.mapping(node, path)
        if "flux" in keys:
            return self.flux_step(node, keys, path, depth)
        if "process" in keys:
            self.unknown_keys(keys, _PROCESS_KEYS, path, "a process step")
            name_node = keys["process"][1]
            value = self.scalar(name_node, _child(path, "process"))
            if not isinstance(value, str) or not value:
                self.fail(
                    f"must be a process name, not {value!r}", name_node, _child(path, "process")
                )
            name = self.process_name(value, name_node, _child(path, "process"))
            with_: dict[str, Any] = {}
            if "with" in keys:
                with_path = _child(path, "with")
                for key, (key_node, value_node) in self.mapping(keys["with"][1], with_path).items():
                    arg = _child(with_path, key)
                    if not key.isidentifier() or keyword.iskeyword(key):
                        self.fail(
                            f"an argument name must be an identifier, not {key!r}", key_node, arg
                        )
                    with_[key] = self.argument(value_node, arg)
            return ProcessStep(name, self.loc(node, path), MappingProxyType(with_))
        self.fail(
            f"a step mapping needs `process:` or `flux:` (it has: {', '.join(keys) or 'nothing'})",
            node,
            path,
        )

    def argument(self, node: Any, path: str) -> Any:
        yaml = _yaml()
        if isinstance(node, yaml.MappingNode):
            keys = self.mapping(node, path)
            if "expr" in keys:
                if len(keys) != 1:
                    self.fail("an `{expr: ...}` argument has no other keys", node, path)
                return Expr(self.expression(keys["expr"][1], _child(path, "expr")))
        return self.data(node, path)

    def process_name(self, name: str, node: Any, path: str) -> str:
        known = self.processes
        if known is not None and name not in known:
            names = sorted(known)
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.fail(
                f"unknown process {name!r} (registered: {', '.join(names) or 'none'}){hint}",
                node,
                path,
            )
        return name

    def flux_step(self, node: Any, keys: dict[str, tuple[Any, Any]], path: str, depth: int) -> Step:
        kind_node = keys["flux"][1]
        kind = self.scalar(kind_node, _child(path, "flux"))
        if kind not in _KIND_KEYS:
            self.fail(
                f"unknown flux kind {kind!r} (known: {', '.join(_KIND_KEYS)})",
                kind_node,
                _child(path, "flux"),
            )
        required, optional = _KIND_KEYS[kind]
        self.unknown_keys(keys, ("flux", *required, *optional), path, f"a `flux: {kind}` step")
        for key in required:
            if key not in keys:
                self.fail(f"a `flux: {kind}` step needs `{key}:`", node, path)
        loc = self.loc(node, path)
        if kind == "if":
            cond = self.expression(keys["condition"][1], _child(path, "condition"))
            then = self.steps(keys["then"][1], _child(path, "then"), depth)
            else_ = (
                self.steps(keys["else"][1], _child(path, "else"), depth) if "else" in keys else ()
            )
            return IfStep(cond, then, else_, loc)
        if kind == "while":
            cond = self.expression(keys["condition"][1], _child(path, "condition"))
            body = self.steps(keys["do"][1], _child(path, "do"), depth)
            limit = None
            if "max_iterations" in keys:
                limit = self.positive_int(keys["max_iterations"][1], _child(path, "max_iterations"))
            return WhileStep(cond, body, loc, limit)
        if kind == "run":
            if ("steps" in keys) == ("workflow" in keys):
                self.fail(
                    "a `flux: run` step needs exactly one of `steps:` or `workflow:`", node, path
                )
            if "steps" in keys:
                return RunStep(self.steps(keys["steps"][1], _child(path, "steps"), depth), loc)
            return self.include(keys["workflow"][1], _child(path, "workflow"), loc, depth)
        if kind == "pause":
            return self.pause(keys, path, loc)
        # parallel
        branches_node = keys["branches"][1]
        bpath = _child(path, "branches")
        yaml = _yaml()
        if not isinstance(branches_node, yaml.SequenceNode):
            self.fail(
                f"must be a list of step lists, not {_kind(branches_node)}", branches_node, bpath
            )
        self.check_tag(branches_node, bpath)
        if len(branches_node.value) < 2:
            self.fail("a `flux: parallel` step needs at least 2 branches", branches_node, bpath)
        branches = tuple(
            self.steps(b, f"{bpath}[{i}]", depth) for i, b in enumerate(branches_node.value)
        )
        self.check_parallel(branches, branches_node, bpath)
        for branch in branches:
            for inner in iter_steps(branch):
                if isinstance(inner, PauseStep):
                    self.fail(
                        f"a `flux: pause` step cannot be inside a `flux: parallel` branch "
                        f"(the pause at {inner.loc} {inner.loc.key_path}): pause before or "
                        "after the parallel step",
                        branches_node,
                        bpath,
                    )
        return ParallelStep(branches, loc)

    def pause(self, keys: dict[str, tuple[Any, Any]], path: str, loc: Loc) -> PauseStep:
        prompt = self.data(keys["prompt"][1], _child(path, "prompt"))
        into_node = keys["into"][1]
        ipath = _child(path, "into")
        into = self.scalar(into_node, ipath)
        if not isinstance(into, str):
            self.fail(f"must be a dotted state path, not {into!r}", into_node, ipath)
        try:
            segments = parse_path(into)
        except InvalidPathError as exc:
            self.fail(str(exc), into_node, ipath)
        if self.namespaces is not None and segments[0] not in self.namespaces:
            self.fail(
                f"{into!r} is in no namespace of the engine (namespaces: "
                f"{', '.join(self.namespaces) or 'none'})",
                into_node,
                ipath,
            )
        if len(segments) < 2:
            self.fail(f"{into!r} names a whole namespace: name a key inside it", into_node, ipath)
        if zone_of(segments) is not Zone.DATA:
            self.fail(
                f"{into!r} is not a data-zone path (no sig_/cmd_/heavy_ key)", into_node, ipath
            )
        timeout = None
        if "timeout" in keys:
            tnode = keys["timeout"][1]
            value = self.scalar(tnode, _child(path, "timeout"))
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not value > 0
                or value == float("inf")
            ):
                self.fail(
                    f"must be a positive number of seconds, not {value!r}",
                    tnode,
                    _child(path, "timeout"),
                )
            timeout = float(value)
        return PauseStep(prompt, format_path(segments), loc, timeout)

    def expression(self, node: Any, path: str) -> Expression:
        yaml = _yaml()
        value = self.scalar(node, path)
        if isinstance(value, bool):
            value = "True" if value else "False"
        if not isinstance(value, str):
            self.fail(f"must be an expression (a str), not {value!r}", node, path)
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        position = self.position(node, value, line, column)
        del yaml
        return compile_expression(
            value,
            file=self.file,
            line=line,
            column=column,
            key_path=path,
            inputs=self.inputs,
            namespaces=self.namespaces,
            position=position,
        )

    def position(
        self, node: Any, value: str, line: int, column: int
    ) -> Callable[[int, int], tuple[int | None, int | None]]:
        """Map a position inside the expression text to the file, exactly where the scalar's
        source spells the text verbatim on one line; else to the scalar's start."""
        start, end = node.start_mark, node.end_mark
        raw = self.text[start.index : end.index] if end.index <= len(self.text) else ""
        offset = None
        if "\n" not in value and "\n" not in raw:
            if not node.style and raw == value:
                offset = 0
            elif node.style in ("'", '"') and raw[1:-1] == value:
                offset = 1

        def where(row: int, col: int) -> tuple[int | None, int | None]:
            if offset is None or row != 1:
                return line, column
            return line, column + offset + col

        return where

    def include(self, node: Any, path: str, loc: Loc, depth: int) -> RunStep:
        target = self.scalar(node, path)
        if not isinstance(target, str) or not target:
            self.fail(f"must be a file path, not {target!r}", node, path)
        base = self.base_dir
        if base is None:
            base = os.path.dirname(self.file) if self.stack else os.getcwd()
        resolved = os.path.realpath(os.path.join(base, target))
        if resolved in self.stack:
            chain = " -> ".join([*self.stack[self.stack.index(resolved) :], resolved])
            self.fail(f"include cycle: {chain}", node, path)
        if len(self.stack) >= MAX_INCLUDES:
            self.fail(f"includes nested more than {MAX_INCLUDES} files deep", node, path)
        try:
            with open(resolved, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            self.fail(f"cannot read the included workflow {target!r}: {exc.strerror}", node, path)
        text = _decode(data, resolved)
        sub = _Loader(
            text,
            resolved,
            self.processes,
            self.namespaces,
            os.path.dirname(resolved),
            (*self.stack, resolved),
            self.inputs,
        )
        try:
            steps = sub.workflow(included=True, depth=depth)[0]
        finally:
            sub.dispose()
        return RunStep(steps, loc, resolved)

    # -- static checks -----------------------------------------------------------------------
    def check_parallel(self, branches: tuple[tuple[Step, ...], ...], node: Any, path: str) -> None:
        """Two branches whose processes' declared outputs overlap are refused."""
        specs = self.processes
        if not isinstance(specs, Mapping):
            return
        procs = [[s for s in iter_steps(b) if isinstance(s, ProcessStep)] for b in branches]
        for i in range(len(procs)):
            for j in range(i + 1, len(procs)):
                for p in procs[i]:
                    for q in procs[j]:
                        hit = _outputs_overlap(specs[p.process], specs[q.process])
                        if hit is not None:
                            self.fail(
                                f"branches {i} and {j} may write the same key: process "
                                f"{p.process!r} ({p.loc}) writes {hit[0]!r} and process "
                                f"{q.process!r} ({q.loc}) writes {hit[1]!r}",
                                node,
                                path,
                            )


def _outputs_overlap(a: ProcessSpec, b: ProcessSpec) -> tuple[str, str] | None:
    for pa in a.outputs:
        for pb in b.outputs:
            if patterns_overlap(pa, pb):
                return pa.text, pb.text
    return None


def patterns_overlap(a: Pattern, b: Pattern) -> bool:
    """True when some path is covered by both patterns (spec/02 "covers"): a write allowed by
    one may touch a key a write allowed by the other touches."""
    sa, sb = a.segments, b.segments
    literals = {s for s in (*sa, *sb) if s not in ("*", "**")}
    alphabet = [*literals, "\x00fresh"]  # a segment equal to no literal

    def closure(pattern: tuple[str, ...], i: int) -> set[int]:
        out = {i}
        while i < len(pattern) and pattern[i] == "**":
            i += 1
            out.add(i)
        return out

    def step(pattern: tuple[str, ...], i: int, seg: str) -> set[int]:
        if i == len(pattern):
            return {i}  # matched a prefix: covers every extension
        part = pattern[i]
        if part == "**":
            return closure(pattern, i)
        if part == "*" or part == seg:
            return closure(pattern, i + 1)
        return set()

    start = {(x, y) for x in closure(sa, 0) for y in closure(sb, 0)}
    seen = set(start)
    todo = list(start)
    while todo:
        x, y = todo.pop()
        if x == len(sa) and y == len(sb):
            return True
        for seg in alphabet:
            for nx in step(sa, x, seg):
                for ny in step(sb, y, seg):
                    if (nx, ny) not in seen:
                        seen.add((nx, ny))
                        todo.append((nx, ny))
    return False


def _decode(data: bytes, file: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        head = data[: exc.start].decode("utf-8", "replace")
        line = head.count("\n") + 1
        column = len(head) - (head.rfind("\n") + 1) + 1
        raise FluxError("the file is not valid UTF-8", file, line, column) from None
    return text


def _names(processes: Processes) -> Processes:
    if processes is None or isinstance(processes, Mapping):
        return processes
    if isinstance(processes, str):
        raise TypeError("processes must be a collection of names or a name -> ProcessSpec map")
    return frozenset(processes)


def _workflow(
    steps: tuple[Step, ...],
    file: str,
    name: str | None,
    description: str | None,
    inputs: dict[str, Any],
    max_ops: int | None,
    processes: Processes,
) -> Workflow:
    """The loaded workflow; with a ``name -> ProcessSpec`` map it records the specs it uses."""
    contracts = None
    if isinstance(processes, Mapping):
        used = {s.process for s in iter_steps(steps) if isinstance(s, ProcessStep)}
        contracts = MappingProxyType({n: processes[n] for n in sorted(used)})
    return Workflow(
        steps, file, name, description, MappingProxyType(inputs), max_ops, contracts=contracts
    )


def parse_workflow(
    text: str,
    *,
    file: str = "<string>",
    processes: Processes = None,
    namespaces: Collection[str] | None = None,
    base_dir: str | None = None,
) -> Workflow:
    """Parse and validate a workflow given as YAML text.

    ``processes`` — the registered names (a collection) or a ``name -> ProcessSpec`` map
    (which also enables the parallel write-overlap check); ``None`` skips the name check.
    ``namespaces`` — the engine's namespaces, the root names conditions may use (``None``:
    any). ``base_dir`` — where ``workflow:`` includes are resolved (default: the current
    directory). Raises :class:`theus.errors.FluxError` naming ``file:line:column``.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_workflow() expects YAML text (a str), not {type(text).__name__}")
    loader = _Loader(text, file, _names(processes), namespaces, base_dir, (), ())
    try:
        steps, name, description, inputs, max_ops = loader.workflow()
    finally:
        loader.dispose()
    return _workflow(steps, file, name, description, inputs, max_ops, processes)


def load_workflow(
    path: str | os.PathLike[str],
    *,
    processes: Processes = None,
    namespaces: Collection[str] | None = None,
) -> Workflow:
    """Read, parse and validate a workflow file (includes are relative to it); see
    :func:`parse_workflow`."""
    file = os.fsdecode(path)
    resolved = os.path.realpath(file)
    try:
        with open(file, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise FluxError(f"cannot read the workflow: {exc.strerror}", file) from None
    text = _decode(data, file)
    loader = _Loader(
        text, file, _names(processes), namespaces, os.path.dirname(resolved), (resolved,), ()
    )
    try:
        steps, name, description, inputs, max_ops = loader.workflow()
    finally:
        loader.dispose()
    return _workflow(steps, file, name, description, inputs, max_ops, processes)
