"""Date, number, quantity and composite search through the REST API on the real store."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.integration.helpers import headers


def observation(
    id: str, when: object, value: float | None = None, code: str = "8867-4", **extra: object
) -> dict:
    body: dict = {
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/p1"},
    }
    if isinstance(when, dict):
        body["effectivePeriod"] = when
    else:
        body["effectiveDateTime"] = when
    if value is not None:
        body["valueQuantity"] = {
            "value": value,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        }
    body.update(extra)
    return body


RESOURCES = [
    {"resourceType": "Patient", "id": "p1", "birthDate": "1980-05-01"},
    {"resourceType": "Patient", "id": "p2", "birthDate": "1980"},
    {"resourceType": "Patient", "id": "p3", "birthDate": "1991-12-31"},
    observation("o-day", "2020-03-15", 72),
    observation("o-instant", "2020-03-15T10:30:00Z", 88.5),
    observation("o-period", {"start": "2020-03-01", "end": "2020-03-31"}, 100),
    observation("o-open", {"start": "2021-06-01"}, None),
    observation(
        "o-bp",
        "2021-01-01",
        None,
        code="85354-9",
        component=[
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {
                    "value": 140,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {
                    "value": 90,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
        ],
    ),
]


@pytest.fixture
def loaded(client: FlaskClient) -> FlaskClient:
    for resource in RESOURCES:
        response = client.put(
            f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=headers()
        )
        assert response.status_code == 201, response.get_json()
    return client


def ids(client: FlaskClient, query: str) -> list[str]:
    response = client.get(f"/fhir/{query}")
    assert response.status_code == 200, response.get_json()
    return sorted(
        e["resource"]["id"] for e in response.get_json().get("entry", []) if e["search"]["mode"] == "match"
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Patient?birthdate=1980", ["p1", "p2"]),
        ("Patient?birthdate=1980-05", ["p1"]),
        ("Patient?birthdate=1980-05-01", ["p1"]),
        ("Patient?birthdate=ge1985", ["p3"]),
        ("Patient?birthdate=lt1980-06", ["p1", "p2"]),
        ("Patient?birthdate=ge1980&birthdate=le1980-12-31", ["p1", "p2"]),
        ("Patient?birthdate:missing=true", []),
        ("Observation?date=2020-03-15", ["o-day", "o-instant"]),
        ("Observation?date=2020-03", ["o-day", "o-instant", "o-period"]),
        ("Observation?date=gt2021-01-01", ["o-open"]),
        ("Observation?date=sa2020-12-31", ["o-bp", "o-open"]),
        ("Observation?date=eb2020-03-02", []),
        ("Observation?date=le2020-03-10", ["o-period"]),
        ("Observation?date=ne2020-03-15", ["o-bp", "o-open", "o-period"]),
    ],
)
def test_dates(loaded: FlaskClient, query: str, expected: list[str]) -> None:
    assert ids(loaded, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Observation?value-quantity=72", ["o-day"]),
        ("Observation?value-quantity=gt80", ["o-instant", "o-period"]),
        ("Observation?value-quantity=le88.5|http://unitsofmeasure.org|/min", ["o-day", "o-instant"]),
        ("Observation?value-quantity=100||mg", []),
        ("Observation?value-quantity=ap100", ["o-period"]),
        ("Observation?component-code-value-quantity=http://loinc.org|8480-6$gt130", ["o-bp"]),
        ("Observation?component-code-value-quantity=http://loinc.org|8462-4$gt130", []),
        ("Observation?code-value-quantity=http://loinc.org|8867-4$ge100", ["o-period"]),
    ],
)
def test_quantities_and_composites(loaded: FlaskClient, query: str, expected: list[str]) -> None:
    assert ids(loaded, query) == expected


def test_sort_by_date(loaded: FlaskClient) -> None:
    bundle = loaded.get("/fhir/Observation?code=8867-4&_sort=-date").get_json()
    # descending by the end of each resource's range: the open period first, a day after its instant
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["o-open", "o-period", "o-day", "o-instant"]
    asc = loaded.get("/fhir/Observation?code=8867-4&_sort=date").get_json()
    assert [e["resource"]["id"] for e in asc["entry"]] == ["o-period", "o-day", "o-instant", "o-open"]


def test_bad_date_is_400(loaded: FlaskClient) -> None:
    response = loaded.get("/fhir/Patient?birthdate=yesterday")
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["birthdate"]
    assert loaded.get("/fhir/Patient?birthdate=xx2020").status_code == 400
