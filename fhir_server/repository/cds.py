"""CDS Hooks records on the store: card evaluations (audit), feedback, and used JWT ids.

Kept apart from the resource collections: these are operational records, not FHIR
resources. Every write is an insert; a used ``jti`` is claimed by inserting its ``_id``,
so two workers cannot both accept the same token.

Evaluation records and ``jti`` claims are written on every call, so concurrent calls of a
process share one ``insert_many`` of each (``group_insert.py``): a call still goes on only
once its own documents are stored, a duplicate ``jti`` is still refused (unordered inserts
report duplicates per document), and a store that cannot take them makes the call a 503.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pymongo.cursor import Cursor
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from fhir_server import outcomes
from fhir_server.repository.base import add_store_time
from fhir_server.repository.group_insert import GroupInsert

EVALUATIONS = "cds_evaluations"
FEEDBACK = "cds_feedback"
TOKENS = "cds_jwt_ids"


class CdsRecords:
    def __init__(self, database: Database[dict[str, Any]]) -> None:
        self._db = database
        self._evaluations = GroupInsert(database[EVALUATIONS])
        self._tokens = GroupInsert(database[TOKENS])

    @classmethod
    def of(cls, repository: Any) -> CdsRecords:
        """Share the repository's connection (one pool per process)."""
        return cls(repository._db)

    def _run(self, func: Any, *args: Any) -> Any:
        """Run one store call: its time counts in ``Server-Timing``; failures are a 503."""
        started = time.perf_counter()
        try:
            result = func(*args)
            return list(result) if isinstance(result, Cursor) else result
        except DuplicateKeyError:
            raise
        except PyMongoError as exc:
            raise outcomes.StoreUnavailable("The document store is unavailable; retry later") from exc
        finally:
            add_store_time(time.perf_counter() - started)

    def save_evaluations(self, records: list[dict[str, Any]]) -> None:
        """One record per card returned (``_id`` is the card's uuid); returns once stored.
        A duplicate ``_id`` is a record already stored (a retried write), not a failure."""
        if records:
            now = datetime.now(UTC)
            self._run(self._evaluations.insert, [{"_id": r["card"], "at": now, **r} for r in records])

    def evaluations(self, card_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not card_ids:
            return {}
        found = self._run(self._db[EVALUATIONS].find, {"_id": {"$in": card_ids}})
        return {doc["_id"]: doc for doc in found}

    def save_feedback(self, records: list[dict[str, Any]]) -> None:
        if records:
            now = datetime.now(UTC)
            self._run(self._db[FEEDBACK].insert_many, [{"received": now, **r} for r in records])

    def feedback(self, service: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._run(self._db[FEEDBACK].find, {"service": service}, {"_id": 0})
        return found

    def totals(self) -> dict[str, int]:
        """Cards returned and feedback received, for the console's dashboard."""
        return {
            "cards": int(self._run(self._db[EVALUATIONS].estimated_document_count)),
            "feedback": int(self._run(self._db[FEEDBACK].estimated_document_count)),
        }

    def claim_token_id(self, issuer: str, jti: str, expires: datetime) -> bool:
        """True the first time a (issuer, jti) is seen; False for a replay. Claims of
        concurrent calls share one insert, like evaluation records."""
        duplicates = self._run(self._tokens.insert, [{"_id": f"{issuer}\x1f{jti}", "expires": expires}])
        return not duplicates
