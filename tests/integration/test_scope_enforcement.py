"""Scopes enforced on every interaction: a matrix of scopes x interactions, and v2 query scopes."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.integration.smart import Mint, bearer

JSON = {"Content-Type": "application/fhir+json"}
LAB = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]
}
VITALS = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
    ]
}


def observation(subject: str, category: dict[str, Any] = LAB, code: str = "718-7") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [category],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{subject}"},
    }


def _create(client: FlaskClient, token: str, body: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{body['resourceType']}", json=body, headers=bearer(token, **JSON))
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def _interactions(client: FlaskClient, token: str, admin: str) -> dict[str, int]:
    """The status of each interaction on Observation under ``token``."""
    target = _create(client, admin, observation("p1"))
    body = {**observation("p1"), "id": target}
    return {
        "read": client.get(f"/fhir/Observation/{target}", headers=bearer(token)).status_code,
        "vread": client.get(f"/fhir/Observation/{target}/_history/1", headers=bearer(token)).status_code,
        "search": client.get("/fhir/Observation?code=718-7", headers=bearer(token)).status_code,
        "history": client.get(f"/fhir/Observation/{target}/_history", headers=bearer(token)).status_code,
        "create": client.post(
            "/fhir/Observation", json=observation("p1"), headers=bearer(token, **JSON)
        ).status_code,
        "update": client.put(
            f"/fhir/Observation/{target}", json=body, headers=bearer(token, **JSON)
        ).status_code,
        "patch": client.patch(
            f"/fhir/Observation/{target}",
            json=[{"op": "replace", "path": "/status", "value": "amended"}],
            headers=bearer(token, **{"Content-Type": "application/json-patch+json"}),
        ).status_code,
        "delete": client.delete(f"/fhir/Observation/{target}", headers=bearer(token)).status_code,
    }


OK = {"read": 200, "vread": 200, "search": 200, "history": 200, "create": 201, "update": 200, "patch": 200}


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        ("system/*.*", {"read", "vread", "search", "history", "create", "update", "patch", "delete"}),
        ("system/*.cruds", {"read", "vread", "search", "history", "create", "update", "patch", "delete"}),
        ("system/Observation.read", {"read", "vread", "search", "history"}),
        ("system/Observation.rs", {"read", "vread", "search", "history"}),
        ("system/Observation.r", {"read", "vread", "history"}),
        ("system/Observation.s", {"search"}),
        ("system/Observation.write", {"create", "update", "patch", "delete"}),
        ("system/Observation.c", {"create"}),
        ("system/Observation.u", {"update", "patch"}),
        ("system/Observation.d", {"delete"}),
        ("user/*.write", {"create", "update", "patch", "delete"}),
        (
            "user/Observation.cruds",
            {"read", "vread", "search", "history", "create", "update", "patch", "delete"},
        ),
        ("system/Patient.cruds", set()),
        ("openid fhirUser", set()),
    ],
)
def test_scope_matrix(secure_client: FlaskClient, mint: Mint, scope: str, allowed: set[str]) -> None:
    statuses = _interactions(secure_client, mint(scope), mint("system/*.cruds"))
    for interaction, status in statuses.items():
        if interaction in allowed:
            assert status == OK.get(interaction, 204) or (interaction == "delete" and status == 200), (
                interaction,
                status,
            )
        else:
            assert status == 403, (interaction, status)


def test_v2_scope_query_narrows_reads_searches_and_writes(secure_client: FlaskClient, mint: Mint) -> None:
    admin = mint("system/*.cruds")
    lab = _create(secure_client, admin, observation("p1", LAB))
    vitals = _create(secure_client, admin, observation("p1", VITALS))
    token = mint("system/Observation.crs?category=laboratory")
    assert secure_client.get(f"/fhir/Observation/{lab}", headers=bearer(token)).status_code == 200
    assert secure_client.get(f"/fhir/Observation/{vitals}", headers=bearer(token)).status_code == 404
    found = secure_client.get("/fhir/Observation", headers=bearer(token)).get_json()
    assert [e["resource"]["id"] for e in found["entry"]] == [lab]
    assert found["total"] == 1
    made = secure_client.post(
        "/fhir/Observation", json=observation("p1", VITALS), headers=bearer(token, **JSON)
    )
    assert made.status_code == 403
    assert (
        secure_client.post(
            "/fhir/Observation", json=observation("p1"), headers=bearer(token, **JSON)
        ).status_code
        == 201
    )


def test_patient_scope_query_and_compartment_together(secure_client: FlaskClient, mint: Mint) -> None:
    admin = mint("system/*.cruds")
    mine = _create(secure_client, admin, observation("pa", LAB))
    _create(secure_client, admin, observation("pa", VITALS))
    _create(secure_client, admin, observation("pb", LAB))
    token = mint("patient/Observation.rs?category=laboratory", patient="pa")
    found = secure_client.get("/fhir/Observation?_total=accurate", headers=bearer(token)).get_json()
    assert [e["resource"]["id"] for e in found["entry"]] == [mine]
    assert found["total"] == 1


def test_audit_events_are_not_writable_through_the_api(secure_client: FlaskClient, mint: Mint) -> None:
    event = {
        "resourceType": "AuditEvent",
        "type": {"code": "rest"},
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"requestor": True}],
        "source": {"observer": {"display": "x"}},
    }
    response = secure_client.post("/fhir/AuditEvent", json=event, headers=bearer(mint("system/*.*"), **JSON))
    assert response.status_code == 403
    patient_token = mint("patient/*.rs", patient="pa")
    assert secure_client.get("/fhir/AuditEvent", headers=bearer(patient_token)).status_code == 403
    assert (
        secure_client.get("/fhir/AuditEvent", headers=bearer(mint("system/AuditEvent.rs"))).status_code == 200
    )


def test_public_endpoints_need_no_token(secure_client: FlaskClient) -> None:
    metadata = secure_client.get("/fhir/metadata")
    assert metadata.status_code == 200
    security = metadata.get_json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris["token"].endswith("/auth/token")
    config = secure_client.get("/fhir/.well-known/smart-configuration", headers={"Accept": "text/html"})
    assert config.status_code == 200
    assert config.mimetype == "application/json"
    body = config.get_json()
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert {
        "token_endpoint",
        "authorization_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    } <= set(body)
    assert secure_client.get("/healthz").status_code == 200
    assert secure_client.get("/readyz").status_code == 200


def test_security_headers(secure_client: FlaskClient, mint: Mint) -> None:
    response = secure_client.get("/fhir/Patient", headers=bearer(mint("system/*.rs")))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP here
    denied = secure_client.get("/fhir/Patient")
    assert denied.headers["X-Content-Type-Options"] == "nosniff"
    assert "Traceback" not in denied.get_data(as_text=True)


def test_hsts_with_tls(settings, repository) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from fhir_server import create_app

    tls = settings.with_overrides(tls_cert=Path("cert.pem"), tls_key=Path("key.pem"), audit=False)
    response = create_app(tls, repository=repository).test_client().get("/fhir/metadata")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
