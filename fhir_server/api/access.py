"""Access control at the HTTP edge: who is calling, made current for the services.

``INTEROP_AUTH=required`` (the default): every call under ``/fhir`` except the public
ones (metadata, SMART discovery) needs a valid SMART access token; the token's
:class:`~fhir_server.services.access.Access` is made current for the request, and the
services apply its scopes at every step. No token or a bad one is a 401 (with
``WWW-Authenticate: Bearer ... error="invalid_token"``); too little scope a 403.
``INTEROP_AUTH=disabled`` opens the API for local development and is logged loudly.

After each request under ``/fhir`` that touches data, one AuditEvent is queued.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, request

from fhir_server import outcomes
from fhir_server.auth.errors import InvalidToken
from fhir_server.auth.ratelimit import RateLimiter
from fhir_server.auth.tokens import Tokens
from fhir_server.services import access
from fhir_server.services.audit import AuditTrail, Seen, rest_event

log = logging.getLogger("fhir_server.access")

# Endpoints that carry no health data and stay reachable without a token.
PUBLIC_FHIR_PATHS = ("/fhir/metadata", "/fhir/.well-known/")


def protected(path: str) -> bool:
    return (path == "/fhir" or path.startswith("/fhir/")) and not path.startswith(PUBLIC_FHIR_PATHS)


def _unauthenticated(reason: str) -> outcomes.NotAuthenticated:
    challenge = f'Bearer realm="fhir", error="invalid_token", error_description="{reason}"'
    return outcomes.NotAuthenticated(
        f"A valid SMART on FHIR access token is required: {reason}", headers={"WWW-Authenticate": challenge}
    )


def install(
    app: Flask,
    auth_mode: str,
    tokens: Tokens | None = None,
    audit: AuditTrail | None = None,
    limiter: RateLimiter | None = None,
) -> None:
    if auth_mode == "disabled":
        log.warning("INTEROP_AUTH=disabled: the FHIR API is open to anyone; local development only")

    @app.before_request
    def authenticate() -> None:
        # Every request starts from a known caller; nothing inherits a previous request's.
        g.access = None
        access.set_current(access.SYSTEM)
        if not protected(request.path):
            return
        if auth_mode == "disabled":
            g.access = access.OPEN
            access.set_current(access.OPEN)
            return
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("no bearer token")
        if tokens is None:
            raise _unauthenticated("this server has no authorization server configured")
        try:
            claims = tokens.verify(token.strip())
        except InvalidToken as exc:
            raise _unauthenticated(str(exc)) from None
        who = access.Access.from_token(
            subject=str(claims.get("sub", "")),
            client_id=str(claims.get("client_id", "")),
            scope=str(claims.get("scope", "")),
            patient=claims.get("patient"),
            admin=bool(claims.get("admin")),
            token_id=str(claims.get("jti", "")),
        )
        g.access = who
        access.set_current(who)
        wait = limiter.retry_after(f"api:{who.client_id}") if limiter is not None else 0
        if wait:
            raise outcomes.TooManyRequests(
                f"Client '{who.client_id}' is over its rate limit; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    @app.teardown_request
    def forget(_error: BaseException | None) -> None:
        access.set_current(access.SYSTEM)

    if audit is not None:

        @app.after_request
        def record(response: Response) -> Response:
            if protected(request.path) and request.method != "OPTIONS":
                audit.record(rest_event(seen(response.status_code), g.get("access"), audit.now()))
            return response


def seen(status: int) -> Seen:
    """What this request was, for its AuditEvent."""
    segments = [s for s in request.path.split("/")[2:] if s]
    method = request.method
    reference, patient = None, None
    if (
        segments
        and segments[0][:1].isupper()
        and len(segments) >= 2
        and not segments[1].startswith(("_", "$"))
    ):
        reference = f"{segments[0]}/{segments[1]}"
        if segments[0] == "Patient":
            patient = segments[1]
    return Seen(
        interaction=_interaction(method, segments),
        status=status,
        path=request.path,
        query=request.query_string.decode(errors="replace"),
        remote=request.remote_addr or "",
        request_id=str(g.get("request_id", "")),
        reference=reference,
        patient=patient,
    )


def _interaction(method: str, segments: list[str]) -> str:
    if not segments:
        return "batch" if method == "POST" else "search-system"
    last = segments[-1]
    if last.startswith("$"):
        return "operation"
    if "_history" in segments:
        if len(segments) == 4:
            return "vread"
        return {1: "history-system", 2: "history-type", 3: "history-instance"}.get(
            len(segments), "history-instance"
        )
    table: dict[tuple[str, bool], str] = {
        ("GET", True): "read",
        ("GET", False): "search-type",
        ("POST", False): "create",
        ("PUT", True): "update",
        ("PUT", False): "update",
        ("PATCH", True): "patch",
        ("DELETE", True): "delete",
        ("DELETE", False): "delete",
    }
    if last == "_search" or len(segments) == 3:
        return "search-type"
    return table.get((method, len(segments) == 2), "operation")
