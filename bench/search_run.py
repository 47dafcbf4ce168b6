"""The search benchmark: ``.venv/bin/python bench/search_run.py`` (``--sizes 10000,100000``).

One run, all on loopback, with exactly the server command line of ``interop run``:

1. starts an embedded FerretDB in a fresh temporary directory (or uses
   ``INTEROP_MONGODB_URI`` with a fresh database) and the server (bench/run.py's helpers);
2. for each size, in increasing order, loads the data set (bench/search_data.py: patients
   with their encounters, observations and conditions) as one transaction Bundle of
   ``PUT`` entries per patient (``--load-with put``: one ``PUT /fhir/{type}/{id}`` each)
   from ``--load-clients`` keep-alive connections; a larger size is loaded on top of the
   smaller one (its data set is a prefix of the larger one);
3. runs every query template (``QUERIES``) with parameter values drawn from the loaded
   data, ``--requests`` measured requests per template at each ``--concurrency`` (a
   closed loop: each client process has one keep-alive connection and sends its next
   request when the previous answer has been read), stopping early after
   ``--max-seconds`` when the queries are slow; each query is first sent once alone, and a
   client count whose single round would not fit ``--max-seconds`` is skipped (reported);
4. reports latency (p50/p99 seen by the client), throughput, and the split of the
   server's time from ``Server-Timing``: ``store`` (time inside repository calls) and
   ``ours`` = ``app - store`` (parse, compile, render, Flask), with CPU per request of
   the server, the store and the clients from /proc; prints markdown tables and appends a
   dated section to docs/benchmarks.md.

Every process it starts is stopped on the way out, also on Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/search_run.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    RESULTS_DIR,
    BenchError,
    append_report,
    command_line,
    gunicorn_config,
    machine,
    sigterm_as_exit,
    start_bench_store,
    start_server,
    tear_down,
)
from bench.search_clients import Load, Run, Skip, load, mean, percentile, run_query  # noqa: E402
from bench.search_queries import QUERIES, sample  # noqa: E402
from bench.search_report import detail_table, load_table, main_table, size_label, verdict  # noqa: E402

TARGET_OURS_P99_MS = 5.0
TARGET_LOOKUP_P99_MS = 50.0
TARGET_SIZE = 100_000
VALUES_PER_QUERY = 200  # distinct parameter values per template (fewer when the data is smaller)
WARMUP_REQUESTS = 3  # per client, unrecorded, for queries faster than SLOW_PROBE (at most WARMUP_SECONDS)
WARMUP_SECONDS = 1.0
SLOW_PROBE = 0.5  # seconds: a query whose first request takes longer is not warmed up further
CORES = len(os.sched_getaffinity(0))
REQUEST_TIMEOUT = 120.0
TYPES = ("Patient", "Encounter", "Observation", "Condition")
_TIMING = re.compile(rb"(store|app);dur=([0-9.]+)")
_TOTAL = re.compile(rb'"total":(\d+)')


# --- main -----------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=_int_list, default=[10_000, 100_000], help="resources loaded [10000,100000]"
    )
    parser.add_argument("--concurrency", type=_int_list, default=[1, 8], help="client counts [1,8]")
    parser.add_argument(
        "--requests", type=int, default=200, help="measured requests per query and concurrency [%(default)s]"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=15.0,
        help="stop a test after this many seconds even if it has not made --requests [%(default)s]",
    )
    parser.add_argument(
        "--load-clients", type=int, default=12, help="concurrent connections while loading [%(default)s]"
    )
    parser.add_argument(
        "--load-with",
        choices=("transaction", "put"),
        default="transaction",
        help="one transaction Bundle per patient, or one PUT per resource [%(default)s]",
    )
    parser.add_argument(
        "--queries",
        default=",".join(q.name for q in QUERIES),
        help="comma-separated query names [all: " + ", ".join(q.name for q in QUERIES) + "]",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="markdown file to append to"
    )
    parser.add_argument("--no-append", action="store_true", help="print the results only")
    args = parser.parse_args(argv)
    args.sizes = sorted(set(args.sizes))
    if not args.sizes or args.sizes[0] < 15:
        parser.error("--sizes needs sizes of at least 15 resources (one patient)")
    if not args.concurrency or min(args.concurrency) < 1:
        parser.error("--concurrency needs positive integers")
    names = {q.name: q for q in QUERIES}
    wanted = [n.strip() for n in args.queries.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown or not wanted:
        parser.error(f"unknown queries {unknown}; known: {', '.join(names)}")
    args.query_list = [names[n] for n in wanted]
    return args


def source_version() -> str:
    """The commit the server runs, and whether its code differs from it (others edit in parallel)."""
    git = shutil.which("git")
    if git is None:
        return "unknown (no git)"
    head = subprocess.run(
        [git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        [git, "status", "--porcelain", "--", "fhir_server", "conformance", "interop", "pyproject.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{head or 'unknown'}" + (" with uncommitted changes to the server's code" if dirty else "")


@contextlib.contextmanager
def _stage(text: str) -> Iterator[None]:
    print(text, file=sys.stderr)
    t0 = time.monotonic()
    yield
    print(f"  ({time.monotonic() - t0:.1f} s)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="interop-search-bench-"))
    cleanup: list[Any] = []  # stopped in reverse order
    external_db: tuple[str, str] | None = None
    try:
        with sigterm_as_exit():
            bench_store = start_bench_store(work, stamp, cleanup)
            store_pid, store_text = bench_store.pid, bench_store.description
            external_db = bench_store.external
            version = source_version()  # what the server imports now
            running = start_server(work, cleanup)
            server, port, server_argv, settings = running.server, running.port, running.argv, running.settings

            loads: list[Load] = []
            runs: list[Run] = []
            skipped: list[Skip] = []
            loaded = 0
            bench_started = time.monotonic()
            for size in args.sizes:
                with _stage(f"loading resources {loaded:,}..{size:,} ({args.load_clients} clients) ..."):
                    step = load(
                        port,
                        loaded,
                        size,
                        args.load_clients,
                        server,
                        store_pid,
                        args.load_with == "transaction",
                    )
                    print(
                        f"  {step.resources:,} in {step.seconds:.1f} s = "
                        f"{step.resources / step.seconds:,.0f} resources/s",
                        file=sys.stderr,
                    )
                loaded = size
                loads.append(step)
                values = sample(size)
                for query in args.query_list:
                    paths = query.paths(values)
                    # One request alone first: it warms the path up and tells how slow the query is.
                    first = run_query(
                        port, size, query, paths, 1, 1, args.max_seconds, server, store_pid, warmup=0
                    )
                    if first.errors or not first.records:
                        raise BenchError(f"{query.name}: {first.error or 'no answer'}")
                    probe = first.records[0][1] - first.records[0][0]
                    slow = probe * 2 > args.max_seconds
                    print(
                        f"  {size_label(size):>5} {query.name:<15} first request {probe:.2f} s",
                        file=sys.stderr,
                    )
                    for clients in args.concurrency:
                        server.check_alive()
                        if clients == 1 and slow:
                            runs.append(first)  # a second request would not fit the time either
                            continue
                        if clients > 1 and probe * clients / CORES > args.max_seconds:
                            skipped.append(
                                Skip(
                                    size,
                                    query,
                                    clients,
                                    f"one request takes {probe:,.1f} s alone: {clients} at once on "
                                    f"{CORES} cores would take over {args.max_seconds:g} s",
                                )
                            )
                            continue
                        run = run_query(
                            port,
                            size,
                            query,
                            paths,
                            clients,
                            args.requests,
                            args.max_seconds,
                            server,
                            store_pid,
                            warmup=WARMUP_REQUESTS if probe < SLOW_PROBE else 0,
                        )
                        runs.append(run)
                        lat, ours = run.latencies(), run.ours()
                        print(
                            f"  {size_label(size):>5} {query.name:<15} x{clients:<2} n={len(run.records):<4} "
                            f"{run.rps:8.1f} rps  p50 {percentile(lat, 50):8.2f}  "
                            f"p99 {percentile(lat, 99):8.2f} ms  ours p99 {percentile(ours, 99):6.2f}  "
                            f"store mean {mean(run.store()):8.2f}  errors {run.errors}"
                            + (f"  ({run.error[:200]})" if run.error else ""),
                            file=sys.stderr,
                        )
            elapsed = time.monotonic() - bench_started

            raw = {
                "started_at": started_at.isoformat(),
                "command": command_line(),
                "store": store_text,
                "server_argv": server_argv,
                "loads": [ld.__dict__ for ld in loads],
                "runs": [
                    {
                        "size": r.size,
                        "query": r.query.name,
                        "template": r.query.template,
                        "clients": r.clients,
                        "window_s": r.window,
                        "cpu_s": {"server": r.server_cpu, "store": r.store_cpu, "clients": r.client_cpu},
                        "machine_cpu_s": r.machine_cpu,
                        "records": r.records,
                    }
                    for r in runs
                ],
            }
            raw_path = RESULTS_DIR / f"search-{stamp}.json"
            raw_path.write_text(json.dumps(raw))

            server_line = shlex.join([Path(server_argv[0]).name, *server_argv[1:]])
            parts = [
                f"## Search benchmark, {started_at.strftime('%Y-%m-%d %H:%M UTC')}",
                "",
                f"- command: `{command_line()}`",
                f"- code: commit {version}",
                f"- machine: {machine().split('; loadgen')[0]}",
                f"- store: {store_text}",
                f"- gunicorn: {gunicorn_config(settings)}",
                f"- server: `{server_line}`",
                f"- data: bench/search_data.py, sizes {', '.join(map(size_label, args.sizes))} resources "
                "(about 15 per patient: 1 Patient, ~2 Encounters, ~10 Observations, ~2 Conditions), "
                "loaded "
                + (
                    "as one transaction Bundle of PUT entries per patient"
                    if args.load_with == "transaction"
                    else "with one PUT per resource"
                )
                + f" from {args.load_clients} keep-alive connections",
                f"- queries: up to {args.requests} measured requests per query and client count "
                f"(at most {args.max_seconds:g} s each: a slow query makes fewer); each query is first "
                "sent once alone (unrecorded; when it takes over half that time it is the only 1-client "
                f"sample), and when that took under {SLOW_PROBE:g} s each client sends {WARMUP_REQUESTS} "
                "unrecorded warm-up requests; closed loop, one keep-alive connection per client process; "
                "a client count is skipped when one round of it would not fit the time; parameter values "
                f"drawn from the loaded data (up to {VALUES_PER_QUERY} distinct values per query); "
                "`Prefer: handling=strict`; default page size (20) and `_total` (accurate)",
                f"- whole run (loads and queries): {elapsed / 60:.1f} min",
                "",
                "Loading:",
                "",
                load_table(loads),
                "",
            ]
            held: Counter[str] = Counter()
            for ld in loads:
                size = ld.size
                held.update(ld.by_type)
                selected = [r for r in runs if r.size == size]
                counts = dict(held)
                parts += [
                    f"Queries at {size_label(size)} resources "
                    f"({', '.join(f'{counts[t]:,} {t}' for t in TYPES)}):",
                    "",
                    main_table(selected, [k for k in skipped if k.size == size]),
                    "",
                    f"<details><summary>Details at {size_label(size)}: CPU per request and load</summary>",
                    "",
                    detail_table(selected),
                    "",
                    "</details>",
                    "",
                ]
            parts += ["Targets:", "", verdict(runs, args.sizes)]
            section = "\n".join(parts)
            print(section)
            if args.no_append:
                print(f"\n(not appended; raw results in {raw_path})", file=sys.stderr)
            else:
                append_report(args.out, section)
                print(f"\nappended to {args.out}; raw results in {raw_path}", file=sys.stderr)
            return 0
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; stopping what was started", file=sys.stderr)
        return 130
    finally:
        tear_down(cleanup, external_db, work)


if __name__ == "__main__":
    sys.exit(main())
