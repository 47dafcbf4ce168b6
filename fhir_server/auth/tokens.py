"""Access tokens: JWTs signed with the server's rotating key, checked on every request.

Verification accepts only this server's algorithm and keys (never ``none``, never an HMAC
keyed with a public key), checks issuer, audience, expiry and not-before, and looks the
token id up in the revocation list (one ``_id`` lookup).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from fhir_server.auth.errors import InvalidToken
from fhir_server.auth.keys import ALGORITHM, SigningKeys
from fhir_server.repository.auth_store import AuthStore

MAX_LIFETIME = timedelta(hours=1)
BACKEND_LIFETIME = timedelta(minutes=5)
LEEWAY = 30  # seconds of clock skew tolerated on exp/nbf


@dataclass(frozen=True)
class Issued:
    token: str
    claims: dict[str, Any]
    expires_in: int


class Tokens:
    def __init__(
        self,
        keys: SigningKeys,
        store: AuthStore,
        *,
        issuer: str,
        audience: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._keys = keys
        self._store = store
        self.issuer = issuer
        self.audience = audience
        self._clock = clock

    def issue(
        self,
        *,
        subject: str,
        client_id: str,
        scope: str,
        lifetime: timedelta,
        patient: str | None = None,
        admin: bool = False,
    ) -> Issued:
        lifetime = min(lifetime, MAX_LIFETIME)
        now = int(self._clock().timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime.total_seconds()),
            "jti": uuid.uuid4().hex,
            "client_id": client_id,
            "scope": scope,
        }
        if patient:
            claims["patient"] = patient
        if admin:
            claims["admin"] = True
        key = self._keys.current()
        token = jwt.encode(
            {"alg": ALGORITHM, "kid": key.kid, "typ": "at+jwt"}, claims, key, algorithms=[ALGORITHM]
        )
        return Issued(token, claims, int(lifetime.total_seconds()))

    def jwks(self) -> dict[str, Any]:
        return self._keys.jwks()

    def decode(self, token: str) -> dict[str, Any]:
        """Signature, algorithm and key checked; claims not yet (see :meth:`verify`)."""
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError, UnicodeError) as exc:
            raise InvalidToken("the access token is malformed") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("the access token's algorithm is not accepted")
        key = self._keys.verifying(str(header.get("kid", "")))
        if key is None:
            raise InvalidToken("the access token was signed with an unknown key")
        try:
            decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
        except (JoseError, ValueError) as exc:
            raise InvalidToken("the access token's signature does not verify") from exc
        return dict(decoded.claims)

    def verify(self, token: str) -> dict[str, Any]:
        claims = self.decode(token)
        now = self._clock().timestamp()
        if claims.get("iss") != self.issuer or claims.get("aud") != self.audience:
            raise InvalidToken("the access token is for another server")
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int) or exp + LEEWAY <= now:
            raise InvalidToken("the access token has expired")
        if not isinstance(nbf, int) or nbf - LEEWAY > now:
            raise InvalidToken("the access token is not valid yet")
        if not isinstance(claims.get("jti"), str) or self._store.is_revoked(claims["jti"]):
            raise InvalidToken("the access token was revoked")
        return claims

    def revoke(self, claims: dict[str, Any]) -> None:
        expires = datetime.fromtimestamp(int(claims.get("exp", 0)), UTC)
        self._store.revoke(str(claims["jti"]), expires)
