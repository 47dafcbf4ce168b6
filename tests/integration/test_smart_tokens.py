"""The token endpoint and access token checks: backend services, secrets, negative cases."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from joserfc import jwt

from fhir_server.auth.clients import register
from fhir_server.auth.keys import SigningKeys
from fhir_server.auth.server import AuthServer
from fhir_server.auth.tokens import Tokens
from fhir_server.repository.auth_store import AuthStore
from tests.integration.smart import Mint, assertion, backend_client, bearer, ec_key, rsa_key

TOKEN_URL = "http://127.0.0.1:8080/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _token(client: FlaskClient, **form: str):  # type: ignore[no-untyped-def]
    return client.post("/auth/token", data={"grant_type": "client_credentials", **form})


def _backend(client: FlaskClient, signed: str, scope: str = "system/*.rs"):  # type: ignore[no-untyped-def]
    return _token(client, scope=scope, client_assertion_type=ASSERTION_TYPE, client_assertion=signed)


@pytest.mark.parametrize(("alg", "make_key"), [("ES384", ec_key), ("RS384", rsa_key)])
def test_backend_services_token_reads_data(
    secure_client: FlaskClient, store: AuthStore, alg, make_key
) -> None:  # type: ignore[no-untyped-def]
    key = make_key()
    client_id = backend_client(store, key)
    response = _backend(secure_client, assertion(client_id, key, TOKEN_URL, alg=alg))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 300
    assert body["scope"] == "system/*.rs"
    assert response.headers["Cache-Control"] == "no-store"
    assert secure_client.get("/fhir/Patient", headers=bearer(body["access_token"])).status_code == 200
    # read-only scopes: a create is refused
    created = secure_client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient"},
        headers=bearer(body["access_token"], **{"Content-Type": "application/fhir+json"}),
    )
    assert created.status_code == 403
    assert created.get_json()["issue"][0]["code"] == "forbidden"


def test_backend_scopes_are_limited_to_registration(secure_client: FlaskClient, store: AuthStore) -> None:
    key = ec_key()
    client_id = backend_client(store, key, scopes="system/Observation.rs")
    response = _backend(secure_client, assertion(client_id, key, TOKEN_URL), scope="system/*.cruds")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_scope"


def _bad_assertions(client_id: str, key, other):  # type: ignore[no-untyped-def]
    now = int(time.time())
    return {
        "expired": assertion(client_id, key, TOKEN_URL, lifetime=-10),
        "too long-lived": assertion(client_id, key, TOKEN_URL, lifetime=3600),
        "wrong aud": assertion(client_id, key, "http://elsewhere.example/token"),
        "wrong sub": assertion(client_id, key, TOKEN_URL, sub="someone-else"),
        "unknown kid": assertion(client_id, key, TOKEN_URL, kid="no-such-key"),
        "signed by another key": assertion(client_id, other, TOKEN_URL, kid=key.kid),
        "not yet valid": assertion(client_id, key, TOKEN_URL, nbf=now + 600),
        "ES256 (not allowed)": jwt.encode(
            {"alg": "ES256", "kid": key.kid},
            {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 60, "jti": "x1"},
            __import__("joserfc.jwk", fromlist=["ECKey"]).ECKey.generate_key("P-256", private=True),
            algorithms=["ES256"],
        ),
        "HS256 with the public key": _hs256(
            {"alg": "HS256", "kid": key.kid},
            {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 60, "jti": "x2"},
            key.as_pem(private=False),
        ),
        "alg none": _unsigned({"alg": "none", "kid": key.kid}, {"iss": client_id, "sub": client_id}),
    }


def _part(value: dict) -> str:  # type: ignore[type-arg]
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _unsigned(header: dict, claims: dict) -> str:  # type: ignore[type-arg]
    return f"{_part(header)}.{_part(claims)}."


def _hs256(header: dict, claims: dict, secret: bytes) -> str:  # type: ignore[type-arg]
    """The classic confusion attack: an HMAC keyed with the verifier's public key."""
    signing_input = f"{_part(header)}.{_part(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def test_bad_client_assertions_are_rejected(secure_client: FlaskClient, store: AuthStore) -> None:
    key, other = ec_key(), ec_key()
    client_id = backend_client(store, key)
    for why, signed in _bad_assertions(client_id, key, other).items():
        response = _backend(secure_client, signed)
        assert response.status_code == 401, why
        assert response.get_json()["error"] == "invalid_client", why


def test_replayed_jti_is_rejected(secure_client: FlaskClient, store: AuthStore) -> None:
    key = ec_key()
    client_id = backend_client(store, key)
    signed = assertion(client_id, key, TOKEN_URL, jti="once")
    assert _backend(secure_client, signed).status_code == 200
    replay = _backend(secure_client, signed)
    assert replay.status_code == 401
    assert "already used" in replay.get_json()["error_description"]
    # a new assertion reusing the jti is a replay too
    assert _backend(secure_client, assertion(client_id, key, TOKEN_URL, jti="once")).status_code == 401


def test_client_secret_basic_and_post(secure_client: FlaskClient, store: AuthStore) -> None:
    client, secret = register(store, name="secret app", scopes="system/Patient.rs", secret=True)
    assert secret
    basic = base64.b64encode(f"{client['_id']}:{secret}".encode()).decode()
    ok = secure_client.post(
        "/auth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert ok.status_code == 200
    assert ok.get_json()["scope"] == "system/Patient.rs"
    posted = _token(secure_client, client_id=client["_id"], client_secret=secret)
    assert posted.status_code == 200
    wrong = _token(secure_client, client_id=client["_id"], client_secret=secret + "x")
    assert wrong.status_code == 401
    assert wrong.get_json()["error"] == "invalid_client"
    assert _token(secure_client, client_id="nobody", client_secret="x").status_code == 401
    assert _token(secure_client).status_code == 401


def _forged(auth: AuthServer, claims_override: dict, header_override: dict | None = None) -> str:  # type: ignore[type-arg]
    good = auth.tokens.issue(
        subject="s", client_id="c", scope="system/*.rs", lifetime=timedelta(minutes=5)
    ).claims
    key = auth.tokens._keys.current()
    header = {"alg": "ES384", "kid": key.kid, **(header_override or {})}
    return jwt.encode(header, {**good, **claims_override}, key, algorithms=["ES384"])


def test_access_token_negative_cases(secure_client: FlaskClient, auth: AuthServer, mint: Mint) -> None:
    now = int(time.time())
    key = auth.tokens._keys.current()
    good_claims = auth.tokens.issue(
        subject="s", client_id="c", scope="system/*.rs", lifetime=timedelta(minutes=5)
    ).claims
    cases = {
        "none": None,
        "garbage": "not.a.token",
        "alg none": _unsigned({"alg": "none", "kid": key.kid}, good_claims),
        "HS256 keyed with the public key": _hs256(
            {"alg": "HS256", "kid": key.kid}, good_claims, key.as_pem(private=False)
        ),
        "expired": _forged(auth, {"exp": now - 120, "iat": now - 400, "nbf": now - 400}),
        "not yet valid": _forged(auth, {"nbf": now + 600}),
        "wrong aud": _forged(auth, {"aud": "http://elsewhere.example/fhir"}),
        "wrong iss": _forged(auth, {"iss": "http://elsewhere.example/fhir"}),
        "unknown kid": _forged(auth, {}, {"kid": "1-1"}),
    }
    for why, token in cases.items():
        headers = bearer(token) if token else {"Accept": "application/fhir+json"}
        response = secure_client.get("/fhir/Patient", headers=headers)
        assert response.status_code == 401, why
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"], why
        assert response.get_json()["resourceType"] == "OperationOutcome", why
    assert secure_client.get("/fhir/Patient", headers=bearer(mint("system/*.rs"))).status_code == 200


def test_revoked_token_is_refused_and_introspection_says_inactive(
    secure_client: FlaskClient, store: AuthStore
) -> None:
    client, secret = register(store, name="app", scopes="system/*.rs", secret=True)
    creds = {"client_id": client["_id"], "client_secret": secret or ""}
    token = _token(secure_client, **creds).get_json()["access_token"]
    assert secure_client.get("/fhir/Patient", headers=bearer(token)).status_code == 200
    active = secure_client.post("/auth/introspect", data={"token": token, **creds}).get_json()
    assert active["active"] is True
    assert active["scope"] == "system/*.rs"
    assert secure_client.post("/auth/revoke", data={"token": token, **creds}).status_code == 200
    refused = secure_client.get("/fhir/Patient", headers=bearer(token))
    assert refused.status_code == 401
    assert "revoked" in refused.get_json()["issue"][0]["diagnostics"]
    assert secure_client.post("/auth/introspect", data={"token": token, **creds}).get_json() == {
        "active": False
    }
    # introspection needs an authenticated client
    assert secure_client.post("/auth/introspect", data={"token": token}).status_code == 401


def test_key_rotation_keeps_old_tokens_valid_until_expiry(store: AuthStore) -> None:
    clock = [datetime(2030, 1, 1, 10, 0, tzinfo=UTC)]
    keys = SigningKeys(store, rotation=timedelta(hours=2), clock=lambda: clock[0])
    tokens = Tokens(keys, store, issuer="https://x/fhir", audience="https://x/fhir", clock=lambda: clock[0])
    early = tokens.issue(subject="s", client_id="c", scope="system/*.rs", lifetime=timedelta(hours=1))
    first_kid = keys.current().kid
    clock[0] += timedelta(hours=1, minutes=50)
    late = tokens.issue(subject="s", client_id="c", scope="system/*.rs", lifetime=timedelta(hours=1))
    clock[0] += timedelta(minutes=15)  # next period: a new key signs, the old one still verifies
    assert keys.current().kid != first_kid
    assert {k["kid"] for k in keys.jwks()["keys"]} == {first_kid, keys.current().kid}
    assert tokens.verify(late.token)["sub"] == "s"
    with pytest.raises(Exception, match="expired"):
        tokens.verify(early.token)
    clock[0] += timedelta(hours=2)  # two periods on: the first key is gone from the JWKS
    assert first_kid not in {k["kid"] for k in keys.jwks()["keys"]}
    # a second worker shares the same keys (the store decides who created them)
    other = SigningKeys(store, rotation=timedelta(hours=2), clock=lambda: clock[0])
    assert other.current().kid == keys.current().kid
    assert other.current().as_dict(private=False) == keys.current().as_dict(private=False)


def test_jwks_endpoint_lists_public_keys_only(secure_client: FlaskClient) -> None:
    keys = secure_client.get("/auth/jwks").get_json()["keys"]
    assert keys
    assert all("d" not in k and k["alg"] == "ES384" for k in keys)


def test_token_endpoint_is_rate_limited(secure_app, secure_client: FlaskClient) -> None:  # type: ignore[no-untyped-def]
    from fhir_server.auth.ratelimit import RateLimiter

    secure_app.extensions["interop_rate_limiter"] = RateLimiter(3)
    statuses = [_token(secure_client, client_id="x", client_secret="y").status_code for _ in range(5)]
    assert statuses[:3] == [401, 401, 401]
    limited = _token(secure_client, client_id="x", client_secret="y")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1


def test_api_rate_limit_per_client(settings, repository, mint: Mint) -> None:  # type: ignore[no-untyped-def]
    from fhir_server import create_app

    app = create_app(
        settings.with_overrides(auth="required", api_rate_per_minute=3, audit=False), repository=repository
    )
    client = app.test_client()
    token = (
        app.extensions["interop"]
        .auth.tokens.issue(subject="s", client_id="busy", scope="system/*.rs", lifetime=timedelta(minutes=5))
        .token
    )
    other = (
        app.extensions["interop"]
        .auth.tokens.issue(subject="s", client_id="calm", scope="system/*.rs", lifetime=timedelta(minutes=5))
        .token
    )
    assert [client.get("/fhir/Patient", headers=bearer(token)).status_code for _ in range(3)] == [200] * 3
    limited = client.get("/fhir/Patient", headers=bearer(token))
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.get_json()["issue"][0]["code"] == "throttled"
    assert client.get("/fhir/Patient", headers=bearer(other)).status_code == 200


def test_jwks_url_clients_fetch_and_refresh_their_keys(store: AuthStore) -> None:
    from fhir_server.auth.clients import ClientAuthenticator

    old, new = ec_key(), ec_key()
    published = {"keys": [old.as_dict(private=False)]}
    fetched: list[str] = []

    def fetch(url: str) -> dict:  # type: ignore[type-arg]
        fetched.append(url)
        return published

    client, _ = register(store, name="remote", scopes="system/*.rs", jwks_url="https://remote.example/jwks")
    clients = ClientAuthenticator(store, token_url=TOKEN_URL, fetch=fetch)
    form = {"client_assertion_type": ASSERTION_TYPE}
    assert clients.authenticate({**form, "client_assertion": assertion(client["_id"], old, TOKEN_URL)}, None)
    # the client rotates its key: an unknown kid makes the server read the JWKS URL again
    published = {"keys": [old.as_dict(private=False), new.as_dict(private=False)]}
    assert clients.authenticate({**form, "client_assertion": assertion(client["_id"], new, TOKEN_URL)}, None)
    assert fetched == ["https://remote.example/jwks"] * 2


def test_auth_events_are_audited(
    secure_app, secure_client: FlaskClient, store: AuthStore, mint: Mint
) -> None:  # type: ignore[no-untyped-def]
    client, secret = register(store, name="app", scopes="system/*.rs", secret=True)
    issued = _token(secure_client, client_id=client["_id"], client_secret=secret or "")
    refused = _token(secure_client, client_id=client["_id"], client_secret="wrong")
    assert (issued.status_code, refused.status_code) == (200, 401)
    assert secure_app.extensions["interop"].audit.flush(timeout=60)
    reader = bearer(mint("system/AuditEvent.rs"))
    events = secure_client.get("/fhir/AuditEvent?subtype=token&_count=50", headers=reader).get_json()["entry"]
    outcomes = sorted(
        (e["resource"]["outcome"], e["resource"]["agent"][0]["who"]["identifier"]["value"]) for e in events
    )
    assert outcomes == [("0", client["_id"]), ("4", client["_id"])]


def test_expired_auth_records_are_purged(store: AuthStore) -> None:
    now = datetime.now(UTC)
    store.revoke("old", now - timedelta(hours=2))
    store.revoke("live", now + timedelta(minutes=30))
    assert store.claim_once("jti:c:old", now - timedelta(hours=2))
    assert store.purge_expired(now) == 2
    assert not store.is_revoked("old")
    assert store.is_revoked("live")
    assert store.claim_once("jti:c:old", now + timedelta(minutes=5))  # forgotten, and expired anyway
