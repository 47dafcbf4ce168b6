"""Assemble the authorization server from settings and the store (used by create_app and the CLI)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import g, has_request_context, request

from fhir_server.auth.clients import ClientAuthenticator
from fhir_server.auth.keys import SigningKeys
from fhir_server.auth.server import AuthServer
from fhir_server.auth.tokens import Tokens
from fhir_server.repository.auth_store import AuthStore
from fhir_server.settings import Settings


def urls(fhir_base: str) -> dict[str, str]:
    """The authorization endpoints, beside the FHIR base (``/auth/...`` at the server root)."""
    root = fhir_base.rsplit("/fhir", 1)[0]
    return {name: f"{root}/auth/{name}" for name in ("token", "authorize", "introspect", "revoke", "jwks")}


def auth_store(repository: Any) -> AuthStore | None:
    """The auth collections beside the resources, or None for a store without them."""
    return AuthStore.of(repository) if hasattr(repository, "_db") else None


def build_tokens(settings: Settings, store: AuthStore) -> Tokens:
    keys = SigningKeys(store, rotation=timedelta(hours=settings.key_rotation_hours))
    return Tokens(keys, store, issuer=settings.fhir_base, audience=settings.fhir_base)


def build_auth_server(settings: Settings, repository: Any, audit: Any = None) -> AuthServer | None:
    store = auth_store(repository)
    if store is None:
        return None

    def on_event(event: str, success: bool, client_id: str, subject: str, detail: str) -> None:
        if audit is None:
            return
        from fhir_server.services.audit import auth_event

        in_request = has_request_context()
        audit.record(
            auth_event(
                event=event,
                success=success,
                client_id=client_id,
                subject=subject,
                detail=detail,
                remote=(request.remote_addr or "") if in_request else "",
                request_id=str(g.get("request_id", "")) if in_request else "",
                when=audit.now(),
            )
        )

    clients = ClientAuthenticator(store, token_url=urls(settings.fhir_base)["token"])
    return AuthServer(
        store, build_tokens(settings, store), clients, fhir_base=settings.fhir_base, on_event=on_event
    )
