"""CDS client authentication (CDS Hooks 2.0 "Trusting CDS Clients"): a signed JWT on each call.

Accepted: ES384 or RS384 only (never ``none`` or HMAC, so a public key can never be used
as a shared secret); ``iss`` on the allowlist and, when the header names a ``jku``, that URL
on the issuer's allowlist too; the key from the issuer's JWKS (cached, fetched again when a
``kid`` is unknown, at most once per :data:`REFRESH_INTERVAL`); ``aud`` equal to the exact
URL called; ``exp`` in the future, ``iat`` not in the future, and a ``jti`` never seen before.
Any failure is a bare 401: the reason is logged, not told to the caller.

We use joserfc (the JOSE library of authlib's authors, which authlib itself now builds on);
the algorithm list is passed explicitly on every decode.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ALGORITHMS = ["ES384", "RS384"]
LEEWAY = 30  # seconds of clock skew tolerated on iat
MAX_LIFETIME = 3600  # exp more than this far ahead is refused (the spec suggests 5 minutes)
REFRESH_INTERVAL = 10.0  # seconds between JWKS fetches for unknown kids
FETCH_TIMEOUT = (2.0, 3.0)

log = logging.getLogger("interop.cds.auth")


class Unauthorized(Exception):
    """The caller is not authenticated; the message is for the log only."""


@dataclass(frozen=True)
class TrustedIssuer:
    issuer: str
    jwks_url: str


class KeyCache:
    """Each issuer's JWKS, fetched on first use and again for an unknown ``kid``."""

    def __init__(self, fetch: Callable[[str], dict[str, Any]] | None = None) -> None:
        self._fetch = fetch or _fetch_jwks
        self._sets: dict[str, tuple[float, KeySet]] = {}
        self._lock = threading.Lock()

    def key_set(self, url: str, kid: str | None) -> KeySet:
        with self._lock:
            cached = self._sets.get(url)
            fresh_enough = cached is not None and time.monotonic() - cached[0] < REFRESH_INTERVAL
            if cached is not None and (_has_kid(cached[1], kid) or fresh_enough):
                return cached[1]
            try:
                keys = KeySet.import_key_set(self._fetch(url))  # type: ignore[arg-type]
            except (requests.RequestException, ValueError, JoseError) as exc:
                raise Unauthorized(f"cannot fetch the JWKS at {url}: {exc}") from exc
            self._sets[url] = (time.monotonic(), keys)
            return keys


def _has_kid(keys: KeySet, kid: str | None) -> bool:
    return kid is None or any(k.kid == kid for k in keys.keys)


def _fetch_jwks(url: str) -> dict[str, Any]:
    response = requests.get(url, timeout=FETCH_TIMEOUT, headers={"Accept": "application/json"})
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError("a JWKS must be a JSON object")
    return body


class Authenticator:
    def __init__(
        self,
        issuers: list[TrustedIssuer],
        claim_jti: Callable[[str, str, datetime], bool],
        keys: KeyCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuers = {i.issuer: i for i in issuers}
        self._claim_jti = claim_jti
        self._keys = keys or KeyCache()
        self._clock = clock

    def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The token's claims, or :class:`Unauthorized`."""
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("no bearer token")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            unverified = jws.extract_compact(token.encode())  # header and claims, not yet trusted
            header, claims = unverified.headers(), json.loads(unverified.payload)
        except (JoseError, ValueError) as exc:
            raise Unauthorized(f"malformed token: {exc}") from exc
        if not isinstance(claims, dict):
            raise Unauthorized("the payload is not a claims object")
        if header.get("alg") not in ALGORITHMS:
            raise Unauthorized(f"algorithm {header.get('alg')!r} is not accepted")
        issuer = self._issuers.get(str(claims.get("iss")))
        if issuer is None:
            raise Unauthorized(f"untrusted issuer {claims.get('iss')!r}")
        jku = header.get("jku")
        if jku is not None and jku != issuer.jwks_url:
            raise Unauthorized(f"jku {jku!r} is not on the allowlist of {issuer.issuer}")
        keys = self._keys.key_set(issuer.jwks_url, header.get("kid"))
        if header.get("kid") is not None and not _has_kid(keys, header.get("kid")):
            raise Unauthorized(f"unknown kid {header.get('kid')!r}")
        try:
            verified = jwt.decode(token, keys, algorithms=ALGORITHMS)
        except (JoseError, ValueError) as exc:
            raise Unauthorized(f"bad signature: {exc}") from exc
        return self._check_claims(verified.claims, issuer, audience)

    def _check_claims(self, claims: dict[str, Any], issuer: TrustedIssuer, audience: str) -> dict[str, Any]:
        now = self._clock()
        aud = claims.get("aud")
        if aud != audience and not (isinstance(aud, list) and audience in aud):
            raise Unauthorized(f"aud {aud!r} is not {audience!r}")
        exp, iat, jti = claims.get("exp"), claims.get("iat"), claims.get("jti")
        if not isinstance(exp, int | float) or exp <= now or exp > now + MAX_LIFETIME:
            raise Unauthorized("exp missing, past, or too far ahead")
        if not isinstance(iat, int | float) or iat > now + LEEWAY:
            raise Unauthorized("iat missing or in the future")
        if not isinstance(jti, str) or not jti:
            raise Unauthorized("jti missing")
        if not self._claim_jti(issuer.issuer, jti, datetime.fromtimestamp(exp, UTC)):
            raise Unauthorized("jti replayed")
        return claims


def log_refusal(exc: Unauthorized) -> None:
    log.info("CDS call refused: %s", exc)
