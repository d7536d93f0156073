"""Paths, patterns and zones against the normative vectors in spec/vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from theus import InvalidContractError, InvalidPathError
from theus.paths import overlaps, parse_path, parse_pattern
from theus.zones import zone_of

VECTORS = Path(__file__).resolve().parents[3] / "spec" / "vectors"


def _load(name: str) -> object:
    return json.loads((VECTORS / name).read_text())


@pytest.mark.parametrize(("text", "segments"), _load("paths.json")["valid"])  # type: ignore[index]
def test_valid_paths(text: str, segments: list[str]) -> None:
    assert parse_path(text) == tuple(segments)


@pytest.mark.parametrize("text", _load("paths.json")["invalid"])  # type: ignore[index]
def test_invalid_paths(text: str) -> None:
    with pytest.raises(InvalidPathError, match="path"):
        parse_path(text)


@pytest.mark.parametrize("text", _load("patterns.json")["invalid"])  # type: ignore[index]
def test_invalid_patterns(text: str) -> None:
    with pytest.raises(InvalidContractError):
        parse_pattern(text)


@pytest.mark.parametrize("case", _load("patterns.json")["cases"])  # type: ignore[index]
def test_pattern_cases(case: dict[str, object]) -> None:
    pattern = parse_pattern(case["pattern"])
    path = parse_path(case["path"])
    assert pattern.covers(path) is case["covers"]
    assert pattern.leads_to(path) is case["leads_to"]


@pytest.mark.parametrize(("a", "b", "expected"), _load("overlap.json"))  # type: ignore[arg-type]
def test_overlap(a: str, b: str, expected: bool) -> None:
    assert overlaps(parse_path(a), parse_path(b)) is expected


@pytest.mark.parametrize(("path", "zone"), _load("zones.json"))  # type: ignore[arg-type]
def test_zones(path: str, zone: str) -> None:
    assert zone_of(parse_path(path)).value == zone
