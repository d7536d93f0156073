"""Print the medians of one asv run as a table, with the derived numbers of REQUIREMENTS §5.

    python report.py [--commit HASH] [--results DIR]

Reads asv's results JSON (results/<machine>/<hash8>-<env>.json; the newest file for the
commit, or the newest file at all). Every timing is also given as a multiple of
`Baseline.time_dict_copy_set_one` from the same file. Derived rows: the cost of one guarded
read ((reads_1000 − reads_0) / 1000, see benchmarks/bench_engine.py), the 100 000-key /
10-key commit ratio, the SignalHub rates (messages per second, and how many times the
same-run queue baseline's rate), the Flux step and loop overheads, the schema and durable
commit costs with their peer baselines, the parallel speed-up and heavy hand-off (when
bench_parallel.py ran), and the store growth, each next to its target
(asv_bench/README.md lists every target and its benchmarks).
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
# One condition evaluation (REQUIREMENTS §5): the rust core's native evaluator <= 1 µs,
# the reference backend's <= 5 µs (bench_flux_expr.py).
for _scope, _target in (("rust-native", 1e-6), ("reference", 5e-6)):
    TARGETS[("bench_flux_expr.FluxCondition.time_condition_3_clauses", _scope)] = _target
# Costs measured above a same-run reference: (label, benchmark, the benchmark it is measured
# above, divisor, {backend: target in seconds}, the peer baseline beside it or None).
OVERHEADS = (
    (
        "Flux step overhead",
        "bench_flux_run.FluxRun.time_linear_1000",
        "bench_flux_run.FluxRun.time_python_loop_1000",
        1000,
        {"rust": 5e-6},
        None,
    ),
    (
        "Flux while iteration overhead",
        "bench_flux_run.FluxRun.time_while_1000",
        "bench_flux_run.FluxRun.time_python_loop_1000",
        1000,
        {"rust": 5e-6},
        None,
    ),
    (
        "schema-checked one-field write, added",
        "bench_schema.SchemaOverhead.time_execute_schema",
        "bench_schema.SchemaOverhead.time_execute_plain",
        1,
        {"rust": 2e-6},
        "bench_schema.SchemaOverhead.time_pydantic_validate_assignment",
    ),
    (
        "durable commit (SQLite), added",
        "bench_durable.DurableCommit.time_commit_sqlite",
        "bench_durable.DurableCommit.time_commit_plain",
        1,
        {"rust": 150e-6, "reference": 150e-6},
        "bench_durable.DurableBaseline.time_sqlite_row",
    ),
)
OVERHEADS += (
    (
        "100 MB heavy hand-off to a worker, added",
        "bench_parallel.ParallelHeavyHandoff.time_handoff_heavy",
        "bench_parallel.ParallelHeavyHandoff.time_handoff_none",
        1,
        {"": 1e-3},
        "bench_parallel.ParallelHeavyHandoff.time_pickle_copy",
    ),
)
SPEEDUP = "bench_parallel.ParallelCPU.time_four_cpu_bound"
SPEEDUP_TARGET = 1.8
GROWTH = "bench_durable.DurableGrowth.track_growth_bytes"
GROWTH_BASELINE = "bench_durable.DurableGrowthBaseline.track_full_snapshot_bytes"
GROWTH_TARGET = 2e6
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

    shown = path.relative_to(HERE) if path.is_relative_to(HERE) else path  # --results elsewhere
    print(f"\nasv medians from {shown}")
    rows = [("benchmark", "params", "median", "× baseline", "target")]
    for name in sorted(medians):
        for combo, value in medians[name].items():
            track = ".track_" in name  # bytes, MiB ...: no multiple of a time
            ratio = "" if value is None or not base or track else f"{value / base:,.1f}"
            target = TARGETS.get((name, combo[0] if combo else ""))
            rows.append(
                (
                    name.removeprefix("bench_engine.").removeprefix(_HUB),
                    ", ".join(combo) or "-",
                    f"{value:.2f}" if track and value is not None else fmt_time(value),
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

    dict_reads = (medians.get("bench_engine.ReadBaseline.time_dict_reads_1000") or {}).get(())
    local_reads = (medians.get("bench_engine.ReadBaseline.time_local_reads_1000") or {}).get(())
    if dict_reads is not None and local_reads is not None:
        per_read = (dict_reads - local_reads) / 1000
        rows.append(("derived: one dict read d['x'] (baseline)", "-", fmt_time(per_read), "", ""))

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

    for label, bench, above, divisor, targets, peer in OVERHEADS:
        peer_value = (medians.get(peer) or {}) if peer else {}
        for combo, value in (medians.get(bench) or {}).items():
            under = (medians.get(above) or {}).get(combo)
            cost = None if value is None or under is None else (value - under) / divisor
            peer_time = peer_value.get(combo, peer_value.get(()))
            beside = "" if peer is None else f"{peer.rsplit('.', 1)[1]}: {fmt_time(peer_time)}"
            target = targets.get(combo[0] if combo else "")
            goal = f"≤ {fmt_time(target)}" if target else ""
            rows.append((f"derived: {label}", ", ".join(combo), fmt_time(cost), beside, goal))

    four = medians.get(SPEEDUP) or {}
    inline = four.get(("inline",))
    for combo, value in four.items():
        if combo == ("inline",):
            continue
        speedup = "n/a" if not value or inline is None else f"{inline / value:.2f}×"
        beside = f"inline: {fmt_time(inline)}"
        goal = f"≥ {SPEEDUP_TARGET:g}×"
        rows.append(("derived: 4 CPU-bound processes, speed-up", combo[0], speedup, beside, goal))

    snapshot = (medians.get(GROWTH_BASELINE) or {}).get(())
    for combo, grown in (medians.get(GROWTH) or {}).items():
        size = "n/a" if grown is None else f"{grown / 1e6:.3g} MB"
        beside = "" if snapshot is None else f"one full snapshot: {snapshot / 1e6:.3g} MB"
        goal = f"< {GROWTH_TARGET / 1e6:g} MB"
        rows.append(("derived: store growth, 1 000 commits", ", ".join(combo), size, beside, goal))

    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
