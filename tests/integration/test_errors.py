"""Every error is an OperationOutcome with the right status and, where there is one, an expression."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.integration.helpers import headers, patient


def assert_outcome(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error"
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_malformed_json_is_400(client: FlaskClient) -> None:
    response = client.post("/fhir/Patient", data=b'{"resourceType": "Patient",', headers=headers())
    assert_outcome(response, 400)


def test_empty_body_is_400(client: FlaskClient) -> None:
    assert_outcome(client.post("/fhir/Patient", data=b"", headers=headers()), 400)


def test_body_type_must_match_url(client: FlaskClient) -> None:
    body = assert_outcome(
        client.post("/fhir/Patient", json={"resourceType": "Observation"}, headers=headers()), 400
    )
    assert body["issue"][0]["expression"] == ["resourceType"]


def test_unknown_element_is_422_with_expression(client: FlaskClient) -> None:
    response = client.post("/fhir/Patient", json=patient(favouriteColour="blue"), headers=headers())
    body = assert_outcome(response, 422)
    assert any("Patient.favouriteColour" in i.get("expression", []) for i in body["issue"])


def test_nested_wrong_type_points_at_element(client: FlaskClient) -> None:
    response = client.post("/fhir/Patient", json=patient(name=[{"given": "not-a-list"}]), headers=headers())
    body = assert_outcome(response, 422)
    assert any(e.startswith("Patient.name[0].given") for i in body["issue"] for e in i.get("expression", []))


def test_unsupported_media_type_is_415(client: FlaskClient) -> None:
    response = client.post(
        "/fhir/Patient", data=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"}
    )
    assert_outcome(response, 415)


@pytest.mark.parametrize("accept", ["application/fhir+xml", "text/html"])
def test_unsupported_accept_is_406(client: FlaskClient, accept: str) -> None:
    assert_outcome(client.get("/fhir/metadata", headers={"Accept": accept}), 406)


def test_unsupported_format_param_is_406(client: FlaskClient) -> None:
    assert_outcome(client.get("/fhir/metadata?_format=xml"), 406)


def test_method_not_allowed_is_405(client: FlaskClient) -> None:
    assert_outcome(client.delete("/fhir/metadata"), 405)
    response = client.post("/fhir/Patient/123")
    assert_outcome(response, 405)
    assert "GET" in response.headers["Allow"]


def test_unknown_path_is_404_outcome(client: FlaskClient) -> None:
    assert_outcome(client.get("/nothing-here"), 404)


def test_body_over_limit_is_413(app, client: FlaskClient) -> None:  # type: ignore[no-untyped-def]
    app.config["MAX_CONTENT_LENGTH"] = 1000
    big = patient(name=[{"family": "x" * 5000}])
    assert_outcome(client.post("/fhir/Patient", json=big, headers=headers()), 413)


def test_internal_error_is_500_outcome_without_trace(app, client: FlaskClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    service = app.extensions["interop"].resources

    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "read", boom)
    response = client.get("/fhir/Patient/x")
    body = assert_outcome(response, 500)
    assert "secret internals" not in response.get_data(as_text=True)
    assert body["issue"][0]["code"] == "exception"


def test_store_down_is_503_and_readyz_fails(mongo_uri: str) -> None:
    from fhir_server import create_app
    from fhir_server.repository.mongo import MongoRepository
    from fhir_server.settings import Settings

    repo = MongoRepository("mongodb://127.0.0.1:9/?directConnection=true", "down", timeout_ms=300)
    app = create_app(Settings(mongodb_uri="unused", auth="disabled", log_level="CRITICAL"), repository=repo)
    client = app.test_client()
    assert_outcome(client.get("/fhir/Patient/x"), 503)
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
    repo.close()


def test_request_id_is_echoed(client: FlaskClient) -> None:
    response = client.get("/fhir/Patient/none", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
