"""CDS Hooks endpoints, thin: parse, call the service, render. Errors leave as JSON errors.

``GET /cds-services`` (discovery, open), ``POST /cds-services/{id}``,
``POST /cds-services/{id}/feedback`` and ``GET /cds-services/{id}/feedback/summary``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

import orjson
from flask import Blueprint, Flask, Response, current_app, request

from decision_support import feedback
from decision_support.auth import Authenticator, Unauthorized, log_refusal
from decision_support.hooks import CdsRequest, parse_request
from decision_support.prefetch import Fetcher, resolve
from decision_support.registry import Registry
from fhir_server import outcomes

cds = Blueprint("cds", __name__, url_prefix="/cds-services")


class RecordStore(Protocol):
    """What the API needs from the store (fhir_server.repository.cds.CdsRecords implements it)."""

    def save_evaluations(self, records: list[dict[str, Any]]) -> None: ...
    def evaluations(self, card_ids: list[str]) -> dict[str, dict[str, Any]]: ...
    def save_feedback(self, records: list[dict[str, Any]]) -> None: ...
    def feedback(self, service: str) -> list[dict[str, Any]]: ...
    def claim_token_id(self, issuer: str, jti: str, expires: datetime) -> bool: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class CdsComponents:
    registry: Registry
    fetcher_for: Callable[[CdsRequest], Fetcher | None]
    records: RecordStore
    authenticator: Authenticator | None  # None: INTEROP_AUTH=disabled
    base_url: str
    today: Callable[[], date]


def install(app: Flask, components: CdsComponents) -> None:
    app.extensions["cds"] = components
    app.register_blueprint(cds)


def _components() -> CdsComponents:
    components: CdsComponents = current_app.extensions["cds"]
    return components


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def _body() -> Any:
    try:
        return orjson.loads(request.get_data(cache=False))
    except orjson.JSONDecodeError as exc:
        raise outcomes.InvalidRequest("The body is not valid JSON") from exc


@cds.before_request
def authenticate() -> Response | None:
    parts = _components()
    if parts.authenticator is None or (
        request.method == "GET" and request.path.rstrip("/") == "/cds-services"
    ):
        return None  # discovery holds no patient data
    try:
        parts.authenticator.verify(request.headers.get("Authorization"), parts.base_url + request.path)
    except Unauthorized as exc:
        log_refusal(exc)
        return _json({"error": "unauthorized"}, 401)
    return None


@cds.errorhandler(outcomes.FhirError)
def fhir_error(exc: outcomes.FhirError) -> Response:
    issue = exc.issues[0]
    error = {"status": exc.status, "code": issue.code, "message": exc.diagnostics}
    if issue.expression:
        error["expression"] = list(issue.expression)
    return _json({"error": error}, exc.status)


@cds.get("")
def discovery() -> Response:
    return _json(_components().registry.discovery())


@cds.post("/<service_id>")
def call(service_id: str) -> Response:
    parts = _components()
    service = parts.registry.get(service_id)
    cds_request = parse_request(_body(), service_hook=service.hook)
    data = resolve(service.prefetch, cds_request, parts.fetcher_for)
    cards = service.handle(cds_request, data, parts.today())
    at = datetime.now(UTC)
    context = {"service": service.id, "hookInstance": cds_request.hook_instance, "evaluated": at}
    parts.records.save_evaluations(
        [{**card.audit(), **context, "prefetchOrigin": data.origin} for card in cards]
    )
    return _json({"cards": [card.to_json() for card in cards]})


@cds.post("/<service_id>/feedback")
def post_feedback(service_id: str) -> Response:
    parts = _components()
    service = parts.registry.get(service_id)
    parts.records.save_feedback(feedback.parse(_body(), service.id))
    return Response(status=200)


@cds.get("/<service_id>/feedback/summary")
def feedback_summary(service_id: str) -> Response:
    parts = _components()
    service = parts.registry.get(service_id)
    items = parts.records.feedback(service.id)
    evaluations = parts.records.evaluations(sorted({i["card"] for i in items}))
    card_types = {card: e["cardType"] for card, e in evaluations.items()}
    return _json({"service": service.id, **feedback.summarise(items, card_types)})


def today_utc() -> date:
    return datetime.now(UTC).date()
