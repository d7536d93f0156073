"""Conditions bound to an engine core (spec/18 §2.6, spec/14 ``compile_expression``).

A backend with the capability ``"native-conditions"`` evaluates an :class:`Expression`'s IR
itself: ``core.compile_expression(expression)`` returns an object with ``test(inputs)`` and
``evaluate(inputs)`` reading the core's latest committed snapshot, or ``None`` when the IR has
something the backend does not evaluate natively. :func:`bind_condition` gives the same
interface for every backend, falling back to the Python evaluation::

    cond = bind_condition(engine._core, engine_backend, compile_expression("domain.n < 3"))
    cond.test({})          # reads the latest snapshot at each call
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol, runtime_checkable

from .expr import Expression, snapshot_scope

__all__ = ["NATIVE_CONDITIONS", "BoundCondition", "PythonCondition", "bind_condition"]

#: the backend capability of spec/13 for ``EngineCore.compile_expression``
NATIVE_CONDITIONS = "native-conditions"


@runtime_checkable
class BoundCondition(Protocol):
    """An expression bound to an engine core: each call reads the core's latest snapshot."""

    def test(self, inputs: Mapping[str, Any] | None = None) -> bool:
        """The expression's truth (Python truthiness of its value)."""
        ...

    def evaluate(self, inputs: Mapping[str, Any] | None = None) -> Any:
        """The expression's value."""
        ...


class PythonCondition:
    """The Python evaluation bound to a core: ``snapshot_scope(core.snapshot(), inputs)``."""

    __slots__ = ("core", "expression")

    def __init__(self, core: Any, expression: Expression) -> None:
        self.core = core
        self.expression = expression

    def test(self, inputs: Mapping[str, Any] | None = None) -> bool:
        """The expression's truth on the core's latest snapshot."""
        return self.expression.test(snapshot_scope(self.core.snapshot(), inputs))

    def evaluate(self, inputs: Mapping[str, Any] | None = None) -> Any:
        """The expression's value on the core's latest snapshot."""
        return self.expression.evaluate(snapshot_scope(self.core.snapshot(), inputs))

    def __repr__(self) -> str:
        return f"<PythonCondition {self.expression.text!r}>"


def bind_condition(
    core: Any, capabilities: Collection[str], expression: Expression
) -> BoundCondition:
    """``core.compile_expression(expression)`` when the backend declares
    ``"native-conditions"`` and takes this expression, else a :class:`PythonCondition`.
    Call it once per condition (at load), then ``test``/``evaluate`` per evaluation."""
    if NATIVE_CONDITIONS in capabilities:
        native = core.compile_expression(expression)
        if native is not None:
            return native  # type: ignore[no-any-return]
    return PythonCondition(core, expression)
