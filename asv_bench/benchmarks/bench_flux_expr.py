"""Flux condition benchmarks (spec/18 §2), with CPython's own `eval` in the same run.

Timing method: as in bench_engine.py (no `setup` hooks; everything is built on first use,
which falls in asv's warmup, and kept in a module cache; every class sets an explicit
`number`).

`FluxCondition`, parameter `scope`:
- `values`: the scope is a plain dict of plain dicts (the values mapping a native evaluator
  would hand over);
- `reference` / `rust`: the scope is `snapshot_scope(engine.state)` of an engine on that
  backend holding the same values (reads go through the backend's read-only views);
- `rust-native`: the condition compiled by the rust core (`engine.core.compile_expression`,
  spec/18 §2.6), evaluated natively on the engine's latest snapshot: `native.test({})`.

- `time_condition_3_clauses`: one `test()` of
  `domain.count < 10 and global.enabled == True and signal.get('cmd_stop') is None`
  on a scope built once (namespaces already fetched); target: <= 5 µs (reference, pure
  Python), <= 1 µs (`rust-native`: the native evaluator, reading the latest snapshot at
  each call);
- `time_condition_fresh_scope`: the same with a new `snapshot_scope` per evaluation, as the
  reference interpreter does between steps (for `values`: a new dict copy; for
  `rust-native` the same call as above: every native call reads the latest snapshot);
- `time_python_eval`: CPython `eval` of the equivalent compiled code over the same dicts (the
  unsafe baseline, ~0.8 µs in ANCHORS.md; the same for every parameter).

`FluxLoad.time_parse_1000_steps`: `parse_workflow` of a 1 000-step file (every tenth step an
`if` with a condition), names and contracts checked; target <= 50 ms.
`FluxLoad.time_yaml_load_1000_steps`: the same-run baseline, PyYAML loading the same text to
plain data with the parser `parse_workflow` reads it with (libyaml's `CSafeLoader` when PyYAML
has it, else `SafeLoader`); nothing checked.
"""

from __future__ import annotations

import gc
from typing import Any

import yaml

from theus import TheusEngine, backends, process
from theus.flux import compile_expression, parse_workflow, snapshot_scope

BACKENDS = tuple(
    name
    for name in ("reference", "rust")
    if any(info.name == name and info.error is None for info in backends())
)
CONDITION = "domain.count < 10 and global.enabled == True and signal.get('cmd_stop') is None"
_PY_CONDITION = (
    "domain['count'] < 10 and global_['enabled'] == True and signal.get('cmd_stop') is None"
)
NATIVE = ("rust-native",) if "rust" in BACKENDS else ()
_CACHE: dict[str, Any] = {}


@process(inputs=["domain.count"], outputs=["domain.count"])
def bump(ctx: Any) -> None:
    ctx.domain.count += 1


def _values() -> dict[str, Any]:
    return {
        "domain": {"count": 3, "name": "n", "items": [1, 2, 3]},
        "global": {"enabled": True},
        "signal": {},
    }


def _state(scope: str) -> tuple[Any, Any, Any]:
    """(compiled condition, warm scope, snapshot or values) for the parameter."""
    hit = _CACHE.get(scope)
    if hit is None:
        cond = compile_expression(CONDITION, namespaces=("domain", "global"))
        if scope == "values":
            values = _values()
            hit = (cond, values, values)
        elif scope == "rust-native":
            values = _values()
            engine = TheusEngine(
                context={"domain": values["domain"], "global": values["global"]}, backend="rust"
            )
            native = engine.core.compile_expression(cond)  # type: ignore[attr-defined]
            native.test({})
            hit = (native, {}, None)
            _CACHE[scope + ":engine"] = engine
        else:
            values = _values()
            engine = TheusEngine(
                context={"domain": values["domain"], "global": values["global"]}, backend=scope
            )
            snap = engine.state
            warm = snapshot_scope(snap)
            cond.test(warm)
            hit = (cond, warm, snap)
            _CACHE[scope + ":engine"] = engine
        gc.collect()
        _CACHE[scope] = hit
    return hit  # type: ignore[no-any-return]


def _eval_baseline() -> tuple[Any, dict[str, Any]]:
    hit = _CACHE.get("eval")
    if hit is None:
        values = _values()
        env = {"domain": values["domain"], "global_": values["global"], "signal": {}}
        hit = _CACHE["eval"] = (compile(_PY_CONDITION, "<bench>", "eval"), env)
    return hit  # type: ignore[no-any-return]


class FluxCondition:
    """One evaluation of a 3-clause condition, and CPython `eval` of the same."""

    number = 20000
    params = ("values", *BACKENDS, *NATIVE)
    param_names = ("scope",)

    def time_condition_3_clauses(self, scope: str) -> None:
        cond, warm, _ = _state(scope)
        cond.test(warm)

    def time_condition_fresh_scope(self, scope: str) -> None:
        cond, warm, source = _state(scope)
        if scope == "values":
            cond.test(dict(source))
        elif scope == "rust-native":
            cond.test(warm)
        else:
            cond.test(snapshot_scope(source))

    def time_python_eval(self, scope: str) -> None:
        code, env = _eval_baseline()
        eval(code, {"__builtins__": {}}, env)  # the unsafe baseline: fixed text, never user input


def _big_workflow() -> str:
    lines = ["steps:"]
    for i in range(1000):
        if i % 10 == 9:
            lines.append(
                f"  - {{flux: if, condition: 'domain.count < {i} and not signal.get(\"cmd_x\")',"
                " then: [bump], else: [{process: bump}]}"
            )
        else:
            lines.append("  - bump")
    return "\n".join(lines) + "\n"


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FluxLoad:
    """Loading and validating a 1 000-step workflow."""

    number = 5

    def time_parse_1000_steps(self) -> None:
        text = _CACHE.get("big")
        if text is None:
            text = _CACHE["big"] = _big_workflow()
        parse_workflow(
            text,
            processes={"bump": bump.__theus_process__},  # type: ignore[attr-defined]
            namespaces=("domain", "global"),
        )

    def time_yaml_load_1000_steps(self) -> None:
        text = _CACHE.get("big")
        if text is None:
            text = _CACHE["big"] = _big_workflow()
        yaml.load(text, Loader=_YAML_LOADER)  # a safe loader (CSafeLoader / SafeLoader)
