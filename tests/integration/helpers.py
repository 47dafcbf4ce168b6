"""Small builders for test resources and requests."""

from __future__ import annotations

from typing import Any

FHIR_JSON = "application/fhir+json"


def patient(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
        "name": [{"family": "Chalmers", "given": ["Peter", "James"]}],
        "gender": "male",
        "birthDate": "1974-12-25",
    }
    body.update(overrides)
    return body


def headers(**extra: str) -> dict[str, str]:
    return {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, **extra}
