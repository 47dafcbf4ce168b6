"""Client registration and client authentication at the token endpoint.

Three ways a client proves who it is: ``private_key_jwt`` (SMART Backend Services: a JWT
assertion signed with a key from the client's registered JWKS or JWKS URL, ES384 or
RS384, ``iss`` = ``sub`` = client id, ``aud`` = the token URL, at most five minutes to
live, each ``jti`` once), ``client_secret_basic`` / ``client_secret_post`` (a secret
checked in constant time against its scrypt hash), or none (public app clients, which
must then prove possession of the PKCE verifier).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fhir_server.auth import errors
from fhir_server.auth.hashing import hash_secret, new_secret, verify_secret
from fhir_server.repository.auth_store import CLIENTS, AuthStore

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("ES384", "RS384")
MAX_ASSERTION_LIFETIME = 300
JWKS_CACHE_SECONDS = 300


def register(
    store: AuthStore,
    *,
    name: str,
    scopes: str,
    jwks: dict[str, Any] | None = None,
    jwks_url: str | None = None,
    secret: bool = False,
    redirect_uris: tuple[str, ...] = (),
) -> tuple[dict[str, Any], str | None]:
    """Store a new client; returns it and, for a secret client, the secret (shown once)."""
    if jwks is not None:
        # Refuse an unusable key set now, not at first use.
        KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    plain = new_secret() if secret else None
    client: dict[str, Any] = {
        "_id": f"{name.lower().replace(' ', '-')[:32]}-{secrets.token_hex(4)}",
        "name": name,
        "scopes": " ".join(scopes.split()),
        "jwks": jwks,
        "jwks_url": jwks_url,
        "secret_hash": hash_secret(plain) if plain else None,
        "redirect_uris": list(redirect_uris),
        "created": datetime.now(UTC),
    }
    store.insert(CLIENTS, client)
    return client, plain


def is_confidential(client: Mapping[str, Any]) -> bool:
    return bool(client.get("secret_hash") or client.get("jwks") or client.get("jwks_url"))


class ClientAuthenticator:
    def __init__(
        self,
        store: AuthStore,
        *,
        token_url: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fetch: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self._store = store
        self._token_url = token_url
        self._clock = clock
        self._fetch = fetch or _fetch_jwks
        self._jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def authenticate(
        self, form: Mapping[str, str], authorization: str | None, *, public_ok: bool = False
    ) -> dict[str, Any]:
        """The authenticated client, or ``invalid_client``."""
        if form.get("client_assertion") or form.get("client_assertion_type"):
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                raise errors.invalid_client("client_assertion_type must be " + ASSERTION_TYPE)
            return self._assertion(str(form.get("client_assertion") or ""))
        client_id, secret = _basic(authorization) if authorization else (None, None)
        if client_id is None:
            client_id, secret = form.get("client_id"), form.get("client_secret")
        if not client_id:
            raise errors.invalid_client("client authentication is required")
        client = self._store.client(client_id)
        if secret is not None:
            if not verify_secret(secret, client.get("secret_hash") if client else None) or client is None:
                raise errors.invalid_client("unknown client or wrong secret")
            return client
        if client is None or not public_ok or is_confidential(client):
            raise errors.invalid_client("this client must authenticate")
        return client

    def _assertion(self, assertion: str) -> dict[str, Any]:
        try:
            header = jws.extract_compact(assertion.encode()).headers()
            unverified = json.loads(jws.extract_compact(assertion.encode()).payload)
        except (JoseError, ValueError, UnicodeError) as exc:
            raise errors.invalid_client("the client assertion is malformed") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ASSERTION_ALGORITHMS:
            raise errors.invalid_client(
                f"client assertions must be signed with {' or '.join(ASSERTION_ALGORITHMS)}"
            )
        if not isinstance(kid, str) or not kid:
            raise errors.invalid_client("the client assertion needs a kid header")
        client_id = unverified.get("iss") if isinstance(unverified, dict) else None
        client = self._store.client(client_id) if isinstance(client_id, str) else None
        if client is None or not (client.get("jwks") or client.get("jwks_url")):
            raise errors.invalid_client("unknown client, or a client without registered keys")
        key = self._key(client, kid)
        try:
            claims = dict(jwt.decode(assertion, key, algorithms=[alg]).claims)
        except (JoseError, ValueError) as exc:
            raise errors.invalid_client("the client assertion's signature does not verify") from exc
        self._check_claims(client["_id"], claims)
        return client

    def _check_claims(self, client_id: str, claims: dict[str, Any]) -> None:
        now = self._clock().timestamp()
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise errors.invalid_client("iss and sub of the client assertion must be the client id")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self._token_url not in audiences:
            raise errors.invalid_client(f"the client assertion's aud must be {self._token_url}")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= now:
            raise errors.invalid_client("the client assertion has expired")
        if exp > now + MAX_ASSERTION_LIFETIME + 5:
            raise errors.invalid_client("the client assertion may live at most five minutes")
        nbf = claims.get("nbf")
        if isinstance(nbf, int) and nbf > now + 30:
            raise errors.invalid_client("the client assertion is not valid yet")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise errors.invalid_client("the client assertion needs a jti")
        if not self._store.claim_once(f"jti:{client_id}:{jti}", datetime.fromtimestamp(exp, UTC)):
            raise errors.invalid_client("the client assertion's jti was already used")

    def _key(self, client: dict[str, Any], kid: str) -> Any:
        for refresh in (False, True):
            key_set = self._key_set(client, refresh=refresh)
            for key in key_set.keys:
                if key.kid == kid:
                    return key
            if not client.get("jwks_url"):
                break
        raise errors.invalid_client(f"no registered key has kid '{kid}'")

    def _key_set(self, client: dict[str, Any], *, refresh: bool) -> KeySet:
        if client.get("jwks"):
            return KeySet.import_key_set(client["jwks"])
        url = str(client["jwks_url"])
        with self._lock:
            cached = self._jwks_cache.get(url)
        if cached is None or refresh or cached[0] < time.monotonic():
            try:
                document = self._fetch(url)
            except (OSError, ValueError) as exc:
                raise errors.invalid_client("the client's JWKS URL could not be read") from exc
            cached = (time.monotonic() + JWKS_CACHE_SECONDS, document)
            with self._lock:
                self._jwks_cache[url] = cached
        try:
            return KeySet.import_key_set(cached[1])  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError) as exc:
            raise errors.invalid_client("the client's JWKS is not a usable key set") from exc


def _basic(header: str) -> tuple[str | None, str | None]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeError) as exc:
        raise errors.invalid_client("malformed Basic credentials") from exc
    user, sep, password = decoded.partition(":")
    if not sep:
        raise errors.invalid_client("malformed Basic credentials")
    from urllib.parse import unquote

    return unquote(user), unquote(password)


def _fetch_jwks(url: str) -> dict[str, Any]:
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ValueError("JWKS URLs must use https")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        body = response.read(1_000_000)
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("not a JWKS")
    return document
