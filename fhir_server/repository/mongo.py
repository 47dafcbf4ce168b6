"""The repository on the MongoDB wire protocol (MongoDB 6/7, FerretDB 1.24).

Layout, per resource type ``T`` (records.py; docs/architecture.md says why it is correct):

* ``search_T``: the searchable record, ``_id = "{id}"``: the newest version with its
  index values; inserting it claims version 1, so nobody else can create that id.
* ``resource_T``: the head, the newest version without index values, for reads.
* ``history_T``: older versions, ``_id = "{id}/{version}"``; inserting one claims that
  version number (the commit point of every later write). Version 1 is copied here by
  the first update.

Records carry the resource as JSON text. Every lookup on the hot path is an equality
on ``_id`` alone: the only filter the embedded FerretDB pushes down into SQLite.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar
from uuid import uuid4

import mongoengine
import orjson
from pymongo import DESCENDING
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    PyMongoError,
    WTimeoutError,
)

from fhir_server.repository.analytics import AnalyticsReads
from fhir_server.repository.base import (
    HistoryPage,
    HistoryQuery,
    NewVersion,
    QueryTooCostly,
    StoredVersion,
    StoreError,
    VersionClaimed,
    add_store_time,
    store_time_depth,
)
from fhir_server.repository.exports import ExportStore
from fhir_server.repository.group_insert import GroupCommit, duplicates_by_caller
from fhir_server.repository.head_cache import HeadCache, WriteClock, clock_directory, database_token
from fhir_server.repository.history import HistoryReads
from fhir_server.repository.lookups import (
    Postings,
    lookup_keys,
    new_keys,
)
from fhir_server.repository.records import (
    HEAD_PREFIX,
    HISTORY_PREFIX,
    INDEX_FIELDS,
    SEARCH_INDEXES,
    SEARCH_PREFIX,
    WITHOUT_INDEX,
    from_record,
    head_of,
    record_of,
    replace_or_insert,
    search_doc_of,
)
from fhir_server.repository.search_reads import SearchReads
from fhir_server.repository.transactions import TransactionWrites

P = ParamSpec("P")
BACKFILL_BATCH = 500
R = TypeVar("R")


def _store_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn driver failures (unreachable store, timeouts) into :class:`StoreError`,
    and account the time spent in the store (reported in ``Server-Timing``)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        outermost = store_time_depth.get() == 0
        token = store_time_depth.set(store_time_depth.get() + 1)
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        except (VersionClaimed, StoreError, QueryTooCostly):
            raise
        except (ConnectionFailure, ExecutionTimeout, WTimeoutError) as exc:
            raise StoreError(f"document store unreachable: {exc.__class__.__name__}") from exc
        except PyMongoError as exc:
            # The store answered but refused the operation: a defect, not an outage.
            raise RuntimeError(f"document store refused an operation: {exc}") from exc
        finally:
            store_time_depth.reset(token)
            if outermost:
                add_store_time(time.perf_counter() - started)

    return wrapper


@dataclass(frozen=True)
class _FirstVersion:
    """What creating version 1 writes, in this order: postings, claim, head."""

    id: str
    keys: list[str]
    searchable: dict[str, Any]
    head: dict[str, Any]


class MongoRepository(TransactionWrites, SearchReads, HistoryReads, AnalyticsReads, ExportStore):
    """Thread-safe; one instance per process (pymongo pools connections)."""

    def __init__(
        self,
        uri: str,
        database: str,
        *,
        timeout_ms: int = 5000,
        query_timeout_ms: int = 30_000,
        read_cache_bytes: int = 0,
    ) -> None:
        """``read_cache_bytes``: heads kept in memory (0: none); only where every writer
        of the database runs on this host (head_cache.py)."""
        self._query_timeout_ms = query_timeout_ms
        self._read_cache_bytes = read_cache_bytes
        self._head_cache: HeadCache | None = None
        self._write_clock: WriteClock | None = None
        self._alias = f"interop-{uuid4().hex}"
        # mongoengine owns the connection registry; the fixed-schema documents of later
        # components (audit, inbox, clients) share this connection by alias.
        self._client = mongoengine.connect(
            alias=self._alias,
            db=database,
            host=uri,
            tz_aware=True,
            w="majority",
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            uuidRepresentation="standard",
        )
        self._db: Database[dict[str, Any]] = self._client[database]
        self._indexed: set[str] = set()
        self._head_collections: dict[str, Collection[dict[str, Any]]] = {}
        self._history_collections: dict[str, Collection[dict[str, Any]]] = {}
        self._search_collections: dict[str, Collection[dict[str, Any]]] = {}
        self._first_version_groups: dict[str, GroupCommit[_FirstVersion, bool]] = {}
        self._elem_match: bool | None = None
        self._secondary_indexes: bool | None = None
        self._lock = threading.Lock()
        self._init_transactions()
        self._postings = Postings(self._db)

    # -- collections -------------------------------------------------------------------

    def _heads(self, resource_type: str) -> Collection[dict[str, Any]]:
        collection = self._head_collections.get(resource_type)
        if collection is None:
            collection = self._head_collections[resource_type] = self._db[HEAD_PREFIX + resource_type]
        return collection

    def _search_docs(self, resource_type: str) -> Collection[dict[str, Any]]:
        collection = self._search_collections.get(resource_type)
        if collection is None:
            collection = self._search_collections[resource_type] = self._db[SEARCH_PREFIX + resource_type]
        return collection

    def _first_versions(self, resource_type: str) -> GroupCommit[_FirstVersion, bool]:
        group = self._first_version_groups.get(resource_type)
        if group is None:
            with self._lock:
                group = self._first_version_groups.setdefault(
                    resource_type, GroupCommit(functools.partial(self._commit_first_versions, resource_type))
                )
        return group

    def _commit_first_versions(self, resource_type: str, batch: list[_FirstVersion]) -> list[bool]:
        """Version 1 of each: postings, then the searchable records, whose unique ``_id``
        is version 1's claim, then the heads of the claims won (a duplicate head: already
        brought forward by another writer). True for a claim someone else holds."""
        self._postings.add_many((resource_type, first.id, first.keys) for first in batch)
        lost = duplicates_by_caller(self._search_docs(resource_type), [[first.searchable] for first in batch])
        won = [[first.head] for first, claimed in zip(batch, lost, strict=True) if not claimed]
        duplicates_by_caller(self._heads(resource_type), won)
        return [bool(claimed) for claimed in lost]

    def _versions(self, resource_type: str) -> Collection[dict[str, Any]]:
        collection = self._history_collections.get(resource_type)
        if collection is None:
            collection = self._db[HISTORY_PREFIX + resource_type]
            self._history_collections[resource_type] = collection
        return collection

    def _history(self, resource_type: str) -> Collection[dict[str, Any]]:
        """The version collection, with the indexes of the type ensured (for writers)."""
        history = self._versions(resource_type)
        if resource_type not in self._indexed:
            self.ensure_indexes(resource_type)
        return history

    @_store_errors
    def ensure_indexes(self, resource_type: str) -> None:
        """Declare the indexes the compiled queries use (MongoDB serves them; FerretDB
        accepts them and scans). Field names are the compiler's: see SEARCH_INDEXES."""
        if self._planner_uses_indexes():
            self._versions(resource_type).create_index([("lu", DESCENDING)], name="lastUpdated")
            searchable = self._search_docs(resource_type)
            for name, keys in SEARCH_INDEXES.items():
                searchable.create_index(keys, name=name)
        if not self._postings.built(resource_type):
            # Data written before postings existed: post it once, then searches may use them.
            batch: list[tuple[str, str, list[str]]] = []
            for doc in self._search_docs(resource_type).find({"del": False}, {"ix": 1}):
                batch.append((resource_type, str(doc["_id"]), lookup_keys(doc)))
                if len(batch) >= BACKFILL_BATCH:
                    self._postings.add_many(batch)
                    batch = []
            self._postings.add_many(batch)
            self._postings.mark_built(resource_type)
        with self._lock:
            self._indexed.add(resource_type)

    def _planner_uses_indexes(self) -> bool:
        """FerretDB 1.24 (SQLite) filters every query but ``{_id: x}`` after a full scan,
        so secondary indexes there only slow every write; MongoDB uses them."""
        if self._secondary_indexes is None:
            info = self._client.admin.command("buildInfo")
            self._secondary_indexes = "ferretdbVersion" not in info
        return self._secondary_indexes

    # -- reads ---------------------------------------------------------------------------

    @_store_errors
    def read(self, resource_type: str, id: str) -> StoredVersion | None:
        cache = self._cache()
        if cache is None:
            return self._read_head(resource_type, id)
        word = cache.clock.word(f"{resource_type}/{id}")  # before the store read: see head_cache.py
        stored = cache.get(resource_type, id, word)
        if stored is None:
            stored = self._read_head(resource_type, id)
            if stored is not None:
                cache.put(stored, word)
        return stored

    def _read_head(self, resource_type: str, id: str) -> StoredVersion | None:
        record = self._heads(resource_type).find_one({"_id": id})
        if record is not None and self.unsettled([record]):
            record = self._heads(resource_type).find_one({"_id": id})
        return None if record is None else from_record(resource_type, record, id)

    @_store_errors
    def vread(self, resource_type: str, id: str, version: int) -> StoredVersion | None:
        record = self._versions(resource_type).find_one({"_id": f"{id}/{version}"})
        if record is not None and self.visible(record):
            return from_record(resource_type, record, id)
        head = self.read(resource_type, id)  # version 1 of a resource never updated
        return head if head is not None and head.version == version else None

    @_store_errors
    def search(
        self,
        resource_type: str,
        mongo_filter: dict[str, Any],
        sort: list[tuple[str, int]],
        skip: int,
        limit: int,
    ) -> list[StoredVersion]:
        return self._search(resource_type, mongo_filter, sort, skip, limit)

    @_store_errors
    def count(self, resource_type: str, mongo_filter: dict[str, Any]) -> int:
        return self._count(resource_type, mongo_filter)

    @_store_errors
    def get_many(self, resource_type: str, ids: list[str]) -> list[StoredVersion]:
        return self._get_many(resource_type, ids)

    @_store_errors
    def resource_types_in_use(self) -> list[str]:
        names = self._db.list_collection_names()
        return sorted(
            {
                n[len(prefix) :]
                for n in names
                for prefix in (HEAD_PREFIX, HISTORY_PREFIX, SEARCH_PREFIX)
                if n.startswith(prefix)
            }
        )

    # -- writes --------------------------------------------------------------------------

    def new_record(self, new: NewVersion) -> dict[str, Any]:
        """The history record of a new version (its other records are cut from it)."""
        last_updated = new.last_updated.replace(microsecond=new.last_updated.microsecond // 1000 * 1000)
        return {
            "_id": f"{new.id}/{new.version}",
            "id": new.id,
            "v": new.version,
            "lu": last_updated,
            "del": new.deleted,
            "m": new.method,
            "json": None if new.resource is None else orjson.dumps(new.resource).decode(),
            **(new.index or {}),
        }

    @_store_errors
    def commit_all(
        self, writes: list[NewVersion], locks: list[str], verify: Callable[[], None] | None = None
    ) -> list[StoredVersion]:
        return self._commit_all(writes, locks, verify)

    @_store_errors
    def commit(self, new: NewVersion) -> StoredVersion:
        record = self.new_record(new)
        if new.resource_type not in self._indexed:
            self.ensure_indexes(new.resource_type)
        if new.version == 1:
            # Concurrent creates of a type share their three commands (group_insert.py).
            first = _FirstVersion(new.id, new_keys(new, record), search_doc_of(record), head_of(record))
            if self._first_versions(new.resource_type).submit(first):
                raise VersionClaimed(f"{new.resource_type}/{new.id} version 1")
            return from_record(new.resource_type, record)
        self._postings.add(new.resource_type, new.id, new_keys(new, record))  # before the claim
        history = self._history(new.resource_type)
        previous = new.previous
        if new.version == 2 and previous is None:
            previous = self.read(new.resource_type, new.id)
        if new.version == 2 and previous is not None and previous.version == 1:
            # Version 1 lives only in the head until now: keep it before the head moves on.
            with contextlib.suppress(DuplicateKeyError):
                history.insert_one(record_of(previous))
        try:
            history.insert_one(record)
        except DuplicateKeyError as exc:
            raise VersionClaimed(f"{new.resource_type}/{new.id} version {new.version}") from exc
        self._write_current(new.resource_type, record)
        # No atomic conditional update exists on every store, so a slow writer may have
        # just overwritten a newer head: if a newer version exists, bring the head forward.
        if self._claimed(new.resource_type, new.id, new.version + 1):
            self.catch_up(new.resource_type, new.id)
        return from_record(new.resource_type, record)

    @_store_errors
    def append_new(self, resource_type: str, news: list[NewVersion]) -> None:
        """Store first versions under fresh server-chosen ids, in two batched inserts (for
        append-only records nobody else can name, such as the audit trail's AuditEvents)."""
        if not news:
            return
        if resource_type not in self._indexed:
            self.ensure_indexes(resource_type)
        records = [self.new_record(new) for new in news]
        assert all(new.version == 1 and new.fresh for new in news)
        self._postings.add_many((resource_type, r["id"], lookup_keys(r)) for r in records)
        self._search_docs(resource_type).insert_many([search_doc_of(r) for r in records], ordered=False)
        self._heads(resource_type).insert_many([head_of(r) for r in records], ordered=False)

    def _claimed(self, resource_type: str, id: str, version: int) -> bool:
        found = self._versions(resource_type).find_one({"_id": f"{id}/{version}"}, projection={"_id": 1})
        return found is not None

    def _write_current(self, resource_type: str, history_record: dict[str, Any]) -> None:
        """Make a committed version current: the searchable record first, then the head."""
        replace_or_insert(self._search_docs(resource_type), search_doc_of(history_record))
        self._replace_head(resource_type, head_of(history_record))

    def _replace_head(self, resource_type: str, head: dict[str, Any]) -> None:
        """The one way an existing head changes (heads are otherwise only inserted, and
        never deleted): the write clock tells every process's read cache."""
        with self._clock().writing([f"{resource_type}/{head['_id']}"]):
            replace_or_insert(self._heads(resource_type), head)

    # -- the read cache and its write clock (head_cache.py) ---------------------------------

    def _clock(self) -> WriteClock:
        if self._write_clock is None:
            with self._lock:
                if self._write_clock is None:
                    clock = WriteClock(clock_directory() / database_token(self._db))
                    if self._read_cache_bytes:
                        self._head_cache = HeadCache(clock, self._read_cache_bytes)
                    self._write_clock = clock
        return self._write_clock

    def _cache(self) -> HeadCache | None:
        if self._write_clock is None:
            self._clock()
        return self._head_cache

    def clear_write_clock(self) -> None:
        """Forget writers that died mid-write (``interop run`` at start, before any worker)."""
        self._clock().clear()

    @_store_errors
    def catch_up(self, resource_type: str, id: str) -> StoredVersion | None:
        history = self._versions(resource_type)
        while True:
            head = self._heads(resource_type).find_one({"_id": id}, projection={"v": 1})
            searchable = self._search_docs(resource_type).find_one({"_id": id}, WITHOUT_INDEX)
            if searchable is not None and searchable["v"] == 0 and "tx" in searchable:
                self.settle(searchable["tx"], wait=True)  # a transaction's claim on a new id
                continue
            head_version = int(head["v"]) if head else 0
            search_version = int(searchable["v"]) if searchable else 0
            version = min(head_version, search_version)
            newest, pending = None, None
            while (record := history.find_one({"_id": f"{id}/{version + 1}"})) is not None:
                if "tx" in record and not self._is_applied(record["tx"]):
                    pending = record["tx"]
                    break
                newest, version = record, version + 1
            if pending is not None and self.settle(pending, wait=True) is not None:
                continue  # the transaction is applied or rolled back now: look again
            if newest is not None and int(newest["v"]) >= max(head_version, search_version):
                self._write_current(resource_type, newest)
                continue
            if searchable is not None and search_version > head_version:
                # A create that died between its two inserts: the head follows its claim.
                self._replace_head(resource_type, head_of({**searchable, "id": id}))
                continue
            if head is not None and head_version > search_version:
                # A slow writer left an older searchable record: rebuild it from history.
                record = history.find_one({"_id": f"{id}/{head_version}"})
                if record is not None and "ix" in record:
                    self._write_current(resource_type, record)
                    continue
            return self.read(resource_type, id)

    @_store_errors
    def recover(self, since: datetime | None, *, abandon_in_flight: bool = False) -> int:
        repaired = self.recover_transactions(abandon=abandon_in_flight)
        for resource_type in self.resource_types_in_use():
            # Indexes and postings of data written by an older version, before any worker
            # starts (a worker would otherwise back-fill on its first write of the type).
            self.ensure_indexes(resource_type)
            query: dict[str, Any] = {} if since is None else {"lu": {"$gte": since}}
            newest: dict[str, int] = {}
            for record in self._versions(resource_type).find(query, {"id": 1, "v": 1}):
                newest[record["id"]] = max(newest.get(record["id"], 0), int(record["v"]))
            for record in self._search_docs(resource_type).find(query, {"v": 1}):
                newest[record["_id"]] = max(newest.get(record["_id"], 0), int(record["v"]))
            for id, version in newest.items():
                head = self._heads(resource_type).find_one({"_id": id}, projection={"v": 1})
                searchable = self._search_docs(resource_type).find_one({"_id": id}, projection={"v": 1})
                versions = {int(head["v"]) if head else 0, int(searchable["v"]) if searchable else 0}
                if versions != {version}:
                    self.catch_up(resource_type, id)
                    repaired += 1
        return repaired

    @_store_errors
    def reindex(self, resource_type: str, compute: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
        """Recompute the index fields of every current resource of a type (after the
        definitions changed). Safe beside writers: each update is checked against the
        version it was computed from and redone if a writer got in between."""
        changed = 0
        collection = self._search_docs(resource_type)
        for doc in collection.find({"del": False}, {"_id": 1}):
            while True:
                current = collection.find_one({"_id": doc["_id"]})
                if current is None or current.get("del") or current.get("json") is None:
                    break
                fields = compute(orjson.loads(current["json"]))
                if all(current.get(k) == fields[k] for k in INDEX_FIELDS):
                    break
                self._postings.add(resource_type, str(doc["_id"]), lookup_keys(fields))
                collection.update_one({"_id": doc["_id"]}, {"$set": fields})
                after = collection.find_one({"_id": doc["_id"]}, {"v": 1})
                if after is not None and after["v"] == current["v"]:
                    changed += 1
                    break
        return changed

    @_store_errors
    def history(self, query: HistoryQuery) -> HistoryPage:
        return self._read_history(query)

    # -- lifecycle -----------------------------------------------------------------------

    @_store_errors
    def ping(self) -> None:
        self._client.admin.command("ping")

    def close(self) -> None:
        mongoengine.disconnect(alias=self._alias)
        if self._write_clock is not None:
            self._write_clock.close()
