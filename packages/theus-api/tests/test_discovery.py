"""Backend selection without any installed backend: explicit objects and module:attr."""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from typing import Any

import pytest

from theus import BackendLoadError, BackendNotFoundError, StateUpdate, process
from theus._discovery import select_backend


class _FakeBackend:
    name = "fake"
    priority = 1
    version = "0"
    capabilities: frozenset[str] = frozenset()

    def create_hub(self) -> Any:
        raise NotImplementedError

    def create_engine(self, context: Mapping[str, Any], options: Any) -> Any:
        raise NotImplementedError


def test_backend_object_and_module_attr(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeBackend()
    assert select_backend(fake) is fake
    module = types.ModuleType("fake_theus_backend")
    module.backend = fake  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_theus_backend", module)
    assert select_backend("fake_theus_backend:backend") is fake
    monkeypatch.setenv("THEUS_BACKEND", "fake_theus_backend:backend")
    assert select_backend(None) is fake


def test_bad_backends_are_named() -> None:
    with pytest.raises(BackendLoadError, match="no_such_module"):
        select_backend("no_such_module:backend")
    with pytest.raises(BackendLoadError, match="lacks"):
        select_backend(object())
    with pytest.raises(BackendNotFoundError, match="definitely-not-installed"):
        select_backend("definitely-not-installed")


def test_process_decorator_validates_arguments() -> None:
    with pytest.raises(TypeError, match="cpu_heavy"):
        process(cpu_heavy="yes")(lambda ctx: None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retries"):
        process(retries=-1)(lambda ctx: None)
    with pytest.raises(TypeError, match="delete"):
        StateUpdate(delete="domain.x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="heavy zone"):
        StateUpdate(heavy={"domain.x": 1})
