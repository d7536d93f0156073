"""Explicit writes: ``StateUpdate`` and its normalised form ``Update`` (spec/05, spec/06)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .paths import Path, format_path, parse_path
from .zones import Zone, zone_of

__all__ = ["Op", "StateUpdate", "Update", "make_update"]

OpKind = Literal["set", "delete", "append"]
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


def make_update(
    data: Mapping[str, Any] | None = None,
    heavy: Mapping[str, Any] | None = None,
    signal: Mapping[str, Any] | None = None,
    delete: Iterable[str] = (),
) -> Update:
    """Normalise the ``data=/heavy=/signal=/delete=`` keywords into an :class:`Update`.

    Keys are dotted paths; ``heavy=`` paths must be in the heavy zone and ``signal=`` paths in
    the signal zone (``ValueError`` naming the path otherwise).
    """
    ops: list[Op] = []
    for name, mapping, required in (
        ("data", data, None),
        ("heavy", heavy, Zone.HEAVY),
        ("signal", signal, Zone.SIGNAL),
    ):
        for key, value in _mapping(mapping, name).items():
            path = parse_path(key)
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


@dataclass(frozen=True)
class StateUpdate:
    """A process's explicit writes, returned instead of writing in place (spec/06).

    ``StateUpdate(data={"domain.total": 3}, signal={"domain.sig_done": True},
    delete=["domain.tmp"])``. Paths are checked against the contract and zones exactly as
    in-place writes are.
    """

    data: Mapping[str, Any] | None = None
    heavy: Mapping[str, Any] | None = None
    signal: Mapping[str, Any] | None = None
    delete: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if isinstance(self.delete, str):
            raise TypeError(f"delete= must be a list of dotted paths, not {self.delete!r}")
        object.__setattr__(self, "delete", tuple(self.delete))
        self.to_update()  # validate eagerly: a bad StateUpdate fails where it is built

    def to_update(self) -> Update:
        """The normalised operations."""
        return make_update(self.data, self.heavy, self.signal, self.delete)

    def paths(self) -> list[str]:
        """The dotted paths this update touches, in order."""
        return [format_path(path) for _, path, _ in self.to_update().ops]
