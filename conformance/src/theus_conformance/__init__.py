"""The Theus conformance suite: one set of tests, run against any Theus backend.

Run it with ``python -m theus_conformance --backend NAME`` or, from any pytest run in an
environment where this package is installed, with ``--theus-backend NAME``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["__version__", "vectors_dir", "load_vector"]

__version__ = "0.1.0"


@cache
def vectors_dir() -> Path:
    """Where the language-neutral spec vectors live.

    In a wheel they are shipped as ``theus_conformance/vectors``; in a development checkout
    (editable install) they are found by walking up from this package to ``spec/vectors``.
    """
    here = Path(__file__).resolve().parent
    shipped = here / "vectors"
    if (shipped / "patterns.json").is_file():
        return shipped
    for parent in here.parents:
        candidate = parent / "spec" / "vectors"
        if (candidate / "patterns.json").is_file():
            return candidate
    raise FileNotFoundError(
        "theus_conformance: the spec vectors are missing: neither "
        f"{shipped} (installed wheel) nor a spec/vectors directory above {here} (checkout) exists"
    )


def load_vector(name: str) -> Any:
    """Parse one vector file, e.g. ``load_vector("zones.json")``."""
    return json.loads((vectors_dir() / name).read_text(encoding="utf-8"))
