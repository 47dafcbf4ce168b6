"""Build Flask responses for resources, outcomes and bundles."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, current_app, request

from fhir_server.api import negotiation
from fhir_server.outcomes import FhirError, information
from fhir_server.repository.base import StoredVersion
from fhir_server.services.resources import WriteResult, http_date


def fhir_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Render a payload: a JSON-able object, or stored JSON text (``bytes``) sent as is."""
    try:
        mimetype = negotiation.response_mimetype(request)
    except FhirError:
        mimetype = negotiation.FHIR_JSON  # errors are still rendered, in our default format
    indent = negotiation.pretty(request)
    if isinstance(payload, bytes):
        body = negotiation.dumps(orjson.loads(payload), indent=True) if indent else payload
    else:
        body = negotiation.dumps(payload, indent=indent)
    response = Response(body, status=status, mimetype=mimetype)
    response.headers["Content-Type"] = f"{mimetype}; charset=utf-8"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_response(error: FhirError) -> Response:
    return fhir_response(error.to_outcome(), error.status, error.headers)


def fhir_base() -> str:
    return str(current_app.config["INTEROP_SETTINGS"].fhir_base)


def version_url(stored: StoredVersion) -> str:
    return f"{fhir_base()}/{stored.resource_type}/{stored.id}/_history/{stored.version}"


def version_headers(stored: StoredVersion) -> dict[str, str]:
    return {
        "ETag": negotiation.etag(stored.version),
        "Last-Modified": http_date(stored.last_updated),
    }


def resource_response(stored: StoredVersion, payload: dict[str, Any] | None = None) -> Response:
    return fhir_response(payload if payload is not None else stored.raw, 200, version_headers(stored))


def write_response(result: WriteResult, *, created_status: int = 201) -> Response:
    stored = result.stored
    status = created_status if result.created else 200
    headers = version_headers(stored)
    headers["Content-Location"] = version_url(stored)
    if result.created:
        headers["Location"] = version_url(stored)
    prefer = negotiation.preferences(request).return_
    if prefer == "minimal":
        return Response(status=status, headers=headers)
    if prefer == "OperationOutcome":
        verb = "created" if result.created else ("updated" if result.changed else "matched an existing")
        return fhir_response(
            information(f"{stored.resource_type}/{stored.id} {verb} (version {stored.version})"),
            status,
            headers,
        )
    return fhir_response(stored.raw, status, headers)
