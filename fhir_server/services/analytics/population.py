"""The three population views, from the records the repository selects.

* incidence: a patient's first recorded onset of a matching condition is a new case,
  counted in the bucket of that onset when it falls in the period, by age band (age at
  onset) and sex;
* lab distribution: matching observations in the period, per bucket and overall:
  count, mean, median, percentiles, share out of range;
* treatment outcome: per patient whose first matching medication started in the period,
  the lab value before the start (latest in the window before) and after it (latest in
  the window after), the per-patient delta and its summary.

Only current resources count (deleted ones have no current record), and resources
marked as not having happened (entered-in-error, refuted, cancelled) are left out.
Every exclusion is counted in the report's ``notes``, so nothing disappears silently.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import orjson

from fhir_server.services.analytics import stats
from fhir_server.services.analytics.periods import (
    UNKNOWN,
    Period,
    age_band,
    age_on,
    band_labels,
    imputed_birth,
)
from fhir_server.services.analytics.selection import (
    Codes,
    excluded_status,
    first_range,
    keys_with,
    patient_of,
)

LOINC = "http://loinc.org"
OUT_OF_RANGE = frozenset({"H", "HH", "HU", "L", "LL", "LU", "A", "AA", ">", "<"})
IN_RANGE = frozenset({"N"})
MEDICATION_TYPES = {
    "MedicationRequest": "authoredon",
    "MedicationStatement": "effective",
    "MedicationAdministration": "effective-time",
}
CONDITION_DATES = ("onset-date", "recorded-date")


class RecordSource(Protocol):
    def current_records(
        self,
        resource_type: str,
        *,
        any_keys: list[str] | None = None,
        key_prefixes: list[str] | None = None,
        ids: list[str] | None = None,
        fields: tuple[str, ...] = ("ix", "ir"),
    ) -> Iterable[dict[str, Any]]: ...


@dataclass
class Notes:
    """Why records were left out, and how many placements were imprecise."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, reason: str, n: int = 1) -> None:
        self.counts[reason] += n

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


def _matching(
    source: RecordSource, resource_type: str, codes: Codes, fields: tuple[str, ...], param: str = "code"
) -> Iterable[dict[str, Any]]:
    exact, prefixes = codes.keys(resource_type, param)
    return source.current_records(resource_type, any_keys=exact, key_prefixes=prefixes, fields=fields)


@dataclass(frozen=True)
class Person:
    sex: str
    birth: date | None


def _patients(source: RecordSource, ids: Iterable[str]) -> dict[str, Person]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    found = {}
    for record in source.current_records("Patient", ids=wanted):
        genders = keys_with(record, "gender", "c")
        born = first_range(record, "birthdate")
        found[str(record["_id"])] = Person(
            genders[0] if genders else UNKNOWN, None if born is None else imputed_birth(*born)
        )
    return found


# -- incidence ---------------------------------------------------------------------------


def incidence(source: RecordSource, codes: Codes, period: Period, bands: tuple[int, ...]) -> dict[str, Any]:
    notes = Notes()
    first: dict[str, tuple[datetime, datetime]] = {}
    for record in _matching(source, "Condition", codes, ("ix", "ir")):
        if excluded_status("Condition", record):
            notes.add("excludedStatus")
            continue
        patient = patient_of(record)
        when = next((r for p in CONDITION_DATES if (r := first_range(record, p))), None)
        if patient is None or when is None:
            notes.add("noPatient" if patient is None else "noDate")
            continue
        if patient not in first or when[0] < first[patient][0]:
            first[patient] = when
    people = _patients(source, first)
    cells: Counter[tuple[str, str, str]] = Counter()
    for patient, (lo, hi) in first.items():
        placed = period.place(lo, hi)
        if placed is None:
            if lo < period.lo:
                notes.add("firstOnsetBeforePeriod")
            continue
        label, precise = placed
        person = people.get(patient)
        if person is None:
            notes.add("patientNotCurrent")
            continue
        if not precise:
            notes.add("impreciseDate")
        age = None if person.birth is None else age_on(person.birth, lo.date())
        cells[(label, age_band(age, bands), person.sex)] += 1
    rows = [{"bucket": b, "ageBand": a, "sex": s, "count": n} for (b, a, s), n in sorted(cells.items()) if n]
    by_bucket = dict.fromkeys(period.labels(), 0)
    by_band = dict.fromkeys(band_labels(bands), 0)
    by_sex: Counter[str] = Counter()
    for (b, a, s), n in cells.items():
        by_bucket[b] += n
        by_band[a] += n
        by_sex[s] += n
    return {
        "buckets": period.labels(),
        "ageBands": band_labels(bands),
        "rows": rows,
        "totals": {
            "all": sum(cells.values()),
            "byBucket": by_bucket,
            "byAgeBand": by_band,
            "bySex": dict(sorted(by_sex.items())),
        },
        "notes": notes.as_dict(),
    }


# -- lab values --------------------------------------------------------------------------


@dataclass(frozen=True)
class LabValue:
    patient: str | None
    lo: datetime
    hi: datetime
    value: float
    unit: str
    out_of_range: bool | None  # None: no reference range or interpretation to tell


def _range_flag(resource: dict[str, Any], value: float) -> bool | None:
    for reference in resource.get("referenceRange") or ():
        low = (reference.get("low") or {}).get("value")
        high = (reference.get("high") or {}).get("value")
        if low is None and high is None:
            continue
        return (low is not None and value < low) or (high is not None and value > high)
    codes = {
        coding.get("code")
        for concept in resource.get("interpretation") or ()
        for coding in concept.get("coding") or ()
    }
    if codes & OUT_OF_RANGE:
        return True
    return False if codes & IN_RANGE else None


def lab_values(source: RecordSource, codes: Codes, notes: Notes) -> list[LabValue]:
    found = []
    for record in _matching(source, "Observation", codes, ("ix", "ir", "json")):
        if excluded_status("Observation", record):
            notes.add("excludedStatus")
            continue
        when = first_range(record, "date")
        resource = orjson.loads(record["json"])
        quantity = resource.get("valueQuantity") or {}
        value = quantity.get("value")
        if when is None or not isinstance(value, int | float) or isinstance(value, bool):
            notes.add("noDate" if when is None else "noNumericValue")
            continue
        unit = str(quantity.get("code") or quantity.get("unit") or "")
        found.append(
            LabValue(patient_of(record), when[0], when[1], float(value), unit, _range_flag(resource, value))
        )
    return found


def _one_unit(values: list[LabValue], unit: str | None, notes: Notes) -> tuple[list[LabValue], str | None]:
    """Keep one unit (the one asked for, else the most common): means of mixed units mislead."""
    if not values:
        return values, unit
    chosen = unit or Counter(v.unit for v in values).most_common(1)[0][0]
    kept = [v for v in values if v.unit == chosen]
    if len(kept) < len(values):
        notes.add("otherUnit", len(values) - len(kept))
    return kept, chosen


def _sample(values: list[LabValue]) -> dict[str, Any]:
    out = stats.summary([v.value for v in values])
    flagged = [v.out_of_range for v in values if v.out_of_range is not None]
    out["rangeKnown"] = len(flagged)
    out["outOfRange"] = sum(flagged)
    out["outOfRangeShare"] = round(sum(flagged) / len(flagged), 4) if flagged else None
    return out


def lab_distribution(source: RecordSource, codes: Codes, period: Period, unit: str | None) -> dict[str, Any]:
    notes = Notes()
    values, chosen = _one_unit(lab_values(source, codes, notes), unit, notes)
    per_bucket: dict[str, list[LabValue]] = {label: [] for label in period.labels()}
    in_period = []
    for value in values:
        placed = period.place(value.lo, value.hi)
        if placed is None:
            notes.add("outsidePeriod")
            continue
        if not placed[1]:
            notes.add("impreciseDate")
        per_bucket[placed[0]].append(value)
        in_period.append(value)
    return {
        "unit": chosen,
        "overall": _sample(in_period),
        "histogram": stats.histogram([v.value for v in in_period]),
        "buckets": [{"bucket": label, **_sample(vs)} for label, vs in per_bucket.items()],
        "notes": notes.as_dict(),
    }


# -- treatment outcome -------------------------------------------------------------------


def medication_starts(source: RecordSource, codes: Codes, notes: Notes) -> dict[str, datetime]:
    """Each patient's earliest start of a matching medication (concept or Medication reference)."""
    medications = [str(r["_id"]) for r in _matching(source, "Medication", codes, ("_id",))]
    starts: dict[str, datetime] = {}
    for resource_type, date_param in MEDICATION_TYPES.items():
        records = list(_matching(source, resource_type, codes, ("ix", "ir")))
        if medications:
            from fhir_server.search.extract import canonical_code
            from fhir_server.search.index import key

            param = canonical_code(resource_type, "medication")
            refs = [key(param, "r", f"Medication/{m}") for m in medications]
            records += list(source.current_records(resource_type, any_keys=refs))
        seen: set[str] = set()
        for record in records:
            if record["_id"] in seen:
                continue
            seen.add(record["_id"])
            if excluded_status(resource_type, record):
                notes.add("excludedStatus")
                continue
            patient = patient_of(record)
            when = first_range(record, date_param)
            if patient is None or when is None:
                notes.add("noPatient" if patient is None else "noDate")
                continue
            if patient not in starts or when[0] < starts[patient]:
                starts[patient] = when[0]
    return starts


def treatment_outcome(
    source: RecordSource,
    medication: Codes,
    lab: Codes,
    period: Period,
    unit: str | None,
    before_days: int,
    after_days: int,
) -> dict[str, Any]:
    notes = Notes()
    starts = medication_starts(source, medication, notes)
    values, chosen = _one_unit(lab_values(source, lab, notes), unit, notes)
    by_patient: dict[str, list[LabValue]] = defaultdict(list)
    for value in values:
        if value.patient is not None:
            by_patient[value.patient].append(value)
    patients: list[dict[str, Any]] = []
    per_bucket: dict[str, list[float]] = defaultdict(list)
    for patient, start in sorted(starts.items()):
        placed = period.place(start, start + timedelta(milliseconds=1))
        if placed is None:
            notes.add("startOutsidePeriod")
            continue
        series = sorted(by_patient.get(patient, []), key=lambda v: v.lo)
        before = [v for v in series if start - timedelta(days=before_days) <= v.lo <= start]
        after = [v for v in series if start < v.lo <= start + timedelta(days=after_days)]
        if not before or not after:
            notes.add("noBaseline" if not before else "noFollowUp")
            continue
        delta = round(after[-1].value - before[-1].value, 6)
        patients.append(
            {
                "patient": f"Patient/{patient}",
                "start": start.date().isoformat(),
                "before": before[-1].value,
                "beforeDate": before[-1].lo.date().isoformat(),
                "after": after[-1].value,
                "afterDate": after[-1].lo.date().isoformat(),
                "delta": delta,
            }
        )
        per_bucket[placed[0]].append(delta)
    deltas = [p["delta"] for p in patients]
    return {
        "unit": chosen,
        "windowBeforeDays": before_days,
        "windowAfterDays": after_days,
        "patientsStarted": sum(1 for s in starts.values() if period.contains(s)),
        "summary": {
            "patients": len(patients),
            "meanBefore": stats.summary([p["before"] for p in patients])["mean"],
            "meanAfter": stats.summary([p["after"] for p in patients])["mean"],
            "delta": stats.summary(deltas),
            "decreased": sum(1 for d in deltas if d < 0),
            "increased": sum(1 for d in deltas if d > 0),
        },
        "buckets": [
            {"bucket": label, **stats.summary(per_bucket.get(label, []))} for label in period.labels()
        ],
        "patients": patients,
        "notes": notes.as_dict(),
    }
