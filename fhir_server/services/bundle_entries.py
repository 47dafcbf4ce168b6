"""The requests of a batch or transaction Bundle, parsed and checked (one job: what each
entry asks for; BundleService decides what happens)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from fhir_server import outcomes
from fhir_server.repository.base import StoredVersion

# The order in which a transaction's entries are processed (FHIR R4, http.html#trules).
METHOD_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_ETAG = re.compile(r'^(W/)?"(\d+)"$')


@dataclass
class Entry:
    """One request of a Bundle, parsed."""

    index: int
    method: str
    url: str
    resource_type: str
    id: str | None
    query: str | None
    resource: Any
    full_url: str | None
    if_match: int | None
    if_none_match: str | None
    if_none_exist: str | None

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"


@dataclass
class EntryResult:
    """What happened to one entry: rendered as ``entry.response`` (and resource)."""

    status: int
    stored: StoredVersion | None = None
    created: bool = False
    outcome: dict[str, Any] | None = None
    # For reads: what to put in ``entry.resource`` (a resource or a searchset Bundle).
    body: Any = None


def fail(entry: Entry, error: outcomes.FhirError) -> outcomes.FhirError:
    """The entry's error, with the entry named in every issue's expression."""
    for issue in error.issues:
        issue_expression = tuple(f"{entry.where}.{e}" if e else entry.where for e in issue.expression)
        object.__setattr__(issue, "expression", issue_expression or (entry.where,))
    return error


def parse_bundle(
    bundle: Any, expected: str | None, *, max_entries: int, base_url: str
) -> tuple[str, list[Entry]]:
    """Check a Bundle's shape and parse its entries' requests."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise outcomes.InvalidRequest("POST to the base URL takes a Bundle", expression="resourceType")
    kind = bundle.get("type")
    if kind not in ("batch", "transaction") or (expected and kind != expected):
        raise outcomes.InvalidRequest(
            f"Bundle.type must be batch or transaction, not '{kind}'", expression="Bundle.type"
        )
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise outcomes.InvalidRequest("Bundle.entry must be an array", expression="Bundle.entry")
    if len(raw_entries) > max_entries:
        raise outcomes.PayloadTooLarge(
            f"The Bundle has {len(raw_entries)} entries; this server takes at most {max_entries}",
            expression="Bundle.entry",
        )
    return kind, [_entry(i, raw, base_url) for i, raw in enumerate(raw_entries)]


def _entry(index: int, raw: Any, base_url: str) -> Entry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
        raise outcomes.InvalidRequest("Each entry needs a request", expression=f"{where}.request")
    request = raw["request"]
    method = str(request.get("method", "")).upper()
    if method not in METHOD_ORDER:
        raise outcomes.InvalidRequest(
            f"Unsupported request.method '{request.get('method')}'", expression=f"{where}.request.method"
        )
    url = str(request.get("url") or "")
    if base_url and url.startswith(base_url + "/"):
        url = url[len(base_url) + 1 :]
    parts = urlsplit(url)
    path = parts.path.strip("/")
    segments = path.split("/") if path else []
    query = parts.query if "?" in url else None
    if not segments or (method == "POST" and len(segments) != 1) or len(segments) > 4:
        raise outcomes.InvalidRequest(f"Unsupported request.url '{url}'", expression=f"{where}.request.url")
    if_match = None
    if request.get("ifMatch") is not None:
        found = _ETAG.match(str(request["ifMatch"]).strip())
        if not found:
            raise outcomes.InvalidRequest(
                'ifMatch must be an ETag such as W/"3"', expression=f"{where}.request.ifMatch"
            )
        if_match = int(found.group(2))
    if_none_exist = request.get("ifNoneExist")
    if if_none_exist is not None:
        if_none_exist = str(if_none_exist).split("?", 1)[-1]
    return Entry(
        index=index,
        method=method,
        url=url,
        resource_type=segments[0],
        id=segments[1] if len(segments) > 1 else None,
        query=query,
        resource=raw.get("resource"),
        full_url=raw.get("fullUrl"),
        if_match=if_match,
        if_none_match=request.get("ifNoneMatch"),
        if_none_exist=if_none_exist,
    )


def patch_operations(entry: Entry) -> Any:
    """JSON Patch in a transaction travels as a Binary resource (FHIR R4 http.html#patch)."""
    body = entry.resource
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and body.get("resourceType") == "Binary":
        if body.get("contentType") not in ("application/json-patch+json", None):
            raise outcomes.Unprocessable(
                "Only JSON Patch (application/json-patch+json) is supported",
                expression="resource.contentType",
            )
        try:
            return orjson.loads(base64.b64decode(str(body.get("data") or ""), validate=True))
        except (binascii.Error, ValueError) as exc:
            raise outcomes.InvalidRequest(
                "Binary.data is not a base64 JSON Patch", expression="resource.data"
            ) from exc
    raise outcomes.Unprocessable(
        "PATCH entries take a Binary with a JSON Patch (FHIRPath Patch is not supported)",
        expression="resource",
    )
