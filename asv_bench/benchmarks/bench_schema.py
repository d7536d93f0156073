"""Type Shield benchmarks (spec/16), parametrized by backend, with pydantic's own cost in the
same run.

Timing method: as in bench_engine.py (no `setup` hooks; each engine is built on its first call,
which falls in asv's warmup, and kept in a module cache keyed by the parameters; every class
sets an explicit `number`).

`SchemaOverhead` (one class, so one run gives every ratio):
- `time_execute_plain`: `engine.execute` of a process writing one int field (`domain.count`),
  no schema;
- `time_execute_schema`: the same process on the same state, with a schema whose `Domain`
  model declares `count: int` next to required and annotated fields (a partial write);
  schema overhead = schema - plain (target, rust: <= 2 µs);
- `time_pydantic_validate_assignment`: pydantic's own field check, `m.count = 1` on an
  equivalent model with `validate_assignment=True` (the same for every backend parameter).
"""

from __future__ import annotations

import gc
from typing import Annotated, Any

from theus import AppendOnly, TheusEngine, backends, process

try:
    from pydantic import BaseModel, ConfigDict, Field
except ImportError:  # pydantic is in the nox bench install; without it: no benchmark
    BaseModel = None  # type: ignore[assignment,misc]

BACKENDS = tuple(
    name
    for name in ("reference", "rust")
    if any(info.name == name and info.error is None for info in backends())
)
_ENGINES: dict[tuple[Any, ...], TheusEngine] = {}


@process(outputs=["domain.count"])
def write_count(ctx: Any) -> None:
    ctx.domain.count = 1


if BaseModel is not None:

    class Domain(BaseModel):
        """The schema of `domain`: the process writes `count` only."""

        count: int
        total: int
        name: str = ""
        ratio: float = 0.0
        events: Annotated[list[str], AppendOnly] = Field(default_factory=list)

    class Root(BaseModel):
        """The whole context."""

        domain: Domain
        global_: dict[str, Any] = Field(default_factory=dict, alias="global")

    class Assigned(BaseModel):
        """`Domain` checked by pydantic itself on assignment."""

        model_config = ConfigDict(validate_assignment=True)
        count: int
        total: int
        name: str = ""
        ratio: float = 0.0
        events: list[str] = Field(default_factory=list)

    _ASSIGNED = Assigned(count=0, total=0)


def _engine(backend: str, schema: Any) -> TheusEngine:
    key = (backend, schema is not None)
    engine = _ENGINES.get(key)
    if engine is None:
        context = {"domain": {"count": 0, "total": 0, "name": "n", "events": []}, "global": {}}
        engine = TheusEngine(context=context, backend=backend, schema=schema)
        engine.register(write_count)
        gc.collect()
        engine = _ENGINES[key] = engine
    return engine


if BaseModel is not None:  # without pydantic there is nothing to measure

    class SchemaOverhead:
        """A one-field `execute` with and without a schema, and pydantic's `validate_assignment`."""

        number = 2000
        params = BACKENDS
        param_names = ("backend",)

        def time_execute_plain(self, backend: str) -> None:
            _engine(backend, None).execute(write_count)

        def time_execute_schema(self, backend: str) -> None:
            _engine(backend, Root).execute(write_count)

        def time_pydantic_validate_assignment(self, backend: str) -> None:
            _ASSIGNED.count = 1
