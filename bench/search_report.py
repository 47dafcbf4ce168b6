"""The markdown tables and the verdict of bench/search_run.py."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/...` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    NOISE_CORES,
)
from bench.search_clients import Load, Run, Skip, mean, percentile  # noqa: E402
from bench.search_queries import QUERIES  # noqa: E402

TARGET_OURS_P99_MS = 5.0
TARGET_LOOKUP_P99_MS = 50.0
TARGET_SIZE = 100_000
TYPES = ("Patient", "Encounter", "Observation", "Condition")


# --- reporting ------------------------------------------------------------------------------


def _num(x: float, digits: int = 1) -> str:
    return "n/a" if x != x else f"{x:,.{digits}f}"


def size_label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"


def load_table(loads: list[Load]) -> str:
    lines = [
        "| size | loaded in this step | Patient / Encounter / Observation / Condition | seconds "
        "| resources/s | request app ms (mean) | request store ms (mean) | CPU ms/resource: server | store |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|",
    ]
    for ld in loads:
        n = ld.resources or 1
        split = " / ".join(f"{ld.by_type[t]:,}" for t in TYPES)
        lines.append(
            f"| {size_label(ld.size)} | {ld.resources:,} | {split} | {ld.seconds:,.1f} | "
            f"{ld.resources / ld.seconds:,.0f} | {_num(ld.mean_app_ms, 2)} | {_num(ld.mean_store_ms, 2)} | "
            f"{_num(ld.server_cpu * 1000 / n, 2)} | {_num(ld.store_cpu * 1000 / n, 2)} |"
        )
    return "\n".join(lines)


def _cell(text: str) -> str:
    """A table cell: GitHub splits cells on every unescaped bar, also inside code."""
    return text.replace("|", "\\|")


def _matches(run: Run) -> str:
    totals = run.totals()
    if not totals:
        return "n/a"
    low, high = min(totals), max(totals)
    middle = statistics.median(totals)
    return f"{middle:,.0f}" if low == high else f"{middle:,.0f} ({low:,} to {high:,})"


def main_table(runs: list[Run], skipped: list[Skip]) -> str:
    lines = [
        "| query | clients | requests | rps | p50 ms | p99 ms | ours ms mean | ours ms p99 "
        "| store ms mean | store ms p99 | matches: median (range) | errors |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    rows: list[Run | Skip] = [*runs, *skipped]
    order = {q.name: i for i, q in enumerate(QUERIES)}
    for r in sorted(rows, key=lambda x: (order[x.query.name], x.clients)):
        if isinstance(r, Skip):
            lines.append(f"| `{_cell(r.query.template)}` | {r.clients} | skipped: {r.reason} |" + " |" * 9)
            continue
        lat, ours, store = r.latencies(), r.ours(), r.store()
        lines.append(
            f"| `{_cell(r.query.template)}` | {r.clients} | {len(r.records):,} | {_num(r.rps)} | "
            f"{_num(percentile(lat, 50), 2)} | {_num(percentile(lat, 99), 2)} | "
            f"{_num(mean(ours), 2)} | {_num(percentile(ours, 99), 2)} | "
            f"{_num(mean(store), 2)} | {_num(percentile(store, 99), 2)} | {_matches(r)} | {r.errors} |"
        )
    return "\n".join(lines)


def detail_table(runs: list[Run]) -> str:
    lines = [
        "| query | clients | mean ms | max ms | app ms mean | outside app ms mean | body kB mean "
        "| CPU ms/req: server | store | clients | cores: bench | other | seconds |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in runs:
        lat = r.latencies()
        # Client latency minus the app's own clock: connection, gunicorn (waiting for a free
        # worker thread), WSGI and Flask outside the request hooks, and the body on the wire.
        outside = mean([(x[1] - x[0]) * 1000 - x[3] for x in r.ok if x[3] == x[3]])
        lines.append(
            f"| {r.query.name} | {r.clients} | {_num(mean(lat), 2)} | "
            f"{_num(max(lat, default=float('nan')), 2)} | "
            f"{_num(mean([x[3] for x in r.ok]), 2)} | {_num(outside, 2)} | "
            f"{_num(mean([x[5] / 1000 for x in r.ok]), 1)} | "
            f"{_num(r.per_request(r.server_cpu), 2)} | {_num(r.per_request(r.store_cpu), 2)} | "
            f"{_num(r.per_request(r.client_cpu), 2)} | {_num(r.cores_bench(), 2)} | "
            f"{_num(r.cores_other(), 2)} | {r.window:,.1f} |"
        )
    return "\n".join(lines)


def verdict(runs: list[Run], sizes: list[int]) -> str:
    size = TARGET_SIZE if TARGET_SIZE in sizes else max(sizes)
    note = (
        ""
        if size == TARGET_SIZE
        else f" (not measured at {size_label(TARGET_SIZE)}: judged at {size_label(size)})"
    )
    single = [r for r in runs if r.size == size and r.clients == 1]
    lines = []
    if not single:
        return "- targets are judged at 1 client, which this run did not measure"
    ours = [(r.query, percentile(r.ours(), 99)) for r in single]
    ok = all(v <= TARGET_OURS_P99_MS for _, v in ours)
    lines.append(
        f"- our own share (app - store) p99 ≤ {TARGET_OURS_P99_MS:g} ms per query at "
        f"{size_label(size)}, 1 client{note}: **{'PASS' if ok else 'FAIL'}** ("
        + ", ".join(f"{q.name} {_num(v, 2)}" for q, v in ours)
        + ")"
    )
    lookups = [(r.query, percentile(r.latencies(), 99)) for r in single if r.query.lookup]
    ok = bool(lookups) and all(v < TARGET_LOOKUP_P99_MS for _, v in lookups)
    lines.append(
        f"- `_id`, identifier and single-reference lookups p99 < {TARGET_LOOKUP_P99_MS:g} ms at "
        f"{size_label(size)}, 1 client{note}: **{'PASS' if ok else 'FAIL'}** ("
        + ", ".join(f"{q.name} {_num(v, 2)} ms" for q, v in lookups)
        + ")"
    )
    errors = sum(r.errors for r in runs)
    lines.append(f"- errors (non-2xx or transport) over the run: {errors}")
    for r in runs:
        if r.error:
            lines.append(f"  - {size_label(r.size)} {r.query.name} x{r.clients}: {r.error[:300]}")
    noisy = [r for r in runs if r.cores_other() > NOISE_CORES]
    if noisy:
        lines.append(
            f"- **warning:** processes outside the benchmark used more than {NOISE_CORES} cores during "
            f"{len(noisy)} of {len(runs)} tests; those figures are disturbed:"
        )
        for r in noisy:
            busiest = f" (busiest: {r.other_top})" if r.other_top else ""
            lines.append(
                f"  - {size_label(r.size)} {r.query.name} x{r.clients}: {r.cores_other():.2f} cores{busiest}"
            )
    return "\n".join(lines)
