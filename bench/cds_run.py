"""CDS Hooks latency: ``.venv/bin/python bench/cds_run.py``.

One run, on loopback, with the server command line of ``interop run`` (gunicorn, the
embedded store in a fresh directory or ``INTEROP_MONGODB_URI`` with a fresh database):

1. loads ``--patients`` patients through ``POST /fhir`` transaction Bundles (HbA1c, fasting
   glucose, creatinine, lipids and blood pressure over two years, conditions, medications);
2. for each patient, runs the services' prefetch templates against ``/fhir`` once, as an
   EHR would before calling (not timed);
3. calls ``patient-view`` services with bench/loadgen from 1 and from 20 keep-alive clients,
   with full prefetch and without prefetch (the service then reads through the shared
   search service), after a warm-up, and reports p50/p95/p99 latency and calls/s;
4. appends a dated section to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import tempfile
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    LOOPBACK,
    Server,
    append_report,
    command_line,
    free_port,
    gunicorn_config,
    http_request,
    machine,
    sigterm_as_exit,
    start_bench_store,
    tear_down,
    wait_ready,
)
from bench.loadgen_runs import Sample, build_loadgen, run_loadgen  # noqa: E402
from fhir_server.settings import Settings  # noqa: E402
from interop.cli import gunicorn_argv  # noqa: E402

SERVICES = ("diabetes-diagnosis", "cardiovascular-prevention")
LOINC = "http://loinc.org"


def _obs(pid: str, code: str, value: float, unit: str, when: date) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "id": str(uuid.uuid4()), "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when.isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }  # fmt: skip


def _bp(pid: str, systolic: int, diastolic: int, when: date) -> dict[str, Any]:
    def part(code: str, value: int) -> dict[str, Any]:
        return {"code": {"coding": [{"system": LOINC, "code": code}]},
                "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org",
                                  "code": "mm[Hg]"}}  # fmt: skip

    return {
        "resourceType": "Observation", "id": str(uuid.uuid4()), "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when.isoformat(),
        "component": [part("8480-6", systolic), part("8462-4", diastolic)],
    }  # fmt: skip


def patient_record(seed: int) -> list[dict[str, Any]]:
    """One patient with about 30 resources: a realistic outpatient chart for these services."""
    rng = random.Random(seed)
    pid = f"cds-bench-{seed}"
    today = datetime.now(UTC).date()
    age = rng.randint(35, 80)
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "gender": rng.choice(["male", "female"]),
         "birthDate": date(today.year - age, rng.randint(1, 12), rng.randint(1, 28)).isoformat()}
    ]  # fmt: skip
    for visit in range(6):
        when = today - timedelta(days=120 * visit + rng.randint(0, 30))
        resources += [
            _obs(pid, "4548-4", round(rng.uniform(5.0, 7.5), 1), "%", when),
            _obs(pid, "1558-6", rng.randint(85, 140), "mg/dL", when),
            _obs(pid, "2160-0", round(rng.uniform(0.6, 2.2), 2), "mg/dL", when),
            _bp(pid, rng.randint(110, 165), rng.randint(65, 100), when),
        ]
        if visit % 2 == 0:
            resources += [
                _obs(pid, "2093-3", rng.randint(150, 280), "mg/dL", when),
                _obs(pid, "2085-9", rng.randint(30, 70), "mg/dL", when),
            ]
    if rng.random() < 0.3:
        resources.append(
            {"resourceType": "Condition", "id": str(uuid.uuid4()), "subject": {"reference": f"Patient/{pid}"},
             "code": {"coding": [{"system": "http://snomed.info/sct", "code": "49436004"}]}}
        )  # fmt: skip
    return resources


def load(port: int, patients: int) -> None:
    for seed in range(patients):
        entries = [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                   for r in patient_record(seed)]  # fmt: skip
        body = orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})
        status, _, text = http_request(port, "POST", "/fhir", body, timeout=60)
        if status != 200:
            raise RuntimeError(f"loading patient {seed}: {status} {text[:300]!r}")


def prefetch(port: int, templates: dict[str, str], pid: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, template in templates.items():
        query = template.replace("{{context.patientId}}", pid)
        status, _, body = http_request(port, "GET", "/fhir/" + query, timeout=120)
        found[key] = orjson.loads(body) if status == 200 else None
    return found


def hook_body(pid: str, prefetched: dict[str, Any] | None) -> bytes:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/bench", "patientId": pid},
    }
    if prefetched is not None:
        body["prefetch"] = prefetched
    return orjson.dumps(body)


def row_text(service: str, mode: str, clients: int, r: dict[str, Any], size: int, cpu: Sample) -> str:
    calls = f"{r['ok']} ({r['errors']})" if r["errors"] else str(r["ok"])
    if not r["ok"]:
        return f"| {service} | {mode} | {clients} | {calls} | - | - | - | 0 | - | - | {size:,} B |"
    store = r.get("mean_store_ms")
    share = f"{store / r['mean_latency_ms']:.0%}" if store is not None and r["mean_latency_ms"] else "n/a"
    done = r["ok"] + r["errors"]
    per_call = f"{cpu.app_cpu / done * 1000:.2f} + {cpu.store_cpu / done * 1000:.2f} ms"
    return (
        f"| {service} | {mode} | {clients} | {calls} | {r['p50_ms']:.1f} ms | {r['p95_ms']:.1f} ms "
        f"| {r['p99_ms']:.1f} ms | {r['throughput_rps']:.1f} | {share} | {per_call} | {size:,} B |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per case")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per case")
    parser.add_argument("--services", default=",".join(SERVICES), help="comma-separated service ids")
    parser.add_argument("--modes", default="full,none", help="full (client prefetch), none, or both")
    parser.add_argument("--clients", default="1,20", help="comma-separated numbers of clients")
    parser.add_argument("--no-append", action="store_true", help="print the report only")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: interop run's)")
    parser.add_argument("--threads", type=int, help="threads per gunicorn worker (default: interop run's)")
    args = parser.parse_args(argv)
    if args.workers:  # read by Settings and fhir_server.gunicorn_conf, as under `interop run`
        os.environ["INTEROP_HTTP_WORKERS"] = str(args.workers)
    if args.threads:
        os.environ["INTEROP_GUNICORN_THREADS"] = str(args.threads)
    services = [s for s in args.services.split(",") if s]
    modes = [{"full": "full prefetch", "none": "no prefetch"}[m] for m in args.modes.split(",") if m]
    client_counts = [int(c) for c in args.clients.split(",") if c]
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    work = Path(tempfile.mkdtemp(prefix="interop-bench-cds-"))
    cleanup: list[Any] = []
    external_db = None
    try:
        with sigterm_as_exit():
            store = start_bench_store(work, stamp, cleanup)
            external_db = store.external
            port = free_port()
            env = {**os.environ, "INTEROP_HTTP_PORT": str(port)}
            settings = Settings.from_env(env)
            server_argv = gunicorn_argv(settings)
            server = Server("server", server_argv, env, work / "server.log")
            cleanup.append(server)
            wait_ready(server, port, "/readyz")
            print(f"loading {args.patients} patients ...", file=sys.stderr)
            load(port, args.patients)
            _, _, raw = http_request(port, "GET", "/cds-services")
            templates = {s["id"]: s["prefetch"] for s in orjson.loads(raw)["services"]}
            loadgen = build_loadgen(work)
            pid = f"cds-bench-{args.patients // 2}"  # every call is for this patient's chart
            rows = []
            others: list[str] = []
            load_before = os.getloadavg()
            prefetched = {service: prefetch(port, templates[service], pid) for service in services}
            for service in services:
                bodies = {
                    "full prefetch": hook_body(pid, prefetched[service]),
                    "no prefetch": hook_body(pid, None),
                }
                for mode in modes:
                    body = bodies[mode]
                    body_file = work / f"{service}-{mode.replace(' ', '-')}.json"
                    body_file.write_bytes(body)
                    for clients in client_counts:
                        run = run_loadgen(
                            loadgen, op=f"{service} {mode}", url=f"http://{LOOPBACK}:{port}/cds-services/{service}",
                            method="POST", clients=clients, duration=args.duration, warmup=args.warmup,
                            ids_file=None, body_file=body_file, server_pid=server.pid, store_pid=store.pid,
                        )  # fmt: skip
                        r = run.result
                        rows.append((service, mode, clients, r, len(body), run.cpu))
                        others.append(run.cpu.other_top)
                        print(row_text(*rows[-1]), file=sys.stderr)
                # Calls still queued when the load generator stopped finish before the next case:
                # this one is answered after them.
                http_request(port, "POST", f"/cds-services/{service}", hook_body(pid, None), timeout=600)
                server.check_alive()
            lines = [
                f"## CDS Hooks patient-view latency, {started_at:%Y-%m-%d %H:%M} UTC",
                "",
                f"- Command: `{command_line()}`",
                f"- Machine: {machine()}",
                f"- Store: {store.description}",
                f"- Server: `{shlex.join(server_argv)}` ({gunicorn_config(settings)})",
                f"- Data: {args.patients} patients of ~30 resources each (6 visits of HbA1c, fasting "
                "glucose, creatinine and BP; lipids every other visit; 30 % with atrial fibrillation), "
                "loaded through `POST /fhir` transactions",
                f"- Load: bench/loadgen (Go, closed loop, one keep-alive connection per client), "
                f"{args.duration:g} s per case after {args.warmup:g} s of warm-up; every call is "
                f"patient-view for `{pid}` (~30 resources), with the prefetch a client would send (the "
                "service's templates run once against `/fhir` beforehand, not timed) and, in the same run, "
                "without it (the service reads through the shared search service)",
                "",
                f"- Machine load: load average {load_before[0]:.1f} (1 min) when the measurements started; "
                f"other processes (cores) in the first case: {others[0] or 'none'}; in the last: "
                f"{others[-1] or 'none'}",
                "",
                "| service | prefetch | clients | calls (errors) | p50 | p95 | p99 | calls/s "
                "| store share | CPU per call (server + store) | body |",
                "|---|---|---|---|---|---|---|---|---|---|---|",
                *[row_text(*row) for row in rows],
            ]
            section = "\n".join(lines)
            print(section)
            if not args.no_append:
                append_report(ROOT / "docs" / "benchmarks.md", section)
    finally:
        tear_down(cleanup, external_db, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
