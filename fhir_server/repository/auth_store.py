"""Storage for the authorization server: clients, users, signing keys, revocations,
authorization codes and used assertion ids.

Every operation that must be atomic is an insert of a unique ``_id`` (the one primitive
the embedded FerretDB and MongoDB share): a replayed ``jti``, a second use of an
authorization code and two workers creating the same rotation key all lose an insert.
Every lookup is by ``_id``, the only filter FerretDB answers from an index.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from fhir_server.repository.base import StoreError

CLIENTS = "auth_clients"
USERS = "auth_users"
KEYS = "auth_keys"
REVOKED = "auth_revoked"
CODES = "auth_codes"
USED = "auth_used"  # assertion jtis and redeemed codes: one insert each, never twice


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _clean(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if doc is None else {k: _utc(v) for k, v in doc.items()}


class AuthStore:
    """Thread-safe (pymongo pools connections); one per process."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._db = db

    @classmethod
    def of(cls, repository: Any) -> AuthStore:
        """The auth collections beside a :class:`MongoRepository`'s resources."""
        return cls(repository._db)

    def _call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DuplicateKeyError:
            raise
        except ConnectionFailure as exc:
            raise StoreError(f"document store unreachable: {exc.__class__.__name__}") from exc
        except PyMongoError as exc:
            raise RuntimeError(f"document store refused an operation: {exc}") from exc

    def get(self, collection: str, id: str) -> dict[str, Any] | None:
        return _clean(self._call(self._db[collection].find_one, {"_id": id}))

    def insert(self, collection: str, doc: dict[str, Any]) -> bool:
        """Insert a record; False when its ``_id`` exists (the atomic claim)."""
        try:
            self._call(self._db[collection].insert_one, dict(doc))
        except DuplicateKeyError:
            return False
        return True

    def delete(self, collection: str, id: str) -> None:
        with contextlib.suppress(DuplicateKeyError):
            self._call(self._db[collection].delete_one, {"_id": id})

    def all(self, collection: str) -> list[dict[str, Any]]:
        """Every record of a small collection (signing keys, clients for the CLI)."""
        return [d for d in (_clean(x) for x in self._call(self._db[collection].find, {})) if d is not None]

    # -- the operations the authorization server names ----------------------------------

    def client(self, client_id: str) -> dict[str, Any] | None:
        return self.get(CLIENTS, client_id)

    def user(self, username: str) -> dict[str, Any] | None:
        return self.get(USERS, username)

    def revoke(self, jti: str, expires: datetime) -> None:
        self.insert(REVOKED, {"_id": jti, "exp": expires})

    def is_revoked(self, jti: str) -> bool:
        found = self._call(self._db[REVOKED].find_one, {"_id": jti}, {"_id": 1})
        return found is not None

    def purge_expired(self, now: datetime) -> int:
        """Forget revocations, used assertion ids and codes whose tokens can no longer be
        presented anyway (run at start-up: a scan, so not on the request path)."""
        removed = 0
        for collection in (REVOKED, USED, CODES):
            result = self._call(self._db[collection].delete_many, {"exp": {"$lt": now}})
            removed += int(result.deleted_count)
        return removed

    def claim_once(self, key: str, expires: datetime) -> bool:
        """True the first time ``key`` is claimed (a jti, a code), False on any replay."""
        return self.insert(USED, {"_id": key, "exp": expires})
