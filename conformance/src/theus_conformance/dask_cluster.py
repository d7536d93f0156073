"""A real local Dask cluster for the parallel conformance tests (spec/22, "Executors").

``dask_executor`` is a module-scoped pytest fixture: it starts
``distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1)`` on 127.0.0.1
(no dashboard) with a ``Client``, yields ``client.get_executor(pure=False)`` — a standard
``concurrent.futures.Executor`` that runs each call on a worker process — and closes the client
and the cluster afterwards. ``pure=False``: Dask would otherwise treat two submissions of the
same function and arguments as one task and hand back the first result (a process run twice on
the same inputs must run twice). A test module uses it by importing it::

    from theus_conformance.dask_cluster import dask_executor  # noqa: F401

Without ``dask[distributed]`` (the ``theus-api[dask]`` extra) the tests that use it are skipped,
saying so.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import Any

import pytest

__all__ = ["DASK_MISSING", "dask_executor"]

DASK_MISSING: str | None = (
    None
    if importlib.util.find_spec("distributed") is not None
    else "dask[distributed] is not installed (pip install 'theus-api[dask]')"
)


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[Executor]:
    """The executor of a 2-worker local Dask cluster of processes (started for the module)."""
    if DASK_MISSING is not None:
        pytest.skip(DASK_MISSING)
    distributed: Any = importlib.import_module("distributed")

    # The cluster's start/stop chatter (INFO on the distributed.* loggers) is not test output.
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    )
    try:
        client = distributed.Client(cluster)
        try:
            yield client.get_executor(pure=False)
        finally:
            client.close()
    finally:
        cluster.close()
        quiet.setLevel(level)
