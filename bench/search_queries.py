"""The query templates of bench/search_run.py and the parameter values they draw from the data."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/...` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from bench import search_data  # noqa: E402
from bench.harness import (  # noqa: E402
    BenchError,
)

VALUES_PER_QUERY = 200  # distinct parameter values per template (fewer when the data is smaller)


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
