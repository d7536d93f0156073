"""Every performance target has a benchmark on the dashboard (issue 13): the table of
asv_bench/README.md ("Performance targets and their benchmarks") names, for each target, the
asv benchmarks that measure it and the same-run baseline beside it. This test checks that
every benchmark the table names exists in asv_bench/benchmarks (read with `ast`: nothing is
imported or run), that each measured row has a baseline, and that every target written in
spec/*.md ("≤ 150 µs", "< 2 MB" ...) is a row of the table.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "asv_bench" / "benchmarks"
README = ROOT / "asv_bench" / "README.md"
HEADING = "## Performance targets and their benchmarks"
NAME = re.compile(r"`(bench_\w+\.\w+\.\w+)`")
# Benchmark files the table names that were written on another branch at the same time: their
# rows cannot be checked until the branches meet; once the file is here they are checked too.
ELSEWHERE = {"bench_parallel": "the parallel branch (spec/22)"}
# a target in prose: a comparison, a number, a unit ("≤ 150 µs", "< 2 MB", "≥ 2.7 M/s", "≤ ×2")
TARGET = re.compile(r"[≤≥<>]\s?(?:×\s?\d+(?:\.\d+)?|\d[\d ]*(?:\.\d+)?\s?(?:µs|ms|MB|M/s)\b)")


def _benchmarks() -> set[str]:
    """`module.Class.method` of every asv benchmark (time_/track_/mem_/peakmem_ methods of a
    class, however nested in `if` blocks) in asv_bench/benchmarks."""
    names = set()
    for path in BENCH.glob("bench_*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith(
                    ("time_", "track_", "mem_", "peakmem_")
                ):
                    names.add(f"{path.stem}.{node.name}.{item.name}")
    return names


def _rows() -> list[dict[str, str]]:
    text = README.read_text()
    assert HEADING in text, f"{README}: no '{HEADING}' section"
    lines = text.split(HEADING, 1)[1].splitlines()
    table = [line for line in lines if line.startswith("|")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header == ["target", "measure", "source", "benchmark", "same-run baseline"], header
    rows = []
    for line in table[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == len(header), f"{README}: a row with {len(cells)} cells: {line}"
        rows.append(dict(zip(header, cells, strict=True)))
    assert len(rows) >= 10, f"only {len(rows)} rows in the targets table"
    return rows


def test_every_benchmark_the_table_names_exists():
    known = _benchmarks()
    assert len(known) > 30, sorted(known)  # the parser found the suite
    absent = {m for m in ELSEWHERE if not (BENCH / f"{m}.py").exists()}
    for row in _rows():
        measured = NAME.findall(row["benchmark"])
        baselines = NAME.findall(row["same-run baseline"])
        assert measured, f"no benchmark for {row['target']!r} ({row['measure']})"
        assert baselines or row["same-run baseline"].startswith(("the same", "none:")), (
            f"{row['target']!r}: no same-run baseline beside it"
        )
        named = {n for n in measured + baselines if n.split(".", 1)[0] not in absent}
        missing = sorted(named - known)
        assert not missing, f"{row['target']!r}: no such benchmark {missing}"


def test_every_spec_target_is_in_the_table():
    listed = " ".join(row["target"] for row in _rows())
    listed = re.sub(r"\s+", " ", listed)
    found = []
    for path in sorted((ROOT / "spec").glob("*.md")):
        text = re.sub(r"\s+", " ", path.read_text())
        found += [(path.name, target) for target in TARGET.findall(text)]
    assert found, "the pattern found no target in spec/ (it has some: spec/21 §9)"
    for name, target in found:
        assert target in listed, f"{name}: target {target!r} has no row in {README}"


def test_the_target_pattern_reads_targets():
    assert TARGET.findall("commit ≤ 150 µs above; grow by < 2 MB; ≥ 2.7 M/s; ≤ ×2") == [
        "≤ 150 µs",
        "< 2 MB",
        "≥ 2.7 M/s",
        "≤ ×2",
    ]
    assert TARGET.findall("a list of 3 items, version 2") == []
