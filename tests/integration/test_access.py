"""INTEROP_AUTH=required: no token, no health data (tokens: test_smart_*.py)."""

from __future__ import annotations

from fhir_server import create_app
from fhir_server.repository.mongo import MongoRepository
from fhir_server.settings import Settings
from tests.integration.helpers import headers, patient


def test_required_auth_refuses_health_data_but_serves_metadata(
    settings: Settings, repository: MongoRepository
) -> None:
    app = create_app(settings.with_overrides(auth="required"), repository=repository)
    client = app.test_client()
    for response in (
        client.get("/fhir/Patient/1"),
        client.post("/fhir/Patient", json=patient(), headers=headers()),
        client.get("/fhir/_history"),
        client.get("/fhir/Patient?name=x"),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["issue"][0]["code"] == "login"
    assert client.get("/fhir/metadata").status_code == 200
    assert client.get("/healthz").status_code == 200
    # and nothing was written by the refused create (only the audit trail of the refusals)
    app.extensions["interop"].audit.close()
    assert set(repository.resource_types_in_use()) <= {"AuditEvent"}


def test_disabled_auth_is_open(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/fhir/Patient/1").status_code == 404
