"""How versions are laid out in the store: collection names, record shapes, conversions.

Shared by the repository's write path and its history reads; nothing here talks to the
store except ``replace_or_insert``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from fhir_server.repository.base import HistoryQuery, StoredVersion

HEAD_PREFIX = "resource_"
SEARCH_PREFIX = "search_"
INDEX_FIELDS = ("ix", "ir", "so")
# The indexes every search collection carries; together they lead every compiled query.
SEARCH_INDEXES: dict[str, list[tuple[str, int]]] = {
    "search_keys": [("ix", 1)],
    "search_range_low": [("ir.p", 1), ("ir.lo", 1)],
    "search_range_high": [("ir.p", 1), ("ir.hi", 1)],
    "lastUpdated": [("lu", DESCENDING)],
}
# Reads never need the index fields back.
WITHOUT_INDEX = dict.fromkeys(INDEX_FIELDS, 0)
HISTORY_PREFIX = "history_"


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def from_record(resource_type: str, record: dict[str, Any], id: str | None = None) -> StoredVersion:
    return StoredVersion(
        resource_type=resource_type,
        id=id or record.get("id") or str(record["_id"]),
        version=int(record["v"]),
        last_updated=as_utc(record["lu"]),
        deleted=bool(record.get("del", False)),
        method=str(record.get("m", "")),
        raw=None if record.get("json") is None else record["json"].encode(),
    )


def head_of(record: dict[str, Any]) -> dict[str, Any]:
    """The head: what a read needs, and nothing for search."""
    head: dict[str, Any] = {k: record[k] for k in ("v", "lu", "del", "m", "json", "tx") if k in record}
    head["_id"] = record["id"]
    return head


def search_doc_of(record: dict[str, Any]) -> dict[str, Any]:
    """The searchable record: the resource with its index values, in one document."""
    doc = {k: record[k] for k in ("v", "lu", "del", "m", "json", "tx", *INDEX_FIELDS) if k in record}
    doc["_id"] = record["id"]
    return doc


def replace_or_insert(collection: Collection[dict[str, Any]], doc: dict[str, Any]) -> None:
    try:
        collection.replace_one({"_id": doc["_id"]}, doc, upsert=True)
    except DuplicateKeyError:
        # Two writers raced on the upsert (FerretDB's is read-then-insert); it exists now.
        collection.replace_one({"_id": doc["_id"]}, doc)


def ids_filter(ids: list[Any]) -> dict[str, Any]:
    """``_id`` among ``ids``: an equality for one (what every store serves from its index),
    ``$in`` for more (MongoDB and our FerretDB build use the index for it too)."""
    return {"_id": ids[0]} if len(ids) == 1 else {"_id": {"$in": ids}}


def current_only(mongo_filter: dict[str, Any]) -> dict[str, Any]:
    return {"$and": [mongo_filter, {"del": False}]} if mongo_filter else {"del": False}


def history_order(entry: StoredVersion) -> tuple[datetime, str, int]:
    return (entry.last_updated, entry.key, entry.version)


def record_of(version: StoredVersion) -> dict[str, Any]:
    """The history record of a stored version (to copy version 1 out of its head)."""
    return {
        "_id": f"{version.id}/{version.version}",
        "id": version.id,
        "v": version.version,
        "lu": version.last_updated,
        "del": version.deleted,
        "m": version.method,
        "json": None if version.raw is None else version.raw.decode(),
    }


def in_window(entry: StoredVersion, newer: StoredVersion | None, query: HistoryQuery) -> bool:
    if query.since and entry.last_updated < query.since:
        return False
    if query.till and entry.last_updated > query.till:
        return False
    if query.at_end and entry.last_updated >= query.at_end:
        return False
    return not (query.at_start and newer is not None and newer.last_updated <= query.at_start)
