"""What authorization and the audit trail cost per request: ``.venv/bin/python bench/auth_overhead.py``.

In one process, against the embedded store (or INTEROP_MONGODB_URI), it times
``GET /fhir/Patient/{id}`` and ``GET /fhir/Observation?code=...`` through the Flask test
client (no network, one thread, so the numbers are the server's own work) under:

* ``open``           INTEROP_AUTH=disabled: no token, no audit (the floor);
* ``token``          a system token verified (ES384 signature, claims, revocation lookup), no audit;
* ``token + audit``  the same with the AuditEvent queued (the writer thread stores it meanwhile);
* ``patient token``  a patient/*.rs token with audit: compartment membership check on reads,
                     compartment condition in searches.

and how fast the writer stores the queued events. Prints a markdown table.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fhir_server import create_app  # noqa: E402
from fhir_server.repository.mongo import MongoRepository  # noqa: E402
from fhir_server.settings import Settings  # noqa: E402

REQUESTS = 1500
ROUNDS = 15
JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _timed(cases: list[tuple[str, Any, dict[str, str]]], path: str) -> dict[str, list[float]]:
    """Latencies per case, the cases interleaved in rounds so machine noise hits them alike."""
    clients = [(name, app.test_client(), headers) for name, app, headers in cases]
    for _name, client, headers in clients:
        for _ in range(50):  # warm caches
            client.get(path, headers=headers)
    times: dict[str, list[float]] = {name: [] for name, _, _ in clients}
    for _round in range(ROUNDS):
        for name, client, headers in clients:
            for _ in range(REQUESTS // ROUNDS):
                started = time.perf_counter()
                response = client.get(path, headers=headers)
                times[name].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.get_data(as_text=True)
    return times


def main() -> None:
    import os

    from interop.embedded_store import EmbeddedStore

    work = Path(tempfile.mkdtemp(prefix="auth-bench-"))
    store = None
    uri = os.environ.get("INTEROP_MONGODB_URI")
    if not uri:
        store = EmbeddedStore(work / "store")
        uri = store.start()
    database = f"bench_auth_{int(time.time())}"
    repository = MongoRepository(uri, database)
    try:
        base = Settings(mongodb_uri=uri, database=database, log_level="WARNING")
        open_app = create_app(base.with_overrides(auth="disabled"), repository=repository)
        quiet_app = create_app(base.with_overrides(auth="required", audit=False), repository=repository)
        audited_app = create_app(base.with_overrides(auth="required"), repository=repository)
        seed = open_app.test_client()
        patient = seed.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=JSON).get_json()["id"]
        for i in range(20):
            seed.post(
                "/fhir/Observation",
                json={
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                    "subject": {"reference": f"Patient/{patient if i % 2 else 'other'}"},
                },
                headers=JSON,
            )
        tokens = audited_app.extensions["interop"].auth.tokens

        def token(scope: str, patient_id: str | None = None) -> dict[str, str]:
            issued = tokens.issue(
                subject="bench",
                client_id="bench",
                scope=scope,
                lifetime=timedelta(hours=1),
                patient=patient_id,
            )
            return {**JSON, "Authorization": f"Bearer {issued.token}"}

        system, own = token("system/*.rs"), token("patient/*.rs", patient)
        cases = [
            ("open", open_app, {**JSON}),
            ("token", quiet_app, system),
            ("token + audit", audited_app, system),
            ("patient token + audit", audited_app, own),
        ]
        rows = []
        for path in (f"/fhir/Patient/{patient}", "/fhir/Observation?code=718-7"):
            label = "/fhir/Patient/{id}" if "?" not in path else path
            for name, times in _timed(cases, path).items():
                rows.append((label, name, sorted(times)))
        audit = audited_app.extensions["interop"].audit
        queued = REQUESTS * 4 + 200
        started = time.perf_counter()
        audit.flush(timeout=600)
        drained = time.perf_counter() - started
        print("| request | caller | median ms | p95 ms | mean ms |\n|---|---|---|---|---|")
        for path, name, times in rows:
            p95 = times[int(len(times) * 0.95)]
            median, mean = statistics.median(times), statistics.mean(times)
            print(f"| `{path}` | {name} | {median:.3f} | {p95:.3f} | {mean:.3f} |")
        print(
            f"\naudit writer: {queued} events queued, the last stored {drained:.1f} s after the load ended; "
            f"dropped {audit.dropped}, failed {audit.failed}"
        )
        audit.close()
    finally:
        repository._client.drop_database(database)
        repository.close()
        if store is not None:
            store.stop()


if __name__ == "__main__":
    main()
