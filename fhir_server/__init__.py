"""FHIR R4 REST server: ``create_app(settings)`` builds the Flask app; nothing else here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask

from fhir_server.repository.base import Repository
from fhir_server.services.analytics.service import AnalyticsService
from fhir_server.services.bundles import BundleService
from fhir_server.services.exports import ExportService
from fhir_server.services.resources import ResourceService
from fhir_server.settings import Settings

if TYPE_CHECKING:
    from fhir_server.auth.server import AuthServer
    from fhir_server.services.audit import AuditTrail


@dataclass
class Components:
    """What the views reach through ``current_app.extensions["interop"]``."""

    settings: Settings
    repository: Repository
    resources: ResourceService
    bundles: BundleService
    auth: AuthServer | None = None  # when the store keeps auth data (MongoDB protocol)
    audit: AuditTrail | None = None  # with INTEROP_AUTH=required


def create_app(settings: Settings | None = None, *, repository: Repository | None = None) -> Flask:
    from fhir_server import console
    from fhir_server.api import (
        analytics_views,  # noqa: F401  (registers $population-analytics on the blueprint)
        bundle_views,  # noqa: F401  (registers POST /fhir on the blueprint)
        export_views,  # noqa: F401  (registers the Bulk Data $export endpoints)
    )
    from fhir_server.api.errors import register_error_handlers
    from fhir_server.api.resources import fhir
    from fhir_server.api.system import system
    from fhir_server.observability import configure_logging, install_request_ids

    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    if repository is None:
        from fhir_server.repository.mongo import MongoRepository

        if not settings.mongodb_uri:
            raise RuntimeError(
                "INTEROP_MONGODB_URI is not set: start the server with `make run` (embedded store) "
                "or point it at a MongoDB server"
            )
        repository = MongoRepository(
            settings.mongodb_uri,
            settings.database,
            query_timeout_ms=settings.search_timeout_ms,
            read_cache_bytes=settings.read_cache_bytes,
        )

    app = Flask(__name__)
    app.config["INTEROP_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    resources = ResourceService(repository, base_url=settings.fhir_base)
    bundles = BundleService(resources, max_entries=settings.max_bundle_entries, base_url=settings.fhir_base)
    components = Components(settings, repository, resources, bundles)
    app.extensions["interop"] = components
    app.extensions["interop_analytics"] = AnalyticsService(repository, resources)
    app.extensions["interop_exports"] = ExportService(repository, resources)  # type: ignore[arg-type]
    install_request_ids(app)
    register_error_handlers(app)
    _install_security(app, settings, components)
    app.register_blueprint(system)
    app.register_blueprint(fhir)
    from decision_support.wiring import install_cds
    from fhir_server.repository.cds import CdsRecords

    install_cds(app, settings, resources, CdsRecords.of(repository))
    console.install(app)
    if settings.auth == "required":
        from fhir_server.console import signin
        from fhir_server.repository.auth_store import AuthStore

        signin.install(app, AuthStore.of(repository), tls=settings.tls_cert is not None)
    return app


def _install_security(app: Flask, settings: Settings, components: Components) -> None:
    """SMART authorization server, access control, audit trail, security headers (issue 8)."""
    from fhir_server.api import access, headers, oauth
    from fhir_server.auth.errors import OAuthError
    from fhir_server.auth.ratelimit import RateLimiter
    from fhir_server.auth.wiring import build_auth_server
    from fhir_server.services.audit import AuditTrail

    if settings.audit and settings.auth == "required":  # disabled: development, nobody is identified
        components.audit = AuditTrail(components.resources, components.repository)
    components.auth = build_auth_server(settings, components.repository, components.audit)
    app.extensions["interop_rate_limiter"] = RateLimiter(settings.auth_rate_per_minute)
    app.register_error_handler(OAuthError, oauth.oauth_error)
    tokens = components.auth.tokens if components.auth is not None else None
    limiter = RateLimiter(settings.api_rate_per_minute)
    access.install(app, settings.auth, tokens, components.audit, limiter)
    headers.install(app, tls=settings.tls_cert is not None)
    app.register_blueprint(oauth.oauth)
