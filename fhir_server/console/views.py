"""Console pages (thin: check access, call ConsoleService, render a template)."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for

from fhir_server import outcomes
from fhir_server.console import access
from fhir_server.console import inbox as inbox_pages
from fhir_server.services.analytics.periods import BUCKETS
from fhir_server.services.analytics.service import MEASURES, AnalyticsService
from fhir_server.services.console import ConsoleService

console = Blueprint(
    "console", __name__, url_prefix="/console", template_folder="templates", static_folder="static"
)


def _service() -> ConsoleService:
    components = current_app.extensions["interop"]
    return ConsoleService(components.repository, components.resources)


def _fhir_base() -> str:
    return str(current_app.config["INTEROP_SETTINGS"].fhir_base)


@console.before_request
def check_access() -> Response | None:
    if request.endpoint in ("console.static", "console.login"):
        return None
    user = access.current_user()
    if user is None:
        auth = access.provider()
        if auth is not None:
            return redirect(auth.login_url(request.url))  # type: ignore[return-value]
        return redirect(url_for("console.login", next=request.full_path))  # type: ignore[return-value]
    if not user.is_administrator:
        return Response(render_template("denied.html", user=user), status=403)
    return None


@console.app_context_processor
def inject_user() -> dict[str, Any]:
    if request.blueprint not in ("console", "console_signin"):
        return {}
    return {
        "console_user": access.current_user(),
        "url_rules": set(current_app.view_functions),
        "csp_nonce": _nonce(),
    }


def _nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


@console.after_request
def content_policy(response: Response) -> Response:
    """The console's own policy (the API's ``default-src 'none'`` would block its pages):
    scripts and styles only from the console itself, inline scripts only with this
    response's nonce; forms post only here."""
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' 'nonce-{_nonce()}'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@console.app_template_filter("summary")
def summary(resource: dict[str, Any] | None) -> str:
    """A few words naming a resource: its name, code or text."""
    if not resource:
        return ""
    names = resource.get("name")
    if isinstance(names, list) and names and isinstance(names[0], dict):
        given = " ".join(names[0].get("given") or [])
        return f"{given} {names[0].get('family', '')}".strip() or str(names[0].get("text", ""))
    if isinstance(names, str):
        return names
    code = resource.get("code")
    if isinstance(code, dict):
        coding = (code.get("coding") or [{}])[0]
        return str(code.get("text") or coding.get("display") or coding.get("code") or "")
    return str(resource.get("status", ""))


@console.get("/login")
def login() -> Response:
    """Without a login provider (the security component) the console stays closed."""
    auth = access.provider()
    if auth is not None:
        return redirect(auth.login_url(request.args.get("next", url_for("console.dashboard"))))  # type: ignore[return-value]
    return Response(render_template("login.html"), status=401)


@console.errorhandler(outcomes.FhirError)
def fhir_error(error: outcomes.FhirError) -> tuple[str, int]:
    return render_template("error.html", error=error), error.status


@console.get("/")
def dashboard() -> str:
    service = _service()
    counts = service.resource_counts()
    activity = current_app.extensions["console_activity"].summary()
    return render_template(
        "dashboard.html",
        counts=sorted(counts.items(), key=lambda kv: -kv[1]),
        total=sum(counts.values()),
        activity=activity,
        inbox=_inbox_summary(),
        cds=_cds_totals(),
    )


@console.get("/cds")
def cds_activity() -> str:
    """Per CDS service: cards returned, feedback, and per card type accepted vs overridden
    with the override reasons given (the same summary as the service's feedback/summary)."""
    from decision_support.feedback import summarise

    parts: Any = current_app.extensions.get("cds")
    services = []
    for service in parts.registry if parts is not None else []:
        items = parts.records.feedback(service.id)
        evaluations = parts.records.evaluations(sorted({i["card"] for i in items}))
        card_types = {card: e["cardType"] for card, e in evaluations.items()}
        services.append(
            {"id": service.id, "hook": service.hook, "title": service.title, **summarise(items, card_types)}
        )
    return render_template("cds.html", services=services, totals=_cds_totals())


def _cds_totals() -> dict[str, int] | None:
    if "cds-services" not in {
        rule.rule.strip("/").split("/")[0] for rule in current_app.url_map.iter_rules()
    }:
        return None
    from fhir_server.repository.cds import CdsRecords

    return CdsRecords.of(current_app.extensions["interop"].repository).totals()


def _inbox_summary() -> dict[str, Any] | None:
    service = inbox_pages.inbox_service()
    return None if service is None else service.summary()


@console.get("/resources")
def resources() -> str:
    resource_type = request.args.get("type", "").strip()
    query = request.args.get("q", "").strip()
    result = None
    if resource_type:
        result = _service().search(resource_type, query, base_url=_fhir_base())
    types = sorted(_service().resource_counts())
    return render_template(
        "resources.html", types=types, resource_type=resource_type, query=query, result=result
    )


@console.get("/resources/<resource_type>/<id>")
def resource(resource_type: str, id: str) -> str:
    service = _service()
    current = service.read(resource_type, id)
    history = service.history(resource_type, id)
    return render_template(
        "resource.html", resource_type=resource_type, id=id, current=current, history=history
    )


@console.get("/resources/<resource_type>/<id>/diff")
def diff(resource_type: str, id: str) -> str:
    older, newer = request.args.get("from", ""), request.args.get("to", "")
    if not (older.isdigit() and newer.isdigit()):
        raise outcomes.InvalidRequest("from and to must be version numbers")
    lines = _service().diff(resource_type, id, int(older), int(newer))
    return render_template(
        "diff.html", resource_type=resource_type, id=id, older=older, newer=newer, lines=lines
    )


@console.get("/inbox")
def inbox() -> str:
    return inbox_pages.inbox_page()


@console.get("/inbox/<id>")
def message(id: str) -> str:
    return inbox_pages.message_page(id)


@console.post("/inbox/reprocess")
def reprocess() -> Response | str:
    return inbox_pages.reprocess_action()


@console.get("/analytics")
def analytics() -> str:
    params = {k: [v for v in request.args.getlist(k) if v] for k in request.args}
    params = {k: v for k, v in params.items() if v}
    figures, error = None, None
    if "measure" in params:
        service: AnalyticsService = current_app.extensions["interop_analytics"]
        try:
            figures = service.run(params)
        except outcomes.FhirError as exc:
            error = exc.diagnostics
    return render_template(
        "analytics.html",
        measures=MEASURES,
        buckets=BUCKETS,
        form={k: v[0] for k, v in params.items()},
        figures=figures,
        error=error,
    )
