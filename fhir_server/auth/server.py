"""The grants: what the token, authorize, introspect and revoke endpoints decide.

Views in ``fhir_server.api.oauth`` parse HTTP and render; everything here takes plain
values, so the rules can be tested without a server.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from fhir_server.auth import errors
from fhir_server.auth.clients import ClientAuthenticator, is_confidential
from fhir_server.auth.errors import InvalidToken
from fhir_server.auth.hashing import digest, verify_secret
from fhir_server.auth.tokens import BACKEND_LIFETIME, MAX_LIFETIME, Tokens
from fhir_server.repository.auth_store import CODES, AuthStore
from fhir_server.services.scopes import ScopeError, grantable, parse_scopes

CODE_LIFETIME = timedelta(minutes=2)
APP_LIFETIME = MAX_LIFETIME
# Scopes that are about the login, not data: granted to app users when asked.
IDENTITY_SCOPES = frozenset({"openid", "fhirUser", "profile", "launch/patient", "online_access"})

# (event, success, client id, subject, detail): the audit trail's view of auth events.
AuthEventSink = Callable[[str, bool, str, str, str], None]


@dataclass(frozen=True)
class AuthorizeRequest:
    """A validated ``/auth/authorize`` request (the login page carries it along)."""

    client_id: str
    client_name: str
    redirect_uri: str
    scope: str
    state: str
    code_challenge: str
    aud: str

    def as_fields(self) -> dict[str, str]:
        return {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
            "aud": self.aud,
        }


class RedirectError(Exception):
    """An authorize error reported to the client's (verified) redirect URI."""

    def __init__(self, redirect_uri: str, error: str, description: str, state: str) -> None:
        super().__init__(description)
        query = urlencode(
            {"error": error, "error_description": description, **({"state": state} if state else {})}
        )
        self.location = f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}"


class AuthServer:
    def __init__(
        self,
        store: AuthStore,
        tokens: Tokens,
        clients: ClientAuthenticator,
        *,
        fhir_base: str,
        on_event: AuthEventSink | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.clients = clients
        self._fhir_base = fhir_base
        self._on_event = on_event or (lambda *_: None)
        self._clock = clock

    # -- token endpoint ------------------------------------------------------------------

    def token(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        grant = form.get("grant_type")
        try:
            if grant == "client_credentials":
                response = self._client_credentials(form, authorization)
            elif grant == "authorization_code":
                response = self._authorization_code(form, authorization)
            else:
                raise errors.OAuthError("unsupported_grant_type", f"grant_type '{grant}' is not supported")
        except errors.OAuthError as error:
            self._on_event("token", False, str(form.get("client_id") or ""), "", f"{grant}: {error.error}")
            raise
        self._on_event("token", True, response["client_id"], response.pop("_subject"), str(grant))
        return response

    def _client_credentials(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        client = self.clients.authenticate(form, authorization)
        requested = form.get("scope") or client["scopes"]
        scope = grantable(requested, client["scopes"])
        _, rules = parse_scopes(scope)
        if not scope or any(rule.context != "system" for rule in rules):
            raise errors.invalid_scope(
                "backend services receive only system/ scopes the client was registered for"
            )
        issued = self.tokens.issue(
            subject=client["_id"], client_id=client["_id"], scope=scope, lifetime=BACKEND_LIFETIME
        )
        return self._token_response(issued, client["_id"], client["_id"])

    def _authorization_code(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        client = self.clients.authenticate(form, authorization, public_ok=True)
        code = str(form.get("code") or "")
        record = self.store.get(CODES, digest(code)) if code else None
        now = self._clock()
        if record is None or record["client_id"] != client["_id"] or record["exp"] <= now:
            raise errors.invalid_grant("unknown, expired or foreign authorization code")
        if form.get("redirect_uri") != record["redirect_uri"]:
            raise errors.invalid_grant("redirect_uri does not match the authorization request")
        verifier = str(form.get("code_verifier") or "")
        if not 43 <= len(verifier) <= 128:
            raise errors.invalid_grant("code_verifier is required (PKCE, 43 to 128 characters)")
        if not hmac.compare_digest(create_s256_code_challenge(verifier), record["code_challenge"]):
            raise errors.invalid_grant("code_verifier does not match the code challenge")
        if not self.store.claim_once(f"code:{record['_id']}", record["exp"]):
            raise errors.invalid_grant("the authorization code was already used")
        self.store.delete(CODES, record["_id"])
        issued = self.tokens.issue(
            subject=record["username"],
            client_id=client["_id"],
            scope=record["scope"],
            lifetime=APP_LIFETIME,
            patient=record.get("patient"),
            admin=bool(record.get("admin")),
        )
        response = self._token_response(issued, client["_id"], record["username"])
        if record.get("patient") and "launch/patient" in record["scope"].split():
            response["patient"] = record["patient"]
        return response

    @staticmethod
    def _token_response(issued: Any, client_id: str, subject: str) -> dict[str, Any]:
        return {
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.claims["scope"],
            "client_id": client_id,
            "_subject": subject,
        }

    # -- authorize (app launch) ----------------------------------------------------------

    def authorize_request(self, args: Mapping[str, str]) -> AuthorizeRequest:
        """Validate an authorization request. A bad client or redirect URI is an error
        shown to the user (never a redirect to an unverified URI); the rest redirect."""
        client = self.store.client(str(args.get("client_id") or ""))
        if client is None:
            raise errors.invalid_request("unknown client_id")
        redirect_uri = str(args.get("redirect_uri") or "")
        if redirect_uri not in client.get("redirect_uris", []):
            raise errors.invalid_request("redirect_uri is not registered for this client")
        state = str(args.get("state") or "")

        def fail(error: str, description: str) -> RedirectError:
            return RedirectError(redirect_uri, error, description, state)

        if args.get("response_type") != "code":
            raise fail("unsupported_response_type", "response_type must be code")
        if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            raise fail("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
        if str(args.get("aud") or "").rstrip("/") != self._fhir_base:
            raise fail("invalid_request", f"aud must be this FHIR server ({self._fhir_base})")
        try:
            data_scope = grantable(str(args.get("scope") or ""), client["scopes"])
        except ScopeError:
            data_scope = ""
        identity = [s for s in str(args.get("scope") or "").split() if s in IDENTITY_SCOPES]
        scope = " ".join(dict.fromkeys([*identity, *data_scope.split()]))
        if not data_scope:
            raise fail("invalid_scope", "none of the requested scopes is allowed for this client")
        return AuthorizeRequest(
            client["_id"],
            str(client.get("name") or client["_id"]),
            redirect_uri,
            scope,
            state,
            str(args["code_challenge"]),
            self._fhir_base,
        )

    def login(self, request: AuthorizeRequest, username: str, password: str, approved: bool) -> str:
        """Check the user and their consent; the redirect location carrying the code."""
        if not approved:
            self._on_event("login", False, request.client_id, username, "consent denied")
            raise RedirectError(
                request.redirect_uri, "access_denied", "the user denied access", request.state
            )
        user = self.store.user(username)
        if not verify_secret(password, user.get("password_hash") if user else None) or user is None:
            self._on_event("login", False, request.client_id, username, "wrong username or password")
            raise errors.OAuthError("access_denied", "wrong username or password", status=401)
        scope = _for_user(request.scope, user)
        if not parse_scopes(scope)[1]:
            self._on_event("login", False, request.client_id, username, "no scope applies to this user")
            raise RedirectError(
                request.redirect_uri,
                "invalid_scope",
                "no requested scope applies to this user",
                request.state,
            )
        code = secrets.token_urlsafe(32)
        self.store.insert(
            CODES,
            {
                "_id": digest(code),
                "client_id": request.client_id,
                "redirect_uri": request.redirect_uri,
                "code_challenge": request.code_challenge,
                "scope": scope,
                "username": username,
                "patient": user.get("patient"),
                "admin": bool(user.get("admin")),
                "exp": self._clock() + CODE_LIFETIME,
            },
        )
        self._on_event("login", True, request.client_id, username, "authorization code issued")
        query = urlencode({"code": code, **({"state": request.state} if request.state else {})})
        return f"{request.redirect_uri}{'&' if '?' in request.redirect_uri else '?'}{query}"

    # -- introspection and revocation ----------------------------------------------------

    def introspect(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        self.clients.authenticate(form, authorization)
        try:
            claims = self.tokens.verify(str(form.get("token") or ""))
        except InvalidToken:
            return {"active": False}
        keys = ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "patient")
        return {"active": True, "token_type": "Bearer", **{k: claims[k] for k in keys if k in claims}}

    def revoke(self, form: Mapping[str, str], authorization: str | None) -> None:
        client = self.clients.authenticate(form, authorization, public_ok=True)
        try:
            claims = self.tokens.decode(str(form.get("token") or ""))
        except InvalidToken:
            return  # RFC 7009: an invalid token needs no revoking
        if claims.get("client_id") != client["_id"]:
            return  # a client may only revoke its own tokens; say nothing either way
        self.tokens.revoke(claims)
        self._on_event("revoke", True, client["_id"], str(claims.get("sub", "")), str(claims.get("jti", "")))

    def confidential(self, client_id: str) -> bool:
        client = self.store.client(client_id)
        return client is not None and is_confidential(client)


def _for_user(scope: str, user: Mapping[str, Any]) -> str:
    """Patient users get patient/ scopes (their own compartment); other users get user/
    scopes; nobody gets system/ scopes through a login."""
    kept = []
    for name in scope.split():
        context = name.split("/", 1)[0]
        if name == "launch/patient" and not user.get("patient"):
            continue
        if context == "system" or (context == "user" and user.get("patient")):
            continue
        if context == "patient" and not user.get("patient"):
            continue
        kept.append(name)
    return " ".join(kept)
