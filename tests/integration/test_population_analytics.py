"""$population-analytics against the real store, checked against figures computed here
in plain Python from the generated resources (tests/population_data.py)."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.integration.helpers import headers
from tests.population_data import (
    DIABETES,
    DIABETES_ICD,
    HBA1C,
    LOINC,
    METFORMIN,
    RXNORM,
    Population,
    generate,
    transaction,
)

PERIOD = {"start": "2020-01-01", "end": "2021-06-30"}


@pytest.fixture
def population(client: FlaskClient) -> Population:
    pop = generate()
    response = client.post("/fhir", json=transaction(pop.resources), headers=headers())
    assert response.status_code == 200, response.get_data(as_text=True)
    for key in sorted(pop.deleted):
        assert client.delete(f"/fhir/{key}").status_code == 204
    return pop


# -- an independent reading of the rules -------------------------------------------------


def instant_range(text: str) -> tuple[datetime, datetime]:
    if len(text) == 4:
        return datetime(int(text), 1, 1, tzinfo=UTC), datetime(int(text) + 1, 1, 1, tzinfo=UTC)
    if len(text) == 7:
        y, m = int(text[:4]), int(text[5:])
        return datetime(y, m, 1, tzinfo=UTC), datetime(y + m // 12, m % 12 + 1, 1, tzinfo=UTC)
    if len(text) == 10:
        lo = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return lo, lo + timedelta(days=1)
    lo = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return lo, lo + timedelta(seconds=1)


def month(d: datetime) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def band(age: int | None) -> str:
    if age is None:
        return "unknown"
    return "65+" if age >= 65 else "40-64" if age >= 40 else "18-39" if age >= 18 else "0-17"


def coded(resource: dict[str, Any], pairs: set[tuple[str, str]]) -> bool:
    return any((c.get("system"), c.get("code")) in pairs for c in resource["code"]["coding"])


def expected_incidence(pop: Population, pairs: set[tuple[str, str]]) -> Counter[tuple[str, str, str]]:
    first: dict[str, datetime] = {}
    for condition in pop.current("Condition"):
        status = condition.get("verificationStatus", {}).get("coding", [{}])[0].get("code")
        if status == "entered-in-error" or not coded(condition, pairs):
            continue
        lo = instant_range(condition.get("onsetDateTime") or condition["recordedDate"])[0]
        patient = condition["subject"]["reference"].split("/")[1]
        first[patient] = min(first.get(patient, lo), lo)
    people = {p["id"]: p for p in pop.current("Patient")}
    cells: Counter[tuple[str, str, str]] = Counter()
    for patient, lo in first.items():
        if (
            not datetime(2020, 1, 1, tzinfo=UTC) <= lo < datetime(2021, 7, 1, tzinfo=UTC)
            or patient not in people
        ):
            continue
        person = people[patient]
        age = None
        if "birthDate" in person:
            b_lo, b_hi = instant_range(person["birthDate"])
            birth = (b_lo + (b_hi - b_lo) / 2).date()
            on = lo.date()
            age = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
        cells[(month(lo), band(age), person.get("gender", "unknown"))] += 1
    return cells


def lab_points(pop: Population) -> list[tuple[str, datetime, float, bool | None]]:
    points = []
    for obs in pop.current("Observation"):
        if obs["status"] == "entered-in-error" or obs["valueQuantity"]["code"] != "%":
            continue
        value = obs["valueQuantity"]["value"]
        flag = None
        if "referenceRange" in obs:
            flag = not 4.0 <= value <= 5.6
        elif "interpretation" in obs:
            flag = obs["interpretation"][0]["coding"][0]["code"] == "H"
        lo = instant_range(obs["effectiveDateTime"])[0]
        points.append((obs["subject"]["reference"].split("/")[1], lo, value, flag))
    return points


def quantile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


# -- the tests ---------------------------------------------------------------------------


def run(client: FlaskClient, **params: str) -> dict[str, Any]:
    response = client.get(
        "/fhir/$population-analytics", query_string=params, headers={"Accept": "application/json"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_incidence_by_month_age_band_and_sex(client: FlaskClient, population: Population) -> None:
    pairs = {DIABETES, DIABETES_ICD}
    expected = expected_incidence(population, pairs)
    assert sum(expected.values()) >= 5  # the generated data exercises the view
    got = run(client, measure="condition-incidence", bucket="month",
              code=",".join(f"{s}|{c}" for s, c in pairs), **PERIOD)  # fmt: skip
    cells = Counter({(r["bucket"], r["ageBand"], r["sex"]): r["count"] for r in got["rows"]})
    assert cells == expected
    assert got["totals"]["all"] == sum(expected.values())
    assert got["buckets"][0] == "2020-01" and got["buckets"][-1] == "2021-06" and len(got["buckets"]) == 18
    assert got["ageBands"] == ["0-17", "18-39", "40-64", "65+", "unknown"]
    assert got["totals"]["byAgeBand"]["unknown"] == sum(
        n for (_, a, _), n in expected.items() if a == "unknown"
    )


def test_incidence_by_one_coding_of_several(client: FlaskClient, population: Population) -> None:
    """A condition coded in SNOMED and ICD-10 is found by either, and counted once."""
    both = run(client, measure="condition-incidence", bucket="year", code=f"{DIABETES[0]}|{DIABETES[1]}",
               **PERIOD)  # fmt: skip
    expected = expected_incidence(population, {DIABETES})
    assert both["totals"]["all"] == sum(expected.values())
    by_system = run(client, measure="condition-incidence", bucket="year", system=DIABETES_ICD[0], **PERIOD)
    assert by_system["totals"]["all"] == sum(expected_incidence(population, {DIABETES_ICD}).values())


def test_incidence_by_value_set_stored_and_inline(client: FlaskClient, population: Population) -> None:
    value_set = {
        "resourceType": "ValueSet",
        "url": "http://example.org/fhir/ValueSet/diabetes",
        "status": "active",
        "compose": {"include": [{"system": DIABETES[0], "concept": [{"code": DIABETES[1]}]},
                                {"system": DIABETES_ICD[0], "concept": [{"code": DIABETES_ICD[1]}]}]},
    }  # fmt: skip
    assert client.post("/fhir/ValueSet", json=value_set, headers=headers()).status_code == 201
    expected = sum(expected_incidence(population, {DIABETES, DIABETES_ICD}).values())
    stored = run(client, measure="condition-incidence", valueSet=value_set["url"], **PERIOD)
    assert stored["totals"]["all"] == expected
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "measure", "valueCode": "condition-incidence"},
            {"name": "start", "valueDate": PERIOD["start"]},
            {"name": "end", "valueDate": PERIOD["end"]},
            {"name": "valueSetDefinition", "resource": value_set},
        ],
    }
    response = client.post("/fhir/$population-analytics", json=body, headers=headers())
    assert response.status_code == 200
    parameters = response.get_json()
    assert parameters["resourceType"] == "Parameters"
    totals = next(p for p in parameters["parameter"] if p["name"] == "totals")
    assert next(p for p in totals["part"] if p["name"] == "all")["valueInteger"] == expected


def test_lab_distribution_per_bucket(client: FlaskClient, population: Population) -> None:
    points = lab_points(population)
    got = run(
        client, measure="lab-distribution", code=HBA1C, bucket="year", start="2019-01-01", end="2022-12-31"
    )
    assert got["unit"] == "%"
    values = [v for _, _, v, _ in points]
    overall = got["overall"]
    assert overall["n"] == len(values) > 20
    assert overall["mean"] == pytest.approx(statistics.fmean(values), abs=1e-4)
    assert overall["median"] == pytest.approx(statistics.median(values), abs=1e-4)
    for p in (10, 25, 75, 90):
        assert overall[f"p{p}"] == pytest.approx(quantile(values, p), abs=1e-4)
    flags = [f for *_, f in points if f is not None]
    assert overall["rangeKnown"] == len(flags)
    assert overall["outOfRangeShare"] == pytest.approx(sum(flags) / len(flags), abs=1e-4)
    assert sum(h["count"] for h in got["histogram"]) == len(values)
    assert got["notes"]["otherUnit"] >= 1
    for bucket in got["buckets"]:
        year = [v for _, lo, v, _ in points if lo.year == int(bucket["bucket"])]
        assert bucket["n"] == len(year)
        if len(year) >= 2:
            assert bucket["median"] == pytest.approx(statistics.median(year), abs=1e-4)


def test_treatment_outcome_around_metformin(client: FlaskClient, population: Population) -> None:
    points = lab_points(population)
    starts = {
        m["subject"]["reference"].split("/")[1]: datetime.fromisoformat(m["authoredOn"]).replace(tzinfo=UTC)
        for m in population.current("MedicationRequest")
    }
    expected = {}
    for patient, start in starts.items():
        if not date(2020, 1, 1) <= start.date() <= date(2021, 12, 31):
            continue
        mine = sorted((lo, v) for p, lo, v, _ in points if p == patient)
        before = [v for lo, v in mine if start - timedelta(days=180) <= lo <= start]
        after = [v for lo, v in mine if start < lo <= start + timedelta(days=365)]
        if before and after:
            expected[f"Patient/{patient}"] = round(after[-1] - before[-1], 6)
    medication = f"{RXNORM}|{METFORMIN}"
    got = run(client, measure="treatment-outcome", code=f"{LOINC}|{HBA1C}", medication=medication,
              start="2020-01-01", end="2021-12-31", bucket="year")  # fmt: skip
    assert {p["patient"]: p["delta"] for p in got["patients"]} == pytest.approx(expected)
    assert len(expected) >= 3
    assert got["summary"]["patients"] == len(expected)
    assert got["summary"]["delta"]["median"] == pytest.approx(statistics.median(expected.values()), abs=1e-4)
    assert got["summary"]["decreased"] == sum(1 for d in expected.values() if d < 0)


def test_partial_dates_and_missing_birth_dates(client: FlaskClient) -> None:
    """Hand-computed: a year-only onset lands in January and is reported as imprecise; a
    patient without a birth date is in the 'unknown' band; a year-only birth date is mid-year."""
    resources = [
        {"resourceType": "Patient", "id": "a", "gender": "female"},
        {"resourceType": "Patient", "id": "b", "gender": "male", "birthDate": "1960"},
        {"resourceType": "Condition", "id": "ca", "subject": {"reference": "Patient/a"},
         "code": {"coding": [{"system": DIABETES[0], "code": DIABETES[1]}]}, "onsetDateTime": "2020"},
        {"resourceType": "Condition", "id": "cb", "subject": {"reference": "Patient/b"},
         "code": {"coding": [{"system": DIABETES[0], "code": DIABETES[1]}]}, "onsetDateTime": "2020-06-15"},
        {"resourceType": "Condition", "id": "cb2", "subject": {"reference": "Patient/b"},
         "code": {"coding": [{"system": DIABETES[0], "code": DIABETES[1]}]}, "onsetDateTime": "2021-03"},
    ]  # fmt: skip
    assert client.post("/fhir", json=transaction(resources), headers=headers()).status_code == 200
    got = run(client, measure="condition-incidence", code=f"{DIABETES[0]}|{DIABETES[1]}",
              start="2020-01-01", end="2020-12-31", bucket="month")  # fmt: skip
    # b was born mid-1960 (1960-07-02), so on 2020-06-15 is 59: band 40-64.
    assert got["rows"] == [
        {"bucket": "2020-01", "ageBand": "unknown", "sex": "female", "count": 1},
        {"bucket": "2020-06", "ageBand": "40-64", "sex": "male", "count": 1},
    ]
    assert got["notes"]["impreciseDate"] == 1
    assert client.delete("/fhir/Condition/cb").status_code == 204
    again = run(client, measure="condition-incidence", code=f"{DIABETES[0]}|{DIABETES[1]}",
                start="2020-01-01", end="2021-12-31", bucket="year")  # fmt: skip
    # With cb deleted, b's first onset is 2021-03 (age 60).
    assert again["rows"] == [
        {"bucket": "2020", "ageBand": "unknown", "sex": "female", "count": 1},
        {"bucket": "2021", "ageBand": "40-64", "sex": "male", "count": 1},
    ]


def test_week_buckets_start_on_monday(client: FlaskClient) -> None:
    got = run(
        client, measure="condition-incidence", code="x|y", start="2024-01-03", end="2024-01-20", bucket="week"
    )
    assert got["buckets"] == ["2024-01-01", "2024-01-08", "2024-01-15"]
    assert got["totals"]["all"] == 0


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"start": "2020-01-01", "end": "2020-12-31"}, "measure"),
        ({"measure": "lab-distribution", "start": "2020-01-01", "end": "2020-12-31"}, "code"),
        ({"measure": "lab-distribution", "code": HBA1C, "start": "2020-13-01", "end": "2020-12-31"}, "start"),
        ({"measure": "lab-distribution", "code": HBA1C, "start": "2020-01-01", "end": "2020-12-31",
          "bucket": "day"}, "bucket"),
        ({"measure": "condition-incidence", "code": "a|b", "start": "2020-01-01", "end": "2020-12-31",
          "color": "red"}, "color"),
        ({"measure": "condition-incidence", "code": "a|b", "start": "2020-01-01", "end": "2020-12-31",
          "ageBands": "18,x"}, "ageBands"),
        ({"measure": "condition-incidence", "start": "2020-01-01", "end": "2020-12-31"}, "code"),
    ],
)  # fmt: skip
def test_bad_parameters_are_400(client: FlaskClient, params: dict[str, str], where: str) -> None:
    response = client.get("/fhir/$population-analytics", query_string=params)
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == [where]


def test_operation_definition_is_served_and_declared(client: FlaskClient) -> None:
    definition = client.get("/fhir/OperationDefinition/population-analytics").get_json()
    assert definition["resourceType"] == "OperationDefinition"
    assert definition["code"] == "population-analytics"
    assert {p["name"] for p in definition["parameter"]} >= {"measure", "start", "end", "bucket", "code"}
    operations = client.get("/fhir/metadata").get_json()["rest"][0]["operation"]
    assert {"name": "population-analytics", "definition": definition["url"]} in operations
    assert client.get("/fhir/OperationDefinition/unknown").status_code == 404
