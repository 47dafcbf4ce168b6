"""Console sign-in for people: the users of ``interop user create``, in a session cookie.

The provider the console's access interface asks (``app.extensions["console_auth"]``):
a username and password checked against the same user records as the SMART login page
(scrypt hashes, constant-time comparison), the session kept in a signed, HttpOnly,
SameSite=Strict cookie. Only users created with ``--admin`` get the administrator role;
others may sign in and are shown the "denied" page. The cookie-signing key is created
once and kept in the store, so every worker and every restart shares it. Each request
re-reads the user (one ``_id`` lookup): a deleted user is signed out at once.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, redirect, render_template, request, session, url_for

from fhir_server.auth.hashing import verify_secret
from fhir_server.console.access import ADMINISTRATOR, ConsoleUser
from fhir_server.console.views import content_policy
from fhir_server.repository.auth_store import USERS, AuthStore

SECRETS = "console_secrets"
SESSION_KEY = "console_user"

signin = Blueprint("console_signin", __name__, url_prefix="/console/signin", template_folder="templates")
signin.after_request(content_policy)


class SessionSignIn:
    def __init__(self, store: AuthStore) -> None:
        self._store = store

    def current_user(self) -> ConsoleUser | None:
        name = session.get(SESSION_KEY)
        if not isinstance(name, str):
            return None
        record = self._store.get(USERS, name)
        if record is None:
            session.pop(SESSION_KEY, None)
            return None
        return ConsoleUser(name, frozenset({ADMINISTRATOR}) if record.get("admin") else frozenset())

    def login_url(self, next_url: str) -> str:
        return url_for("console_signin.form", next=_local(next_url))

    def check(self, username: str, password: str) -> bool:
        record = self._store.get(USERS, username)
        # Verify against a dummy hash for unknown users too: the same work either way.
        stored = record.get("password_hash") if record else _DUMMY_HASH
        return verify_secret(password, stored) and record is not None


_DUMMY_HASH: str | None = None


def _local(next_url: str) -> str:
    """Only paths of the console itself (no open redirect)."""
    parts = urlsplit(next_url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path if path.startswith("/console") and not path.startswith("//") else "/console/"


def _provider() -> SessionSignIn:
    from flask import current_app

    found: SessionSignIn = current_app.extensions["console_auth"]
    return found


@signin.get("/")
def form() -> Response:
    return Response(render_template("signin.html", next=_local(request.args.get("next", "")), failed=False))


@signin.post("/")
def submit() -> Response:
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site not in (None, "same-origin"):
        return Response("This form must be sent from the console's own page", status=403)
    next_url = _local(request.form.get("next", ""))
    username, password = request.form.get("username", ""), request.form.get("password", "")
    if not _provider().check(username, password):
        page = render_template("signin.html", next=next_url, failed=True)
        return Response(page, status=401)
    session.clear()
    session[SESSION_KEY] = username
    return redirect(next_url)  # type: ignore[return-value]


@signin.post("/out")
def sign_out() -> Response:
    session.clear()
    return redirect(url_for("console_signin.form"))  # type: ignore[return-value]


def install(app: Flask, store: AuthStore, *, tls: bool) -> None:
    """Register the provider, its pages and a cookie-signing key shared through the store."""
    global _DUMMY_HASH
    from fhir_server.auth.hashing import hash_secret

    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_secret(secrets.token_hex(16))
    store.insert(SECRETS, {"_id": "session-key", "key": secrets.token_hex(32)})  # first one wins
    record: dict[str, Any] | None = store.get(SECRETS, "session-key")
    assert record is not None
    app.secret_key = record["key"]
    app.config.update(
        SESSION_COOKIE_NAME="interop_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=tls,
        SESSION_COOKIE_PATH="/console",
    )
    app.extensions["console_auth"] = SessionSignIn(store)
    app.register_blueprint(signin)
