"""``POST /fhir``: batch and transaction Bundles (thin: parse, call BundleService, render)."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import orjson
from flask import Response, current_app, request

from fhir_server import outcomes
from fhir_server.api import negotiation
from fhir_server.api.bundles import searchset_bundle
from fhir_server.api.rendering import fhir_base, fhir_response
from fhir_server.api.resources import fhir
from fhir_server.search.dates import format_instant
from fhir_server.search.request import parse
from fhir_server.services.bundle_entries import Entry, EntryResult
from fhir_server.services.bundles import BundleService


def _service() -> BundleService:
    service: BundleService = current_app.extensions["interop"].bundles
    return service


@fhir.post("/")
def batch_or_transaction() -> Response:
    negotiation.response_mimetype(request)
    body = negotiation.read_json_body(request)
    kind, entries = _service().entries(body)
    run = _service().transaction if kind == "transaction" else _service().batch
    results = run(entries, _read_entry)
    return fhir_response(_response_bundle(kind, entries, results))


def _read_entry(entry: Entry) -> EntryResult:
    """A GET/HEAD entry: read, vread or search, answered as the REST API would."""
    resources = current_app.extensions["interop"].resources
    if entry.id is not None and entry.query is None:
        segments = entry.url.split("?", 1)[0].strip("/").split("/")
        if len(segments) == 4 and segments[2] == "_history":
            stored = resources.vread(entry.resource_type, entry.id, segments[3])
        elif len(segments) == 2:
            stored = resources.read(entry.resource_type, entry.id)
        else:
            raise outcomes.InvalidRequest(f"Unsupported request.url '{entry.url}'", expression="request.url")
        if entry.if_none_match and entry.if_none_match.strip('W/"') == str(stored.version):
            return EntryResult(304, stored=stored)
        return EntryResult(200, stored=stored, body=orjson.Fragment(stored.raw) if stored.raw else None)
    if entry.id is not None:
        raise outcomes.InvalidRequest(f"Unsupported request.url '{entry.url}'", expression="request.url")
    pairs = parse_qsl(entry.query or "", keep_blank_values=True)
    search = parse(entry.resource_type, pairs, strict=negotiation.preferences(request).handling == "strict")
    result = resources.search(search, base_url=fhir_base())
    bundle = searchset_bundle(
        result.matches,
        resource_type=entry.resource_type,
        params=search.criteria_pairs(),
        offset=search.offset,
        count=result.page_size,
        total=result.total,
        included=result.included,
    )
    return EntryResult(200, body=bundle)


def _response_bundle(kind: str, entries: list[Entry], results: list[EntryResult]) -> dict[str, Any]:
    prefer = negotiation.preferences(request).return_
    # A response carries each written resource only when asked (Prefer: return=representation).
    explicit = any("return=representation" in h for h in request.headers.getlist("Prefer"))
    out = []
    for entry, result in zip(entries, results, strict=True):
        item: dict[str, Any] = {}
        stored = result.stored
        if stored is not None:
            item["fullUrl"] = f"{fhir_base()}/{stored.resource_type}/{stored.id}"
        if result.body is not None:
            item["resource"] = result.body
        elif stored is not None and stored.raw is not None and explicit and entry.method not in ("DELETE",):
            item["resource"] = orjson.Fragment(stored.raw)
        response: dict[str, Any] = {"status": f"{result.status} {HTTPStatus(result.status).phrase}"}
        if stored is not None and entry.method not in ("DELETE",):
            response["location"] = f"{stored.resource_type}/{stored.id}/_history/{stored.version}"
            response["etag"] = f'W/"{stored.version}"'
            response["lastModified"] = format_instant(stored.last_updated)
        if result.outcome is not None:
            response["outcome"] = result.outcome
        elif prefer == "OperationOutcome" and stored is not None:
            response["outcome"] = outcomes.information(f"{stored.resource_type}/{stored.id}: {result.status}")
        item["response"] = response
        out.append(item)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": f"{kind}-response",
        "entry": out,
    }
