"""System-level endpoints: CapabilityStatement, health and readiness."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, current_app, request

from conformance.capability import CapabilityFeatures, build_capability_statement
from conformance.operations import OPERATIONS
from conformance.registry import resource_types
from fhir_server.api import negotiation
from fhir_server.api.rendering import fhir_response
from fhir_server.repository.base import StoreError
from fhir_server.search.request import supported_parameters

system = Blueprint("system", __name__)

INSTANCE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance")
TYPE_INTERACTIONS = ("create", "search-type", "history-type")
SYSTEM_INTERACTIONS = ("history-system",)


@lru_cache(maxsize=8)
def _capability(base_url: str, version: str) -> dict[str, Any]:
    types = sorted(resource_types())
    interactions = dict.fromkeys(types, INSTANCE_INTERACTIONS + TYPE_INTERACTIONS)
    return build_capability_statement(
        base_url=base_url,
        software_name="interop-server",
        software_version=version,
        interactions=interactions,
        system_interactions=SYSTEM_INTERACTIONS,
        search_params={t: supported_parameters(t) for t in types},
        formats=(negotiation.FHIR_JSON, negotiation.JSON),
        patch_formats=(negotiation.JSON_PATCH,),
        features=CapabilityFeatures(
            versioning="versioned-update",
            read_history=True,
            update_create=True,
            conditional_create=True,
            conditional_update=True,
            conditional_delete="single",
        ),
        operations=[(name, definition["url"]) for name, definition in OPERATIONS.items()],
    )


@system.get("/fhir/metadata")
def metadata() -> Response:
    negotiation.response_mimetype(request)
    settings = current_app.config["INTEROP_SETTINGS"]
    from importlib.metadata import PackageNotFoundError, version

    try:
        software_version = version("interop-server")
    except PackageNotFoundError:
        software_version = "0.0.0"
    statement = _capability(settings.base_url, software_version)
    return fhir_response(
        {**statement, "rest": [{**statement["rest"][0], "security": _security(settings.fhir_base)}]}
    )


def _security(fhir_base: str) -> dict[str, Any]:
    """``rest.security``: SMART on FHIR, with the OAuth endpoints as the SMART extension says."""
    from fhir_server.auth.wiring import urls

    endpoints = urls(fhir_base)
    return {
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
            }
        ],
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [
                    {"url": name, "valueUri": endpoints[name]}
                    for name in ("token", "authorize", "introspect", "revoke")
                ],
            }
        ],
    }


@system.get("/healthz")
def healthz() -> Response:
    return Response('{"status":"ok"}', mimetype="application/json")


@system.get("/readyz")
def readyz() -> Response:
    try:
        current_app.extensions["interop"].repository.ping()
    except StoreError as exc:
        body = f'{{"status":"unavailable","store":"{exc.__class__.__name__}"}}'
        return Response(body, status=503, mimetype="application/json")
    return Response('{"status":"ready"}', mimetype="application/json")
