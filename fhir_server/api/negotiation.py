"""HTTP-level FHIR conventions: formats, Prefer, ETags, request bodies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from flask import Request

from fhir_server import outcomes

FHIR_JSON = "application/fhir+json"
JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
_JSON_TYPES = {FHIR_JSON: FHIR_JSON, JSON: JSON, "application/json+fhir": FHIR_JSON, "text/json": JSON}
_FORMAT_ALIASES = {"json": FHIR_JSON, FHIR_JSON: FHIR_JSON, JSON: JSON, "application/json+fhir": FHIR_JSON}
_KNOWN_UNSUPPORTED = ("xml", "turtle", "ttl", "html", "application/fhir+xml", "text/html")
_ETAG = re.compile(r'^\s*(?:W/)?"(\d+)"\s*$')


@dataclass(frozen=True)
class Preferences:
    """What the client asked for in ``Prefer``."""

    return_: str = "representation"
    handling: str = "lenient"
    respond_async: bool = False


def response_mimetype(request: Request) -> str:
    """Pick the response format from ``_format`` (wins) or ``Accept``; 406 if none fits."""
    fmt = request.args.get("_format")
    if fmt is not None:
        chosen = _FORMAT_ALIASES.get(fmt.split(";")[0].strip().lower())
        if chosen is None:
            raise outcomes.NotAcceptable(f"_format '{fmt}' is not supported; use json", expression="_format")
        return chosen
    header = request.headers.get("Accept")
    if not header or header == "*/*":
        return FHIR_JSON
    if header in _JSON_TYPES:  # the common exact values, without parsing q-values
        return _JSON_TYPES[header]
    accept = request.accept_mimetypes
    if not accept or not accept.values():
        return FHIR_JSON
    best = accept.best_match([FHIR_JSON, JSON, "application/json+fhir", "text/json"])
    if best is None:
        raise outcomes.NotAcceptable(
            f"None of the accepted formats ({request.headers.get('Accept')}) is supported; "
            f"this server speaks {FHIR_JSON} and {JSON}"
        )
    return _JSON_TYPES[best]


def preferences(request: Request) -> Preferences:
    values: dict[str, str] = {}
    for header in request.headers.getlist("Prefer"):
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            values[key.strip().lower()] = value.strip().strip('"')
    return_ = values.get("return", "representation")
    if return_ not in ("minimal", "representation", "OperationOutcome"):
        return_ = "representation"
    handling = values.get("handling", "lenient")
    return Preferences(
        return_, handling if handling in ("strict", "lenient") else "lenient", "respond-async" in values
    )


def pretty(request: Request) -> bool:
    return request.args.get("_pretty", "false").lower() == "true"


def read_json_body(request: Request, *, allowed: tuple[str, ...] = (FHIR_JSON, JSON)) -> Any:
    """Parse the body as JSON after checking its media type (415) and syntax (400)."""
    mimetype = (request.mimetype or "").lower()
    if mimetype and mimetype not in allowed and _JSON_TYPES.get(mimetype) not in allowed:
        raise outcomes.UnsupportedMediaType(
            f"Content-Type '{request.content_type}' is not supported here; send {' or '.join(allowed)}"
        )
    data = request.get_data(cache=False)
    if not data.strip():
        raise outcomes.InvalidRequest("The request body is empty")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise outcomes.InvalidRequest(f"The request body is not valid JSON: {exc}") from exc


def if_match_version(request: Request) -> int | None:
    header = request.headers.get("If-Match")
    if header is None:
        return None
    match = _ETAG.match(header)
    if not match:
        raise outcomes.InvalidRequest(f"Malformed If-Match '{header}'; expected W/\"<versionId>\"")
    return int(match.group(1))


def etag(version: int) -> str:
    return f'W/"{version}"'


def dumps(payload: Any, *, indent: bool) -> bytes:
    option = orjson.OPT_INDENT_2 if indent else 0
    return orjson.dumps(payload, option=option)
