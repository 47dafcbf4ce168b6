"""CDS Hooks conformance: discovery, request validation, cards, prefetch paths, feedback."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.integration.cds_helpers import (
    bp,
    call,
    condition,
    context,
    days_ago,
    lab,
    load,
    patient,
    prefetch_for,
    request_body,
)

HOOK_OF = {
    "diabetes-diagnosis": "patient-view",
    "t2d-risk": "patient-view",
    "cad-likelihood": "patient-view",
    "cardiovascular-prevention": "patient-view",
    "diabetes-kidney-treatment": "patient-view",
    "medication-safety-select": "order-select",
    "medication-safety-sign": "order-sign",
    "discharge-review": "encounter-discharge",
}


def card_types(payload: dict[str, Any]) -> list[str]:
    return sorted(c["source"]["topic"]["code"] + ":" + c["indicator"] for c in payload["cards"])


# -- discovery ------------------------------------------------------------------------------


def test_discovery_lists_every_service_with_its_hook_and_prefetch(client: FlaskClient) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200 and response.mimetype == "application/json"
    services = response.get_json()["services"]
    assert {s["id"]: s["hook"] for s in services} == HOOK_OF
    for s in services:
        assert s["title"] and s["description"] and s["prefetch"]
        assert all(
            "{{context.patientId}}" in t for t in s["prefetch"].values() if "Patient" in t and "?" not in t
        )
    discharge = next(s for s in services if s["id"] == "discharge-review")
    assert discharge["prefetch"]["encounter"] == "Encounter/{{context.encounterId}}"


def test_unknown_service_is_a_json_404(client: FlaskClient) -> None:
    response = client.post(
        "/cds-services/nope", json=request_body("patient-view", context("patient-view", "p1"))
    )
    assert response.status_code == 404
    assert response.get_json()["error"]["status"] == 404


# -- request validation ---------------------------------------------------------------------

REQUIRED = {
    "patient-view": ["userId", "patientId"],
    "order-select": ["userId", "patientId", "selections", "draftOrders"],
    "order-sign": ["userId", "patientId", "draftOrders"],
    "encounter-discharge": ["userId", "patientId", "encounterId"],
}
SERVICE_FOR = {"patient-view": "diabetes-diagnosis", "order-select": "medication-safety-select",
               "order-sign": "medication-safety-sign", "encounter-discharge": "discharge-review"}  # fmt: skip


def _valid(hook: str) -> dict[str, Any]:
    ctx = context(hook, "p1")
    if hook == "order-select":
        ctx["selections"] = ["MedicationRequest/m1"]
    return request_body(hook, ctx, prefetch={})


@pytest.mark.parametrize(("hook", "field"), [(h, f) for h, fields in REQUIRED.items() for f in fields])
def test_each_required_context_field_is_checked(client: FlaskClient, hook: str, field: str) -> None:
    body = _valid(hook)
    del body["context"][field]
    error = call(client, SERVICE_FOR[hook], body, 400)["error"]
    assert error["expression"] == [f"context.{field}"]
    assert field in error["message"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda b: b.pop("hook"), "hook"),
        (lambda b: b.update(hook="order-sign"), "hook"),
        (lambda b: b.pop("hookInstance"), "hookInstance"),
        (lambda b: b.update(hookInstance="not-a-uuid"), "hookInstance"),
        (lambda b: b.update(context=[]), "context"),
        (lambda b: b["context"].update(userId="doc-1"), "context.userId"),
        (lambda b: b["context"].update(patientId="a/b"), "context.patientId"),
        (lambda b: b.update(fhirServer="ftp://x"), "fhirServer"),
        (lambda b: b.update(prefetch=[]), "prefetch"),
        (
            lambda b: b.update(
                fhirAuthorization={"access_token": "t", "token_type": "Bearer", "scope": "s", "subject": "c"}
            ),
            "fhirAuthorization",
        ),
        (
            lambda b: b.update(
                fhirServer="https://ehr.test/fhir",
                fhirAuthorization={"access_token": "t", "token_type": "MAC", "scope": "s", "subject": "c"},
            ),
            "fhirAuthorization.token_type",
        ),
    ],
)
def test_malformed_requests_are_400_with_the_field(client: FlaskClient, change: Any, where: str) -> None:
    body = _valid("patient-view")
    change(body)
    assert call(client, "diabetes-diagnosis", body, 400)["error"]["expression"] == [where]


@pytest.mark.parametrize(
    ("hook", "change", "where"),
    [
        ("order-sign", lambda c: c.update(draftOrders={"resourceType": "Patient"}), "context.draftOrders"),
        ("order-sign", lambda c: c.update(draftOrders=[]), "context.draftOrders"),
        ("order-select", lambda c: c.update(selections=[]), "context.selections"),
        ("order-select", lambda c: c.update(selections=["m1"]), "context.selections"),
        ("encounter-discharge", lambda c: c.update(encounterId=""), "context.encounterId"),
    ],
)
def test_hook_specific_context_shapes(client: FlaskClient, hook: str, change: Any, where: str) -> None:
    body = _valid(hook)
    change(body["context"])
    assert call(client, SERVICE_FOR[hook], body, 400)["error"]["expression"] == [where]


def test_a_body_that_is_not_json_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/cds-services/diabetes-diagnosis", data=b"{not json", content_type="application/json"
    )
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid"


def test_unknown_fields_of_later_versions_are_tolerated(client: FlaskClient) -> None:
    body = _valid("patient-view")
    body["extension"] = {"com.example.x": 1}
    body["context"]["futureField"] = {"a": 1}
    body["newTopLevel"] = "3.0"
    assert call(client, "diabetes-diagnosis", body)["cards"] == []


# -- cards end to end ----------------------------------------------------------------------


def _diabetic_range_patient(client: FlaskClient, pid: str = "p1") -> None:
    load(client, [patient(pid, "female", 52), lab(pid, "4548-4", 6.8, days_ago(10))])


def test_patient_view_same_cards_with_and_without_prefetch(client: FlaskClient) -> None:
    _diabetic_range_patient(client)
    without = call(client, "diabetes-diagnosis", request_body("patient-view", context("patient-view", "p1")))
    prefetch = prefetch_for(client, "diabetes-diagnosis", "p1")
    with_prefetch = call(
        client,
        "diabetes-diagnosis",
        request_body("patient-view", context("patient-view", "p1"), prefetch=prefetch),
    )
    assert card_types(without) == card_types(with_prefetch) == ["diabetes-diagnosis:warning"]
    card = without["cards"][0]
    assert "6.8 %" in card["detail"] and days_ago(10) in card["detail"] and "4548-4" in card["detail"]
    actions = [a for s in card["suggestions"] for a in s["actions"]]
    assert {a["resource"]["resourceType"] for a in actions} == {"ServiceRequest"}
    assert {a["resource"]["code"]["coding"][0]["code"] for a in actions} == {"4548-4", "1558-6"}
    assert card["selectionBehavior"] == "at-most-one" and card["overrideReasons"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(6.5, "diabetes-diagnosis:warning"), (6.4, "diabetes-diagnosis:info"), (5.7, "diabetes-diagnosis:info"),
     (5.6, None)],
)  # fmt: skip
def test_hba1c_thresholds_end_to_end(client: FlaskClient, value: float, expected: str | None) -> None:
    load(client, [patient("p1", "male", 60), lab("p1", "4548-4", value, days_ago(3))])
    payload = call(client, "diabetes-diagnosis", request_body("patient-view", context("patient-view", "p1")))
    assert card_types(payload) == ([expected] if expected else [])


def test_two_abnormal_results_suggest_the_diagnosis_unless_on_the_problem_list(client: FlaskClient) -> None:
    load(
        client,
        [
            patient("p1", "male", 60),
            lab("p1", "4548-4", 7.1, days_ago(40)),
            lab("p1", "1558-6", 131, days_ago(5)),
        ],
    )
    body = request_body("patient-view", context("patient-view", "p1"))
    card = call(client, "diabetes-diagnosis", body)["cards"][0]
    assert "problem list" in card["summary"]
    resource = card["suggestions"][0]["actions"][0]["resource"]
    assert resource["resourceType"] == "Condition" and resource["code"]["coding"][0]["code"] == "44054006"
    load(client, [condition("p1", "44054006")])
    assert (
        call(client, "diabetes-diagnosis", request_body("patient-view", context("patient-view", "p1")))[
            "cards"
        ]
        == []
    )


# -- prefetch paths ------------------------------------------------------------------------


def test_partial_prefetch_fetches_only_what_is_missing(client: FlaskClient) -> None:
    _diabetic_range_patient(client)
    full = prefetch_for(client, "diabetes-diagnosis", "p1")
    body = request_body("patient-view", context("patient-view", "p1"), prefetch={"patient": full["patient"]})
    assert card_types(call(client, "diabetes-diagnosis", body)) == ["diabetes-diagnosis:warning"]


def test_prefetch_given_as_operation_outcome_is_fetched_here(client: FlaskClient) -> None:
    _diabetic_range_patient(client)
    prefetch = prefetch_for(client, "diabetes-diagnosis", "p1")
    prefetch["glycemia"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    body = request_body("patient-view", context("patient-view", "p1"), prefetch=prefetch)
    assert card_types(call(client, "diabetes-diagnosis", body)) == ["diabetes-diagnosis:warning"]


def test_null_prefetch_means_nothing_found_and_is_not_refetched(client: FlaskClient) -> None:
    _diabetic_range_patient(client)
    prefetch = prefetch_for(client, "diabetes-diagnosis", "p1")
    prefetch["glycemia"] = None
    body = request_body("patient-view", context("patient-view", "p1"), prefetch=prefetch)
    assert call(client, "diabetes-diagnosis", body)["cards"] == []


def test_another_fhir_server_without_authorization_is_412_unless_prefetch_is_complete(
    client: FlaskClient,
) -> None:
    _diabetic_range_patient(client)
    ctx = context("patient-view", "p1")
    body = request_body("patient-view", ctx, fhirServer="https://ehr.elsewhere.test/fhir")
    error = call(client, "diabetes-diagnosis", body, 412)["error"]
    assert error["status"] == 412 and "glycemia" in error["message"]
    complete = request_body(
        "patient-view", ctx, fhirServer="https://ehr.elsewhere.test/fhir",
        prefetch=prefetch_for(client, "diabetes-diagnosis", "p1"),
    )  # fmt: skip
    assert card_types(call(client, "diabetes-diagnosis", complete)) == ["diabetes-diagnosis:warning"]


def test_our_own_fhir_server_url_is_read_locally(client: FlaskClient, app: Any) -> None:
    _diabetic_range_patient(client)
    own = app.extensions["interop"].settings.fhir_base
    body = request_body("patient-view", context("patient-view", "p1"), fhirServer=own + "/")
    assert card_types(call(client, "diabetes-diagnosis", body)) == ["diabetes-diagnosis:warning"]


# -- feedback and audit -------------------------------------------------------------------


def test_feedback_is_stored_and_summarised_per_card_type(client: FlaskClient) -> None:
    load(client, [patient("p1", "female", 52), lab("p1", "4548-4", 6.8, days_ago(10))])
    load(client, [patient("p2", "male", 60), lab("p2", "4548-4", 6.0, days_ago(10))])
    confirm = call(client, "diabetes-diagnosis", request_body("patient-view", context("patient-view", "p1")))
    pre = call(client, "diabetes-diagnosis", request_body("patient-view", context("patient-view", "p2")))
    c1, c2 = confirm["cards"][0], pre["cards"][0]
    reason = c2["overrideReasons"][0]
    feedback = {
        "feedback": [
            {"card": c1["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-01-01T10:00:00Z",
             "acceptedSuggestions": [{"id": c1["suggestions"][0]["uuid"]}]},
            {"card": c2["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-01T10:01:00Z",
             "overrideReason": {"reason": reason, "userComment": "seen by GP"}},
            {"card": c2["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-01T10:02:00Z"},
        ]
    }  # fmt: skip
    response = client.post("/cds-services/diabetes-diagnosis/feedback", json=feedback)
    assert response.status_code == 200
    summary = client.get("/cds-services/diabetes-diagnosis/feedback/summary").get_json()
    assert summary["feedbackCount"] == 3
    by_type = {t["cardType"]: t for t in summary["cardTypes"]}
    assert (
        by_type["ada-diabetes-confirm"]["accepted"] == 1
        and by_type["ada-diabetes-confirm"]["overridden"] == 0
    )
    pre_type = by_type["ada-prediabetes"]
    assert (pre_type["accepted"], pre_type["overridden"], pre_type["acceptanceRate"]) == (0, 2, 0.0)
    assert pre_type["overrideReasons"] == [
        {"reason": reason["display"], "count": 1},
        {"reason": "no reason given", "count": 1},
    ]
    other = client.get("/cds-services/t2d-risk/feedback/summary").get_json()
    assert other["feedbackCount"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"feedback": []},
        {"feedback": [{"card": "x", "outcome": "ignored", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]},
        {"feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]},
        {"feedback": [{"card": "x", "outcome": "overridden", "outcomeTimestamp": "yesterday"}]},
        {"feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z",
                       "acceptedSuggestions": [{"id": "s"}], "overrideReason": {"userComment": "no"}}]},
    ],
)  # fmt: skip
def test_malformed_feedback_is_400(client: FlaskClient, body: dict[str, Any]) -> None:
    response = client.post("/cds-services/diabetes-diagnosis/feedback", json=body)
    assert response.status_code == 400 and response.get_json()["error"]["status"] == 400


def test_each_card_is_recorded_for_audit(client: FlaskClient, repository: Any) -> None:
    from fhir_server.repository.cds import CdsRecords

    _diabetic_range_patient(client)
    body = request_body("patient-view", context("patient-view", "p1"))
    card = call(client, "diabetes-diagnosis", body)["cards"][0]
    record = CdsRecords.of(repository).evaluations([card["uuid"]])[card["uuid"]]
    assert record["service"] == "diabetes-diagnosis" and record["hookInstance"] == body["hookInstance"]
    assert record["cardType"] == "ada-diabetes-confirm" and record["outputs"] == {
        "status": "needs-confirmation"
    }
    assert record["inputs"][0]["value"] == "6.8 %" and record["prefetchOrigin"]["glycemia"] == "fetched"


def test_requests_are_not_changed_by_the_service(client: FlaskClient) -> None:
    _diabetic_range_patient(client)
    prefetch = prefetch_for(client, "diabetes-diagnosis", "p1")
    body = request_body("patient-view", context("patient-view", "p1"), prefetch=prefetch)
    before = copy.deepcopy(body)
    call(client, "diabetes-diagnosis", body)
    assert body == before


def test_bp_readings_from_panels_end_to_end(client: FlaskClient) -> None:
    load(client, [patient("p1", "male", 50), bp("p1", 152, 94, days_ago(30)), bp("p1", 146, 92, days_ago(2))])
    payload = call(
        client, "cardiovascular-prevention", request_body("patient-view", context("patient-view", "p1"))
    )
    assert card_types(payload) == ["bp-staging:warning"]
    assert "149/93" in payload["cards"][0]["summary"]
