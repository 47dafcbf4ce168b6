"""History and searchset Bundles, with paging links."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import orjson

from fhir_server.api.rendering import fhir_base
from fhir_server.repository.base import HistoryPage, StoredVersion
from fhir_server.search.dates import format_instant
from fhir_server.services.resources import http_date

_METHOD_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "204 No Content"}


def _page_links(
    path: str, params: dict[str, str] | list[tuple[str, str]], offset: int, count: int, total: int | None
) -> list[dict[str, str]]:
    base = f"{fhir_base()}/{path}" if path else fhir_base()
    pairs = list(params.items()) if isinstance(params, dict) else list(params)

    def url(at: int) -> str:
        return f"{base}?{urlencode([*pairs, ('_count', str(count)), ('_offset', str(at))])}"

    links = [{"relation": "self", "url": url(offset)}, {"relation": "first", "url": url(0)}]
    if offset > 0:
        links.append({"relation": "previous", "url": url(max(0, offset - count))})
    if count > 0 and (total is None or offset + count < total):
        links.append({"relation": "next", "url": url(offset + count)})
    if count > 0 and total:
        links.append({"relation": "last", "url": url(((total - 1) // count) * count)})
    return links


def _cursor_links(
    path: str, params: list[tuple[str, str]], count: int, cursor: str | None, next_cursor: str | None
) -> list[dict[str, str]]:
    base = f"{fhir_base()}/{path}" if path else fhir_base()

    def url(at: str | None) -> str:
        extra = [("_cursor", at)] if at else []
        return f"{base}?{urlencode([*params, ('_count', str(count)), *extra])}"

    links = [{"relation": "self", "url": url(cursor)}, {"relation": "first", "url": url(None)}]
    if next_cursor:
        links.append({"relation": "next", "url": url(next_cursor)})
    return links


def history_bundle(
    page: HistoryPage, *, path: str, params: dict[str, str], offset: int, count: int
) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "history",
        "total": page.total,
        "link": _page_links(path, params, offset, count, page.total),
        "entry": [_history_entry(e) for e in page.entries],
    }


def _history_entry(entry: StoredVersion) -> dict[str, Any]:
    full_url = f"{fhir_base()}/{entry.resource_type}/{entry.id}"
    method = entry.method if entry.method in _METHOD_STATUS else "PUT"
    status = "201 Created" if method == "PUT" and entry.version == 1 else _METHOD_STATUS[method]
    item: dict[str, Any] = {"fullUrl": full_url}
    if entry.raw is not None:
        item["resource"] = orjson.Fragment(entry.raw)  # stored JSON, embedded without re-encoding
    item["request"] = {
        "method": method,
        "url": f"{entry.resource_type}/{entry.id}" if method != "POST" else entry.resource_type,
    }
    item["response"] = {
        "status": status,
        "etag": f'W/"{entry.version}"',
        "lastModified": format_instant(entry.last_updated),
    }
    return item


def searchset_bundle(
    matches: list[StoredVersion],
    *,
    resource_type: str,
    params: list[tuple[str, str]],
    offset: int,
    count: int,
    total: int | None,
    outcome: dict[str, Any] | None = None,
    included: list[StoredVersion] | None = None,
    path: str | None = None,
    keyset: bool = False,
    cursor: str | None = None,
    next_cursor: str | None = None,
) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{fhir_base()}/{m.resource_type}/{m.id}",
            "resource": orjson.Fragment(m.raw) if m.raw is not None else None,
            "search": {"mode": mode},
        }
        for mode, group in (("match", matches), ("include", included or []))
        for m in group
    ]
    if outcome is not None:
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": format_instant(_now())},
        "type": "searchset",
    }
    if total is not None:
        bundle["total"] = total
    # A page shorter than asked is the last one, whatever the total says.
    has_more = total if total is not None else (offset + count + (1 if len(matches) == count else 0))
    if keyset:
        bundle["link"] = _cursor_links(path or resource_type, params, count, cursor, next_cursor)
    else:
        bundle["link"] = _page_links(path or resource_type, params, offset, count, has_more)
    bundle["entry"] = entries
    return bundle


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


__all__ = ["history_bundle", "http_date", "searchset_bundle"]
