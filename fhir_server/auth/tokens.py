"""Access tokens: JWTs signed with the server's rotating key, checked on every request.

Verification accepts only this server's algorithm and keys (never ``none``, never an HMAC
keyed with a public key), checks issuer, audience, expiry and not-before, and looks the
token id up in the revocation list (one ``_id`` lookup).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
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
VERIFIED_CACHE = 4096  # signatures already checked, by token text (an ES384 check costs ~0.5 ms)


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
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

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
        """Signature, algorithm and key checked; claims not yet (see :meth:`verify`).
        A token whose signature was checked before is not checked again (the text is the
        key: any change to it is another token); its claims still are, on every call."""
        with self._lock:
            cached = self._verified.get(token)
            if cached is not None:
                self._verified.move_to_end(token)
                return dict(cached)
        claims = self._decode(token)
        with self._lock:
            self._verified[token] = claims
            if len(self._verified) > VERIFIED_CACHE:
                self._verified.popitem(last=False)
        return dict(claims)

    def _decode(self, token: str) -> dict[str, Any]:
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
