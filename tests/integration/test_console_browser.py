"""The console in a real browser (headless Chromium from Debian, driven by Playwright):
sign in, open the dashboard, find a failed HL7 message, read it, reprocess it after the
mapping is fixed, follow the resource it produced, view a chart. Screenshots go to
INTEROP_TEST_ARTIFACTS (default ``test-artifacts/``) as the run's artifacts."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from fhir_server import create_app
from fhir_server.auth.hashing import hash_secret
from fhir_server.repository.auth_store import USERS, AuthStore
from fhir_server.repository.mongo import MongoRepository
from fhir_server.settings import Settings
from tests.integration.test_console_inbox import admission, inbox, mapping_fixed, receive  # noqa: F401
from tests.population_data import HBA1C, generate, transaction

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("INTEROP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]
ARTIFACTS = Path(os.environ.get("INTEROP_TEST_ARTIFACTS", "test-artifacts")) / "browser"


@pytest.fixture
def app(settings: Settings, repository: MongoRepository) -> Flask:
    """Closed (auth required): people sign in as the users of `interop user create`."""
    AuthStore.of(repository).insert(
        USERS,
        {
            "_id": "ada",
            "password_hash": hash_secret("ada-secret-pw"),
            "patient": None,
            "admin": True,
            "created": datetime.now(UTC),
        },
    )
    return create_app(settings.with_overrides(auth="required"), repository=repository)


@pytest.fixture
def page(live_url: str) -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 900})
            yield context.new_page()
        finally:
            browser.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_operator_journey(page: Any, app: Flask, inbox: Any, mapping_fixed: dict[str, bool]) -> None:  # noqa: F811
    pop = generate(seed=11, patients=40)
    bundles = app.extensions["interop"].bundles
    bundles.transaction(bundles.entries(transaction(pop.resources))[1], lambda entry: None)
    failed = receive(inbox, admission("FAIL7"), "FAIL7")
    receive(inbox, admission("OK7"), "OK7")
    app.extensions["console_inbox"].reprocess([failed.id])  # the mapping is still broken: an error

    # Sign in.
    page.goto("/console/")
    assert "/console/signin/" in page.url
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "ada-secret-pw")
    page.click("#signin")
    page.wait_for_url("**/console/")
    assert page.inner_text("h1") == "Dashboard"
    assert "ada" in page.inner_text("header")
    assert page.inner_text("#resource-total") == str(len(pop.resources))
    shot(page, "1-dashboard")

    # Find the failed message and read it.
    page.click("text=HL7 inbox")
    page.select_option("select[name=status]", "error")
    page.click("text=Filter")
    rows = page.locator("#messages tr")
    assert rows.count() == 2  # the header and FAIL7
    page.click("text=FAIL7")
    assert page.inner_text("#ack").startswith("AE")
    assert "Doe^Jane" in page.inner_text("details.segment >> nth=2")
    shot(page, "2-failed-message")

    # Fix the mapping, reprocess, follow the produced resource.
    mapping_fixed["fixed"] = True
    page.click("#reprocess")
    assert "processed" in page.inner_text("#reprocessed")
    shot(page, "3-reprocessed")
    page.click("text=FAIL7")
    assert page.inner_text("#ack").startswith("AA")
    page.click("#produced a >> nth=0")
    assert page.inner_text("h1").startswith("Patient/")
    assert "MRNFAIL7" in page.inner_text("#json")
    shot(page, "4-produced-patient")

    # View a chart.
    page.goto(
        f"/console/analytics?measure=lab-distribution&code={HBA1C}&start=2019-01-01&end=2022-12-31&bucket=year"
    )
    page.wait_for_function("Chart.getChart(document.getElementById('chart')) !== undefined")
    labels = page.evaluate("Chart.getChart(document.getElementById('chart')).data.labels")
    assert labels == ["2019", "2020", "2021", "2022"]
    assert "value(s) in %" in page.inner_text("#summary")
    shot(page, "5-analytics-chart")
