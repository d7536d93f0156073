"""Parallel processes on a real local Dask cluster (spec/22, "Executors"): a
``distributed.LocalCluster`` of 2 worker processes on 127.0.0.1, started by this module, whose
``Client.get_executor()`` is passed as ``executor=``."""

from __future__ import annotations

import operator
import os

from theus_conformance.dask_cluster import dask_executor  # noqa: F401  (the fixture)


def test_the_cluster_runs_calls_in_other_processes(dask_executor):  # noqa: F811
    assert dask_executor.submit(operator.add, 2, 3).result() == 5
    pids = {f.result() for f in [dask_executor.submit(os.getpid) for _ in range(8)]}
    assert os.getpid() not in pids
