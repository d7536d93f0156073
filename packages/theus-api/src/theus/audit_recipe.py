"""Loading and validating audit recipes (spec/17-audit.md).

:func:`load_recipe` turns a YAML file, a mapping or an :class:`AuditRecipe` into an
:class:`AuditRecipe`; every problem raises :class:`theus.errors.AuditRecipeError` naming the
file, line and column (a file) or the key path (a mapping).
"""

from __future__ import annotations

import importlib
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NoReturn

from .errors import AuditRecipeError, InvalidPathError
from .paths import Path, parse_path

__all__ = [
    "LEVEL_NAMES",
    "AuditRecipe",
    "AuditRule",
    "Level",
    "ProcessRules",
    "Side",
    "load_recipe",
]

Level = Literal["S", "A", "B", "C"]

#: Theus 3 spellings of namespaces in output fields (``domain_ctx.x`` is ``domain.x``).
_NAMESPACE_ALIASES = {"domain_ctx": "domain", "global_ctx": "global", "global_": "global"}
Side = Literal["input", "output"]

_LEVELS: dict[str, Level] = {
    "S": "S",
    "Stop": "S",
    "A": "A",
    "Abort": "A",
    "B": "B",
    "Block": "B",
    "C": "C",
    "Count": "C",
}

LEVEL_NAMES: Mapping[Level, str] = MappingProxyType(
    {"S": "stop", "A": "abort", "B": "block", "C": "count"}
)
"""The word for each level, as error and log texts use it."""

#: the conditions, in the order they are checked
CONDITIONS = ("min", "max", "eq", "neq", "min_len", "max_len", "regex")
_RULE_KEYS = ("field", *CONDITIONS, "level", "message", "threshold_max", "max_threshold")
_AUDIT_KEYS = ("level", "threshold_max", "threshold_min", "reset_on_success")
_TOP_KEYS = ("audit", "process_recipes")
_PROCESS_KEYS = ("inputs", "outputs")


@dataclass(frozen=True)
class AuditRule:
    """One input or output rule of a process recipe."""

    side: Side
    #: the field as written in the recipe (``amount``, ``domain.balance``)
    field: str
    #: its segments (an input's first segment is the keyword argument)
    path: Path
    #: ``(condition, argument)`` pairs in checking order; ``regex`` carries a compiled pattern
    conditions: tuple[tuple[str, Any], ...]
    level: Level | None = None
    threshold_max: int | None = None
    message: str | None = None
    #: where the rule is: ``FILE:LINE:COLUMN`` or its key path
    where: str = ""


@dataclass(frozen=True)
class ProcessRules:
    """The rules of one process."""

    inputs: tuple[AuditRule, ...] = ()
    outputs: tuple[AuditRule, ...] = ()


@dataclass(frozen=True)
class AuditRecipe:
    """A loaded, validated audit recipe (immutable; several engines may share one)."""

    level: Level = "B"
    threshold_max: int = 3
    threshold_min: int = 0
    reset_on_success: bool = True
    processes: Mapping[str, ProcessRules] = field(default_factory=lambda: MappingProxyType({}))
    #: the file it was read from, or None
    source: str | None = None

    @property
    def has_outputs(self) -> bool:
        """Whether any process has an output rule."""
        return any(r.outputs for r in self.processes.values())


# ------------------------------------------------------------------------------------------
# reading: a plain tree plus the position of every key and value (YAML only)

_Marks = dict[str, tuple[int, int]]


class _Located:
    """A recipe's raw tree and where each of its parts is."""

    def __init__(self, tree: Any, file: str | None) -> None:
        self.tree = tree
        self.file = file
        self.value_marks: _Marks = {}
        self.key_marks: _Marks = {}
        self.merged: dict[int, int] = {}  # YAML mapping node id -> its merged pairs

    def fail(self, problem: str, key_path: str, *, at_key: bool = False) -> NoReturn:
        marks = self.key_marks if at_key else self.value_marks
        mark = marks.get(key_path) or self.value_marks.get(key_path)
        if self.file is None:
            raise AuditRecipeError(problem, key_path)
        line, column = mark if mark is not None else (None, None)
        raise AuditRecipeError(problem, key_path, self.file, line, column)


def _child(path: str, key: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"[{key!r}]" if path == "<recipe>" else f"{path}[{key!r}]"
    return key if path == "<recipe>" else f"{path}.{key}"


def _yaml() -> Any:
    """PyYAML (imported on first use; typed as Any: it ships no type information)."""
    return importlib.import_module("yaml")


def _read_yaml(data: bytes, file: str) -> _Located:
    yaml = _yaml()
    located = _Located(None, file)
    loader: Any = None
    try:
        try:
            loader = yaml.SafeLoader(data)
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = ": ".join(p for p in (exc.context, exc.problem) if p) or "malformed YAML"
            line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
            raise AuditRecipeError(
                f"malformed YAML: {problem}", "<recipe>", file, line, column
            ) from None
        except yaml.reader.ReaderError as exc:
            head = data[: max(exc.position, 0)].decode("utf-8", "replace")
            line = head.count("\n") + 1
            column = len(head) - (head.rfind("\n") + 1) + 1
            raise AuditRecipeError(
                f"malformed YAML: {exc.reason}", "<recipe>", file, line, column
            ) from None
        except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error is one of above
            raise AuditRecipeError(f"malformed YAML: {exc}", "<recipe>", file) from None
        located.tree = {} if node is None else _from_node(loader, node, "<recipe>", located, ())
    finally:
        if loader is not None:
            loader.dispose()
    return located


def _from_node(loader: Any, node: Any, path: str, located: _Located, seen: tuple[int, ...]) -> Any:
    yaml = _yaml()
    located.value_marks.setdefault(path, _mark(node))
    if id(node) in seen:
        located.fail("an alias refers to a node that contains it (its anchor is here)", path)
    if isinstance(node, yaml.ScalarNode):
        try:
            return loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            located.fail(f"cannot read this value: {exc.problem}", path)
    inner = (*seen, id(node))
    if isinstance(node, yaml.SequenceNode):
        return [
            _from_node(loader, item, f"{path}[{i}]", located, inner)
            for i, item in enumerate(node.value)
        ]
    if isinstance(node, yaml.MappingNode):
        if id(node) not in located.merged:  # an aliased node is flattened once
            explicit = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
            try:
                loader.flatten_mapping(node)  # `<<` merge keys: merged pairs, then explicit
            except yaml.MarkedYAMLError as exc:
                located.fail(f"malformed YAML: {exc.problem}", path)
            located.merged[id(node)] = len(node.value) - explicit
        merged = node.value[: located.merged[id(node)]]
        out: dict[str, Any] = {}
        for key_node, value_node in node.value[len(merged) :]:
            key = _key(loader, key_node, path, located)
            sub = _child(path, key)
            located.key_marks[sub] = _mark(key_node)
            if key in out:
                located.fail(f"duplicate key {key!r}", sub, at_key=True)
            out[key] = _from_node(loader, value_node, sub, located, inner)
        for key_node, value_node in reversed(merged):  # a later merged mapping wins
            key = _key(loader, key_node, path, located)
            if key not in out:
                sub = _child(path, key)
                located.key_marks[sub] = _mark(key_node)
                out[key] = _from_node(loader, value_node, sub, located, inner)
        return out
    located.fail("unsupported YAML node", path)  # pragma: no cover


def _mark(node: Any) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _key(loader: Any, node: Any, path: str, located: _Located) -> str:
    yaml = _yaml()
    key = loader.construct_object(node) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(key, str):
        shown = node.value if isinstance(node, yaml.ScalarNode) else "a collection"
        located.key_marks[path + "<key>"] = _mark(node)
        located.fail(f"keys must be strings, not {shown!r}", path + "<key>", at_key=True)
    return key


def _read(recipe: object) -> _Located:
    if isinstance(recipe, str | os.PathLike):
        file = os.fsdecode(recipe)
        with open(file, "rb") as fh:
            data = fh.read()
        return _read_yaml(data, file)
    if isinstance(recipe, Mapping):
        return _Located(recipe, None)
    raise TypeError(
        "audit_recipe must be a path to a YAML file, a mapping or a theus.audit.AuditRecipe, "
        f"not {type(recipe).__name__}"
    )


# ------------------------------------------------------------------------------------------
# validating


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an int"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a str"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


class _Builder:
    def __init__(self, located: _Located) -> None:
        self.loc = located

    def fail(self, problem: str, key_path: str, *, at_key: bool = False) -> NoReturn:
        self.loc.fail(problem, key_path, at_key=at_key)

    def mapping(self, value: object, path: str, allowed: Sequence[str]) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(f"expected a mapping, not {_kind(value)}", path)
        for key in value:
            if not isinstance(key, str):
                self.fail(f"keys must be strings, not {key!r}", path)
            if key not in allowed:
                self.fail(
                    f"unknown key {key!r} (expected one of: {', '.join(allowed)})",
                    _child(path, key),
                    at_key=True,
                )
        return value

    def count(self, value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(f"expected an int >= 0, not {_kind(value)} {value!r}", path)
        return value

    def level(self, value: object, path: str) -> Level:
        if not isinstance(value, str) or value not in _LEVELS:
            self.fail(
                f"unknown level {value!r} (expected one of: S, A, B, C, Stop, Abort, Block, Count)",
                path,
            )
        return _LEVELS[value]

    def number(self, value: object, path: str) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            self.fail(f"expected a number, not {_kind(value)} {value!r}", path)
        return value

    def scalar(self, value: object, path: str) -> str | int | float | bool:
        if not isinstance(value, str | int | float) or (
            isinstance(value, float) and math.isnan(value)
        ):
            self.fail(f"expected a str, int, float or bool, not {_kind(value)} {value!r}", path)
        return value

    def text(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            self.fail(f"expected a str, not {_kind(value)} {value!r}", path)
        return value

    def where(self, path: str) -> str:
        mark = self.loc.value_marks.get(path)
        if self.loc.file is not None and mark is not None:
            return f"{self.loc.file}:{mark[0]}:{mark[1]}"
        return path

    # -- the recipe ----------------------------------------------------------------------
    def recipe(self) -> AuditRecipe:
        top = self.mapping(self.loc.tree, "<recipe>", _TOP_KEYS)
        audit = self.mapping(top.get("audit"), "audit", _AUDIT_KEYS)
        level: Level = self.level(audit["level"], "audit.level") if "level" in audit else "B"
        t_max = (
            self.count(audit["threshold_max"], "audit.threshold_max")
            if ("threshold_max" in audit)
            else 3
        )
        t_min = (
            self.count(audit["threshold_min"], "audit.threshold_min")
            if ("threshold_min" in audit)
            else 0
        )
        if "threshold_min" in audit and "threshold_max" in audit and t_min > t_max:
            self.fail(
                f"threshold_min {t_min} is greater than threshold_max {t_max}",
                "audit.threshold_min",
            )
        reset = audit.get("reset_on_success", True)
        if not isinstance(reset, bool):
            self.fail(f"expected a bool, not {_kind(reset)} {reset!r}", "audit.reset_on_success")
        processes: dict[str, ProcessRules] = {}
        recipes = top.get("process_recipes")
        if recipes is not None and not isinstance(recipes, Mapping):
            self.fail(f"expected a mapping, not {_kind(recipes)}", "process_recipes")
        for name, body in (recipes or {}).items():
            if not isinstance(name, str) or not name:
                self.fail(
                    f"a process name must be a non-empty str, not {name!r}", "process_recipes"
                )
            path = _child("process_recipes", name)
            spec = self.mapping(body, path, _PROCESS_KEYS)
            processes[name] = ProcessRules(
                inputs=self.rules(spec.get("inputs"), f"{_child(path, 'inputs')}", "input"),
                outputs=self.rules(spec.get("outputs"), f"{_child(path, 'outputs')}", "output"),
            )
        return AuditRecipe(
            level=level,
            threshold_max=t_max,
            threshold_min=t_min,
            reset_on_success=reset,
            processes=MappingProxyType(processes),
            source=self.loc.file,
        )

    def rules(self, value: object, path: str, side: Side) -> tuple[AuditRule, ...]:
        if value is None:
            return ()
        if isinstance(value, str) or not isinstance(value, list | tuple):
            self.fail(f"expected a list of rules, not {_kind(value)}", path)
        return tuple(self.rule(item, f"{path}[{i}]", side) for i, item in enumerate(value))

    def rule(self, value: object, path: str, side: Side) -> AuditRule:
        if not isinstance(value, Mapping):
            self.fail(f"a rule must be a mapping, not {_kind(value)}", path)
        spec = self.mapping(value, path, _RULE_KEYS)
        if "field" not in spec:
            self.fail("a rule needs a 'field'", path)
        text = self.text(spec["field"], f"{path}.field")
        segments = self.field(text, f"{path}.field", side)
        conditions: list[tuple[str, Any]] = []
        checks: dict[str, Callable[[object, str], Any]] = {
            "min": self.number,
            "max": self.number,
            "eq": self.scalar,
            "neq": self.scalar,
            "min_len": self.count,
            "max_len": self.count,
            "regex": self.regex,
        }
        for name in CONDITIONS:
            if name in spec:
                conditions.append((name, checks[name](spec[name], f"{path}.{name}")))
        if not conditions:
            self.fail(f"a rule must check something: give one of {', '.join(CONDITIONS)}", path)
        for low, high in (("min", "max"), ("min_len", "max_len")):
            if low in spec and high in spec and spec[low] > spec[high]:
                self.fail(
                    f"{low} {spec[low]!r} is greater than {high} {spec[high]!r}", f"{path}.{low}"
                )
        if "threshold_max" in spec and "max_threshold" in spec:
            self.fail(
                "give threshold_max or its Theus 3 spelling max_threshold, not both",
                f"{path}.max_threshold",
                at_key=True,
            )
        threshold: int | None = None
        for key in ("threshold_max", "max_threshold"):
            if key in spec:
                threshold = self.count(spec[key], f"{path}.{key}")
        return AuditRule(
            side=side,
            field=".".join(segments),
            path=segments,
            conditions=tuple(conditions),
            level=self.level(spec["level"], f"{path}.level") if "level" in spec else None,
            threshold_max=threshold,
            message=self.text(spec["message"], f"{path}.message") if "message" in spec else None,
            where=self.where(path),
        )

    def field(self, text: str, path: str, side: Side) -> Path:
        try:
            segments = parse_path(text)
        except InvalidPathError as exc:
            self.fail(str(exc), path)
        if side == "input" and not segments[0].isidentifier():
            self.fail(
                f"input field {text!r} must start with a keyword argument name "
                "(input rules check the call's keyword arguments)",
                path,
            )
        if side == "output" and segments[0] in _NAMESPACE_ALIASES:  # Theus 3 (spec/19)
            segments = (_NAMESPACE_ALIASES[segments[0]], *segments[1:])
        return segments

    def regex(self, value: object, path: str) -> re.Pattern[str]:
        pattern = self.text(value, path)
        try:
            return re.compile(pattern)
        except re.error as exc:
            self.fail(f"bad regex {pattern!r}: {exc}", path)


def load_recipe(recipe: object) -> AuditRecipe:
    """Load and validate ``recipe``: a path of a YAML file, a mapping, or an
    :class:`AuditRecipe` (returned as is). Raises :class:`theus.errors.AuditRecipeError`."""
    if isinstance(recipe, AuditRecipe):
        return recipe
    return _Builder(_read(recipe)).recipe()
