"""The SMART authorization endpoints (thin): discovery, token, authorize, introspect, revoke, JWKS.

Errors here are OAuth JSON (``{"error", "error_description"}``), never HTML or a trace;
token responses are ``no-store``; the login page has a strict Content-Security-Policy.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

import orjson
from flask import Blueprint, Response, current_app, request

from fhir_server.auth import errors
from fhir_server.auth.ratelimit import RateLimiter
from fhir_server.auth.server import AuthorizeRequest, AuthServer, RedirectError
from fhir_server.auth.wiring import urls

oauth = Blueprint("oauth", __name__)

SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "launch/patient",
    "online_access",
    "patient/*.rs",
    "patient/*.cruds",
    "user/*.rs",
    "user/*.cruds",
    "system/*.rs",
    "system/*.cruds",
    "patient/*.read",
    "patient/*.write",
    "user/*.read",
    "user/*.write",
    "system/*.read",
    "system/*.write",
    "system/*.*",
]


def _server() -> AuthServer:
    server: AuthServer | None = current_app.extensions["interop"].auth
    if server is None:
        raise errors.OAuthError(
            "temporarily_unavailable", "no authorization server in this build", status=503
        )
    return server


def _limiter() -> RateLimiter:
    limiter: RateLimiter = current_app.extensions["interop_rate_limiter"]
    return limiter


def _json(payload: Any, status: int = 200, *, no_store: bool = False) -> Response:
    response = Response(orjson.dumps(payload), status=status, mimetype="application/json")
    if no_store:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def oauth_error(error: errors.OAuthError) -> Response:
    response = _json(error.to_json(), error.status, no_store=True)
    for key, value in error.headers.items():
        response.headers[key] = value
    return response


def _throttle() -> None:
    # Logins are limited per address (so one attacker cannot lock every user of an app out),
    # the other endpoints per client (or address, without a client id).
    by_client = request.path != "/auth/authorize" and request.form.get("client_id")
    key = by_client or request.remote_addr or "-"
    wait = _limiter().retry_after(f"{request.path}:{key}")
    if wait:
        raise errors.too_many_requests(wait)


def _form() -> dict[str, str]:
    if request.mimetype != "application/x-www-form-urlencoded":
        raise errors.invalid_request("the body must be application/x-www-form-urlencoded")
    return dict(request.form.items())


@oauth.get("/fhir/.well-known/smart-configuration")
def smart_configuration() -> Response:
    """SMART discovery: JSON whatever the Accept header says."""
    base = current_app.config["INTEROP_SETTINGS"].fhir_base
    endpoints = urls(base)
    return _json(
        {
            "issuer": base,
            "jwks_uri": endpoints["jwks"],
            "authorization_endpoint": endpoints["authorize"],
            "token_endpoint": endpoints["token"],
            "introspection_endpoint": endpoints["introspect"],
            "revocation_endpoint": endpoints["revoke"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_methods_supported": [
                "private_key_jwt",
                "client_secret_basic",
                "client_secret_post",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["ES384", "RS384"],
            "response_types_supported": ["code"],
            "scopes_supported": SCOPES_SUPPORTED,
            "code_challenge_methods_supported": ["S256"],
            "capabilities": [
                "launch-standalone",
                "client-public",
                "client-confidential-symmetric",
                "client-confidential-asymmetric",
                "context-standalone-patient",
                "permission-patient",
                "permission-user",
                "permission-v1",
                "permission-v2",
            ],
        }
    )


@oauth.get("/auth/jwks")
def jwks() -> Response:
    return _json(_server().tokens.jwks())


@oauth.post("/auth/token")
def token() -> Response:
    _throttle()
    return _json(_server().token(_form(), request.headers.get("Authorization")), no_store=True)


@oauth.post("/auth/introspect")
def introspect() -> Response:
    _throttle()
    return _json(_server().introspect(_form(), request.headers.get("Authorization")), no_store=True)


@oauth.post("/auth/revoke")
def revoke() -> Response:
    _throttle()
    _server().revoke(_form(), request.headers.get("Authorization"))
    return _json({}, no_store=True)


@oauth.route("/auth/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    server = _server()
    values = request.args if request.method == "GET" else request.form
    if request.method == "POST":
        _throttle()
    try:
        asked = server.authorize_request(dict(values.items()))
        if request.method == "GET":
            return _login_page(asked)
        location = server.login(
            asked,
            request.form.get("username", ""),
            request.form.get("password", ""),
            request.form.get("decision") == "allow",
        )
    except RedirectError as redirect:
        return _redirect(redirect.location)
    except errors.OAuthError as error:
        if error.error == "access_denied" and request.method == "POST":
            return _login_page(asked, problem="Wrong username or password.", status=401)
        return _error_page(error)
    return _redirect(location)


def _redirect(location: str) -> Response:
    response = Response(status=302, headers={"Location": location})
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(body: str, status: int, form_target: str | None = None) -> Response:
    response = Response(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>'
        f"<body>{body}</body></html>",
        status=status,
        mimetype="text/html",
    )
    # The consent form posts here and the answer redirects to the app: allow exactly that.
    actions = "'self'" + (f" {form_target}" if form_target else "")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; form-action {actions}; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _login_page(asked: AuthorizeRequest, *, problem: str = "", status: int = 200) -> Response:
    e = html.escape
    hidden = "".join(
        f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in asked.as_fields().items()
    )
    scopes = "".join(f"<li>{e(s)}</li>" for s in asked.scope.split())
    target = urlsplit(asked.redirect_uri)
    origin = f"{target.scheme}://{target.netloc}" if target.scheme in ("http", "https") else None
    body = (
        f"<h1>Sign in</h1><p><strong>{e(asked.client_name)}</strong> asks to access:</p><ul>{scopes}</ul>"
        + (f'<p role="alert">{e(problem)}</p>' if problem else "")
        + f'<form method="post" action="authorize">{hidden}'
        '<p><label>Username <input name="username" autocomplete="username" required></label></p>'
        '<p><label>Password <input name="password" type="password" autocomplete="current-password" required>'
        "</label></p>"
        '<p><button name="decision" value="allow">Allow</button> '
        '<button name="decision" value="deny" formnovalidate>Deny</button></p></form>'
    )
    return _page(body, status, origin)


def _error_page(error: errors.OAuthError) -> Response:
    return _page(f"<h1>Cannot sign in</h1><p>{html.escape(error.diagnostics)}</p>", error.status)
