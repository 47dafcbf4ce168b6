"""Population analytics over ~100k observations, and `interop import` throughput:
``.venv/bin/python bench/analytics_run.py [--patients 28000] [--import-patients 500] [--no-append]``.

One run: starts an embedded FerretDB in a fresh temporary directory (or uses
INTEROP_MONGODB_URI with a fresh database) and generates the seeded synthetic population
of the tests (tests/population_data.py: patients, conditions, HbA1c observations,
metformin prescriptions).

1. **Import**: the first ``--import-patients`` patients' resources go through the
   importer behind ``interop import`` (in-process) twice, into two fresh databases: as
   NDJSON (ids kept: ``PUT``, transactions of 500) and as one transaction Bundle per
   patient (``POST`` with ``urn:uuid:`` references); resources/s of each.
2. **Analytics**: the whole population is loaded directly through the repository (the
   versions the service builds, committed in batches: only to get 100k observations in
   quickly), then each ``$population-analytics`` view is timed (median of ``--repeat``)
   next to a naive baseline in the same run (every Observation's JSON read and filtered
   in Python), and the two are checked to agree.

Appends a dated section to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness import append_report, command_line, machine, start_bench_store, tear_down  # noqa: E402
from fhir_server.settings import Settings  # noqa: E402
from interop.importer import Importer, files_under  # noqa: E402
from interop.transport import InProcessTransport  # noqa: E402
from tests.population_data import DIABETES, HBA1C, LOINC, METFORMIN, RXNORM, generate  # noqa: E402

DIABETES_CODE = f"{DIABETES[0]}|{DIABETES[1]}"
QUERIES = {
    "condition-incidence (month, 2 years)": {
        "measure": "condition-incidence", "code": DIABETES_CODE,
        "start": "2020-01-01", "end": "2021-12-31", "bucket": "month",
    },
    "lab-distribution (month, 3 years)": {
        "measure": "lab-distribution", "code": HBA1C,
        "start": "2019-06-01", "end": "2022-05-31", "bucket": "month",
    },
    "treatment-outcome (year, 2 years)": {
        "measure": "treatment-outcome", "code": f"{LOINC}|{HBA1C}", "medication": f"{RXNORM}|{METFORMIN}",
        "start": "2020-01-01", "end": "2021-12-31", "bucket": "year",
    },
}  # fmt: skip


def naive_lab_mean(repository: Any) -> tuple[int, float]:
    """Every current Observation's JSON, filtered by code and unit here: the baseline."""
    values = []
    collection = repository._search_docs("Observation")
    for doc in collection.find({"del": False}, {"json": 1}):
        obs = orjson.loads(doc["json"])
        coded = any(c.get("code") == HBA1C for c in obs.get("code", {}).get("coding", []))
        quantity = obs.get("valueQuantity") or {}
        if coded and obs.get("status") != "entered-in-error" and quantity.get("code") == "%":
            date = obs.get("effectiveDateTime", "")[:10]
            start = date + "-01-01"[len(date) - 4 :] if len(date) < 10 else date  # a partial date's first day
            if "2019-06-01" <= start <= "2022-05-31":
                values.append(quantity["value"])
    return len(values), statistics.fmean(values)


IMPORT_LABELS = {
    "ndjson": "NDJSON, one file per type (`PUT` with ids, transactions of 500)",
    "bundles": "one transaction Bundle file per patient (`POST`, `urn:uuid:` references)",
}


def _patient_number(resource: dict[str, Any]) -> int:
    """p12 / c12-0 / o12-3 / m12 -> 12: the patient a generated resource belongs to."""
    return int(resource["id"][1:].split("-")[0])


def _write(folder: Path, kind: str, resources: list[dict[str, Any]]) -> None:
    if kind == "ndjson":
        by_type: dict[str, list[bytes]] = {}
        for resource in resources:
            by_type.setdefault(resource["resourceType"], []).append(orjson.dumps(resource) + b"\n")
        for resource_type, lines in by_type.items():
            (folder / f"{resource_type}.ndjson").write_bytes(b"".join(lines))
        return
    groups: dict[int, list[dict[str, Any]]] = {}
    for resource in resources:
        groups.setdefault(_patient_number(resource), []).append(resource)
    for number, members in groups.items():
        urns = {f"{r['resourceType']}/{r['id']}": f"urn:uuid:{uuid.uuid4()}" for r in members}
        entries = []
        for resource in members:
            body = {k: v for k, v in resource.items() if k != "id"}
            if "subject" in body:
                body["subject"] = {"reference": urns[body["subject"]["reference"]]}
            entries.append({"fullUrl": urns[f"{resource['resourceType']}/{resource['id']}"], "resource": body,
                            "request": {"method": "POST", "url": resource["resourceType"]}})  # fmt: skip
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        (folder / f"patient-{number}.json").write_bytes(orjson.dumps(bundle))


def _load_directly(app: Any, resources: list[dict[str, Any]], batch: int = 2000) -> None:
    """Versions built by the service (index values included), committed in batches."""
    service = app.extensions["interop"].resources
    for start in range(0, len(resources), batch):
        writes = [
            service.new_version(r["resourceType"], r["id"], None, r, "PUT", fresh=True)
            for r in resources[start : start + batch]
        ]
        service.commit_all(writes, [])


def timed(func: Any, repeat: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=28_000)
    parser.add_argument("--import-patients", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    cleanup: list[Any] = []
    work = Path(tempfile.mkdtemp(prefix="analytics-bench-"))
    store = start_bench_store(work, stamp, cleanup)
    try:
        pop = generate(seed=2024, patients=args.patients)
        counts = dict(Counter(r["resourceType"] for r in pop.resources))
        print(f"generated {counts}", file=sys.stderr)
        base = Settings.from_env()
        subset = [r for r in pop.resources if _patient_number(r) < args.import_patients]
        imports = {}
        for kind in ("ndjson", "bundles"):
            folder = work / kind
            folder.mkdir()
            _write(folder, kind, subset)
            transport = InProcessTransport(base.with_overrides(database=f"{base.database}_{kind}"))
            started = time.perf_counter()
            summary = Importer(transport, batch_size=500).run(files_under(folder))
            seconds = time.perf_counter() - started
            assert not summary.failed, summary.failed[:3]
            imports[kind] = (summary.created + summary.updated, seconds)
            transport._app.extensions["interop"].repository._client.drop_database(f"{base.database}_{kind}")
            transport.close()
            print(f"import {kind}: {imports[kind][0]} in {seconds:.1f} s", file=sys.stderr)

        transport = InProcessTransport(base)
        cleanup.append(transport)
        started = time.perf_counter()
        _load_directly(transport._app, pop.resources)
        load_seconds = time.perf_counter() - started
        print(f"loaded {len(pop.resources)} directly in {load_seconds:.1f} s", file=sys.stderr)

        client = transport._client  # the same app, without HTTP
        rows = []
        for name, params in QUERIES.items():

            def run(params: dict[str, str] = params) -> Any:
                response = client.get("/fhir/$population-analytics", query_string=params,
                                      headers={"Accept": "application/json"})  # fmt: skip
                assert response.status_code == 200, response.get_data(as_text=True)
                return response.get_json()

            seconds, figures = timed(run, args.repeat)
            rows.append((name, seconds, figures))
            print(f"{name}: {seconds * 1000:.0f} ms", file=sys.stderr)
        repository = transport._app.extensions["interop"].repository
        naive_seconds, (naive_n, naive_mean) = timed(lambda: naive_lab_mean(repository), args.repeat)
        lab = rows[1][2]["overall"]
        agree = lab["n"] == naive_n and abs(lab["mean"] - naive_mean) < 1e-3

        lines = [
            f"## Population analytics and import — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"Command: `{command_line()}`  ",
            f"Machine: {machine()}; load average at the end {os.getloadavg()[0]:.1f} "
            "(other sessions share this machine: figures are noisy)  ",
            f"Store: {store.description}",
            "",
            f"Data: {', '.join(f'{n} {t}' for t, n in sorted(counts.items()))} "
            f"({sum(counts.values())} resources; tests/population_data.py, seed 2024).",
            "",
            f"**Import** (`interop import`, in-process; the first {args.import_patients} patients'"
            " resources):",
            "",
            "| source | resources | seconds | resources/s |",
            "|---|---|---|---|",
            *[
                f"| {IMPORT_LABELS[k]} | {n} | {sec:.1f} | **{n / sec:.0f}** |"
                for k, (n, sec) in imports.items()
            ],
            "",
            f"**Analytics** over all {sum(counts.values())} resources"
            f" (loaded directly in {load_seconds:.0f} s):",
            "",
            f"| `$population-analytics` view (in-process, median of {args.repeat}) | time |",
            "|---|---|",
            *[f"| {name} | {seconds * 1000:.0f} ms |" for name, seconds, _ in rows],
            f"| baseline: every Observation's JSON read and filtered in Python (lab mean only) | "
            f"{naive_seconds * 1000:.0f} ms |",
            "",
            f"The lab view counted {lab['n']} values (mean {lab['mean']}); the baseline {naive_n} "
            f"(mean {naive_mean:.4f}): {'they agree' if agree else 'THEY DISAGREE'}.",
        ]
        report = "\n".join(lines)
        print(report)
        if not args.no_append:
            append_report(ROOT / "docs" / "benchmarks.md", report)
    finally:
        tear_down(cleanup, store.external, work)


if __name__ == "__main__":
    main()
