"""``python -m theus_conformance.stores --store module:factory [pytest args...]``: run the store
conformance module against a store factory (default: ``theus_conformance.stores:sqlite_store``)
and exit with pytest's code."""

from __future__ import annotations

import argparse
import sys

import pytest


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run pytest on ``theus_conformance.stores.suite``."""
    parser = argparse.ArgumentParser(prog="python -m theus_conformance.stores")
    parser.add_argument("--store", default="theus_conformance.stores:sqlite_store")
    args, rest = parser.parse_known_args(argv)
    return int(
        pytest.main(
            ["--pyargs", "theus_conformance.stores.suite", "--theus-store", args.store, *rest]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
