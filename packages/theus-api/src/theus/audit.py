"""Audit recipes on the commit pipeline (spec/17-audit.md).

``TheusEngine(audit_recipe=...)`` builds one :class:`Audit` per engine: the loaded recipe
(:mod:`theus.audit_recipe`), the engine's counters and its violation log. The facade calls
:meth:`Audit.check_inputs` once per call before the process runs, and installs
:attr:`Audit.stage` as the pipeline stage ``"audit"`` (spec/15), which checks output rules in
``before_commit`` and counts the landed commit's violations in ``after_commit``.
"""

from __future__ import annotations

import logging
import math
import numbers
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Any

from .audit_recipe import (
    LEVEL_NAMES,
    AuditRecipe,
    AuditRule,
    Level,
    ProcessRules,
    Side,
    load_recipe,
)
from .contracts import ProcessSpec
from .errors import AuditAbortError, AuditBlockError, AuditStopError, AuditViolationError
from .paths import Path
from .pipeline import Changes, Stage

__all__ = ["Audit", "AuditRecipe", "AuditRule", "AuditViolation", "ProcessRules", "load_recipe"]

log = logging.getLogger("theus")

LOG_CAPACITY = 1000
"""How many violation records ``Audit.log`` keeps (the most recent)."""

_ERRORS: dict[Level, type[AuditViolationError]] = {
    "S": AuditStopError,
    "A": AuditAbortError,
    "B": AuditBlockError,
}
_SEVERITY: dict[Level, int] = {"S": 0, "A": 1, "B": 2, "C": 3}

_Key = tuple[str, str, str]  # a counter: (process, side, field)


@dataclass(frozen=True)
class AuditViolation:
    """One violated rule of one call (an entry of ``engine.audit.log``)."""

    process: str
    side: Side
    field: str
    #: the condition that failed: ``min``, ``max``, ``eq``, ``neq``, ``min_len``, ``max_len``,
    #: ``regex``
    rule: str
    value: Any
    level: Level
    #: the rule's ``message``, else the condition's default text
    message: str
    #: the version of the commit that landed with it; None for inputs and raised violations
    version: int | None
    #: the rule's counter including this call
    count: int
    raised: bool
    #: a committing ``B`` violation at or above ``threshold_min``
    approaching: bool


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()  # the field is not there after the commit (not checked)
_UNTOUCHED: Any = _Absent()  # the commit does not touch the field (not checked)


# ------------------------------------------------------------------------------------------
# conditions


def _show(value: Any) -> str:
    """The value as messages show it (views as their plain content: same on every backend)."""
    return _cut(repr(_plain(value)))


def _cut(text: str, limit: int = 80) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}...{text[-half:]}"


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        return bool(a == b)
    except Exception:  # an exotic __eq__: not equal
        return False


def _violation(rule: AuditRule, value: Any) -> tuple[str, str] | None:
    """``(condition, default text)`` of the first condition ``value`` fails, or None."""
    for name, arg in rule.conditions:
        if name in ("min", "max"):
            if not _is_number(value):
                return name, f"{_show(value)} is not a number ({name} {arg!r})"
            if name == "min" and value < arg:
                return name, f"{_show(value)} is less than min {arg!r}"
            if name == "max" and value > arg:
                return name, f"{_show(value)} is greater than max {arg!r}"
        elif name == "eq":
            if not _same(value, arg):
                return name, f"{_show(value)} is not equal to {arg!r}"
        elif name == "neq":
            if _same(value, arg):
                return name, f"{_show(value)} is equal to the forbidden value {arg!r}"
        elif name in ("min_len", "max_len"):
            if not isinstance(value, Sized):
                return name, f"{_show(value)} has no length ({name} {arg})"
            n = len(value)
            if name == "min_len" and n < arg:
                return name, f"length {n} is less than min_len {arg}"
            if name == "max_len" and n > arg:
                return name, f"length {n} is greater than max_len {arg}"
        else:  # regex
            if not isinstance(value, str):
                return name, f"{_show(value)} is not a string (regex {arg.pattern!r})"
            if arg.match(value) is None:
                return name, f"{_show(value)} does not match regex {arg.pattern!r}"
    return None


# ------------------------------------------------------------------------------------------
# finding values


def _plain(value: Any) -> Any:
    """A read-only view as plain dicts and lists; anything else as is."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and isinstance(value, Mapping):
        return to_dict()
    to_list = getattr(value, "to_list", None)
    if callable(to_list) and isinstance(value, Sequence):
        return to_list()
    return value


def _step(obj: Any, segment: str, attributes: bool = False) -> Any:
    """``obj``'s child ``segment``: a mapping key, a sequence index (or an attribute)."""
    if isinstance(obj, str | bytes | bytearray):
        return _ABSENT
    if isinstance(obj, Mapping):
        try:
            return obj.get(segment, _ABSENT)
        except TypeError:
            return _ABSENT
    if isinstance(obj, Sequence):
        if not segment.isdigit():
            return _ABSENT
        index = int(segment)
        return obj[index] if index < len(obj) else _ABSENT
    if attributes and not segment.startswith("_"):
        return getattr(obj, segment, _ABSENT)
    return _ABSENT


def _walk(obj: Any, path: Iterable[str], attributes: bool = False) -> Any:
    for segment in path:
        if obj is _ABSENT:
            return _ABSENT
        obj = _step(obj, segment, attributes)
    return obj


def _in_base(base: Any, path: Path) -> Any:
    """The value at ``path`` in the snapshot ``base``, or ``_ABSENT``."""
    try:
        root = base[path[0]]
    except (KeyError, TypeError, IndexError, AttributeError):
        return _ABSENT
    return _walk(root, path[1:])


def _value_after(changes: Changes, path: Path) -> Any:
    """The value at ``path`` after ``changes`` commit, ``_ABSENT`` or ``_UNTOUCHED``."""
    n = len(path)
    below = []
    for change in changes:
        cpath = change.path
        m = len(cpath)
        if m <= n and path[:m] == cpath:
            if change.kind == "delete":
                return _ABSENT
            if change.kind == "append":
                whole = [*_as_list(_in_base(changes.base, cpath)), *map(_plain, change.value)]
                return _walk(whole, path[m:])
            return _walk(change.value, path[m:])
        if m > n and cpath[:n] == path:
            below.append(change)
    if not below:
        return _UNTOUCHED
    return _overlay(_in_base(changes.base, path), below, n)


def _as_list(value: Any) -> list[Any]:
    plain = _plain(value)
    return list(plain) if isinstance(plain, list | tuple) else []


def _deep_plain(value: Any) -> Any:
    plain = _plain(value)
    if isinstance(plain, dict):
        return {k: _deep_plain(v) for k, v in plain.items()}
    if isinstance(plain, list):
        return [_deep_plain(v) for v in plain]
    return plain


def _overlay(base: Any, below: list[Any], depth: int) -> Any:
    """``base`` (the field's value before) with the writes ``below`` it applied."""
    root = {} if base is _ABSENT or base is None else _deep_plain(base)
    if not isinstance(root, dict | list):
        return _ABSENT  # a write below a leaf: cannot be known, not checked
    # deletes last, list items from the highest index down (they shift later indices)
    ordered = [c for c in below if c.kind != "delete"] + sorted(
        (c for c in below if c.kind == "delete"),
        key=lambda c: [int(s) if s.isdigit() else -1 for s in c.path],
        reverse=True,
    )
    for change in ordered:
        rel = change.path[depth:]
        container: Any = root
        for segment in rel[:-1]:
            nxt = _step(container, segment)
            if nxt is _ABSENT and isinstance(container, dict):
                nxt = container[segment] = {}
            container = nxt
        last = rel[-1]
        if isinstance(container, dict):
            if change.kind == "set":
                container[last] = _deep_plain(change.value)
            elif change.kind == "delete":
                container.pop(last, None)
            elif isinstance(container.get(last), list):
                container[last].extend(_deep_plain(v) for v in change.value)
        elif isinstance(container, list) and last.isdigit():
            index = int(last)
            if change.kind == "set":
                if index < len(container):
                    container[index] = _deep_plain(change.value)
                elif index == len(container):
                    container.append(_deep_plain(change.value))
            elif change.kind == "delete":
                if index < len(container):
                    del container[index]
            elif index < len(container) and isinstance(container[index], list):
                container[index].extend(_deep_plain(v) for v in change.value)
    return root


# ------------------------------------------------------------------------------------------
# the audit


class _Found:
    """One failed rule of one check, before it is counted."""

    __slots__ = ("condition", "rule", "text", "value")

    def __init__(self, rule: AuditRule, value: Any, condition: str, text: str) -> None:
        self.rule = rule
        self.value = value
        self.condition = condition
        self.text = text


class Audit:
    """An engine's audit: its recipe, counters and violation log (spec/17).

    ``recipe`` is a path of a YAML file, a mapping of the same shape, or a loaded
    :class:`AuditRecipe`; a bad recipe raises :class:`theus.errors.AuditRecipeError` here.
    Counters and the log belong to this object only (one per engine).
    """

    def __init__(self, recipe: object, *, log_capacity: int = LOG_CAPACITY) -> None:
        self._recipe = load_recipe(recipe)
        self._lock = threading.Lock()
        self._counts: dict[_Key, int] = {}  # (process, side, field) -> n > 0
        self._log: deque[AuditViolation] = deque(maxlen=log_capacity)
        self.stage: Stage = _AuditStage(self) if self._recipe.has_outputs else _IdleStage()

    # -- inspection ----------------------------------------------------------------------
    @property
    def recipe(self) -> AuditRecipe:
        """The loaded recipe."""
        return self._recipe

    @property
    def counts(self) -> dict[str, int]:
        """The non-zero counters, ``{"process:side:field": n}`` (a copy)."""
        with self._lock:
            return {f"{p}:{s}:{f}": n for (p, s, f), n in self._counts.items()}

    def count(self, process: str, field: str | None = None, side: str | None = None) -> int:
        """The sum of ``process``'s counters (only ``field``'s, only one ``side``'s)."""
        if side not in (None, "input", "output"):
            raise ValueError(f"side must be 'input', 'output' or None, not {side!r}")
        total = 0
        with self._lock:
            for (p, s, f), n in self._counts.items():
                if p == process and side in (None, s) and field in (None, f):
                    total += n
        return total

    @property
    def log(self) -> list[AuditViolation]:
        """The recorded violations, oldest first (the most recent ``log_capacity``)."""
        with self._lock:
            return list(self._log)

    def reset(self, process: str | None = None) -> None:
        """Set every counter (of ``process``) to 0."""
        with self._lock:
            if process is None:
                self._counts.clear()
            else:
                for key in [k for k in self._counts if k[0] == process]:
                    del self._counts[key]

    def __repr__(self) -> str:
        return f"<Audit processes={sorted(self._recipe.processes)} counts={self.counts}>"

    # -- checks --------------------------------------------------------------------------
    def check_inputs(self, spec: ProcessSpec, kwargs: Mapping[str, Any]) -> None:
        """Check a call's keyword arguments against its process's input rules, once per call
        before the process runs; raise the level's error if a violation must stop it."""
        rules = self._recipe.processes.get(spec.name)
        if rules is None or not rules.inputs:
            return
        found = []
        for rule in rules.inputs:
            value = _walk(kwargs, rule.path, attributes=True)
            if value is _ABSENT or value is None:
                continue
            failed = _violation(rule, value)
            if failed is not None:
                found.append(_Found(rule, value, *failed))
        self._settle(spec.name, rules.inputs, found, version=None, may_raise=True, landed=True)

    def _check_outputs(self, rules: ProcessRules, changes: Changes) -> list[_Found]:
        found = []
        for rule in rules.outputs:
            value = _value_after(changes, rule.path)
            if value is _ABSENT or value is _UNTOUCHED or value is None:
                continue
            failed = _violation(rule, value)
            if failed is not None:
                found.append(_Found(rule, value, *failed))
        return found

    def _rules_of(self, changes: Changes) -> tuple[str, ProcessRules] | None:
        process = changes.process
        if process is None:
            return None  # a host transaction or compare-and-swap: not audited
        rules = self._recipe.processes.get(process)
        if rules is None or not rules.outputs:
            return None
        return process, rules

    def _before_commit(self, changes: Changes) -> None:
        target = self._rules_of(changes)
        if target is None:
            return
        process, rules = target
        found = self._check_outputs(rules, changes)
        if found:
            self._settle(process, rules.outputs, found, version=None, may_raise=True, landed=False)

    def _after_commit(self, snapshot: Any, changes: Changes) -> None:
        target = self._rules_of(changes)
        if target is None:
            return
        process, rules = target
        found = self._check_outputs(rules, changes)
        version = getattr(snapshot, "version", None)
        self._settle(process, rules.outputs, found, version=version, may_raise=False, landed=True)

    # -- counting ------------------------------------------------------------------------
    def _settle(
        self,
        process: str,
        rules: Sequence[AuditRule],
        found: list[_Found],
        *,
        version: int | None,
        may_raise: bool,
        landed: bool,
    ) -> None:
        """Count one check of one call and decide.

        ``may_raise``: a violation may stop the call (inputs, before_commit). ``landed``: the
        call goes on / has committed, so non-raising violations are counted and clean counters
        reset (inputs, after_commit); before_commit without a raise changes nothing.
        """
        recipe = self._recipe
        with self._lock:
            counts = self._counts
            after: dict[_Key, int] = {}  # a call adds at most 1 to a counter
            for f in found:
                key = (process, f.rule.side, f.rule.field)
                after[key] = counts.get(key, 0) + 1
            decided = []  # (found, level, n, raised)
            for f in found:
                level: Level = f.rule.level or recipe.level
                n = after[(process, f.rule.side, f.rule.field)]
                raised = may_raise and (
                    level in ("S", "A") or (level == "B" and n > self._limit(f.rule))
                )
                decided.append((f, level, n, raised))
            stops = any(raised for *_, raised in decided)
            if not stops and not landed:
                return  # before_commit lets it through: after_commit counts the landed attempt
            counts.update(after)
            if recipe.reset_on_success and not stops:
                for rule in rules:
                    key = (process, rule.side, rule.field)
                    if key not in after:
                        counts.pop(key, None)
            records = [
                AuditViolation(
                    process=process,
                    side=f.rule.side,
                    field=f.rule.field,
                    rule=f.condition,
                    value=f.value,
                    level=level,
                    message=f.rule.message if f.rule.message is not None else f.text,
                    version=None if stops else version,
                    count=n,
                    raised=raised,
                    approaching=(not raised and level == "B" and 0 < recipe.threshold_min <= n),
                )
                for f, level, n, raised in decided
            ]
            self._log.extend(records)
        for f, record in zip(found, records, strict=True):
            _log_violation(record, self._limit(f.rule))
        if stops:
            # the first violation of the most severe raising level decides
            index = min(
                (i for i, r in enumerate(records) if r.raised),
                key=lambda i: _SEVERITY[records[i].level],
            )
            record = records[index]
            raise _ERRORS[record.level](
                _error_text(record, self._limit(found[index].rule)), record, tuple(records)
            )

    def _limit(self, rule: AuditRule) -> int:
        return self._recipe.threshold_max if rule.threshold_max is None else rule.threshold_max


def _error_text(record: AuditViolation, limit: int) -> str:
    text = (
        f"audit {LEVEL_NAMES[record.level]}: process {record.process!r} {record.side} "
        f"{record.field!r}: {record.message}"
    )
    if record.level == "B":
        text += f" (violation {record.count}, threshold_max {limit})"
    return text


def _log_violation(record: AuditViolation, limit: int) -> None:
    if record.raised:
        tail = "; the call is stopped"
    elif record.approaching:
        tail = f"; approaching threshold_max ({record.count}/{limit})"
    else:
        tail = ""
    log.warning(
        "audit violation: process %r %s %r: %s (level %s, count %d)%s",
        record.process,
        record.side,
        record.field,
        record.message,
        record.level,
        record.count,
        tail,
    )


class _AuditStage(Stage):
    """The pipeline stage ``"audit"`` of an :class:`Audit` with output rules."""

    name = "audit"

    def __init__(self, audit: Audit) -> None:
        self._audit = audit

    def before_commit(self, changes: Changes) -> None:
        """Check the output rules of the committing process; raise to reject."""
        self._audit._before_commit(changes)

    def after_commit(self, snapshot: Any, changes: Changes) -> None:
        """Count the landed commit's violations; reset clean counters."""
        self._audit._after_commit(snapshot, changes)


class _IdleStage(Stage):
    """The stage ``"audit"`` of a recipe without output rules: no hook, so it costs nothing."""

    name = "audit"
