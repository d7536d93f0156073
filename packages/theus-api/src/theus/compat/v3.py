"""Run a Theus 3 program with its ``await`` calls unchanged (spec/19).

Theus 3's ``engine.execute`` and ``engine.execute_workflow`` are coroutines; this engine's
``execute`` blocks and returns the result, so ``await engine.execute(...)`` would commit and
then fail on the ``await``. Import the engine from here instead::

    from theus.compat.v3 import TheusEngine   # was: from theus import TheusEngine

    engine = TheusEngine(MySystemContext(), strict_guards=True, audit_recipe=recipe)
    await engine.execute(create_order)        # a coroutine, as in Theus 3
    await engine.execute_workflow("workflow.yaml")

Everything else is :class:`theus.TheusEngine` (``engine.engine`` is the engine itself, for
code that wants the blocking calls).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from .. import engine as _engine_module
from ..contracts import Semantic, SemanticType, process
from ..errors import ContextError, ProcessNotFoundError
from ..update import StateUpdate

__all__ = [
    "ContextError",
    "ProcessNotFoundError",
    "Semantic",
    "SemanticType",
    "StateUpdate",
    "TheusEngine",
    "process",
]


class TheusEngine:
    """Theus 3's engine surface over :class:`theus.TheusEngine`: ``execute`` and
    ``execute_workflow`` are coroutines; every other attribute is the wrapped engine's.

    Takes Theus 3's constructor keywords (``context``, ``strict_guards``, ``strict_cas``,
    ``audit_recipe``, ``write_timeout_ms``) and this engine's (``backend``, ``schema``, ...).
    ``namespaces=`` (Theus 3's namespace registry) is refused: give every namespace in
    ``context``.
    """

    __slots__ = ("_engine",)
    _engine: _engine_module.TheusEngine

    def __init__(
        self,
        context: Any = None,
        namespaces: Any = None,
        strict_guards: bool = True,
        strict_cas: bool = False,
        audit_recipe: Any = None,
        write_timeout_ms: int | None = None,
        **options: Any,
    ) -> None:
        if namespaces is not None:
            raise NotImplementedError(
                "TheusEngine(namespaces=...) (Theus 3's namespace registry) is not supported: "
                "give every namespace in context={'name': {...}, ...} (spec/19)"
            )
        engine = _engine_module.TheusEngine(
            context,
            strict_guards=strict_guards,
            strict_cas=strict_cas,
            audit_recipe=audit_recipe,
            write_timeout_ms=write_timeout_ms,
            **options,
        )
        object.__setattr__(self, "_engine", engine)

    @property
    def engine(self) -> _engine_module.TheusEngine:
        """The wrapped engine (blocking ``execute``)."""
        return self._engine

    async def execute(self, fn_or_name: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Run a process and return its return value (a coroutine, as in Theus 3):
        :meth:`theus.TheusEngine.aexecute`."""
        return await self._engine.aexecute(fn_or_name, *args, **kwargs)

    async def execute_workflow(self, path_or_yaml: str, **kwargs: Any) -> Any:
        """Run a Flux workflow (a coroutine, as in Theus 3):
        :meth:`theus.TheusEngine.aexecute_workflow`."""
        workflow = self._engine.aexecute_workflow
        if kwargs:
            return await workflow(path_or_yaml, **kwargs)
        return await workflow(path_or_yaml)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._engine, name, value)

    def __enter__(self) -> TheusEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._engine.close()

    def __repr__(self) -> str:
        return f"<theus.compat.v3.TheusEngine over {self._engine!r}>"
