"""Thin views for the FHIR RESTful interactions: parse, call one service, render."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request

from fhir_server import outcomes
from fhir_server.api import negotiation
from fhir_server.api.bundles import history_bundle, searchset_bundle
from fhir_server.api.rendering import fhir_response, resource_response, version_headers, write_response
from fhir_server.repository.base import HistoryQuery, StoredVersion
from fhir_server.search.compartments import compartment_filter
from fhir_server.search.dates import parse_range
from fhir_server.search.request import SearchRequest, parse, parse_query_string
from fhir_server.services.resources import ResourceService, check_type
from fhir_server.services.summary import apply_elements, apply_summary, check_summary

fhir = Blueprint("fhir", __name__, url_prefix="/fhir")

_READ_PARAMS = frozenset({"_format", "_pretty", "_summary", "_elements"})
_HISTORY_PARAMS = frozenset({"_since", "_at", "_count", "_offset", "_till", "_format", "_pretty"})


def _service() -> ResourceService:
    service: ResourceService = current_app.extensions["interop"].resources
    return service


def _settings() -> Any:
    return current_app.config["INTEROP_SETTINGS"]


def _check_params(allowed: frozenset[str]) -> None:
    for name in request.args:
        if name not in allowed:
            raise outcomes.InvalidRequest(f"Parameter '{name}' is not supported here", expression=name)


def _criteria(resource_type: str, query: str) -> SearchRequest:
    check_type(resource_type)
    if not query.strip():
        raise outcomes.InvalidRequest("Conditional operations need search criteria")
    # Conditional operations are always strict: an ignored criterion could hit the wrong record.
    return parse_query_string(resource_type, query, strict=True)


# -- instance level --------------------------------------------------------------------


@fhir.get("/<resource_type>/<id>")
def read(resource_type: str, id: str) -> Response:
    _check_params(_READ_PARAMS)
    negotiation.response_mimetype(request)
    check_summary(request.args.get("_summary"))
    stored = _service().read(resource_type, id)
    if request.if_none_match and request.if_none_match.contains_weak(str(stored.version)):
        return Response(status=304, headers=version_headers(stored))
    return resource_response(stored, _subset(stored))


def _subset(stored: StoredVersion) -> dict[str, Any] | None:
    """The resource cut down by ``_summary``/``_elements``, or None to send it whole."""
    summary, elements = request.args.get("_summary"), request.args.get("_elements")
    if summary in (None, "false") and not elements:
        return None
    assert stored.resource is not None
    return apply_elements(apply_summary(stored.resource, summary), elements)


@fhir.get("/<resource_type>/<id>/_history/<version>")
def vread(resource_type: str, id: str, version: str) -> Response:
    _check_params(_READ_PARAMS)
    negotiation.response_mimetype(request)
    check_summary(request.args.get("_summary"))
    stored = _service().vread(resource_type, id, version)
    return resource_response(stored, _subset(stored))


@fhir.put("/<resource_type>/<id>")
def update(resource_type: str, id: str) -> Response:
    negotiation.response_mimetype(request)
    body = negotiation.read_json_body(request)
    result = _service().update(resource_type, id, body, if_match=negotiation.if_match_version(request))
    return write_response(result)


@fhir.patch("/<resource_type>/<id>")
def patch(resource_type: str, id: str) -> Response:
    negotiation.response_mimetype(request)
    if (request.mimetype or "").lower() in (negotiation.FHIR_JSON, negotiation.JSON):
        raise outcomes.UnsupportedMediaType(
            "FHIRPath Patch (a Parameters body) is not supported; send application/json-patch+json"
        )
    body = negotiation.read_json_body(request, allowed=(negotiation.JSON_PATCH,))
    result = _service().patch(resource_type, id, body, if_match=negotiation.if_match_version(request))
    return write_response(result)


@fhir.delete("/<resource_type>/<id>")
def delete(resource_type: str, id: str) -> Response:
    negotiation.response_mimetype(request)
    result = _service().delete(resource_type, id, if_match=negotiation.if_match_version(request))
    return _delete_response(result, f"{resource_type}/{id}")


def _delete_response(result: Any, what: str) -> Response:
    headers = version_headers(result.stored) if result is not None else {}
    if negotiation.preferences(request).return_ == "OperationOutcome" or result is None:
        message = f"{what} deleted" if result is not None else f"{what}: nothing to delete"
        return fhir_response(outcomes.information(message), 200, headers)
    return Response(status=204, headers=headers)


# -- type level ------------------------------------------------------------------------


@fhir.post("/<resource_type>")
def create(resource_type: str) -> Response:
    negotiation.response_mimetype(request)
    body = negotiation.read_json_body(request)
    if_none_exist = request.headers.get("If-None-Exist")
    criteria = None
    if if_none_exist is not None:
        query = if_none_exist.split("?", 1)[1] if "?" in if_none_exist else if_none_exist
        criteria = _criteria(resource_type, query)
    result = _service().create(resource_type, body, if_none_exist=criteria)
    return write_response(result)


@fhir.put("/<resource_type>")
def conditional_update(resource_type: str) -> Response:
    negotiation.response_mimetype(request)
    criteria = _criteria(resource_type, request.query_string.decode())
    body = negotiation.read_json_body(request)
    result = _service().conditional_update(
        resource_type, criteria, body, if_match=negotiation.if_match_version(request)
    )
    return write_response(result)


@fhir.delete("/<resource_type>")
def conditional_delete(resource_type: str) -> Response:
    negotiation.response_mimetype(request)
    criteria = _criteria(resource_type, request.query_string.decode())
    result = _service().conditional_delete(resource_type, criteria)
    return _delete_response(result, resource_type)


@fhir.get("/<resource_type>")
def search(resource_type: str) -> Response:
    return _search(resource_type, list(request.args.items(multi=True)))


@fhir.post("/<resource_type>/_search")
def search_post(resource_type: str) -> Response:
    if request.mimetype != "application/x-www-form-urlencoded":
        raise outcomes.UnsupportedMediaType("POST _search needs application/x-www-form-urlencoded")
    pairs = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
    return _search(resource_type, pairs)


@fhir.get("/")
def system_search() -> Response:
    """``GET /fhir?_type=A,B&...``: the same criteria over several types, newest first."""
    negotiation.response_mimetype(request)
    requested = [t for v in request.args.getlist("_type") for t in v.split(",") if t]
    if not requested:
        raise outcomes.InvalidRequest("A system-level search needs _type (e.g. _type=Patient,Observation)")
    for resource_type in requested:
        check_type(resource_type)
    pairs = [(k, v) for k, v in request.args.items(multi=True) if k != "_type"]
    strict = negotiation.preferences(request).handling == "strict"
    result, parsed = _service().search_system(requested, pairs, strict=strict, base_url=_settings().fhir_base)
    bundle = searchset_bundle(
        result.matches,
        resource_type="",
        params=[("_type", ",".join(requested)), *parsed.criteria_pairs()],
        offset=parsed.offset,
        count=result.page_size,
        total=result.total,
    )
    return fhir_response(bundle)


@fhir.get("/Patient/<id>/*")
def patient_compartment_all(id: str) -> Response:
    """``Patient/{id}/*``: every resource in the patient's compartment."""
    return patient_everything(id)


@fhir.get("/Patient/<id>/$everything")
def patient_everything(id: str) -> Response:
    negotiation.response_mimetype(request)
    for name in request.args:
        if name not in ("_count", "_offset", "_type", "_format", "_pretty"):
            raise outcomes.InvalidRequest(
                f"Parameter '{name}' is not supported by $everything", expression=name
            )
    count = min(_int_arg("_count", 50), 1000)
    offset = _int_arg("_offset", 0)
    types = [t for v in request.args.getlist("_type") for t in v.split(",") if t] or None
    for resource_type in types or []:
        check_type(resource_type)
    result = _service().everything(id, offset=offset, count=count, types=types)
    params = [("_type", ",".join(types))] if types else []
    bundle = searchset_bundle(
        result.matches,
        resource_type="",
        params=params,
        offset=offset,
        count=count,
        total=result.total,
        path=f"Patient/{id}/$everything",
    )
    return fhir_response(bundle)


@fhir.get("/<compartment>/<id>/<resource_type>")
def compartment_search(compartment: str, id: str, resource_type: str) -> Response:
    check_type(compartment)
    check_type(resource_type)
    criteria = compartment_filter(compartment, id, resource_type)
    path = f"{compartment}/{id}/{resource_type}"
    return _search(resource_type, list(request.args.items(multi=True)), extra=criteria, path=path)


def _search(
    resource_type: str,
    pairs: list[tuple[str, str]],
    *,
    extra: dict[str, Any] | None = None,
    path: str | None = None,
) -> Response:
    negotiation.response_mimetype(request)
    check_type(resource_type)
    strict = negotiation.preferences(request).handling == "strict"
    search_request = parse(resource_type, pairs, strict=strict)
    if extra is not None:
        search_request = replace(search_request, extra_filters=(extra,))
    summary = request.values.get("_summary")
    check_summary(summary)
    elements = request.values.get("_elements")
    if summary == "count":
        search_request = replace(search_request, count=0)
    result = _service().search(search_request, base_url=_settings().fhir_base)
    page = result.matches
    if summary not in (None, "false", "count") or elements:
        page = [
            replace(m, raw=orjson.dumps(apply_elements(apply_summary(m.resource or {}, summary), elements)))
            for m in page
        ]
    outcome = None
    if search_request.ignored:
        outcome = outcomes.operation_outcome(
            [
                outcomes.Issue(
                    f"Ignored unsupported search parameter '{name}'", code="not-supported", severity="warning"
                )
                for name in search_request.ignored
            ]
        )
    bundle = searchset_bundle(
        page,
        resource_type=resource_type,
        params=search_request.criteria_pairs(),
        offset=search_request.offset,
        count=result.page_size,
        total=result.total,
        outcome=outcome,
        included=result.included,
        path=path,
        keyset=all(k.code in ("_id", "_lastUpdated") for k in search_request.sort),
        cursor=search_request.cursor,
        next_cursor=result.next_cursor,
    )
    return fhir_response(bundle)


# -- history ---------------------------------------------------------------------------


def history_query(
    resource_type: str | None = None, id: str | None = None
) -> tuple[HistoryQuery, dict[str, str]]:
    _check_params(_HISTORY_PARAMS)
    settings = _settings()
    args = request.args
    since = parse_range(args["_since"], name="_since")[0] if "_since" in args else None
    at_start, at_end = parse_range(args["_at"], name="_at") if "_at" in args else (None, None)
    count = _int_arg("_count", settings.history_page_size)
    count = min(count, settings.history_max_page_size)
    offset = _int_arg("_offset", 0)
    till = parse_range(args["_till"], name="_till")[0] if "_till" in args else datetime.now(UTC)
    params = {k: v for k, v in args.items() if k in ("_since", "_at", "_format", "_pretty")}
    # Pin later pages to the moment of the first one so new writes do not shift them.
    params["_till"] = args.get("_till") or till.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    query = HistoryQuery(resource_type, id, since, at_start, at_end, till, offset, count)
    return query, params


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise outcomes.InvalidRequest(f"'{name}' must be a non-negative integer", expression=name)
    return int(raw)


@fhir.get("/<resource_type>/<id>/_history")
def instance_history(resource_type: str, id: str) -> Response:
    return _history(resource_type, id, f"{resource_type}/{id}/_history")


@fhir.get("/<resource_type>/_history")
def type_history(resource_type: str) -> Response:
    return _history(resource_type, None, f"{resource_type}/_history")


@fhir.get("/_history")
def system_history() -> Response:
    return _history(None, None, "_history")


def _history(resource_type: str | None, id: str | None, path: str) -> Response:
    negotiation.response_mimetype(request)
    query, params = history_query(resource_type, id)
    page = _service().history(query)
    bundle = history_bundle(page, path=path, params=params, offset=query.offset, count=query.count)
    return fhir_response(bundle)
