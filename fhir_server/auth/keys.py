"""The server's token signing keys, rotated on a fixed period and shared by all workers.

The key of period ``p`` is named ``{rotation}-{p}`` and created by whichever worker needs
it first: its insert of that ``_id`` is the claim, a loser reads the winner's key. Tokens
are signed with the current period's key; the previous period's key stays in the JWKS
and verifies tokens signed just before the rotation (they live at most one hour, less
than a period).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey

from fhir_server.repository.auth_store import KEYS, AuthStore

ALGORITHM = "ES384"
CURVE = "P-384"


class SigningKeys:
    def __init__(
        self,
        store: AuthStore,
        *,
        rotation: timedelta = timedelta(hours=24),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if rotation < timedelta(hours=1):
            raise ValueError("keys must live longer than the longest token (1 hour)")
        self._store = store
        self._rotation = int(rotation.total_seconds())
        self._clock = clock
        self._cache: dict[str, ECKey] = {}
        self._lock = threading.Lock()

    def _kid(self, period: int) -> str:
        return f"{self._rotation}-{period}"

    def _period(self) -> int:
        return int(self._clock().timestamp()) // self._rotation

    def current(self) -> ECKey:
        """The key to sign with now (created on first use in its period)."""
        kid = self._kid(self._period())
        key = self._load(kid)
        if key is not None:
            return key
        fresh = ECKey.generate_key(CURVE, private=True)
        doc: dict[str, Any] = {
            "_id": kid,
            "jwk": {**fresh.as_dict(private=True), "kid": kid},
            "created": self._clock(),
        }
        self._store.insert(KEYS, doc)  # a racing worker may win: use whatever is stored
        key = self._load(kid)
        assert key is not None
        return key

    def verifying(self, kid: str) -> ECKey | None:
        """The key for ``kid`` if it is the current or the previous period's, else None."""
        period = self._period()
        if kid not in (self._kid(period), self._kid(period - 1)):
            return None
        return self._load(kid)

    def jwks(self) -> dict[str, Any]:
        self.current()
        period = self._period()
        keys = [self._load(self._kid(p)) for p in (period, period - 1)]
        return {"keys": [{**k.as_dict(private=False), "alg": ALGORITHM, "use": "sig"} for k in keys if k]}

    def _load(self, kid: str) -> ECKey | None:
        with self._lock:
            key = self._cache.get(kid)
        if key is not None:
            return key
        doc = self._store.get(KEYS, kid)
        if doc is None:
            return None
        key = ECKey.import_key(doc["jwk"])
        with self._lock:
            self._cache[kid] = key
        return key
