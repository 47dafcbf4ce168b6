"""The transaction-Bundle load benchmark: ``.venv/bin/python bench/transaction_run.py``.

One run, all on loopback, with exactly the server command line of ``interop run``:

1. starts an embedded FerretDB in a fresh temporary directory (or uses
   ``INTEROP_MONGODB_URI`` with a fresh database) and the server;
2. generates ``--bundles`` patient transaction Bundles (bench/transaction_data.py: about
   ``--entries`` entries each: patient, shared organization and practitioner by
   conditional create, encounters with vital signs, labs, reports, conditions,
   prescriptions, immunizations; every reference a ``urn:uuid:``);
3. posts them to ``POST /fhir`` from ``--clients`` keep-alive connections (one warm-up
   Bundle first, not counted) and reports resources/s, Bundles/s, latency per Bundle, and
   CPU per resource of the server (our Python), the store, and this client from /proc;
4. appends a dated section to docs/benchmarks.md.

The server's ``Server-Timing`` splits each request's time into the store's share and ours.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shlex
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    FHIR_JSON,
    LOOPBACK,
    BenchError,
    append_report,
    command_line,
    machine,
    process_cpu,
    sigterm_as_exit,
    snapshot,
    start_bench_store,
    start_server,
    tear_down,
    tree_cpu,
)
from bench.transaction_data import patient_bundle  # noqa: E402

TIMING = re.compile(r"(\w+);dur=([\d.]+)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundles", type=int, default=40)
    parser.add_argument("--entries", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-report", action="store_true", help="print only; do not append to --out")
    return parser.parse_args(argv)


def post_all(port: int, bodies: list[bytes], clients: int) -> tuple[list[float], list[dict[str, float]], int]:
    """Post every body once over ``clients`` keep-alive connections; latencies, timings, resources."""
    queue = list(reversed(bodies))
    lock = threading.Lock()
    latencies: list[float] = []
    timings: list[dict[str, float]] = []
    created = [0]
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=300)
        while True:
            with lock:
                if not queue or errors:
                    break
                body = queue.pop()
            started = time.perf_counter()
            conn.request("POST", "/fhir", body=body, headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})
            response = conn.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                with lock:
                    errors.append(f"{response.status}: {payload[:300]!r}")
                break
            entries = orjson.loads(payload)["entry"]
            timing = {k: float(v) for k, v in TIMING.findall(response.getheader("Server-Timing") or "")}
            with lock:
                latencies.append(elapsed)
                timings.append(timing)
                created[0] += sum(1 for e in entries if e["response"]["status"].startswith("201"))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(f"a transaction failed: {errors[0]}")
    return latencies, timings, created[0]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    work = Path(tempfile.mkdtemp(prefix="interop-bench-tx-"))
    cleanup: list[Any] = []
    external_db: tuple[str, str] | None = None
    try:
        with sigterm_as_exit():
            bench_store = start_bench_store(work, stamp, cleanup)
            external_db = bench_store.external
            running = start_server(work, cleanup)
            server, port, server_argv = running.server, running.port, running.argv

            print(f"generating {args.bundles + 1} Bundles of ~{args.entries} entries ...", file=sys.stderr)
            bodies = [orjson.dumps(patient_bundle(seed, args.entries)) for seed in range(args.bundles + 1)]
            entries = sum(len(orjson.loads(b)["entry"]) for b in bodies[1:])
            post_all(port, bodies[:1], 1)  # warm-up: first-use costs (collections, caches)

            before, t0 = snapshot(), time.perf_counter()
            latencies, timings, created = post_all(port, bodies[1:], args.clients)
            duration, after = time.perf_counter() - t0, snapshot()
            server.check_alive()

            # The same entries as batch Bundles, in the same run: each entry its own write
            # (references stay urn:uuid: a batch does not resolve them); what one commit buys.
            batches = [orjson.dumps({**orjson.loads(b), "type": "batch"}) for b in bodies[1:]]
            t1 = time.perf_counter()
            post_all(port, batches, args.clients)
            batch_rate = entries / (time.perf_counter() - t1)

            server_cpu = tree_cpu(after, server.pid) - tree_cpu(before, server.pid)
            store_cpu = process_cpu(after, bench_store.pid) - process_cpu(before, bench_store.pid)
            client_cpu = after[os.getpid()].own - before[os.getpid()].own
            store_ms = statistics.mean(t.get("store", 0.0) for t in timings)
            app_ms = statistics.mean(t.get("app", 0.0) for t in timings)
            latencies.sort()
            p50 = latencies[len(latencies) // 2]
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            rate = entries / duration
            lines = [
                f"## Transaction Bundles, {started_at:%Y-%m-%d %H:%M} UTC",
                "",
                f"- Command: `{command_line()}`",
                f"- Machine: {machine()}",
                f"- Store: {bench_store.description}",
                f"- Server: `{shlex.join(server_argv)}`",
                f"- Load: {args.bundles} patient transaction Bundles of {entries // args.bundles} entries on "
                f"average ({entries} entries, {created} created; conditional creates of shared organizations "
                f"and practitioners resolve to existing ones), {args.clients} keep-alive clients",
                "",
                "| resources/s | Bundles/s | Bundle p50 | Bundle p99 | server CPU/resource "
                "| store CPU/resource | client CPU/resource | store share of request time |",
                "|---|---|---|---|---|---|---|---|",
                f"| **{rate:,.0f}** | {len(latencies) / duration:.2f} | {p50 * 1000:.0f} ms "
                f"| {p99 * 1000:.0f} ms | {server_cpu / entries * 1000:.2f} ms "
                f"| {store_cpu / entries * 1000:.2f} ms | {client_cpu / entries * 1000:.2f} ms "
                f"| {store_ms / app_ms:.0%} |",
                "",
                "Same run, the same entries as batch Bundles (one write per entry): "
                f"{batch_rate:,.0f} resources/s.",
                "Target: 1,500 resources/s.",
            ]
            section = "\n".join(lines)
            print(section)
            if not args.no_report:
                append_report(args.out, section)
            return 0
    finally:
        tear_down(cleanup, external_db, work)


if __name__ == "__main__":
    sys.exit(main())
