"""The wording of Theus's error messages, written once (spec/12-errors.md, "Messages").

Every function returns the sentence (``str(exc)``) of one kind of error; the reference backend
and the facade build their exceptions with them. A native backend builds the same sentences
itself and is held to them by the vectors in ``spec/vectors/errors.json``.

Rules: a dotted path is quoted ``'domain.x'``; a process is named ``process 'name'``; pattern
lists are shown as ``['a', 'b']``; the sentence says what to do instead where there is a way.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "VERBS",
    "conflict_changed",
    "conflict_history",
    "foreign_view",
    "cas_mismatch",
    "cas_strict",
    "heavy_below",
    "log_append_only",
    "namespace_fixed",
    "read_only",
    "read_outside",
    "semantic_read",
    "semantic_write",
    "signal_below",
    "signal_not_assigned",
    "verb",
    "write_outside",
]

#: The verb a message uses for each kind of write (the keys are the backends' operation names).
VERBS = {
    "set": "assign",
    "delete": "delete",
    "append": "append to",
    "extend": "extend",
    "insert": "insert into",
    "pop": "pop from",
    "remove": "pop from",
    "remove_at": "pop from",
    "delitem": "pop from",
    "clear": "clear",
    "sort": "sort",
    "reorder": "sort",
    "reverse": "reverse",
}


def verb(op: str) -> str:
    """The verb of a write operation (``"append"`` -> ``"append to"``)."""
    return VERBS.get(op, op)


def _patterns(patterns: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{p}'" for p in patterns) + "]"


def read_outside(process: str, path: str, inputs: Sequence[str], outputs: Sequence[str]) -> str:
    """A read not covered by ``inputs ∪ outputs`` (spec/04)."""
    return (
        f"process '{process}' may not read '{path}': it is not covered by its inputs "
        f"{_patterns(inputs)} or outputs {_patterns(outputs)}; declare it in inputs=[...]"
    )


def write_outside(process: str, op: str, path: str, outputs: Sequence[str]) -> str:
    """A write not covered by ``outputs`` (spec/04)."""
    return (
        f"process '{process}' may not {verb(op)} '{path}': it is not covered by its outputs "
        f"{_patterns(outputs)}; declare it in outputs=[...]"
    )


_SEMANTIC_RULES = {
    "pure": "a pure process may not write meta or signal paths",
    "guide": "a guide process may write only signal and meta paths",
}


def semantic_write(semantic: str, process: str, op: str, zone: str, path: str) -> str:
    """A write the process's semantic forbids in ``zone`` (spec/03, spec/04)."""
    return (
        f"{semantic} process '{process}' may not {verb(op)} {zone} path '{path}': "
        f"{_SEMANTIC_RULES.get(semantic, '')}"
    )


def semantic_read(process: str, path: str) -> str:
    """A pure process reading a meta path (spec/03)."""
    return f"pure process '{process}' may not read meta path '{path}'"


def namespace_fixed(op: str, namespace: str) -> str:
    """Creating, deleting or appending to a namespace (spec/01)."""
    return (
        f"cannot {verb(op)} namespace '{namespace}': the namespaces are fixed by "
        "TheusEngine(context=...) when the engine is made; write keys inside a namespace instead"
    )


def signal_below(op: str, path: str, root: str) -> str:
    """A write below a signal path (spec/03)."""
    return (
        f"cannot {verb(op)} '{path}': '{root}' is a signal path, a transient value; "
        "assign the signal path itself"
    )


def signal_not_assigned(op: str, path: str) -> str:
    """A signal path written other than by assignment (spec/03)."""
    return (
        f"cannot {verb(op)} signal path '{path}': signals are transient values; "
        "they can only be assigned"
    )


def foreign_view(path: str) -> str:
    """Writing a view of another (open) transaction (spec/04)."""
    return (
        f"the view of '{path}' belongs to another transaction and cannot be written here; "
        "write view.to_dict() / view.to_list() instead"
    )


def heavy_below(op: str, path: str, root: str) -> str:
    """A write below a heavy value (spec/03)."""
    return (
        f"cannot {verb(op)} '{path}': '{root}' is a heavy value, opaque to the engine; "
        "write the heavy value as a whole"
    )


def log_append_only(op: str, path: str, root: str) -> str:
    """A log-zone write other than creating the log with a list or appending (spec/03)."""
    return (
        f"cannot {verb(op)} '{path}': the log zone is append-only; create '{root}' with a "
        "list, then only append to or extend it"
    )


def read_only(what: str, path: str) -> str:
    """Mutating a snapshot or one of its views (spec/01)."""
    return (
        f"cannot {what} '{path}': snapshots are immutable. Write it from a @process with "
        f"'{path}' in outputs=[...], or with engine.transaction()"
    )


def conflict_changed(path: str, version: int, base: int) -> str:
    """A commit that lost to an intervening commit (spec/05)."""
    return (
        f"'{path}' was written by version {version}, after this transaction's base version "
        f"{base}, overlapping a path this transaction read or wrote"
    )


def conflict_history(base: int, capacity: int, latest: int) -> str:
    """A transaction older than the history of write sets the engine keeps (spec/05)."""
    return (
        f"the transaction's base version {base} is more than {capacity} commits behind the "
        f"current version {latest}"
    )


def cas_mismatch(expected: int, current: int) -> str:
    """``compare_and_swap`` on another version than the current one (spec/05)."""
    return (
        f"compare_and_swap expected version {expected}, but the state is at version {current}"
        " (compare_and_swap never merges: to apply a change to the current version, use"
        " engine.transaction())"
    )


def cas_strict(base: int, latest: int) -> str:
    """A strict commit (compare-and-swap) overtaken by another commit (spec/05)."""
    return cas_mismatch(base, latest)


def state_signal_hint() -> str:
    """``state.signal`` (a Theus 3 spelling, spec/19)."""
    return (
        "the state has no attribute 'signal': the signals the last commit published are "
        "state.signals (dotted path -> value) (spec/19)"
    )
