"""Every error, anywhere, leaves as an OperationOutcome: no HTML page, no stack trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from fhir_server import outcomes
from fhir_server.api.rendering import error_response

log = logging.getLogger("fhir_server.errors")

_HTTP_TO_TAXONOMY: dict[int, type[outcomes.FhirError]] = {
    400: outcomes.InvalidRequest,
    404: outcomes.NotFound,
    405: outcomes.MethodNotAllowed,
    406: outcomes.NotAcceptable,
    413: outcomes.PayloadTooLarge,
    415: outcomes.UnsupportedMediaType,
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(outcomes.FhirError)
    def fhir_error(error: outcomes.FhirError) -> Response:
        if error.status >= 500:
            log.error("request failed: %s", error.diagnostics)
        return error_response(error)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_error: RequestEntityTooLarge) -> Response:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        return error_response(
            outcomes.PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes")
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        kind = _HTTP_TO_TAXONOMY.get(status, outcomes.InternalError)
        if status == 404:
            message = f"No FHIR endpoint at {request.path}"
        elif status == 405:
            message = f"{request.method} is not supported on {request.path}"
        else:
            message = error.description or error.name
        failure = kind(message)
        response = error_response(failure)
        if status == 405 and isinstance(error.get_response().headers.get("Allow"), str):
            response.headers["Allow"] = error.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(outcomes.InternalError("An internal error occurred; see the server log"))
