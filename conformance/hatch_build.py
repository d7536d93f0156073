"""Ship spec/vectors inside the wheel as theus_conformance/vectors.

Built from the repository, the vectors come from ../spec/vectors; built from an sdist (which
carries them at src/theus_conformance/vectors), they are already inside the package. Editable
installs skip this: theus_conformance.vectors_dir() finds spec/vectors by walking up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class VectorsHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            return
        source = (Path(self.root) / ".." / "spec" / "vectors").resolve()
        if not (source / "patterns.json").is_file():
            return  # building from an sdist: the vectors are in the package already
        target = (
            "theus_conformance/vectors"
            if self.target_name == "wheel"
            else "src/theus_conformance/vectors"
        )
        build_data["force_include"][str(source)] = target
