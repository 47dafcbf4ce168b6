"""Where a CDS Hooks call spends its time, in-process: ``.venv/bin/python bench/cds_profile.py``.

Starts the embedded store (or uses ``INTEROP_MONGODB_URI`` with a fresh database), loads a
few patients of bench/cds_run.py through ``POST /fhir``, then calls one ``patient-view``
service ``--calls`` times through the Flask test client, with and without prefetch, and
prints per call: wall time, the store commands sent (counted by a pymongo command
listener), and with ``--profile`` the functions with the most cumulative time (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
from pymongo import monitoring

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.cds_run import hook_body, patient_record  # noqa: E402


class Commands(monitoring.CommandListener):
    """Counts commands by name (and by collection) while ``on`` is set."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.micros: Counter[str] = Counter()  # time to answer, by command and collection
        self._names: dict[int, str] = {}
        self.on = False
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self.on:
            return
        target = event.command.get(event.command_name)
        name = f"{event.command_name} {target}" if isinstance(target, str) else event.command_name
        with self._lock:
            self.counts[name] += 1
            self._names[event.request_id] = name

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if self.on:
            with self._lock:
                self.micros[self._names.pop(event.request_id, event.command_name)] += event.duration_micros

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _cpu(pid: int | None) -> float:
    """CPU seconds a process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--service", default="diabetes-diagnosis")
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--calls", type=int, default=300, help="calls with prefetch (a tenth without)")
    parser.add_argument("--threads", type=int, default=1, help="callers at once (prefetch case)")
    parser.add_argument("--profile", action="store_true", help="cProfile the calls with prefetch")
    args = parser.parse_args(argv)
    listener = Commands()
    monitoring.register(listener)  # before any client exists

    from fhir_server import create_app
    from fhir_server.settings import Settings
    from interop.embedded_store import EmbeddedStore

    work = Path(tempfile.mkdtemp(prefix="interop-cds-profile-"))
    store = None
    uri = os.environ.get("INTEROP_MONGODB_URI", "").strip()
    if not uri:
        store = EmbeddedStore(work / "store")
        uri = store.start()
    env = {**os.environ, "INTEROP_AUTH": "disabled", "INTEROP_LOG_LEVEL": "WARNING",
           "INTEROP_MONGODB_URI": uri, "INTEROP_MONGODB_DATABASE": f"cds_profile_{os.getpid()}",
           "INTEROP_DATA_DIR": str(work / "data")}  # fmt: skip
    try:
        app = create_app(Settings.from_env(env))
        client = app.test_client()
        for seed in range(args.patients):
            entries = [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                       for r in patient_record(seed)]  # fmt: skip
            response = client.post(
                "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}
            )
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
        pid = f"cds-bench-{args.patients // 2}"
        services = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
        templates = services[args.service]["prefetch"]
        prefetched = {}
        for key, template in templates.items():
            response = client.get("/fhir/" + template.replace("{{context.patientId}}", pid))
            prefetched[key] = orjson.loads(response.get_data()) if response.status_code == 200 else None
        url = f"/cds-services/{args.service}"
        for mode, body, calls in (
            ("full prefetch", hook_body(pid, prefetched), args.calls),
            ("no prefetch", hook_body(pid, None), max(1, args.calls // 10)),
        ):
            for _ in range(3):  # warm-up
                assert client.post(url, data=body, content_type="application/json").status_code == 200
            listener.counts.clear()
            listener.micros.clear()
            listener.on = True
            profiler = cProfile.Profile() if args.profile and mode == "full prefetch" else None
            cpu, started = time.process_time(), time.perf_counter()
            store_cpu = _cpu(store.pid) if store is not None else float("nan")
            if profiler:
                profiler.enable()
            threads = args.threads if mode == "full prefetch" else 1

            def caller(n: int, body: bytes = body) -> None:
                own = app.test_client()
                for _ in range(n):
                    response = own.post(url, data=body, content_type="application/json")
                    assert response.status_code == 200, response.get_data(as_text=True)[:300]

            workers = [threading.Thread(target=caller, args=(calls // threads,)) for _ in range(threads)]
            if threads == 1:  # in this thread, where cProfile sees it
                caller(calls)
            for worker in workers if threads > 1 else []:
                worker.start()
            for worker in workers if threads > 1 else []:
                worker.join()
            calls = calls // threads * threads
            if profiler:
                profiler.disable()
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            store_cpu = (_cpu(store.pid) - store_cpu) if store is not None else float("nan")
            listener.on = False
            per_call = {name: round(n / calls, 2) for name, n in sorted(listener.counts.items())}
            ms = {"wall": wall, "app": cpu, "store": store_cpu}
            ms = {k: round(v / calls * 1000, 2) for k, v in ms.items()}
            print(
                f"{args.service} {mode}, {threads} caller(s): {calls} calls; ms per call: {ms['wall']} wall, "
                f"{ms['app']} CPU here, {ms['store']} CPU in the store; store commands per call: {per_call}"
            )
            answered = {name: round(us / calls / 1000, 2) for name, us in sorted(listener.micros.items())}
            print(f"  store answer time per call (ms): {answered}")
            if profiler:
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats(
                    os.environ.get("PROFILE_SORT", "cumulative")
                ).print_stats(45)
                print(out.getvalue())
        closer = app.extensions.get("cds")
        records = getattr(closer, "records", None)
        if hasattr(records, "close"):
            records.close()
    finally:
        if store is not None:
            store.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
