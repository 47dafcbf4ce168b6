"""Card evaluation records: stored before the response, shared batches, and store outages."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from pymongo import MongoClient

from fhir_server.repository.cds import CdsRecords
from tests.integration.cds_helpers import call, context, days_ago, lab, load, patient, request_body

CALLERS = 8


def _patients(client: FlaskClient, count: int) -> None:
    for n in range(count):
        load(client, [patient(f"p{n}", "female", 52), lab(f"p{n}", "4548-4", 6.8, days_ago(10))])


def test_every_card_of_concurrent_calls_is_stored_when_its_response_is_sent(
    app: Flask, client: FlaskClient, repository: Any
) -> None:
    _patients(client, CALLERS)
    records = CdsRecords.of(repository)  # a reader of its own, as another worker would be
    start = threading.Barrier(CALLERS)
    problems: list[str] = []

    def caller(n: int) -> None:
        own = app.test_client()
        start.wait()
        for _ in range(5):
            body = request_body("patient-view", context("patient-view", f"p{n}"))
            response = own.post("/cds-services/diabetes-diagnosis", json=body)
            if response.status_code != 200:
                problems.append(f"{response.status_code} {response.get_data(as_text=True)}")
                continue
            ids = [c["uuid"] for c in response.get_json()["cards"]]
            found = records.evaluations(ids)  # read right after the response: no flush, no wait
            if sorted(found) != sorted(ids) or not ids:
                problems.append(f"p{n}: {len(found)} of {len(ids)} cards stored when the response came")
            elif any(f["hookInstance"] != body["hookInstance"] for f in found.values()):
                problems.append(f"p{n}: a record names another call")

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []


def test_a_store_outage_is_a_503_json_error_and_no_cards(app: Flask, client: FlaskClient) -> None:
    _patients(client, 1)
    prefetch = {"patient": patient("p0", "female", 52), "conditions": None,
                "glycemia": {"resourceType": "Bundle", "type": "searchset",
                             "entry": [{"resource": lab("p0", "4548-4", 6.8, days_ago(10))}]}}  # fmt: skip
    unreachable: MongoClient[dict[str, Any]] = MongoClient(
        "mongodb://127.0.0.1:9", serverSelectionTimeoutMS=200, connectTimeoutMS=200
    )
    down = CdsRecords(unreachable["interop"])
    app.extensions["cds"] = dataclasses.replace(app.extensions["cds"], records=down)
    try:
        body = request_body("patient-view", context("patient-view", "p0"), prefetch=prefetch)
        error = call(client, "diabetes-diagnosis", body, 503)["error"]
        assert error["status"] == 503 and "unavailable" in error["message"]
        assert "cards" not in error
        # A second call fails the same way (a failed insert leaves nobody waiting for it).
        assert call(client, "diabetes-diagnosis", body, 503)["error"]["status"] == 503
    finally:
        unreachable.close()


def test_concurrent_claims_of_one_jti_let_exactly_one_through(repository: Any) -> None:
    records = CdsRecords.of(repository)
    expires = datetime.now(UTC) + timedelta(minutes=5)
    start = threading.Barrier(CALLERS)
    results: list[bool] = []

    def claim() -> None:
        start.wait()
        results.append(records.claim_token_id("https://ehr.test", "jti-1", expires))

    threads = [threading.Thread(target=claim) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * (CALLERS - 1) + [True]
    assert records.claim_token_id("https://ehr.test", "jti-2", expires) is True
    assert records.claim_token_id("https://other.test", "jti-1", expires) is True  # per issuer
