"""Build the CDS components once per app: the registry (models load here), fetchers, auth."""

from __future__ import annotations

from flask import Flask

from decision_support.api import CdsComponents, RecordStore, install, today_utc
from decision_support.auth import Authenticator, KeyCache, TrustedIssuer
from decision_support.fetchers import fetcher_factory
from decision_support.registry import Registry
from decision_support.services import all_services
from fhir_server.services.resources import ResourceService
from fhir_server.settings import Settings


def install_cds(
    app: Flask,
    settings: Settings,
    resources: ResourceService,
    records: RecordStore,
    *,
    keys: KeyCache | None = None,
) -> None:
    authenticator = None
    if settings.auth != "disabled":
        issuers = [TrustedIssuer(iss, url) for iss, url in settings.cds_trusted_issuers]
        authenticator = Authenticator(issuers, records.claim_token_id, keys)
    components = CdsComponents(
        Registry(all_services()),
        fetcher_factory(resources, settings.fhir_base),
        records,
        authenticator,
        settings.base_url,
        today_utc,
    )
    install(app, components)
