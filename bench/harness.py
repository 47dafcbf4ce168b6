"""What the benchmarks share: the store and server processes they start, CPU accounting
from /proc, and the markdown report they append to docs/benchmarks.md.

Used by bench/run.py (CRUD against a floor) and bench/search_run.py (search at scale).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import platform
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from fhir_server.settings import Settings  # noqa: E402
from interop.cli import read_cache_mode  # noqa: E402
from interop.embedded_store import EmbeddedStore  # noqa: E402
from interop.supervisor import die_with_parent_preexec  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"


FHIR_JSON = "application/fhir+json"


LOOPBACK = "127.0.0.1"


READY_TIMEOUT = 60.0


STOP_TIMEOUT = 40.0  # gunicorn's graceful_timeout is 30 s


NOISE_CORES = 0.15  # CPU used by other processes during a test above which the report warns


CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    pass


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
    if embedded:  # as `interop run` resolves INTEROP_READ_CACHE=auto for its embedded store
        mode = os.environ.get("INTEROP_READ_CACHE", "auto")
        overrides["INTEROP_READ_CACHE"] = read_cache_mode(mode, embedded=True)
    os.environ.update(overrides)  # gunicorn_conf and Settings read the same values as the children
    return BenchStore(uri, database, pid if embedded else found_pid, description, external)


@dataclass
class RunningServer:
    server: Server
    port: int
    argv: list[str]
    env: dict[str, str]
    settings: Settings


def start_server(work: Path, cleanup: list[Any]) -> RunningServer:
    """The server exactly as ``interop run`` starts it, on a free port, once it is ready."""
    from interop.cli import gunicorn_argv

    port = free_port()
    env = {**os.environ, "INTEROP_HTTP_PORT": str(port)}
    settings = Settings.from_env(env)
    argv = gunicorn_argv(settings)
    print(f"starting the server: {shlex.join(argv)}", file=sys.stderr)
    server = Server("server", argv, env, work / "server.log")
    cleanup.append(server)
    wait_ready(server, port, "/readyz")
    return RunningServer(server, port, argv, env, settings)


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


HEADER = """# Benchmarks

Sections below are appended by `bench/run.py`; docs/benchmarks.md in the repository explains
how to run it and how to read the figures.
"""


def append_report(path: Path, section: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text() if path.exists() else HEADER
    with path.open("w") as out:
        out.write(existing.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n")


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
