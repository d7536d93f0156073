"""The store conformance module (spec/21 §4) against ``--theus-store`` (default SqliteStore),
as part of the backend conformance run."""

from theus_conformance.stores.suite import *  # noqa: F403
