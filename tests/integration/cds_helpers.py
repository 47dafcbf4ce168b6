"""Builders for CDS tests: a patient's record as a transaction Bundle, hook requests, and a
call helper that checks every response against the card schema."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
from flask.testing import FlaskClient

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "decision_support" / "schemas" / "cds-response.schema.json").read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UNITS = {"4548-4": "%", "1558-6": "mg/dL", "1518-0": "mg/dL", "2160-0": "mg/dL", "39156-5": "kg/m2",
         "11996-6": "{#}", "2093-3": "mg/dL", "2085-9": "mg/dL", "18262-6": "mg/dL"}  # fmt: skip


def days_ago(n: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=n)).isoformat()


def birth_date(age: int) -> str:
    today = datetime.now(UTC).date()
    return (
        date(today.year - age, 1, 1).isoformat()
        if today.month > 1 or today.day > 1
        else f"{today.year - age - 1}-01-01"
    )


def patient(pid: str, gender: str, age: int) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth_date(age)}


def lab(pid: str, code: str, value: float, when: str, oid: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid or f"{pid}-{code}-{when}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": UNITS[code], "system": "http://unitsofmeasure.org",
                          "code": UNITS[code]},
    }  # fmt: skip


def bp(pid: str, systolic: float, diastolic: float, when: str) -> dict[str, Any]:
    def part(code: str, value: float) -> dict[str, Any]:
        return {"code": {"coding": [{"system": LOINC, "code": code}]},
                "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org",
                                  "code": "mm[Hg]"}}  # fmt: skip

    return {
        "resourceType": "Observation",
        "id": f"{pid}-bp-{when}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        "component": [part("8480-6", systolic), part("8462-4", diastolic)],
    }


def condition(pid: str, snomed: str, cid: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid or f"{pid}-cond-{snomed}",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "code": {"coding": [{"system": SNOMED, "code": snomed}]},
        "subject": {"reference": f"Patient/{pid}"},
    }


def medication(pid: str, name: str, mid: str, status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {"text": name},
        "subject": {"reference": f"Patient/{pid}"},
    }


def allergy(pid: str, substance: str, aid: str, criticality: str = "high") -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "id": aid,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "criticality": criticality,
        "code": {"text": substance},
        "patient": {"reference": f"Patient/{pid}"},
    }


def load(client: FlaskClient, resources: list[dict[str, Any]]) -> None:
    """Store resources through the REST API: one transaction Bundle of PUTs."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }
    response = client.post("/fhir", json=bundle, headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 200, response.get_data(as_text=True)


def context(hook: str, pid: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"userId": "Practitioner/doc-1", "patientId": pid}
    if hook == "encounter-discharge":
        body["encounterId"] = extra.pop("encounterId", "enc-1")
    if hook in ("order-select", "order-sign"):
        body["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": []}
    body.update(extra)
    return body


def request_body(hook: str, ctx: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": ctx, **fields}


def call(
    client: FlaskClient, service: str, body: dict[str, Any], status: int = 200, **kw: Any
) -> dict[str, Any]:
    """POST a hook request; every 200 response is validated against the card schema."""
    response = client.post(f"/cds-services/{service}", json=body, **kw)
    assert response.status_code == status, response.get_data(as_text=True)
    payload = response.get_json()
    if status == 200:
        VALIDATOR.validate(payload)
        for i, card in enumerate(payload["cards"]):  # "cards": [] is how the spec says "nothing"
            assert_no_empty(card, f"$.cards[{i}]")
    else:
        assert response.mimetype == "application/json"
    return payload  # type: ignore[no-any-return]


def assert_no_empty(value: Any, where: str = "$") -> None:
    """No null, empty string, empty list or empty object anywhere in a response."""
    assert value is not None and value != "" and value != [] and value != {}, f"empty value at {where}"
    if isinstance(value, dict):
        for k, v in value.items():
            assert_no_empty(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            assert_no_empty(v, f"{where}[{i}]")


def prefetch_for(client: FlaskClient, service: str, pid: str) -> dict[str, Any]:
    """What a conforming EHR would prefetch: each discovery template run on our own FHIR API."""
    templates = next(s for s in client.get("/cds-services").get_json()["services"] if s["id"] == service)[
        "prefetch"
    ]
    prefetch = {}
    for key, template in templates.items():
        query = template.replace("{{context.patientId}}", pid).replace("{{context.encounterId}}", "enc-1")
        response = client.get(f"/fhir/{query}")
        prefetch[key] = response.get_json() if response.status_code == 200 else None
    return prefetch
