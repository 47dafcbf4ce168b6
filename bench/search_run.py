"""The search benchmark: ``.venv/bin/python bench/search_run.py`` (``--sizes 10000,100000``).

One run, all on loopback, with exactly the server command line of ``interop run``:

1. starts an embedded FerretDB in a fresh temporary directory (or uses
   ``INTEROP_MONGODB_URI`` with a fresh database) and the server (bench/run.py's helpers);
2. for each size, in increasing order, loads the data set (bench/search_data.py: patients
   with their encounters, observations and conditions) through ``PUT /fhir/{type}/{id}``
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
import http.client
import json
import multiprocessing
import os
import queue
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/search_run.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from bench import search_data  # noqa: E402
from bench.run import (  # noqa: E402
    FHIR_JSON,
    LOOPBACK,
    NOISE_CORES,
    RESULTS_DIR,
    BenchError,
    Server,
    append_report,
    command_line,
    free_port,
    gunicorn_config,
    machine,
    machine_cpu,
    other_processes,
    process_cpu,
    sigterm_as_exit,
    snapshot,
    start_bench_store,
    tear_down,
    tree_cpu,
    wait_ready,
)
from fhir_server.settings import Settings  # noqa: E402
from interop.cli import gunicorn_argv  # noqa: E402

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


# --- the queries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """Patients whose every resource is loaded, drawn deterministically, with their records."""

    records: list[list[dict[str, Any]]]

    def of_type(self, record: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
        return [r for r in record if r["resourceType"] == resource_type]


def _q(value: str) -> str:
    return quote(value, safe="/:")


def _id(s: Sample) -> list[str]:
    return [f"/fhir/Patient?_id={r[0]['id']}" for r in s.records]


def _identifier(s: Sample) -> list[str]:
    return [
        f"/fhir/Patient?identifier={_q(search_data.MRN_SYSTEM + '|' + r[0]['identifier'][0]['value'])}"
        for r in s.records
    ]


def _name(s: Sample) -> list[str]:
    return [f"/fhir/Patient?name={_q(r[0]['name'][0]['family'])}" for r in s.records]


def _subject(s: Sample) -> list[str]:
    return [f"/fhir/Observation?subject=Patient/{r[0]['id']}" for r in s.records]


def _patient_code(s: Sample) -> list[str]:
    paths = []
    rng = random.Random(7)
    for r in s.records:
        observation = rng.choice(s.of_type(r, "Observation"))
        code = observation["code"]["coding"][0]["code"]
        paths.append(
            f"/fhir/Observation?patient=Patient/{r[0]['id']}"
            f"&code={_q(search_data.LOINC + '|' + code)}&_sort=-date"
        )
    return paths


def _code_value(s: Sample) -> list[str]:
    labs = [m for m in search_data.MEASURES if m.high is not None]
    return [
        f"/fhir/Observation?code={_q(search_data.LOINC + '|' + m.code)}&value-quantity=gt{m.high:g}"
        for m in labs
    ]


def _encounter_date(s: Sample) -> list[str]:
    return [f"/fhir/Encounter?date=ge{year}&_include=Encounter:subject" for year in range(2016, 2025)]


def _compartment(s: Sample) -> list[str]:
    return [f"/fhir/Patient/{r[0]['id']}/Observation" for r in s.records]


@dataclass(frozen=True)
class Query:
    name: str
    template: str  # as shown in the tables
    paths: Callable[[Sample], list[str]]
    lookup: bool = False  # held to the p99 < 50 ms target


QUERIES = (
    Query("_id", "Patient?_id=X", _id, lookup=True),
    Query("identifier", "Patient?identifier=mrn-system|X", _identifier, lookup=True),
    Query("name", "Patient?name=family", _name),
    Query("subject", "Observation?subject=Patient/X", _subject, lookup=True),
    Query("patient+code", "Observation?patient=X&code=loinc|Y&_sort=-date", _patient_code),
    Query("code+value", "Observation?code=loinc|Y&value-quantity=gtN", _code_value),
    Query("encounter date", "Encounter?date=geYYYY&_include=Encounter:subject", _encounter_date),
    Query("compartment", "Patient/X/Observation", _compartment),
)


def sample(size: int, count: int = VALUES_PER_QUERY) -> Sample:
    complete = search_data.complete_patients(size)
    if complete == 0:
        raise BenchError(f"{size} resources do not hold one complete patient")
    chosen = random.Random(size).sample(range(complete), min(count, complete))
    return Sample([search_data.patient_record(p) for p in chosen])


# --- loading --------------------------------------------------------------------------------


@dataclass
class Load:
    size: int
    resources: int
    by_type: dict[str, int]
    seconds: float
    server_cpu: float
    store_cpu: float
    mean_app_ms: float
    mean_store_ms: float


def _timing(header: str | None) -> tuple[float, float]:
    found = dict(_TIMING.findall((header or "").encode()))
    return float(found.get(b"app", b"nan")), float(found.get(b"store", b"nan"))


def load(port: int, start: int, size: int, clients: int, server: Server, store_pid: int | None) -> Load:
    local = threading.local()
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "Prefer": "return=minimal"}

    def put(resource: dict[str, Any]) -> tuple[float, float]:
        path = f"/fhir/{resource['resourceType']}/{resource['id']}"
        body = json.dumps(resource, separators=(",", ":")).encode()
        for attempt in range(3):
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT)
            try:
                conn.request("PUT", path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                local.conn = None  # the server closed an idle keep-alive connection: reconnect
                if attempt == 2:
                    raise
                continue
            if resp.status not in (200, 201):
                raise BenchError(f"loading: PUT {path} answered {resp.status}: {data[:500]!r}")
            return _timing(resp.getheader("Server-Timing"))
        raise AssertionError("unreachable")

    items = list(search_data.resources(size, start))
    by_type = Counter(r["resourceType"] for r in items)
    snap0 = snapshot()
    t0 = time.monotonic()
    timings: list[tuple[float, float]] = []
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for i, timing in enumerate(pool.map(put, items), 1):
            timings.append(timing)
            if i % 10_000 == 0:
                elapsed = time.monotonic() - t0
                print(f"  {start + i:,} loaded ({i / elapsed:,.0f}/s)", file=sys.stderr)
                server.check_alive()
    seconds = time.monotonic() - t0
    snap1 = snapshot()
    return Load(
        size=size,
        resources=len(items),
        by_type={t: by_type.get(t, 0) for t in TYPES},
        seconds=seconds,
        server_cpu=tree_cpu(snap1, server.pid) - tree_cpu(snap0, server.pid),
        store_cpu=process_cpu(snap1, store_pid) - process_cpu(snap0, store_pid),
        mean_app_ms=statistics.fmean(t[0] for t in timings) if timings else float("nan"),
        mean_store_ms=statistics.fmean(t[1] for t in timings) if timings else float("nan"),
    )


# --- the closed-loop clients (one process each, so no client shares a GIL) -----------------

# (start, end, status, app ms, store ms, body bytes, bundle total or -1)
Record = tuple[float, float, int, float, float, int, int]


def _client(
    port: int,
    paths: list[str],
    offset: int,
    counter: Any,
    requests: int,
    max_seconds: float,
    barrier: Any,
    results: Any,
    warmup: int,
) -> None:
    conn: http.client.HTTPConnection | None = None
    headers = {"Accept": FHIR_JSON, "Prefer": "handling=strict"}
    error = ""

    def call(path: str) -> tuple[int, str | None, bytes]:
        nonlocal conn
        for attempt in range(2):
            if conn is None:
                conn = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT)
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.getheader("Server-Timing"), resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    n = offset
    try:
        warm_until = time.monotonic() + WARMUP_SECONDS
        for i in range(warmup):
            if i and time.monotonic() > warm_until:
                break
            call(paths[n % len(paths)])
            n += 1
    except BaseException:
        barrier.abort()  # the caller learns at once, instead of waiting for this client
        raise
    barrier.wait()
    cpu0 = sum(os.times()[:2])
    deadline = time.monotonic() + max_seconds
    records: list[Record] = []
    while time.monotonic() < deadline:
        with counter.get_lock():
            if counter.value >= requests:
                break
            counter.value += 1
        path = paths[n % len(paths)]
        n += 1
        started = time.perf_counter()
        try:
            status, timing, body = call(path)
        except (http.client.HTTPException, OSError) as exc:
            records.append((started, time.perf_counter(), 0, float("nan"), float("nan"), 0, -1))
            error = error or f"transport: {exc}"
            time.sleep(0.01)
            continue
        finished = time.perf_counter()
        app, store = _timing(timing)
        total = _TOTAL.search(body, 0, 600)
        records.append((started, finished, status, app, store, len(body), int(total[1]) if total else -1))
        if not 200 <= status < 300 and not error:
            error = f"{status} {path}: {body[:300]!r}"
    cpu = sum(os.times()[:2]) - cpu0
    if conn is not None:
        conn.close()
    results.put((records, cpu, error))


@dataclass
class Run:
    size: int
    query: Query
    clients: int
    records: list[Record]
    client_cpu: float
    window: float
    server_cpu: float
    store_cpu: float
    machine_cpu: float
    other_top: str
    error: str

    # -- derived figures -----------------------------------------------------------------

    @property
    def ok(self) -> list[Record]:
        return [r for r in self.records if 200 <= r[2] < 300]

    @property
    def errors(self) -> int:
        return len(self.records) - len(self.ok)

    @property
    def rps(self) -> float:
        ok = self.ok
        if not ok:
            return 0.0
        span = max(r[1] for r in self.records) - min(r[0] for r in self.records)
        return len(ok) / span if span > 0 else float("nan")

    def latencies(self) -> list[float]:
        return [(r[1] - r[0]) * 1000 for r in self.ok]

    def ours(self) -> list[float]:
        return [max(0.0, r[3] - r[4]) for r in self.ok if r[3] == r[3] and r[4] == r[4]]

    def store(self) -> list[float]:
        return [r[4] for r in self.ok if r[4] == r[4]]

    def totals(self) -> list[int]:
        return [r[6] for r in self.ok if r[6] >= 0]

    def per_request(self, cpu: float) -> float:
        return cpu * 1000 / len(self.records) if self.records else float("nan")

    def cores_bench(self) -> float:
        return (self.server_cpu + self.store_cpu + self.client_cpu) / self.window

    def cores_other(self) -> float:
        return max(0.0, self.machine_cpu / self.window - self.cores_bench())


@dataclass(frozen=True)
class Skip:
    size: int
    query: Query
    clients: int
    reason: str


def percentile(values: list[float], q: float) -> float:
    """Nearest rank, as bench/loadgen reports it."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def run_query(
    port: int,
    size: int,
    query: Query,
    paths: list[str],
    clients: int,
    requests: int,
    max_seconds: float,
    server: Server,
    store_pid: int | None,
    warmup: int,
) -> Run:
    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("i", 0)
    barrier = ctx.Barrier(clients + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_client,
            args=(
                port,
                paths,
                w * len(paths) // clients,
                counter,
                requests,
                max_seconds,
                barrier,
                results,
                warmup,
            ),
            daemon=True,
        )
        for w in range(clients)
    ]
    try:
        for proc in procs:
            proc.start()
        barrier.wait(timeout=REQUEST_TIMEOUT * (warmup + 1))
        snap0, machine0, t0 = snapshot(), machine_cpu(), time.monotonic()
        try:
            gathered = [results.get(timeout=max_seconds + REQUEST_TIMEOUT + 30) for _ in procs]
        except queue.Empty as exc:
            raise BenchError(f"{query.name} x{clients}: a client did not report (crashed?)") from exc
        t1, machine1, snap1 = time.monotonic(), machine_cpu(), snapshot()
        for proc in procs:
            proc.join(timeout=10)
    except threading.BrokenBarrierError as exc:
        server.check_alive()
        raise BenchError(f"{query.name} x{clients}: a client failed during warm-up") from exc
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
    records = [r for got in gathered for r in got[0]]
    return Run(
        size=size,
        query=query,
        clients=clients,
        records=records,
        client_cpu=sum(got[1] for got in gathered),
        window=t1 - t0,
        server_cpu=tree_cpu(snap1, server.pid) - tree_cpu(snap0, server.pid),
        store_cpu=process_cpu(snap1, store_pid) - process_cpu(snap0, store_pid),
        machine_cpu=machine1 - machine0,
        other_top=other_processes(snap0, snap1, t1 - t0, store_pid),
        error=next((got[2] for got in gathered if got[2]), ""),
    )


# --- reporting ------------------------------------------------------------------------------


def _num(x: float, digits: int = 1) -> str:
    return "n/a" if x != x else f"{x:,.{digits}f}"


def _size(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"


def load_table(loads: list[Load]) -> str:
    lines = [
        "| size | loaded in this step | Patient / Encounter / Observation / Condition | seconds "
        "| resources/s | PUT app ms (mean) | PUT store ms (mean) | CPU ms/resource: server | store |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|",
    ]
    for ld in loads:
        n = ld.resources or 1
        split = " / ".join(f"{ld.by_type[t]:,}" for t in TYPES)
        lines.append(
            f"| {_size(ld.size)} | {ld.resources:,} | {split} | {ld.seconds:,.1f} | "
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
    note = "" if size == TARGET_SIZE else f" (not measured at {_size(TARGET_SIZE)}: judged at {_size(size)})"
    single = [r for r in runs if r.size == size and r.clients == 1]
    lines = []
    if not single:
        return "- targets are judged at 1 client, which this run did not measure"
    ours = [(r.query, percentile(r.ours(), 99)) for r in single]
    ok = all(v <= TARGET_OURS_P99_MS for _, v in ours)
    lines.append(
        f"- our own share (app - store) p99 ≤ {TARGET_OURS_P99_MS:g} ms per query at "
        f"{_size(size)}, 1 client{note}: **{'PASS' if ok else 'FAIL'}** ("
        + ", ".join(f"{q.name} {_num(v, 2)}" for q, v in ours)
        + ")"
    )
    lookups = [(r.query, percentile(r.latencies(), 99)) for r in single if r.query.lookup]
    ok = bool(lookups) and all(v < TARGET_LOOKUP_P99_MS for _, v in lookups)
    lines.append(
        f"- `_id`, identifier and single-reference lookups p99 < {TARGET_LOOKUP_P99_MS:g} ms at "
        f"{_size(size)}, 1 client{note}: **{'PASS' if ok else 'FAIL'}** ("
        + ", ".join(f"{q.name} {_num(v, 2)} ms" for q, v in lookups)
        + ")"
    )
    errors = sum(r.errors for r in runs)
    lines.append(f"- errors (non-2xx or transport) over the run: {errors}")
    for r in runs:
        if r.error:
            lines.append(f"  - {_size(r.size)} {r.query.name} x{r.clients}: {r.error[:300]}")
    noisy = [r for r in runs if r.cores_other() > NOISE_CORES]
    if noisy:
        lines.append(
            f"- **warning:** processes outside the benchmark used more than {NOISE_CORES} cores during "
            f"{len(noisy)} of {len(runs)} tests; those figures are disturbed:"
        )
        for r in noisy:
            busiest = f" (busiest: {r.other_top})" if r.other_top else ""
            lines.append(
                f"  - {_size(r.size)} {r.query.name} x{r.clients}: {r.cores_other():.2f} cores{busiest}"
            )
    return "\n".join(lines)


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
        "--load-clients", type=int, default=12, help="concurrent PUT connections while loading [%(default)s]"
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
            port = free_port()
            env = {**os.environ, "INTEROP_HTTP_PORT": str(port)}
            settings = Settings.from_env(env)
            server_argv = gunicorn_argv(settings)
            print(f"starting the server: {shlex.join(server_argv)}", file=sys.stderr)
            version = source_version()  # what the server imports now
            server = Server("server", server_argv, env, work / "server.log")
            cleanup.append(server)
            wait_ready(server, port, "/readyz")

            loads: list[Load] = []
            runs: list[Run] = []
            skipped: list[Skip] = []
            loaded = 0
            bench_started = time.monotonic()
            for size in args.sizes:
                with _stage(f"loading resources {loaded:,}..{size:,} ({args.load_clients} clients) ..."):
                    step = load(port, loaded, size, args.load_clients, server, store_pid)
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
                    print(f"  {_size(size):>5} {query.name:<15} first request {probe:.2f} s", file=sys.stderr)
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
                            f"  {_size(size):>5} {query.name:<15} x{clients:<2} n={len(run.records):<4} "
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
                f"- data: bench/search_data.py, sizes {', '.join(_size(s) for s in args.sizes)} resources "
                "(about 15 per patient: 1 Patient, ~2 Encounters, ~10 Observations, ~2 Conditions), "
                f"loaded with PUT from {args.load_clients} keep-alive connections",
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
                    f"Queries at {_size(size)} resources ({', '.join(f'{counts[t]:,} {t}' for t in TYPES)}):",
                    "",
                    main_table(selected, [k for k in skipped if k.size == size]),
                    "",
                    f"<details><summary>Details at {_size(size)}: CPU per request and load</summary>",
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
