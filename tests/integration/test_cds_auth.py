"""CDS client JWTs (CDS Hooks 2.0 "Trusting CDS Clients"): the accepted case and each refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from decision_support import auth
from fhir_server import create_app
from fhir_server.settings import Settings
from tests.integration.cds_helpers import context, request_body

ISSUER = "https://ehr.test"
SERVICE_PATH = "/cds-services/diabetes-diagnosis"


class Jwks:
    """A JWKS endpoint on a free loopback port; counts fetches, keys can be rotated."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                raw = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Jwks:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    with Jwks() as server:
        yield server


@pytest.fixture
def keys(jwks: Jwks) -> dict[str, Any]:
    ec = ECKey.generate_key("P-384", parameters={"kid": "ec-1"})
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    jwks.keys = [ec.as_dict(private=False), rsa.as_dict(private=False)]
    return {"ES384": ec, "RS384": rsa}


@pytest.fixture
def secured(mongo_uri: str, database_name: str, repository: Any, jwks: Jwks) -> FlaskClient:
    settings = Settings(
        mongodb_uri=mongo_uri, database=database_name, auth="required", log_level="WARNING",
        cds_trusted_issuers=((ISSUER, jwks.url),),
    )  # fmt: skip
    return create_app(settings, repository=repository).test_client()


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    body = {"iss": ISSUER, "sub": "client-1", "aud": "http://127.0.0.1:8080" + SERVICE_PATH, "iat": now,
            "exp": now + 300, "jti": str(uuid.uuid4())}  # fmt: skip
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def token(key: Any, alg: str = "ES384", header: dict[str, Any] | None = None, **changes: Any) -> str:
    head = {"alg": alg, "typ": "JWT", "kid": key.kid, **(header or {})}
    return jwt.encode(head, claims(**changes), key, algorithms=[alg])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def post(client: FlaskClient, bearer: str | None, path: str = SERVICE_PATH) -> Any:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return client.post(
        path, json=request_body("patient-view", context("patient-view", "nobody")), headers=headers
    )


def assert_refused(response: Any) -> None:
    assert response.status_code == 401
    assert response.get_json() == {"error": "unauthorized"}  # no detail for the caller


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_signed_token_from_a_trusted_issuer_is_accepted(
    secured: FlaskClient, keys: dict[str, Any], alg: str
) -> None:
    response = post(secured, token(keys[alg], alg))
    assert response.status_code == 200 and response.get_json() == {"cards": []}


def test_discovery_is_open_and_everything_else_needs_a_token(
    secured: FlaskClient, keys: dict[str, Any]
) -> None:
    assert secured.get("/cds-services").status_code == 200
    assert_refused(post(secured, None))
    assert_refused(secured.post(SERVICE_PATH + "/feedback", json={"feedback": []}))
    assert_refused(secured.get(SERVICE_PATH + "/feedback/summary"))


def test_alg_none_is_refused(secured: FlaskClient, keys: dict[str, Any]) -> None:
    unsigned = (
        b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        + "."
        + b64(json.dumps(claims()).encode())
        + "."
    )
    assert_refused(post(secured, unsigned))


def test_hs256_signed_with_the_public_key_is_refused(secured: FlaskClient, keys: dict[str, Any]) -> None:
    public_pem = (
        keys["RS384"]
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
        + "."
        + b64(json.dumps(claims()).encode())
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert_refused(post(secured, signing_input + "." + b64(signature)))


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": int(time.time()) - 5},  # expired
        {"exp": None},
        {"iat": int(time.time()) + 600},  # issued in the future
        {"aud": "http://127.0.0.1:8080/cds-services/t2d-risk"},  # another service
        {"aud": "http://127.0.0.1:8080/cds-services/diabetes-diagnosis/"},  # not the exact URL
        {"iss": "https://evil.test"},
        {"jti": None},
    ],
)
def test_bad_claims_are_refused(secured: FlaskClient, keys: dict[str, Any], changes: dict[str, Any]) -> None:
    assert_refused(post(secured, token(keys["ES384"], **changes)))


def test_a_replayed_jti_is_refused(secured: FlaskClient, keys: dict[str, Any]) -> None:
    once = token(keys["ES384"])
    assert post(secured, once).status_code == 200
    assert_refused(post(secured, once))


def test_a_signature_by_another_key_is_refused(secured: FlaskClient, keys: dict[str, Any]) -> None:
    impostor = ECKey.generate_key("P-384", parameters={"kid": "ec-1"})  # same kid, other key
    assert_refused(post(secured, token(impostor)))


def test_unknown_kid_refetches_the_jwks_then_refuses(
    secured: FlaskClient, keys: dict[str, Any], jwks: Jwks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "REFRESH_INTERVAL", 0.0)
    assert post(secured, token(keys["ES384"])).status_code == 200
    fetched = jwks.fetches
    stranger = ECKey.generate_key("P-384", parameters={"kid": "ec-unknown"})
    assert_refused(post(secured, token(stranger)))
    assert jwks.fetches == fetched + 1


def test_a_rotated_key_is_picked_up_on_its_first_use(
    secured: FlaskClient, keys: dict[str, Any], jwks: Jwks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "REFRESH_INTERVAL", 0.0)
    assert post(secured, token(keys["ES384"])).status_code == 200
    rotated = ECKey.generate_key("P-384", parameters={"kid": "ec-2"})
    jwks.keys = [*jwks.keys, rotated.as_dict(private=False)]
    assert post(secured, token(rotated)).status_code == 200


def test_known_kids_do_not_refetch(secured: FlaskClient, keys: dict[str, Any], jwks: Jwks) -> None:
    for _ in range(3):
        assert post(secured, token(keys["ES384"])).status_code == 200
    assert jwks.fetches == 1


def test_jku_must_be_on_the_allowlist(secured: FlaskClient, keys: dict[str, Any], jwks: Jwks) -> None:
    assert post(secured, token(keys["ES384"], header={"jku": jwks.url})).status_code == 200
    with Jwks() as evil:
        evil.keys = jwks.keys
        assert_refused(post(secured, token(keys["ES384"], header={"jku": evil.url})))
        assert evil.fetches == 0


def test_no_trusted_issuers_means_closed(mongo_uri: str, database_name: str, repository: Any) -> None:
    settings = Settings(mongodb_uri=mongo_uri, database=database_name, auth="required", log_level="WARNING")
    client = create_app(settings, repository=repository).test_client()
    key = ECKey.generate_key("P-384", parameters={"kid": "k"})
    assert_refused(post(client, token(key)))
    assert client.get("/cds-services").status_code == 200


def test_trusted_issuers_from_the_environment() -> None:
    env = {"INTEROP_CDS_TRUSTED_ISSUERS": json.dumps({ISSUER: "https://ehr.test/jwks.json"})}
    assert Settings.from_env(env).cds_trusted_issuers == ((ISSUER, "https://ehr.test/jwks.json"),)
    from fhir_server.settings import SettingsError

    with pytest.raises(SettingsError):
        Settings.from_env({"INTEROP_CDS_TRUSTED_ISSUERS": '["not", "an", "object"]'})
