"""Keyset paging: a ``next`` link carries the sort key of the page's last entry, so
later pages stay correct while resources are created or deleted (no skipped or
repeated entries, unlike an offset). Used when the order is by ``_id`` and/or
``_lastUpdated`` (the default is ``_id``); other ``_sort`` keys can be multi-valued,
and pages of those fall back to offsets.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson

from fhir_server import outcomes
from fhir_server.repository.base import StoredVersion

CURSOR_FIELDS = frozenset({"_id", "lu"})


def cursorable(sort: list[tuple[str, int]]) -> bool:
    return all(field in CURSOR_FIELDS for field, _ in sort)


def encode_cursor(sort: list[tuple[str, int]], last: StoredVersion) -> str:
    values = [last.id if field == "_id" else last.last_updated.isoformat() for field, _ in sort]
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def keyset_condition(sort: list[tuple[str, int]], cursor: str) -> dict[str, Any]:
    """Entries strictly after the cursor in the given order."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
        if not isinstance(values, list) or len(values) != len(sort):
            raise ValueError("cursor does not match the order")
        typed = [
            v if field == "_id" else datetime.fromisoformat(v)
            for (field, _), v in zip(sort, values, strict=True)
        ]
        if not all(isinstance(v, str | datetime) for v in typed):
            raise ValueError("bad cursor value")
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise outcomes.InvalidRequest(
            "Invalid paging cursor; start again from the first page", expression="_cursor"
        ) from exc
    alternatives = []
    for i, (field, direction) in enumerate(sort):
        clause: dict[str, Any] = {f: typed[j] for j, (f, _) in enumerate(sort[:i])}
        clause[field] = {"$gt" if direction > 0 else "$lt": typed[i]}
        alternatives.append(clause)
    return alternatives[0] if len(alternatives) == 1 else {"$or": alternatives}
