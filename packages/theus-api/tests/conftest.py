"""Shared fixtures of the theus-api unit tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from theus.heavy import segments_of


@pytest.fixture(scope="session", autouse=True)
def no_leaked_heavy_segments() -> Iterator[None]:
    """Fail the session if a heavy segment of this process is left in /dev/shm (spec/22)."""
    yield
    gc.collect()
    left = segments_of()
    if left:
        pytest.fail(f"heavy segments leaked by the test session: {left}", pytrace=False)
