"""``python -m theus.cli`` — the ``theus`` command (spec/20-cli-and-pictures.md)."""

from __future__ import annotations

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
