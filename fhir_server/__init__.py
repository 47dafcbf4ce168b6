"""FHIR R4 REST server: ``create_app(settings)`` builds the Flask app; nothing else here."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from fhir_server.repository.base import Repository
from fhir_server.services.bundles import BundleService
from fhir_server.services.resources import ResourceService
from fhir_server.settings import Settings


@dataclass
class Components:
    """What the views reach through ``current_app.extensions["interop"]``."""

    settings: Settings
    repository: Repository
    resources: ResourceService
    bundles: BundleService


def create_app(settings: Settings | None = None, *, repository: Repository | None = None) -> Flask:
    from fhir_server.api import (
        access,
        bundle_views,  # noqa: F401  (registers POST /fhir on the blueprint)
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
            settings.mongodb_uri, settings.database, query_timeout_ms=settings.search_timeout_ms
        )

    app = Flask(__name__)
    app.config["INTEROP_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    resources = ResourceService(repository, base_url=settings.fhir_base)
    bundles = BundleService(resources, max_entries=settings.max_bundle_entries, base_url=settings.fhir_base)
    app.extensions["interop"] = Components(settings, repository, resources, bundles)
    install_request_ids(app)
    register_error_handlers(app)
    access.install(app, settings.auth)
    app.register_blueprint(system)
    app.register_blueprint(fhir)
    return app
