"""Loading the search data set and running closed-loop query clients, for
bench/search_run.py (clients are processes, so no two share a GIL).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import queue
import re
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/...` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from bench import search_data  # noqa: E402
from bench.harness import (  # noqa: E402
    FHIR_JSON,
    LOOPBACK,
    BenchError,
    Server,
    machine_cpu,
    other_processes,
    process_cpu,
    snapshot,
    tree_cpu,
)
from bench.search_queries import Query  # noqa: E402

WARMUP_SECONDS = 1.0
REQUEST_TIMEOUT = 120.0
TYPES = ("Patient", "Encounter", "Observation", "Condition")
_TIMING = re.compile(rb"(store|app);dur=([0-9.]+)")
_TOTAL = re.compile(rb'"total":(\d+)')


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


def _per_patient(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Transaction Bundles of PUT entries, one per patient record (a Patient starts one)."""
    bundles: list[dict[str, Any]] = []
    for resource in items:
        if resource["resourceType"] == "Patient" or not bundles:
            bundles.append({"resourceType": "Bundle", "type": "transaction", "entry": []})
        url = f"{resource['resourceType']}/{resource['id']}"
        bundles[-1]["entry"].append({"resource": resource, "request": {"method": "PUT", "url": url}})
    return bundles


def load(
    port: int,
    start: int,
    size: int,
    clients: int,
    server: Server,
    store_pid: int | None,
    with_transactions: bool = True,
) -> Load:
    """Load resources ``start``..``size``: one transaction Bundle per patient (how
    records arrive from EHRs and Synthea), or with ``with_transactions=False`` one
    ``PUT`` per resource."""
    local = threading.local()
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "Prefer": "return=minimal"}

    def put(resource: dict[str, Any]) -> tuple[float, float]:
        if resource["resourceType"] == "Bundle":
            method, path = "POST", "/fhir"
        else:
            method, path = "PUT", f"/fhir/{resource['resourceType']}/{resource['id']}"
        body = json.dumps(resource, separators=(",", ":")).encode()
        for attempt in range(3):
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT)
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                local.conn = None  # the server closed an idle keep-alive connection: reconnect
                if attempt == 2:
                    raise
                continue
            if resp.status not in (200, 201):
                raise BenchError(f"loading: {method} {path} answered {resp.status}: {data[:500]!r}")
            return _timing(resp.getheader("Server-Timing"))
        raise AssertionError("unreachable")

    items = list(search_data.resources(size, start))
    by_type = Counter(r["resourceType"] for r in items)
    snap0 = snapshot()
    t0 = time.monotonic()
    timings: list[tuple[float, float]] = []
    with ThreadPoolExecutor(max_workers=clients) as pool:
        requests = _per_patient(items) if with_transactions else items
        for i, timing in enumerate(pool.map(put, requests), 1):
            timings.append(timing)
            if i % (10_000 if not with_transactions else 1000) == 0:
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
