"""Module-level functions the heavy-zone tests run in worker processes and sub-interpreters
(they import them by name)."""

from __future__ import annotations

import os
import pickle
import signal
from typing import Any

# The /proc readers are the conformance suite's (one copy); importable in a sub-interpreter.
from theus_conformance.tests._heavy_procs import mapped_file as mapping_of
from theus_conformance.tests._heavy_procs import rss_anon_kb


def inspect_array(payload: bytes) -> dict[str, Any]:
    """Unpickle a heavy array here and report how it arrived: the segment it maps, whether
    its data lies in a mapping of that segment's file, writeability and how much private
    memory unpickling and reading every element added."""
    import numpy

    import theus.heavy  # noqa: F401  (imports are not what is measured)

    numpy.zeros(4).sum()
    before = rss_anon_kb()
    array = pickle.loads(payload)
    total = float(array.sum())
    grown = rss_anon_kb() - before
    address = int(array.__array_interface__["data"][0])
    writeable_error = ""
    try:
        array.flags.writeable = True
    except ValueError as exc:
        writeable_error = str(exc)
    return {
        "type": type(array).__name__,
        "segment": array._theus_buffer.name,
        "mapped_file": mapping_of(address),
        "writeable": bool(array.flags.writeable),
        "writeable_error": writeable_error,
        "sum": total,
        "shape": tuple(array.shape),
        "rss_anon_growth_kb": grown,
        "first": array.reshape(-1)[:4].tolist(),
    }


def inspect_buffer(buf: Any) -> dict[str, Any]:
    """Report how a heavy byte buffer arrived."""
    view = memoryview(buf)
    return {
        "type": type(buf).__name__,
        "name": buf.name,
        "readonly": view.readonly,
        "head": bytes(view[:4]),
        "mapped_file": mapping_of(_address_of(buf)),
    }


def _address_of(buf: Any) -> int:
    import numpy as np

    return int(np.frombuffer(buf, dtype=np.uint8).ctypes.data)


def describe_view(view: Any) -> dict[str, Any]:
    """How a heavy array arrived where numpy cannot load (a sub-interpreter)."""
    return {
        "type": type(view).__name__,
        "readonly": view.readonly,
        "format": view.format,
        "shape": tuple(view.shape),
        "values": view.tolist(),
    }


def alloc_and_die(n: int) -> None:
    """Allocate a heavy buffer and die by SIGKILL, leaving its file behind."""
    from theus.heavy import HeavyZone

    buf = HeavyZone().alloc_bytes(n)
    print(buf.name, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def identity(value: Any) -> Any:
    """Return the argument (it travels back pickled)."""
    return value
