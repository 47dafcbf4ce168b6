"""One command for the HTTP benchmarks: ``make bench`` (or ``.venv/bin/python bench/run.py``).

In one run on this machine it measures, at each concurrency level:

* ``floor read``  the same gunicorn command line serving a constant Patient from a bare Flask
                  view (bench/floor_app.py): the best any Flask view can do here;
* ``read``        ``GET /fhir/Patient/{id}`` over the seeded Patients;
* ``create``      ``POST /fhir/Patient`` (a new MRN per request);
* ``update``      ``PUT /fhir/Patient/{id}``, each client on its own Patients (no contention);

with throughput, latency percentiles, the store's share of the latency (``Server-Timing``)
and of the CPU, prints a markdown table and appends a dated section to docs/benchmarks.md.
Every process it starts is stopped on the way out, also on Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from bench.patients import create_template, dumps, patient, update_template  # noqa: E402
from fhir_server.settings import Settings  # noqa: E402
from interop.cli import gunicorn_argv  # noqa: E402
from interop.embedded_store import EmbeddedStore  # noqa: E402
from interop.supervisor import die_with_parent_preexec  # noqa: E402

LOADGEN_SRC = ROOT / "bench" / "loadgen"
RESULTS_DIR = ROOT / "bench" / "results"
SERVER_APP = "fhir_server:create_app()"
FLOOR_APP = "bench.floor_app:create_app()"
FHIR_JSON = "application/fhir+json"
LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 40.0  # gunicorn's graceful_timeout is 30 s
TARGET_READ_OF_FLOOR = 0.50
TARGET_CREATE_RPS = 500.0
NOISE_CORES = 0.15  # CPU used by other processes during a test above which the report warns
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    pass


# --- processes ----------------------------------------------------------------------------


class Server:
    """A gunicorn master we started (own session, dies with us); stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,  # so that `bench.floor_app` imports
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
            preexec_fn=die_with_parent_preexec(),
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"{self.name} exited with status {self.proc.returncode}; log:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)  # its own group: master + workers
                    self.proc.wait()
            # Workers left behind by a killed master are in the same process group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        finally:
            self._log.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def http_request(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        headers = {"Accept": FHIR_JSON}
        if body is not None:
            headers["Content-Type"] = FHIR_JSON
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait_ready(server: Server, port: int, path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        server.check_alive()
        try:
            status, _, body = http_request(port, "GET", path, timeout=2.0)
            if status == 200:
                return
            last = f"{status} {body[:200]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise BenchError(
        f"{server.name} not ready on port {port} after {READY_TIMEOUT:.0f} s ({last}); log:\n{server.tail()}"
    )


# --- CPU accounting from /proc --------------------------------------------------------------


@dataclass(frozen=True)
class ProcStat:
    ppid: int
    comm: str
    own: float  # CPU seconds of the process itself (all threads)
    reaped: float  # CPU seconds of children it has waited for


def _stat(pid: int) -> ProcStat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "; fields[0] is the state
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    return ProcStat(int(fields[1]), comm, (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK)


def snapshot() -> dict[int, ProcStat]:
    """Every live process's CPU counters, from /proc."""
    procs = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (info := _stat(int(entry.name))) is not None:
            procs[int(entry.name)] = info
    return procs


def tree(snap: dict[int, ProcStat], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, info in snap.items():
        children.setdefault(info.ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in snap and pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def tree_cpu(snap: dict[int, ProcStat], root: int) -> float:
    """CPU seconds of a process tree: every live process under ``root`` plus what ``root`` has
    reaped (so a worker that exits between two samples is still counted)."""
    if root not in snap:
        return float("nan")
    return snap[root].reaped + sum(snap[pid].own for pid in tree(snap, root))


def process_cpu(snap: dict[int, ProcStat], pid: int | None) -> float:
    return snap[pid].own if pid is not None and pid in snap else float("nan")


def machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (all CPUs), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def other_processes(
    before: dict[int, ProcStat], after: dict[int, ProcStat], duration: float, store_pid: int | None
) -> str:
    """The busiest processes that are not ours (not under this script, not the store) in the window."""
    ours = tree(after, os.getpid()) | tree(before, os.getpid()) | {store_pid}
    busy = []
    for pid, info in after.items():
        if pid in ours:
            continue
        used = info.own - (before[pid].own if pid in before else 0.0)
        if used / duration >= 0.02:
            busy.append((used / duration, pid, info.comm))
    parts = []
    for cores, pid, comm in sorted(busy, reverse=True)[:3]:
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            comm = cmd.strip()[:60] or comm
        parts.append(f"`{comm}` (pid {pid}) {cores:.2f}")
    return ", ".join(parts)


# --- the load generator ---------------------------------------------------------------------


def build_loadgen(out_dir: Path) -> Path:
    go = shutil.which("go")
    if go is None:
        raise BenchError("the Go toolchain (go) is needed to build bench/loadgen")
    binary = out_dir / "loadgen"
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    subprocess.run([go, "build", "-trimpath", "-o", str(binary), "."], cwd=LOADGEN_SRC, env=env, check=True)
    return binary


@dataclass
class Sample:
    """CPU seconds over the measurement window: the server tree under test, the store, and
    the whole machine (so that load from processes outside the benchmark is visible)."""

    app_cpu: float = float("nan")
    store_cpu: float = float("nan")
    machine_cpu: float = float("nan")
    other_top: str = ""  # the busiest processes outside the benchmark, with cores used


@dataclass
class Run:
    op: str
    clients: int
    result: dict[str, Any]
    cpu: Sample = field(default_factory=Sample)


def run_loadgen(
    loadgen: Path,
    *,
    op: str,
    url: str,
    method: str,
    clients: int,
    duration: float,
    warmup: float,
    ids_file: Path | None,
    body_file: Path | None,
    server_pid: int,
    store_pid: int | None,
    profile: Path | None = None,
) -> Run:
    argv = [
        str(loadgen),
        f"-url-template={url}",
        f"-method={method}",
        f"-concurrency={clients}",
        f"-duration={duration}s",
        f"-warmup={warmup}s",
        f"-label={op}",
    ]
    if ids_file is not None:
        argv.append(f"-ids={ids_file}")
    if body_file is not None:
        argv.append(f"-body={body_file}")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sample = Sample()
    profiler: subprocess.Popen[bytes] | None = None
    messages: list[str] = []
    try:
        snap0: dict[int, ProcStat] = {}
        machine0 = 0.0
        assert proc.stderr is not None
        for line in proc.stderr:  # the markers bracket exactly the measurement window
            line = line.rstrip("\n")
            if line == "# measure-start":
                snap0, machine0 = snapshot(), machine_cpu()
                if profile is not None:
                    profiler = start_profiler(server_pid, duration, profile)
            elif line == "# measure-end":
                snap1, machine1 = snapshot(), machine_cpu()
                sample = Sample(
                    app_cpu=tree_cpu(snap1, server_pid) - tree_cpu(snap0, server_pid),
                    store_cpu=process_cpu(snap1, store_pid) - process_cpu(snap0, store_pid),
                    machine_cpu=machine1 - machine0,
                    other_top=other_processes(snap0, snap1, duration, store_pid),
                )
            else:
                messages.append(line)
        out = proc.stdout.read() if proc.stdout is not None else ""
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if profiler is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(timeout=duration + 30)
            if profiler.poll() is None:
                profiler.terminate()
                profiler.wait()
    if code != 0:
        raise BenchError(f"loadgen failed ({code}) for {op} x{clients}: {' '.join(messages)}")
    return Run(op, clients, json.loads(out.strip().splitlines()[-1]), sample)


def start_profiler(server_pid: int, duration: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy over the whole gunicorn tree for the measurement window (collapsed stacks)."""
    pyspy = shutil.which(
        "py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if pyspy is None:
        raise BenchError("--profile needs py-spy (pip install py-spy)")
    argv = [pyspy, "record", "--pid", str(server_pid), "--subprocesses", "--nonblocking", "--rate", "200"]
    argv += ["--duration", str(max(1, int(duration))), "--format", "raw", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --- seeding --------------------------------------------------------------------------------


def seed(port: int, count: int) -> list[str]:
    local = threading.local()

    def post(i: int) -> str:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        conn.request(
            "POST",
            "/fhir/Patient",
            body=dumps(patient(i)).encode(),
            headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
        )
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 201:
            raise BenchError(f"seeding: POST /fhir/Patient answered {resp.status}: {body[:500]!r}")
        return str(json.loads(body)["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(post, range(count)))


# --- the environment ------------------------------------------------------------------------


def store_description(uri: str, embedded: bool) -> tuple[str, int | None]:
    """What the store is (from buildInfo), and its pid when it runs on this machine."""
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        info = client.admin.command("buildInfo")
        try:
            status = client.admin.command("serverStatus")
        except Exception:
            status = {}
    finally:
        client.close()
    ferret = info.get("ferretdbVersion") or (info.get("ferretdb") or {}).get("version")
    if ferret:
        backend = "SQLite, embedded" if embedded else "URI"
        text = f"FerretDB {str(ferret).lstrip('v')} ({backend}; reports MongoDB {info.get('version')})"
    else:
        text = f"MongoDB {info.get('version')} (INTEROP_MONGODB_URI)"
    pid = status.get("pid")
    local_pid: int | None = None
    if isinstance(pid, int) and _stat(pid) is not None:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        if comm.startswith(("mongod", "ferretdb")):
            local_pid = pid  # same machine, same pid namespace: its CPU can be measured
    return text, local_pid


@dataclass
class BenchStore:
    """The store a benchmark runs against, and the environment its server gets."""

    uri: str
    database: str
    pid: int | None
    description: str
    external: tuple[str, str] | None  # (uri, database) to drop afterwards, for a store we did not start


def start_bench_store(work: Path, stamp: str, cleanup: list[Any]) -> BenchStore:
    """Start the embedded store (or use INTEROP_MONGODB_URI with a fresh database) and
    export the server's environment: auth off, access logs off, this store."""
    uri = os.environ.get("INTEROP_MONGODB_URI", "").strip()
    embedded = not uri
    database = f"bench_{stamp.lower()}_{secrets.token_hex(3)}"
    pid: int | None = None
    external: tuple[str, str] | None = None
    if embedded:
        print(f"starting the embedded store in {work} ...", file=sys.stderr)
        store = EmbeddedStore(work / "store")
        cleanup.append(store)
        uri = store.start()
        pid = store.pid
    else:
        external = (uri, database)
    description, found_pid = store_description(uri, embedded)
    # Access logs off: INTEROP_LOG_LEVEL=WARNING (also gunicorn's level, via gunicorn_conf).
    overrides = {
        "INTEROP_AUTH": "disabled",
        "INTEROP_LOG_LEVEL": "WARNING",
        "INTEROP_MONGODB_URI": uri,
        "INTEROP_MONGODB_DATABASE": database,
        "INTEROP_DATA_DIR": str(work / "data"),
        "INTEROP_HTTP_HOST": LOOPBACK,
    }
    os.environ.update(overrides)  # gunicorn_conf and Settings read the same values as the children
    return BenchStore(uri, database, pid if embedded else found_pid, description, external)


def tear_down(cleanup: list[Any], external_db: tuple[str, str] | None, work: Path) -> None:
    """Stop what a benchmark started (in reverse order), drop its database on a store it
    did not start, and remove its temporary directory; never raises."""
    for item in reversed(cleanup):
        with contextlib.suppress(Exception):
            item.stop()
    if external_db is not None:
        with contextlib.suppress(Exception):
            from pymongo import MongoClient

            client: Any = MongoClient(external_db[0], serverSelectionTimeoutMS=5000)
            client.drop_database(external_db[1])
            client.close()
    shutil.rmtree(work, ignore_errors=True)


def gunicorn_config(settings: Settings) -> str:
    import importlib

    conf = importlib.import_module("fhir_server.gunicorn_conf")
    return (
        f"{settings.http_workers} workers x {conf.worker_class}"
        f"{f' ({conf.threads} threads)' if conf.worker_class == 'gthread' else ''}, "
        f"keepalive {conf.keepalive} s, config `python:fhir_server.gunicorn_conf`, log level {conf.loglevel}"
    )


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    go = subprocess.run(
        ["go", "env", "GOVERSION"], capture_output=True, text=True, check=False
    ).stdout.strip()
    from importlib.metadata import version

    return (
        f"nproc {len(os.sched_getaffinity(0))} ({cpu}){mem}; Linux {platform.release()}; "
        f"Python {platform.python_version()}, gunicorn {version('gunicorn')}, Flask {version('flask')}; "
        f"loadgen built with {go or 'go'}"
    )


def command_line() -> str:
    python = (
        os.path.relpath(sys.executable, Path.cwd())
        if sys.executable.startswith(str(ROOT))
        else sys.executable
    )
    cmd = shlex.join([python, *sys.argv])
    return f"make bench  (runs: {cmd})" if os.environ.get("MAKELEVEL") else cmd


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


HEADER = """# Benchmarks

Sections below are appended by `bench/run.py`; docs/benchmarks.md in the repository explains
how to run it and how to read the figures.
"""


def append_report(path: Path, section: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text() if path.exists() else HEADER
    with path.open("w") as out:
        out.write(existing.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n")


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="measured seconds per test [%(default)s]"
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="warm-up seconds before each test [%(default)s]"
    )
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",") if x.strip()],
        default=[1, 8, 32],
        help="comma-separated client counts [1,8,32]",
    )
    parser.add_argument(
        "--seed", type=int, default=1000, help="Patients created before measuring [%(default)s]"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="markdown file to append to"
    )
    parser.add_argument("--no-append", action="store_true", help="print the results only")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target is missed or a request failed"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also record py-spy stacks of the server during the read test at the highest concurrency "
        "(into bench/results/; perturbs the figures, so nothing is appended)",
    )
    args = parser.parse_args(argv)
    if not args.concurrency or min(args.concurrency) < 1:
        parser.error("--concurrency needs positive integers")
    if args.seed < max(args.concurrency):
        parser.error(
            "--seed must be at least the highest concurrency (updates give every client its own Patients)"
        )
    return args


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="interop-bench-"))
    cleanup: list[Any] = []  # stopped in reverse order
    external_db: tuple[str, str] | None = None
    try:
        with sigterm_as_exit():
            print("building loadgen ...", file=sys.stderr)
            loadgen = build_loadgen(RESULTS_DIR)

            bench_store = start_bench_store(work, stamp, cleanup)
            store_pid, store_text = bench_store.pid, bench_store.description
            external_db = bench_store.external
            port, floor_port = free_port(), free_port()
            env = {**os.environ, "INTEROP_HTTP_PORT": str(port)}
            settings = Settings.from_env(env)
            server_argv = gunicorn_argv(settings)
            print(f"starting the server: {shlex.join(server_argv)}", file=sys.stderr)
            server = Server("server", server_argv, env, work / "server.log")
            cleanup.append(server)
            wait_ready(server, port, "/readyz")

            print(f"seeding {args.seed} Patients ...", file=sys.stderr)
            t0 = time.monotonic()
            ids = seed(port, args.seed)
            print(f"  seeded in {time.monotonic() - t0:.1f} s", file=sys.stderr)
            ids_file = work / "ids.txt"
            ids_file.write_text("\n".join(ids) + "\n")
            status, _, read_body = http_request(port, "GET", f"/fhir/Patient/{ids[0]}")
            if status != 200:
                raise BenchError(f"GET /fhir/Patient/{ids[0]} answered {status}: {read_body[:500]!r}")
            patient_file = work / "patient.json"
            patient_file.write_bytes(read_body)
            create_file, update_file = work / "create.json", work / "update.json"
            create_file.write_text(create_template())
            update_file.write_text(update_template())

            floor_settings = settings.with_overrides(http_port=floor_port)
            floor_argv = [FLOOR_APP if a == SERVER_APP else a for a in gunicorn_argv(floor_settings)]
            if FLOOR_APP not in floor_argv:
                raise BenchError(f"cannot find {SERVER_APP!r} in gunicorn_argv(): {floor_argv}")
            floor_env = {
                **env,
                "INTEROP_HTTP_PORT": str(floor_port),
                "INTEROP_BENCH_PATIENT_FILE": str(patient_file),
            }
            print(f"starting the floor: {shlex.join(floor_argv)}", file=sys.stderr)
            floor = Server("floor", floor_argv, floor_env, work / "floor.log")
            cleanup.append(floor)
            wait_ready(floor, floor_port, f"/fhir/Patient/{ids[0]}")
            _, _, floor_body = http_request(floor_port, "GET", f"/fhir/Patient/{ids[0]}")
            if floor_body != read_body:
                raise BenchError("the floor does not serve the same bytes as our read")

            base = f"http://{LOOPBACK}:{port}/fhir/Patient"
            tests = [
                (
                    "floor read",
                    f"http://{LOOPBACK}:{floor_port}/fhir/Patient/{{id}}",
                    "GET",
                    ids_file,
                    None,
                    floor,
                ),
                ("read", base + "/{id}", "GET", ids_file, None, server),
                ("create", base, "POST", None, create_file, server),
                ("update", base + "/{id}", "PUT", ids_file, update_file, server),
            ]
            runs: list[Run] = []
            top = max(args.concurrency)
            for clients in args.concurrency:
                for op, url, method, idf, body, target in tests:
                    server.check_alive()
                    floor.check_alive()
                    profile = (
                        RESULTS_DIR / f"profile-{stamp}-read-{clients}.txt"
                        if (args.profile and op == "read" and clients == top)
                        else None
                    )
                    run = run_loadgen(
                        loadgen,
                        op=op,
                        url=url,
                        method=method,
                        clients=clients,
                        duration=args.duration,
                        warmup=args.warmup,
                        ids_file=idf,
                        body_file=body,
                        server_pid=target.pid,
                        store_pid=store_pid,
                        profile=profile,
                    )
                    runs.append(run)
                    res = run.result
                    print(
                        f"  {op:<10} x{clients:<3} {res['throughput_rps']:>9,.1f} rps  "
                        f"p50 {res['p50_ms']:.2f} ms  "
                        f"p99 {res['p99_ms']:.2f} ms  errors {res['errors']}"
                        + (f"  ({res.get('error_sample')})" if res["errors"] else "")
                        + (f"  profile: {profile}" if profile else ""),
                        file=sys.stderr,
                    )
                    time.sleep(0.5)

            raw = {
                "started_at": started_at.isoformat(),
                "command": command_line(),
                "store": store_text,
                "server_argv": server_argv,
                "floor_argv": floor_argv,
                "runs": [
                    {"op": r.op, "clients": r.clients, "cpu": r.cpu.__dict__, "result": r.result}
                    for r in runs
                ],
            }
            raw_path = RESULTS_DIR / f"bench-{stamp}.json"
            raw_path.write_text(json.dumps(raw, indent=1))

            summary, passed = verdict(runs, args.duration)
            section = "\n".join(
                [
                    f"## {started_at.strftime('%Y-%m-%d %H:%M UTC')}",
                    "",
                    f"- command: `{command_line()}`",
                    f"- machine: {machine()}",
                    f"- store: {store_text}",
                    f"- gunicorn: {gunicorn_config(settings)}",
                    f"- server: `{shlex.join([Path(server_argv[0]).name, *server_argv[1:]])}`; "
                    f"floor: same with `{FLOOR_APP}`",
                    f"- workload: {args.seed} seeded Patients ({len(read_body):,} B read body), "
                    f"{args.duration:g} s measured after {args.warmup:g} s warm-up per test, "
                    "closed loop, one keep-alive connection per client",
                    "",
                    main_table(runs),
                    "",
                    "<details><summary>Details: latency, Server-Timing and CPU per request</summary>",
                    "",
                    detail_table(runs, args.duration),
                    "",
                    "</details>",
                    "",
                    "Targets:",
                    "",
                    summary,
                ]
            )
            print(section)
            if args.profile or args.no_append:
                print(f"\n(not appended; raw results in {raw_path})", file=sys.stderr)
            else:
                append_report(args.out, section)
                print(f"\nappended to {args.out}; raw results in {raw_path}", file=sys.stderr)
            return 1 if args.check and not passed else 0
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
