"""Access control at the HTTP edge.

``INTEROP_AUTH=required`` (the default) fails closed: until the SMART on FHIR
authorization server is part of this build, every call that touches health data is
answered 401, so a default deployment never serves records to anonymous clients.
``INTEROP_AUTH=disabled`` opens the API for local development and is logged loudly.
"""

from __future__ import annotations

from flask import Flask, request

from fhir_server import outcomes

# Endpoints that carry no health data and stay reachable without a token.
PUBLIC_FHIR_PATHS = ("/fhir/metadata", "/fhir/.well-known/")


def install(app: Flask, auth_mode: str) -> None:
    if auth_mode == "disabled":
        return

    @app.before_request
    def require_token() -> None:
        if not request.path.startswith("/fhir") or request.path.startswith(PUBLIC_FHIR_PATHS):
            return
        raise outcomes.NotAuthenticated(
            "This server requires SMART on FHIR authorization, which this build does not provide yet; "
            "for local development start it with INTEROP_AUTH=disabled",
            headers={"WWW-Authenticate": 'Bearer realm="fhir"'},
        )
