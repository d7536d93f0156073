"""The ``theus`` command: run, check and draw Flux workflows, list backends, run the
conformance suite (spec/20-cli-and-pictures.md).

:func:`main` is the console script's entry point; it returns the exit code (spec/20 §2).
"""

from __future__ import annotations

from .app import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_SETUP, EXIT_USAGE, main

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_SETUP", "EXIT_USAGE", "main"]
