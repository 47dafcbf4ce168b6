"""The operator console: pages render from the real store and show what they should;
access is closed without a login provider unless INTEROP_AUTH=disabled."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fhir_server import create_app
from fhir_server.console.access import ADMINISTRATOR, ConsoleUser
from fhir_server.repository.mongo import MongoRepository
from fhir_server.settings import Settings
from tests.integration.helpers import headers
from tests.population_data import DIABETES, generate, transaction


def text(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_dashboard_counts_resources_by_type(client: FlaskClient) -> None:
    pop = generate(seed=5, patients=6)
    assert client.post("/fhir", json=transaction(pop.resources), headers=headers()).status_code == 200
    client.delete("/fhir/Patient/p0")
    page = text(client, "/console/")
    rows = dict(re.findall(r'type=(\w+)">\w+</a></td><td>(\d+)</td>', page))
    assert rows["Patient"] == "5"
    assert rows["Observation"] == str(len(pop.of("Observation")))
    assert re.search(r'id="resource-total">(\d+)<', page).group(1) == str(len(pop.resources) - 1)  # type: ignore[union-attr]
    assert "chart.umd.min.js" in page
    assert re.search(r'<h2>CDS cards</h2><div class="figure">0</div>', page)


def test_dashboard_counts_cds_cards(client: FlaskClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "cds1",
                    "gender": "female",
                    "birthDate": "1970-05-01",
                },
                "request": {"method": "PUT", "url": "Patient/cds1"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "cds1-a1c",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                    "subject": {"reference": "Patient/cds1"},
                    "effectiveDateTime": "2026-10-01",
                    "valueQuantity": {
                        "value": 6.9,
                        "unit": "%",
                        "system": "http://unitsofmeasure.org",
                        "code": "%",
                    },
                },
                "request": {"method": "PUT", "url": "Observation/cds1-a1c"},
            },
        ],
    }
    assert client.post("/fhir", json=bundle, headers=headers()).status_code == 200
    call = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/example", "patientId": "cds1"},
    }
    cards = client.post("/cds-services/diabetes-diagnosis", json=call).get_json()["cards"]
    assert cards
    page = text(client, "/console/")
    shown = re.search(r'<h2>CDS cards</h2><div class="figure">(\d+)</div>', page)
    assert shown is not None and int(shown.group(1)) == len(cards)
    feedback = {
        "feedback": [
            {
                "card": cards[0]["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": {"code": "patient-declined", "system": "http://example.org"}},
                "outcomeTimestamp": "2026-11-29T10:00:00Z",
            }
        ]
    }
    assert client.post("/cds-services/diabetes-diagnosis/feedback", json=feedback).status_code == 200
    activity = text(client, "/console/cds")
    row = re.search(r'<tr class="cds-row"><td>diabetes-diagnosis</td>.*?</tr>', activity, re.S)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(0), re.S)
    assert cells[3:5] == ["0", "1"]  # accepted, overridden
    assert "patient-declined (1)" in cells[6]


def test_browse_search_read_and_diff(client: FlaskClient) -> None:
    body = {
        "resourceType": "Patient",
        "id": "ann",
        "name": [{"family": "Ng", "given": ["Ann"]}],
        "gender": "female",
    }
    client.put("/fhir/Patient/ann", json=body, headers=headers())
    client.put("/fhir/Patient/ann", json={**body, "gender": "other"}, headers=headers())
    found = text(client, "/console/resources?type=Patient&q=family%3DNg")
    assert "/console/resources/Patient/ann" in found and "Ann Ng" in found
    none = text(client, "/console/resources?type=Patient&q=family%3DNobody")
    assert "/console/resources/Patient/ann" not in none
    page = text(client, "/console/resources/Patient/ann")
    assert "&#34;gender&#34;: &#34;other&#34;" in page
    assert "diff with 1" in page
    diff = text(client, "/console/resources/Patient/ann/diff?from=1&to=2")
    assert '<span class="del">-  &#34;gender&#34;: &#34;female&#34;' in diff
    assert '<span class="add">+  &#34;gender&#34;: &#34;other&#34;' in diff


def test_errors_are_pages(client: FlaskClient) -> None:
    assert "is not known" in text(client, "/console/resources/Patient/nobody", 404)
    assert "Unknown resource type" in text(client, "/console/resources?type=Nope", 404)


def test_analytics_page_draws_the_operation_figures(client: FlaskClient) -> None:
    pop = generate(seed=5, patients=30)
    client.post("/fhir", json=transaction(pop.resources), headers=headers())
    params = {"measure": "condition-incidence", "code": f"{DIABETES[0]}|{DIABETES[1]}",
              "start": "2019-01-01", "end": "2022-12-31", "bucket": "year"}  # fmt: skip
    expected = client.get("/fhir/$population-analytics", query_string=params,
                          headers={"Accept": "application/json"}).get_json()  # fmt: skip
    page = client.get("/console/analytics", query_string=params).get_data(as_text=True)
    assert f'<p id="summary">{expected["totals"]["all"]} new case(s).</p>' in page
    assert '<canvas id="chart"' in page and "new Chart(" in page
    bad = client.get("/console/analytics", query_string={**params, "bucket": "day"}).get_data(as_text=True)
    assert "bucket must be one of" in bad and '<canvas id="chart"' not in bad
    assert '<canvas id="chart"' not in text(client, "/console/analytics")


def test_chart_library_is_served_locally(client: FlaskClient) -> None:
    response = client.get("/console/static/chart.umd.min.js")
    assert response.status_code == 200
    assert b"Chart.js v4" in response.get_data()[:200]
    response.close()


# -- access --------------------------------------------------------------------------------


class FakeProvider:
    def __init__(self, user: ConsoleUser | None) -> None:
        self.user = user

    def current_user(self) -> ConsoleUser | None:
        return self.user

    def login_url(self, next_url: str) -> str:
        return "/auth/login?next=" + next_url


@pytest.fixture
def closed_app(settings: Settings, repository: MongoRepository) -> Iterator[Flask]:
    app = create_app(settings.with_overrides(auth="required"), repository=repository)
    yield app
    if app.extensions.get("console_inbox") is not None:
        app.extensions["console_inbox"].close()


def test_auth_required_sends_people_to_sign_in(closed_app: Flask) -> None:
    client = closed_app.test_client()
    response = client.get("/console/")
    assert response.status_code == 302 and "/console/signin/" in response.headers["Location"]
    login = client.get("/console/login")
    assert login.status_code == 302 and "/console/signin/" in login.headers["Location"]
    assert client.get("/console/resources?type=Patient").status_code == 302
    css = client.get("/console/static/console.css")
    assert css.status_code == 200
    css.close()


@pytest.mark.parametrize(
    ("user", "status"),
    [
        (ConsoleUser("admin", frozenset({ADMINISTRATOR})), 200),
        (ConsoleUser("clerk", frozenset({"user"})), 403),
        (None, 302),
    ],
)
def test_the_provider_decides(closed_app: Flask, user: ConsoleUser | None, status: int) -> None:
    closed_app.extensions["console_auth"] = FakeProvider(user)
    response = closed_app.test_client().get("/console/")
    assert response.status_code == status
    if status == 302:
        assert response.headers["Location"].startswith("/auth/login?next=")
    if status == 200:
        assert "admin" in response.get_data(as_text=True)
