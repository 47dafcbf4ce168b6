"""The markdown tables and the verdict of bench/run.py (CRUD against the floor)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/...` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from bench.harness import NOISE_CORES  # noqa: E402
from bench.loadgen_runs import Run, Sample  # noqa: E402

TARGET_READ_OF_FLOOR = 0.50
TARGET_CREATE_RPS = 500.0


# --- reporting ------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{x * 100:.0f} %"


def _num(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or x != x else f"{x:,.{digits}f}"


def _errors(result: dict[str, Any]) -> str:
    if not result["errors"]:
        return "0"
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(result["errors_by_status"].items()))
    return f"{result['errors']} ({detail})"


def store_latency_share(result: dict[str, Any]) -> float | None:
    store, mean = result.get("mean_store_ms"), result.get("mean_latency_ms")
    return store / mean if store is not None and mean else None


def store_cpu_share(cpu: Sample) -> float | None:
    total = cpu.app_cpu + cpu.store_cpu
    return cpu.store_cpu / total if total == total and total > 0 else None


def floor_share(run: Run, floors: dict[int, Run]) -> float | None:
    floor = floors.get(run.clients)
    if run.op != "read" or floor is None or not floor.result["throughput_rps"]:
        return None
    return float(run.result["throughput_rps"]) / float(floor.result["throughput_rps"])


def main_table(runs: list[Run]) -> str:
    floors = {r.clients: r for r in runs if r.op == "floor read"}
    lines = [
        "| op | clients | rps | p50 ms | p99 ms | errors "
        "| store share of latency | store CPU share | read % of floor |",
        "|---|--:|--:|--:|--:|---|--:|--:|--:|",
    ]
    for r in runs:
        res = r.result
        is_floor = r.op == "floor read"
        lines.append(
            f"| {r.op} | {r.clients} | {_num(res['throughput_rps'])} | {_num(res['p50_ms'], 2)} | "
            f"{_num(res['p99_ms'], 2)} | {_errors(res)} | "
            f"{'—' if is_floor else _pct(store_latency_share(res))} | "
            f"{'—' if is_floor else _pct(store_cpu_share(r.cpu))} | "
            f"{'100 %' if is_floor else ('' if r.op != 'read' else _pct(floor_share(r, floors)))} |"
        )
    return "\n".join(lines)


def bench_cores(run: Run, duration: float) -> float:
    loadgen_cpu = float(run.result.get("loadgen_cpu_s") or 0.0)
    return (run.cpu.app_cpu + run.cpu.store_cpu + loadgen_cpu) / duration


def other_cores(run: Run, duration: float) -> float:
    """Cores used by everything outside the benchmark's processes during the window."""
    return max(0.0, run.cpu.machine_cpu / duration - bench_cores(run, duration))


def detail_table(runs: list[Run], duration: float) -> str:
    lines = [
        "| op | clients | requests | p90 ms | max ms | mean ms | app ms (Server-Timing) "
        "| store ms (Server-Timing) | CPU ms/req: server | store | loadgen | cores: bench | other |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in runs:
        res = r.result
        n = res["requests"] or 1
        loadgen_cpu = float(res.get("loadgen_cpu_s") or 0.0)
        lines.append(
            f"| {r.op} | {r.clients} | {res['requests']:,} | {_num(res['p90_ms'], 2)} | "
            f"{_num(res['max_ms'], 2)} | {_num(res['mean_latency_ms'], 2)} | "
            f"{_num(res.get('mean_app_ms'), 2)} | {_num(res.get('mean_store_ms'), 2)} | "
            f"{_num(r.cpu.app_cpu * 1000 / n, 2)} | "
            f"{'—' if r.op == 'floor read' else _num(r.cpu.store_cpu * 1000 / n, 2)} | "
            f"{_num(loadgen_cpu * 1000 / n, 2)} | {_num(bench_cores(r, duration), 2)} | "
            f"{_num(other_cores(r, duration), 2)} |"
        )
    return "\n".join(lines)


def verdict(runs: list[Run], duration: float) -> tuple[str, bool]:
    floors = {r.clients: r for r in runs if r.op == "floor read"}
    reads = [(r.clients, floor_share(r, floors)) for r in runs if r.op == "read"]
    read_ok = bool(reads) and all(s is not None and s >= TARGET_READ_OF_FLOOR for _, s in reads)
    creates = [(r.clients, float(r.result["throughput_rps"])) for r in runs if r.op == "create"]
    best_clients, best_create = max(creates, key=lambda c: c[1]) if creates else (0, 0.0)
    create_ok = best_create >= TARGET_CREATE_RPS
    errors = sum(r.result["errors"] for r in runs)
    read_detail = ", ".join(f"{_pct(s)} at {c}" for c, s in reads)
    lines = [
        f"- read ≥ {TARGET_READ_OF_FLOOR:.0%} of the floor's throughput at every concurrency: "
        f"**{'PASS' if read_ok else 'FAIL'}** ({read_detail})",
        f"- create ≥ {TARGET_CREATE_RPS:.0f}/s (best concurrency): **{'PASS' if create_ok else 'FAIL'}** "
        f"({best_create:,.1f}/s at {best_clients} clients; "
        + ", ".join(f"{rps:,.1f}/s at {c}" for c, rps in creates)
        + ")",
        f"- errors (non-2xx or transport) over the run: {errors}",
    ]
    noisy = [r for r in runs if other_cores(r, duration) > NOISE_CORES]
    if noisy:
        lines.append(
            f"- **warning:** processes outside the benchmark used more than {NOISE_CORES} cores during "
            f"{len(noisy)} of {len(runs)} tests; those figures are disturbed:"
        )
        for r in noisy:
            busiest = f" (busiest: {r.cpu.other_top})" if r.cpu.other_top else ""
            lines.append(f"  - {r.op} x{r.clients}: {other_cores(r, duration):.2f} cores{busiest}")
    return "\n".join(lines), read_ok and create_ok and errors == 0
