"""Fixtures and builders for tests that run with SMART authorization required."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from fhir_server import create_app
from fhir_server.auth.clients import register
from fhir_server.auth.server import AuthServer
from fhir_server.repository.auth_store import USERS, AuthStore
from fhir_server.repository.mongo import MongoRepository
from fhir_server.settings import Settings

Mint = Callable[..., str]


@pytest.fixture
def secure_app(settings: Settings, repository: MongoRepository) -> Iterator[Flask]:
    app = create_app(settings.with_overrides(auth="required"), repository=repository)
    yield app
    audit = app.extensions["interop"].audit
    if audit is not None:
        audit.close()


@pytest.fixture
def secure_client(secure_app: Flask) -> FlaskClient:
    return secure_app.test_client()


@pytest.fixture
def auth(secure_app: Flask) -> AuthServer:
    server: AuthServer = secure_app.extensions["interop"].auth
    return server


@pytest.fixture
def store(auth: AuthServer) -> AuthStore:
    return auth.store


@pytest.fixture
def mint(auth: AuthServer) -> Mint:
    """A token for the given scopes (and patient), as `interop token` mints it."""

    def make(scopes: str, patient: str | None = None, minutes: int = 10, admin: bool = False) -> str:
        return auth.tokens.issue(
            subject="tester",
            client_id="test-client",
            scope=scopes,
            lifetime=timedelta(minutes=minutes),
            patient=patient,
            admin=admin,
        ).token

    return make


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json", **extra}


def ec_key() -> ECKey:
    return ECKey.generate_key("P-384", private=True, auto_kid=True)


def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, private=True, auto_kid=True)


def public_jwks(*keys: Any) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


def backend_client(store: AuthStore, key: Any, scopes: str = "system/*.rs") -> str:
    client, _ = register(store, name="backend", scopes=scopes, jwks=public_jwks(key))
    return str(client["_id"])


def assertion(
    client_id: str,
    key: Any,
    token_url: str,
    *,
    alg: str = "ES384",
    kid: str | None = None,
    lifetime: int = 240,
    jti: str | None = None,
    **claims: Any,
) -> str:
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": now + lifetime,
        "jti": jti or uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode({"alg": alg, "kid": kid or key.kid, "typ": "JWT"}, body, key, algorithms=[alg])


def create_user(store: AuthStore, username: str, password: str, patient: str | None = None) -> None:
    from fhir_server.auth.hashing import hash_secret

    store.insert(
        USERS, {"_id": username, "password_hash": hash_secret(password), "patient": patient, "admin": False}
    )
