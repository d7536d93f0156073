"""Print the medians of one asv run as a table, with the derived numbers of REQUIREMENTS §5.

    python report.py [--commit HASH] [--results DIR]

Reads asv's results JSON (results/<machine>/<hash8>-<env>.json; the newest file for the
commit, or the newest file at all). Every median is also given as a multiple of
`Baseline.time_dict_copy_set_one` from the same file. Derived rows: the cost of one guarded
read ((reads_1000 − reads_0) / 1000, see benchmarks/bench_engine.py), the 100 000-key /
10-key commit ratio, and the SignalHub rates (messages per second, and how many times the
same-run queue baseline's rate), each next to its target.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BASELINE = "bench_engine.Baseline.time_dict_copy_set_one"
# (benchmark, backend) -> target in seconds, from REQUIREMENTS §5.
TARGETS = {
    ("bench_engine.Execute.time_execute_read1_write1", "rust"): 5e-6,
    ("bench_engine.Execute.time_execute_read1_write1", "reference"): 30e-6,
}
READ_TARGET = {"rust": 0.3e-6}
SCALE_TARGET = 2.0
# bench_hub: benchmark -> (messages per call (N_* in bench_hub.py), same-run baseline, rust
# target in messages per second or None).
_HUB = "bench_hub."
HUB_RATES = {
    "Publish.time_publish_1_subscriber": (
        10_000,
        "PublishBaseline.time_asyncio_queue_put_nowait",
        5e6,
    ),
    "ThreadToThread.time_block_publish": (
        200_000,
        "ThreadToThreadBaseline.time_simplequeue",
        2.7e6,
    ),
    "ThreadToThread.time_block_publish_many": (
        200_000,
        "ThreadToThreadBaseline.time_simplequeue",
        2.7e6,
    ),
    "AsyncReceive.time_async_for": (100_000, "AsyncReceiveBaseline.time_asyncio_queue_get", 1e6),
    "AsyncReceive.time_recv_many_async": (
        100_000,
        "AsyncReceiveBaseline.time_asyncio_queue_get",
        2e6,
    ),
    "AsyncReceive.time_thread_async_for": (
        100_000,
        "AsyncReceiveBaseline.time_asyncio_queue_get",
        None,
    ),
    "AsyncReceive.time_thread_recv_many_async": (
        100_000,
        "AsyncReceiveBaseline.time_asyncio_queue_get",
        None,
    ),
}


def fmt_time(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "n/a"
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= factor:
            return f"{seconds / factor:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def find_results(results_dir: Path, commit: str | None) -> Path:
    pattern = f"*/{commit[:8]}-*.json" if commit else "*/*-*.json"
    files = [p for p in results_dir.glob(pattern) if p.name != "machine.json"]
    if not files:
        sys.exit(f"report.py: no asv results matching {results_dir / pattern}")
    return max(files, key=lambda p: p.stat().st_mtime)


def load_medians(path: Path) -> dict[str, dict[tuple[str, ...], float | None]]:
    """benchmark name -> {parameter tuple (strings, quotes stripped) -> median seconds}."""
    data = json.loads(path.read_text())
    columns: list[str] = data["result_columns"]
    out: dict[str, dict[tuple[str, ...], float | None]] = {}
    for name, row in data["results"].items():
        fields: dict[str, Any] = dict(zip(columns, row, strict=False))
        values = fields.get("result") or []
        params = fields.get("params") or []
        combos = list(itertools.product(*params)) if params else [()]
        out[name] = {
            tuple(str(p).strip("'\"") for p in combo): (
                None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
            )
            for combo, v in zip(combos, values, strict=False)
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", help="commit hash the results were filed under")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args()

    path = find_results(args.results, args.commit)
    medians = load_medians(path)
    base = (medians.get(BASELINE) or {}).get(())

    print(f"\nasv medians from {path.relative_to(HERE)}")
    rows = [("benchmark", "params", "median", "× baseline", "target")]
    for name in sorted(medians):
        for combo, value in medians[name].items():
            ratio = "" if value is None or not base else f"{value / base:,.1f}"
            target = TARGETS.get((name, combo[0] if combo else ""))
            rows.append(
                (
                    name.removeprefix("bench_engine.").removeprefix(_HUB),
                    ", ".join(combo) or "-",
                    f"{value:.2f}" if ".track_" in name and value is not None else fmt_time(value),
                    ratio,
                    f"≤ {fmt_time(target)}" if target else "",
                )
            )

    reads = medians.get("bench_engine.GuardedRead.time_reads_1000", {})
    loops = medians.get("bench_engine.GuardedRead.time_reads_0", {})
    for (backend,), with_reads in reads.items():
        without = loops.get((backend,))
        per_read = None if with_reads is None or without is None else (with_reads - without) / 1000
        target = READ_TARGET.get(backend)
        rows.append(
            (
                "derived: one guarded read ctx.domain.x",
                backend,
                fmt_time(per_read),
                "",
                f"≤ {fmt_time(target)}" if target else "",
            )
        )

    for cls, method in (
        ("CommitScale", "time_execute_write_one"),
        ("CommitScale", "time_transaction_write_one"),
        ("LogAppend", "time_append_one"),
    ):
        scale = medians.get(f"bench_engine.{cls}.{method}", {})
        for backend in sorted({combo[0] for combo in scale}):
            small, large = scale.get((backend, "10")), scale.get((backend, "100000"))
            ratio = "n/a" if not small or large is None else f"×{large / small:.2f}"
            unit = "items" if cls == "LogAppend" else "keys"
            label = f"derived: {method.removeprefix('time_')} 100000 / 10 {unit}"
            rows.append((label, backend, ratio, "", f"≤ ×{SCALE_TARGET:g}"))

    for bench, (messages, baseline, target) in HUB_RATES.items():
        base_time = (medians.get(_HUB + baseline) or {}).get(())
        for (backend,), value in (medians.get(_HUB + bench) or {}).items():
            rate = "n/a" if not value else f"{messages / value / 1e6:.2f} M msg/s"
            vs = "" if not value or not base_time else f"{base_time / value:.2f}× {baseline}"
            goal = f"≥ {target / 1e6:g} M msg/s" if target and backend == "rust" else ""
            rows.append((f"derived: {bench} rate", backend, rate, vs, goal))

    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
