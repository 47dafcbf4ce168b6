"""Search reads, mixed into the MongoDB repository: a compiled query's page and count.

A query that names its ids, or requires identity, reference or composite keys with
postings (lookups.py), is answered from those candidates fetched by ``_id`` with the
whole filter applied here; so is one the store cannot evaluate (FerretDB lacks
``$elemMatch`` with field conditions). Everything else the store evaluates, within
the search time limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import ExecutionTimeout, OperationFailure

from fhir_server.repository import mql
from fhir_server.repository.base import QueryTooCostly, StoredVersion
from fhir_server.repository.lookups import (
    Postings,
    as_typed,
    composite,
    is_code,
    is_lookup_key,
    is_patient_reference,
)
from fhir_server.repository.records import (
    WITHOUT_INDEX,
    current_only,
    from_record,
    ids_filter,
    replace_or_insert,
)

# Documents fetched by _id per query (scripts/build-ferretdb.sh pushes up to 1000 down).
IDS_PER_QUERY = 500


class SearchReads:
    """Needs the repository's collections, postings, time limit and transaction settling."""

    _db: Database[dict[str, Any]]
    _postings: Postings
    _query_timeout_ms: int
    _elem_match: bool | None

    def _heads(self, resource_type: str) -> Collection[dict[str, Any]]:
        raise NotImplementedError

    def _search_docs(self, resource_type: str) -> Collection[dict[str, Any]]:
        raise NotImplementedError

    def unsettled(self, records: Iterable[dict[str, Any]]) -> bool:
        raise NotImplementedError

    def _search(
        self,
        resource_type: str,
        mongo_filter: dict[str, Any],
        sort: list[tuple[str, int]],
        skip: int,
        limit: int,
    ) -> list[StoredVersion]:
        if limit <= 0:
            return []
        docs = self._search_page(resource_type, mongo_filter, sort, skip, limit)
        if self.unsettled(docs):  # a transaction was still being applied: read its result
            docs = self._search_page(resource_type, mongo_filter, sort, skip, limit)
        return [from_record(resource_type, d) for d in docs]

    def _search_page(
        self,
        resource_type: str,
        mongo_filter: dict[str, Any],
        sort: list[tuple[str, int]],
        skip: int,
        limit: int,
    ) -> list[dict[str, Any]]:
        ids = self._candidate_ids(resource_type, mongo_filter)
        if ids is not None or not self._store_evaluates(mongo_filter):
            docs = mql.sort_documents(self._evaluate_here(resource_type, mongo_filter, ids), sort)
            return docs[skip : skip + limit]
        cursor = self._search_docs(resource_type).find(current_only(mongo_filter), WITHOUT_INDEX, sort=sort)
        with self._time_limited():
            return list(cursor.skip(skip).limit(limit).max_time_ms(self._query_timeout_ms))

    def _count(self, resource_type: str, mongo_filter: dict[str, Any]) -> int:
        ids = self._candidate_ids(resource_type, mongo_filter)
        if ids is not None or not self._store_evaluates(mongo_filter):
            return len(self._evaluate_here(resource_type, mongo_filter, ids))
        with self._time_limited():
            return self._search_docs(resource_type).count_documents(
                current_only(mongo_filter), maxTimeMS=self._query_timeout_ms
            )

    def _candidate_ids(self, resource_type: str, mongo_filter: dict[str, Any]) -> list[str] | None:
        """The only ids a filter can match, when it names them or requires an identity
        key with postings (lookups.py); None when the store must search."""
        ids = mql.required_ids(mongo_filter)
        if ids is not None:
            return ids
        pairs = mql.required_pairs(mongo_filter, lambda k: is_patient_reference(as_typed(k)), is_code)
        if pairs is not None:
            # The patient's resources of these codes only: a composite key per pair.
            composites = [composite(as_typed(r), c) for r, c in pairs]
            paired = self._postings.ids_of_any(resource_type, composites)
            if paired is not None:
                return paired
        keys = mql.required_keys(mongo_filter, is_lookup_key)
        return None if keys is None else self._postings.ids_of_any(resource_type, keys)

    def _store_evaluates(self, mongo_filter: dict[str, Any]) -> bool:
        """False when the filter needs ``$elemMatch`` with field conditions and the store
        lacks it (FerretDB 1.24): then :meth:`_evaluate_here` applies it in Python."""
        if not mql.uses(mongo_filter, "$elemMatch"):
            return True
        if self._elem_match is None:
            probe = self._db["capabilities"]
            # A filter is only evaluated against documents, so give it one to look at.
            replace_or_insert(probe, {"_id": "elemMatch", "x": [{"p": 1, "lo": 1}]})
            try:
                found = probe.find_one({"_id": "elemMatch", "x": {"$elemMatch": {"p": 1, "lo": {"$gte": 0}}}})
                self._elem_match = found is not None
            except OperationFailure:
                self._elem_match = False
        return self._elem_match

    def _evaluate_here(
        self, resource_type: str, mongo_filter: dict[str, Any], ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Candidates from the store, the full filter applied here: by ``_id`` lookups when
        the filter names the ids (the one lookup every store answers from its index),
        otherwise by the rest of the filter (when the store lacks ``$elemMatch``)."""
        if ids is not None:
            found = self._by_ids(self._search_docs(resource_type), list(dict.fromkeys(ids)))
            wanted = current_only(mongo_filter)
            return [doc for doc in found if doc is not None and mql.matches(wanted, doc)]
        loose = mql.without(mongo_filter, "$elemMatch")
        candidates = self._search_docs(resource_type).find(current_only(loose))
        with self._time_limited():
            return [
                doc
                for doc in candidates.max_time_ms(self._query_timeout_ms)
                if mql.matches(mongo_filter, doc)
            ]

    def _by_ids(self, collection: Collection[dict[str, Any]], ids: list[str]) -> list[dict[str, Any] | None]:
        """The documents with these ids, in their order (None where missing): one
        ``{_id: {$in: [...]}}`` query per :data:`IDS_PER_QUERY`, which MongoDB and our
        FerretDB build both answer from the ``_id`` index."""
        found: dict[Any, dict[str, Any]] = {}
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[start : start + IDS_PER_QUERY]
            found.update((doc["_id"], doc) for doc in collection.find(ids_filter(chunk)))
        return [found.get(id) for id in ids]

    @contextlib.contextmanager
    def _time_limited(self) -> Iterator[None]:
        try:
            yield
        except ExecutionTimeout as exc:
            raise QueryTooCostly(f"the search ran past {self._query_timeout_ms} ms") from exc

    def _get_many(self, resource_type: str, ids: list[str]) -> list[StoredVersion]:
        records = self._by_ids(self._heads(resource_type), list(dict.fromkeys(ids)))
        if self.unsettled([r for r in records if r is not None]):  # a transaction was being applied
            records = self._by_ids(self._heads(resource_type), list(dict.fromkeys(ids)))
        return [
            stored
            for stored in (from_record(resource_type, r) for r in records if r is not None)
            if not stored.deleted
        ]
