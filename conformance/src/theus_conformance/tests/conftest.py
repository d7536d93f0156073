"""Session-wide checks of the conformance suite."""

from __future__ import annotations

import gc

import pytest

from theus.heavy import segments_of


@pytest.fixture(scope="session", autouse=True)
def no_leaked_heavy_segments():
    """Fail the run if a heavy segment of this process is left in /dev/shm (spec/22): every
    buffer a test allocated must be released once nothing references it."""
    yield
    gc.collect()
    left = segments_of()
    if left:
        pytest.fail(f"heavy segments leaked by the conformance run: {left}", pytrace=False)
