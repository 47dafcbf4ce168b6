"""``/fhir/$population-analytics`` and the OperationDefinitions (thin: parse, call, render)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request

from conformance.operations import OPERATIONS
from fhir_server import outcomes
from fhir_server.api import negotiation
from fhir_server.api.rendering import fhir_response, resource_response
from fhir_server.api.resources import fhir
from fhir_server.services.analytics.report import as_parameters
from fhir_server.services.analytics.service import AnalyticsService

_FORMAT_PARAMS = ("_format", "_pretty")


def _service() -> AnalyticsService:
    service: AnalyticsService = current_app.extensions["interop_analytics"]
    return service


def _from_parameters(body: Any) -> tuple[dict[str, list[str]], dict[str, Any] | None]:
    """A POSTed Parameters resource as name -> values, and an inline ValueSet if any."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise outcomes.InvalidRequest("POST $population-analytics takes a Parameters resource")
    params: dict[str, list[str]] = {}
    value_set = None
    for parameter in body.get("parameter") or []:
        name = parameter.get("name")
        if name == "valueSetDefinition":
            value_set = parameter.get("resource")
            continue
        values = [v for k, v in parameter.items() if k.startswith("value")]
        if not name or len(values) != 1:
            raise outcomes.InvalidRequest(f"Parameter '{name}' needs one value[x]", expression="parameter")
        params.setdefault(name, []).append(str(values[0]))
    return params, value_set


@fhir.route("/$population-analytics", methods=["GET", "POST"])
def population_analytics() -> Response:
    mimetype = negotiation.response_mimetype(request)
    params: dict[str, list[str]] = {}
    for name, value in request.args.items(multi=True):
        if name not in _FORMAT_PARAMS:
            params.setdefault(name, []).append(value)
    value_set = None
    if request.method == "POST":
        posted, value_set = _from_parameters(negotiation.read_json_body(request))
        for name, values in posted.items():
            params.setdefault(name, []).extend(values)
    figures = _service().run(params, value_set)
    if mimetype == negotiation.JSON:  # plain figures, for charts
        return fhir_response(figures)
    return fhir_response(as_parameters(figures))


@fhir.get("/OperationDefinition/<id>")
def operation_definition(id: str) -> Response:
    """The built-in definitions; any other id is an ordinary stored resource."""
    negotiation.response_mimetype(request)
    if id in OPERATIONS:
        return fhir_response(OPERATIONS[id])
    return resource_response(current_app.extensions["interop"].resources.read("OperationDefinition", id))
