"""Provenance: the code under test really is the named backend's (like CPython's C/Python
``heapq`` check): the engine core's type comes from the backend's package, and a backend that
claims ``native-execute`` runs a compiled extension."""

from __future__ import annotations

import sys
from pathlib import Path

from theus import process


def test_engine_reports_the_backend(make_engine, backend):
    engine = make_engine()
    if ":" not in backend:
        assert engine.backend == backend


def test_engine_core_comes_from_the_backend(make_engine, backend_info):
    engine = make_engine()
    core_type = type(engine.core)
    root = core_type.__module__.split(".", 1)[0]
    assert root == backend_info.module_root, (
        f"engine core type {core_type.__module__}.{core_type.__qualname__} does not come from "
        f"the backend package {backend_info.module_root!r}"
    )


def test_native_backend_core_is_compiled(make_engine, backend_info):
    engine = make_engine()
    module_name = type(engine.core).__module__
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None) or ""
    compiled = Path(file).suffix in (".so", ".pyd")
    if "native-execute" in backend_info.capabilities:
        assert compiled, (
            f"backend {backend_info.name!r} declares 'native-execute' but its engine core type "
            f"is defined in {module_name!r} ({file or 'no file'}), not a compiled extension"
        )
    else:
        # a pure-Python backend's core is Python source
        assert file.endswith(".py") or compiled, f"unexpected module file {file!r}"


def test_processes_run_through_the_backend_core(make_engine):
    engine = make_engine({"domain": {"n": 0}})
    core_before = engine.core

    @process(inputs=["domain.n"], outputs=["domain.n"])
    def bump(ctx):
        ctx.domain.n = ctx.domain.n + 1

    engine.execute(bump)
    assert engine.core is core_before
    assert engine.state.domain.n == 1
