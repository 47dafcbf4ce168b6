"""SMART App Launch (standalone): authorization code with mandatory PKCE S256, login and consent."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient

from fhir_server.auth.clients import register
from fhir_server.repository.auth_store import AuthStore
from tests.integration.helpers import patient
from tests.integration.smart import Mint, bearer, create_user

FHIR = "http://127.0.0.1:8080/fhir"
REDIRECT = "https://app.example/callback"


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _app(store: AuthStore) -> str:
    client, _ = register(
        store, name="Patient app", scopes="patient/*.rs launch/patient", redirect_uris=(REDIRECT,)
    )
    return str(client["_id"])


def _params(client_id: str, verifier: str, **overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "launch/patient openid patient/*.rs",
        "state": "st-1",
        "aud": FHIR,
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v != ""}


def _login(client: FlaskClient, params: dict[str, str], password: str = "correct horse") -> str:
    response = client.post(
        "/auth/authorize", data={**params, "username": "ann", "password": password, "decision": "allow"}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def _code(location: str) -> str:
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


def _exchange(client: FlaskClient, client_id: str, code: str, verifier: str | None):  # type: ignore[no-untyped-def]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": client_id,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    return client.post("/auth/token", data=form)


def _seed(secure_client: FlaskClient, mint: Mint) -> str:
    created = secure_client.post(
        "/fhir/Patient",
        json=patient(),
        headers=bearer(mint("system/*.cruds"), **{"Content-Type": "application/fhir+json"}),
    )
    return str(created.get_json()["id"])


def test_standalone_launch_issues_a_patient_token(
    secure_client: FlaskClient, store: AuthStore, mint: Mint
) -> None:
    patient_id = _seed(secure_client, mint)
    create_user(store, "ann", "correct horse", patient=patient_id)
    client_id = _app(store)
    verifier = secrets.token_urlsafe(48)

    page = secure_client.get("/auth/authorize", query_string=_params(client_id, verifier))
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "https://app.example" in page.headers["Content-Security-Policy"]
    assert "patient/*.rs" in page.get_data(as_text=True)

    code = _code(_login(secure_client, _params(client_id, verifier)))
    response = _exchange(secure_client, client_id, code, verifier)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["patient"] == patient_id
    assert body["expires_in"] <= 3600
    assert "patient/*.rs" in body["scope"].split()
    own = secure_client.get(f"/fhir/Patient/{patient_id}", headers=bearer(body["access_token"]))
    assert own.status_code == 200
    # the code works once
    assert _exchange(secure_client, client_id, code, verifier).status_code == 400


def test_pkce_is_mandatory_and_checked(secure_client: FlaskClient, store: AuthStore) -> None:
    create_user(store, "ann", "correct horse", patient="p1")
    client_id = _app(store)
    verifier = secrets.token_urlsafe(48)

    for overrides in (
        {"code_challenge_method": "plain"},
        {"code_challenge": "", "code_challenge_method": ""},
    ):
        refused = secure_client.get("/auth/authorize", query_string=_params(client_id, verifier, **overrides))
        assert refused.status_code == 302
        error = parse_qs(urlsplit(refused.headers["Location"]).query)
        assert error["error"] == ["invalid_request"]
        assert "PKCE" in error["error_description"][0]

    code = _code(_login(secure_client, _params(client_id, verifier)))
    wrong = _exchange(secure_client, client_id, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400
    assert wrong.get_json()["error"] == "invalid_grant"
    missing = _exchange(
        secure_client, client_id, _code(_login(secure_client, _params(client_id, verifier))), None
    )
    assert missing.status_code == 400
    assert "code_verifier" in missing.get_json()["error_description"]


def test_login_failures_and_unregistered_redirects(secure_client: FlaskClient, store: AuthStore) -> None:
    create_user(store, "ann", "correct horse", patient="p1")
    client_id = _app(store)
    verifier = secrets.token_urlsafe(48)
    wrong = secure_client.post(
        "/auth/authorize",
        data={**_params(client_id, verifier), "username": "ann", "password": "wrong", "decision": "allow"},
    )
    assert wrong.status_code == 401
    assert "Wrong username or password" in wrong.get_data(as_text=True)
    denied = secure_client.post(
        "/auth/authorize",
        data={**_params(client_id, verifier), "username": "ann", "password": "x", "decision": "deny"},
    )
    assert parse_qs(urlsplit(denied.headers["Location"]).query)["error"] == ["access_denied"]
    # an unregistered redirect URI is never redirected to
    evil = secure_client.get(
        "/auth/authorize", query_string=_params(client_id, verifier, redirect_uri="https://evil.example/cb")
    )
    assert evil.status_code == 400
    assert "Location" not in evil.headers
    assert "<script" not in evil.get_data(as_text=True)
    wrong_aud = secure_client.get(
        "/auth/authorize", query_string=_params(client_id, verifier, aud="https://x/fhir")
    )
    assert parse_qs(urlsplit(wrong_aud.headers["Location"]).query)["error"] == ["invalid_request"]


def test_public_client_cannot_use_client_credentials(secure_client: FlaskClient, store: AuthStore) -> None:
    client_id = _app(store)
    response = secure_client.post(
        "/auth/token", data={"grant_type": "client_credentials", "client_id": client_id}
    )
    assert response.status_code == 401
