"""Bulk Data ``$export``: kick-off, status, cancel and files (thin: parse, call, render)."""

from __future__ import annotations

from flask import Response, current_app, request

from fhir_server import outcomes
from fhir_server.api import negotiation
from fhir_server.api.rendering import fhir_base, fhir_response
from fhir_server.api.resources import fhir
from fhir_server.services.exports import ExportService, manifest

NDJSON = "application/fhir+ndjson"
_KICK_OFF_PARAMS = frozenset({"_type", "_since", "_outputFormat"})
RETRY_AFTER = "1"


def _service() -> ExportService:
    service: ExportService = current_app.extensions["interop_exports"]
    return service


def _kick_off(level: str, group: str | None = None) -> Response:
    if not negotiation.preferences(request).respond_async:
        raise outcomes.InvalidRequest("$export needs the header 'Prefer: respond-async'")
    unsupported = sorted(set(request.args) - _KICK_OFF_PARAMS)
    if unsupported:
        raise outcomes.InvalidRequest(
            f"Parameter '{unsupported[0]}' is not supported by $export", expression=unsupported[0]
        )
    types = [t for v in request.args.getlist("_type") for t in v.split(",") if t]
    job_id = _service().kick_off(
        level=level,
        group=group,
        types=types,
        since=request.args.get("_since"),
        output_format=request.args.get("_outputFormat"),
        request_url=request.url,
    )
    return Response(status=202, headers={"Content-Location": f"{fhir_base()}/$export-status/{job_id}"})


@fhir.get("/$export")
def system_export() -> Response:
    return _kick_off("system")


@fhir.get("/Patient/$export")
def patient_export() -> Response:
    return _kick_off("patient")


@fhir.get("/Group/<id>/$export")
def group_export(id: str) -> Response:
    return _kick_off("group", id)


@fhir.get("/$export-status/<job_id>")
def export_status(job_id: str) -> Response:
    job = _service().status(job_id)
    if job["status"] == "in-progress":
        return Response(status=202, headers={"X-Progress": job["progress"], "Retry-After": RETRY_AFTER})
    if job["status"] == "failed":
        raise outcomes.InternalError(job["error"] or "the export failed")
    settings = current_app.config["INTEROP_SETTINGS"]
    body = manifest(
        job, lambda name: f"{fhir_base()}/$export-file/{job_id}/{name}", settings.auth != "disabled"
    )
    response = fhir_response(body)
    response.headers["Content-Type"] = "application/json"
    return response


@fhir.delete("/$export-status/<job_id>")
def export_cancel(job_id: str) -> Response:
    _service().cancel(job_id)
    return fhir_response(outcomes.information(f"export {job_id} cancelled and deleted"), 202)


@fhir.get("/$export-file/<job_id>/<name>")
def export_file(job_id: str, name: str) -> Response:
    return Response(_service().file(job_id, name), mimetype=NDJSON)
