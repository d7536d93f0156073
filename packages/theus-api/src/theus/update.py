"""Explicit writes: ``StateUpdate`` and its normalised form ``Update`` (spec/05, spec/06)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ContextError
from .paths import MAX_DEPTH, Path, format_path, has_surrogate, parse_path
from .zones import Zone, zone_of

__all__ = ["Op", "StateUpdate", "Update", "make_update"]

#: ``"map"``: make sure the path holds a map; if it holds one nothing happens, otherwise it is
#: set to an empty map (checked like a ``"set"`` of the path). The nested form of ``data=``
#: (spec/05) is expanded into ``"map"`` and ``"set"`` operations.
OpKind = Literal["set", "delete", "append", "map"]
Op = tuple[OpKind, Path, Any]


@dataclass(frozen=True)
class Update:
    """An ordered list of write operations for :meth:`theus.protocols.TxCore.apply`."""

    ops: tuple[Op, ...] = ()


def _mapping(value: object, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{name}= must be a mapping of dotted paths to values, not {type(value).__name__}"
        )
    return value


def _check_key(key: object, path: Path) -> str:
    """``key`` if it is a valid map key under ``path`` (spec/01), else ``ContextError``."""
    if (
        not isinstance(key, str)
        or not key
        or "." in key
        or key in ("*", "**")
        or (has_surrogate(key))
    ):
        shown = format_path(path)
        if len(path) > 16:
            shown = (
                f"{format_path(path[:8])}...({len(path) - 16} segments)...{format_path(path[-8:])}"
            )
        raise ContextError(
            f"invalid key {key!r} under {shown!r}: keys are non-empty str without "
            "'.', other than '*' and '**', and valid Unicode (no lone surrogates)"
        )
    return key


def _merge_ops(path: Path, value: dict[Any, Any], ops: list[Op]) -> None:
    """Expand the nested form ``{"domain": {"a": 1}}`` (spec/05): a ``dict`` merges into the
    map already at its path (``"map"`` then one operation per key); any other value (a list,
    a scalar, a view, another mapping) replaces, and so does any value in a zone other than
    data (a signal's value, a heavy object, a log). Iterative; below ``MAX_DEPTH`` the rest is
    one ``"set"``, whose storing reports the depth limit or a cycle as a set would."""
    todo: list[tuple[Path, Any]] = [(path, value)]
    while todo:
        at, item = todo.pop()
        if not isinstance(item, dict) or len(at) >= MAX_DEPTH or zone_of(at) is not Zone.DATA:
            ops.append(("set", at, item))
            continue
        ops.append(("map", at, None))
        children = [((*at, _check_key(k, at)), v) for k, v in item.items()]
        todo.extend(reversed(children))  # popped in the mapping's order


def make_update(
    data: Mapping[str, Any] | None = None,
    heavy: Mapping[str, Any] | None = None,
    signal: Mapping[str, Any] | None = None,
    delete: Iterable[str] = (),
    replace: Mapping[str, Any] | None = None,
) -> Update:
    """Normalise the ``data=/replace=/heavy=/signal=/delete=`` keywords into an
    :class:`Update`.

    Keys are dotted paths. In ``data=`` a one-segment key (a namespace) whose value is a
    ``dict`` is the *nested form*: it merges into what is there, recursively (spec/05); a
    dotted key sets and replaces. ``replace=`` always sets and replaces, the namespace too.
    ``heavy=`` paths must be in the heavy zone and ``signal=`` paths in the signal zone
    (``ValueError`` naming the path otherwise).
    """
    ops: list[Op] = []
    for name, mapping, required in (
        ("data", data, None),
        ("replace", replace, None),
        ("heavy", heavy, Zone.HEAVY),
        ("signal", signal, Zone.SIGNAL),
    ):
        for key, value in _mapping(mapping, name).items():
            path = parse_path(key)
            if name == "signal" and len(path) == 1:
                raise ContextError(_bare_signal(key))
            if name == "data" and len(path) == 1 and isinstance(value, dict):
                _merge_ops(path, value, ops)
                continue
            if required is not None and zone_of(path) is not required:
                raise ValueError(
                    f"{name}= path {key!r} is not in the {required.value} zone "
                    f"(its keys must start with {_PREFIX_HINT[required]}); use data= instead"
                )
            ops.append(("set", path, value))
    if isinstance(delete, str) or not isinstance(delete, Iterable):
        raise TypeError(f"delete= must be a list of dotted paths, not {delete!r}")
    for key in delete:
        ops.append(("delete", parse_path(key), None))
    return Update(tuple(ops))


_PREFIX_HINT = {Zone.HEAVY: "'heavy_'", Zone.SIGNAL: "'sig_' or 'cmd_'"}


def _bare_signal(key: str) -> str:
    """The error for a ``signal=`` key without a namespace (Theus 3's bare ``sig_`` keys)."""
    return (
        f"signal= key {key!r} names no namespace: signals live inside a namespace here; "
        f"write 'domain.{key}' (spec/19)"
    )


@dataclass(frozen=True)
class StateUpdate:
    """A process's explicit writes, returned instead of writing in place (spec/06).

    ``StateUpdate(data={"domain.total": 3}, signal={"domain.sig_done": True},
    delete=["domain.tmp"])``. Paths are checked against the contract and zones exactly as
    in-place writes are. ``data=`` takes the nested form too (``{"domain": {"total": 3}}``
    merges, spec/05); ``replace=`` sets and replaces whole subtrees; ``key=``/``val=`` (Theus 3)
    is ``data={key: val}``.
    """

    data: Mapping[str, Any] | None = None
    heavy: Mapping[str, Any] | None = None
    signal: Mapping[str, Any] | None = None
    delete: tuple[str, ...] = field(default=())
    replace: Mapping[str, Any] | None = None
    key: str | None = None
    val: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.delete, str):
            raise TypeError(f"delete= must be a list of dotted paths, not {self.delete!r}")
        object.__setattr__(self, "delete", tuple(self.delete))
        if self.key is None and self.val is not None:
            raise TypeError("StateUpdate(val=...) needs key=: the dotted path to write")
        if self.key is not None:
            if not isinstance(self.key, str):
                raise TypeError(f"StateUpdate(key=...) must be a dotted path, not {self.key!r}")
            if self.val is None:
                raise ValueError(
                    f"StateUpdate(key={self.key!r}) without val= writes nothing (Theus 3 "
                    f"ignored it); to write None use data={{{self.key!r}: None}} (spec/19)"
                )
        self.to_update()  # validate eagerly: a bad StateUpdate fails where it is built

    def to_update(self) -> Update:
        """The normalised operations."""
        data = self.data
        if self.key is not None:
            data = {**(data or {}), self.key: self.val}
        return make_update(data, self.heavy, self.signal, self.delete, self.replace)

    def paths(self) -> list[str]:
        """The dotted paths this update touches, in order."""
        return [format_path(path) for _, path, _ in self.to_update().ops]
