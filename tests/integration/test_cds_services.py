"""Each CDS service end to end on data loaded through the REST API, plus the remote-FHIR path."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from decision_support.models import artifact
from fhir_server import create_app
from tests.integration.cds_helpers import (
    allergy,
    bp,
    call,
    condition,
    context,
    days_ago,
    lab,
    load,
    medication,
    patient,
    prefetch_for,
    request_body,
)


def cards(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["source"]["topic"]["code"]: c for c in payload["cards"]}


def patient_view(client: FlaskClient, service: str, pid: str = "p1", **fields: Any) -> dict[str, Any]:
    return call(client, service, request_body("patient-view", context("patient-view", pid), **fields))


# -- the model ---------------------------------------------------------------------------------


def _risky_woman(pid: str = "p1") -> list[dict[str, Any]]:
    return [
        patient(pid, "female", 45),
        lab(pid, "1518-0", 185, days_ago(20)),
        lab(pid, "39156-5", 38.5, days_ago(20)),
        lab(pid, "11996-6", 4, days_ago(20)),
    ]


def test_model_card_shows_probability_contributions_and_validation(client: FlaskClient) -> None:
    load(client, _risky_woman())
    card = cards(patient_view(client, "t2d-risk"))["t2d-risk"]
    model = artifact.load("t2d-risk")
    values = {"glucose_2h": 185.0, "bmi": 38.5, "pregnancies": 4.0, "age": 45.0}
    expected = model.predict(values)
    assert card["indicator"] == "warning" and f"{expected.probability:.0%}" in card["summary"]
    assert 0.005 <= expected.probability < 0.995
    detail = card["detail"]
    for name, _value, part in expected.contributions:
        label = next(f["label"] for f in model.features if f["name"] == name)
        assert f"| {label} |" in detail and f"{part:+.2f}" in detail
    v = model.card["validation"]
    assert f"AUROC {v['auroc']:.3f}" in detail and f"calibration slope {v['calibration_slope']:.2f}" in detail
    assert "185 mg/dL" in detail and days_ago(20) in detail
    order = card["suggestions"][0]["actions"][0]["resource"]
    assert order["resourceType"] == "ServiceRequest" and order["code"]["coding"][0]["code"] == "4548-4"


def test_model_says_what_is_missing_and_gives_no_score(client: FlaskClient) -> None:
    load(client, _risky_woman()[:2] + _risky_woman()[3:])  # no BMI
    card = cards(patient_view(client, "t2d-risk"))["t2d-risk"]
    assert card["indicator"] == "info" and "suggestions" not in card
    assert "Body mass index (LOINC 39156-5)" in card["detail"] and "%" not in card["summary"]


@pytest.mark.parametrize("who", [patient("p1", "male", 45), patient("p1", "female", 19)])
def test_model_does_not_fire_outside_its_population(client: FlaskClient, who: dict[str, Any]) -> None:
    load(client, [who, *_risky_woman()[1:]])
    assert patient_view(client, "t2d-risk")["cards"] == []


def test_model_is_read_once_per_process(settings: Any, repository: Any) -> None:
    artifact.load("t2d-risk")
    before = artifact.load.cache_info()
    second = create_app(settings, repository=repository)
    load(second.test_client(), _risky_woman())
    for _ in range(3):
        patient_view(second.test_client(), "t2d-risk")
    after = artifact.load.cache_info()
    assert after.misses == before.misses and after.currsize == before.currsize
    discovery = second.test_client().get("/cds-services").get_json()
    ext = next(s for s in discovery["services"] if s["id"] == "t2d-risk")["extension"]["interop-model"]
    assert ext["version"] == "1.0.0" and ext["card"] == artifact.load("t2d-risk").card


def _finding(pid: str, system: str, code: str, value: dict[str, Any], n: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"{pid}-f{n}", "status": "final",
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": days_ago(7), **value}  # fmt: skip


def _chest_pain_workup(pid: str = "p1", *, thallium: bool = True) -> list[dict[str, Any]]:
    from decision_support.models.spec import CAD

    def concept(code: str) -> dict[str, Any]:
        return {"valueCodeableConcept": {"coding": [{"system": CAD, "code": code}]}}

    def quantity(value: float) -> dict[str, Any]:
        return {"valueQuantity": {"value": value}}

    record = [
        patient(pid, "male", 63),
        _finding(pid, "http://snomed.info/sct", "29857009", concept("asymptomatic"), 1),
        bp(pid, 150, 90, days_ago(7)),
        lab(pid, "2093-3", 280, days_ago(7)),
        _finding(pid, CAD, "max-heart-rate-exercise", quantity(120), 2),
        _finding(pid, CAD, "exercise-angina", {"valueBoolean": True}, 3),
        _finding(pid, CAD, "st-depression-exercise", quantity(2.5), 4),
        _finding(pid, CAD, "st-slope", concept("flat"), 5),
        _finding(pid, CAD, "vessels-fluoroscopy", quantity(2), 6),
    ]
    if thallium:
        record.append(_finding(pid, CAD, "thallium-scan", concept("reversible-defect"), 7))
    return record


def test_cad_model_card_on_a_chest_pain_workup(client: FlaskClient) -> None:
    load(client, _chest_pain_workup())
    card = cards(patient_view(client, "cad-likelihood"))["cad-likelihood"]
    model = artifact.load("cad-likelihood")
    values = {"age": 63, "male": 1, "cp_typical": 0, "cp_atypical": 0, "cp_asymptomatic": 1, "systolic": 150,
              "cholesterol": 280, "max_hr": 120, "exercise_angina": 1, "st_depression": 2.5,
              "st_slope_flat": 1,
              "vessels": 2, "thal_reversible": 1, "thal_fixed": 0}  # fmt: skip
    expected = model.predict({k: float(v) for k, v in values.items()})
    assert expected.probability >= 0.995 and "> 99%" in card["summary"] and card["indicator"] == "warning"
    assert f"AUROC {model.card['validation']['auroc']:.3f}" in card["detail"]
    condition_code = card["suggestions"][0]["actions"][0]["resource"]["code"]["coding"][0]["code"]
    assert condition_code == "53741008"


def test_cad_model_names_missing_findings(client: FlaskClient) -> None:
    load(client, _chest_pain_workup(thallium=False))
    card = cards(patient_view(client, "cad-likelihood"))["cad-likelihood"]
    assert card["indicator"] == "info" and "thallium-scan" in card["detail"]


def test_cad_model_is_silent_without_a_chest_pain_workup(client: FlaskClient) -> None:
    load(
        client,
        [patient("p1", "male", 63), bp("p1", 150, 90, days_ago(7)), lab("p1", "2093-3", 280, days_ago(7))],
    )
    assert patient_view(client, "cad-likelihood")["cards"] == []


# -- cardiovascular ------------------------------------------------------------------------


def test_bp_crisis_is_critical(client: FlaskClient) -> None:
    load(client, [patient("p1", "male", 50), bp("p1", 186, 100, days_ago(1))])
    assert cards(patient_view(client, "cardiovascular-prevention"))["bp-staging"]["indicator"] == "critical"


def test_single_bp_reading_is_not_staged(client: FlaskClient) -> None:
    load(client, [patient("p1", "male", 50), bp("p1", 150, 95, days_ago(1))])
    assert patient_view(client, "cardiovascular-prevention")["cards"] == []


def test_statin_from_pooled_cohort_risk(client: FlaskClient) -> None:
    smoker = {
        "resourceType": "Observation", "id": "p1-smoke", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": days_ago(30),
        "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "77176002"}]},
    }  # fmt: skip
    load(
        client,
        [patient("p1", "male", 62), lab("p1", "2093-3", 240, days_ago(30)),
         lab("p1", "2085-9", 38, days_ago(30)),
         {**bp("p1", 128, 78, days_ago(30))}, smoker],
    )  # fmt: skip
    card = cards(patient_view(client, "cardiovascular-prevention"))["statin-therapy"]
    assert "10-year ASCVD risk" in card["summary"]
    med = card["suggestions"][0]["actions"][0]["resource"]
    assert (
        med["resourceType"] == "MedicationRequest" and med["medicationCodeableConcept"]["coding"][0]["code"]
    )
    assert "240 mg/dL" in card["detail"] and "Current smoker (LOINC 72166-2)**: yes" in card["detail"]
    load(client, [medication("p1", "atorvastatin 20 MG Oral Tablet", "m-statin")])
    assert "statin-therapy" not in cards(patient_view(client, "cardiovascular-prevention"))


def test_af_anticoagulation_by_cha2ds2_vasc(client: FlaskClient) -> None:
    load(client, [patient("p1", "female", 70), condition("p1", "49436004"), condition("p1", "38341003")])
    card = cards(patient_view(client, "cardiovascular-prevention"))["af-anticoagulation"]
    assert "CHA2DS2-VASc 3" in card["summary"]  # hypertension 1 + age 65-74 1 + female 1
    load(client, [medication("p1", "apixaban 5 MG Oral Tablet", "m-apix")])
    assert "af-anticoagulation" not in cards(patient_view(client, "cardiovascular-prevention"))


# -- kidney and metformin --------------------------------------------------------------------


def test_ckd_needs_low_egfr_for_three_months(client: FlaskClient) -> None:
    load(client, [patient("p1", "male", 70), lab("p1", "2160-0", 1.9, days_ago(120))])
    assert "ckd-staging" not in cards(patient_view(client, "diabetes-kidney-treatment"))
    load(client, [lab("p1", "2160-0", 2.0, days_ago(5))])
    card = cards(patient_view(client, "diabetes-kidney-treatment"))["ckd-staging"]
    assert "G3b" in card["summary"] and "CKD-EPI 2021" in card["detail"]


def test_metformin_suggested_for_type2_diabetes_when_egfr_allows(client: FlaskClient) -> None:
    load(
        client,
        [patient("p1", "female", 55), condition("p1", "44054006"), lab("p1", "2160-0", 0.8, days_ago(20))],
    )
    card = cards(patient_view(client, "diabetes-kidney-treatment"))["metformin"]
    assert card["suggestions"][0]["actions"][0]["resource"]["medicationCodeableConcept"]["coding"][0][
        "code"
    ] == ("861007")
    load(client, [lab("p1", "2160-0", 1.6, days_ago(1))])  # eGFR ~37: do not start
    assert "metformin" not in cards(patient_view(client, "diabetes-kidney-treatment"))


def test_metformin_without_egfr_asks_for_creatinine(client: FlaskClient) -> None:
    load(client, [patient("p1", "female", 55), condition("p1", "44054006")])
    card = cards(patient_view(client, "diabetes-kidney-treatment"))["metformin"]
    assert "no eGFR" in card["summary"]
    assert card["suggestions"][0]["actions"][0]["resource"]["code"]["coding"][0]["code"] == "2160-0"


# -- order-select / order-sign ------------------------------------------------------------------


def _draft(name: str, mid: str) -> dict[str, Any]:
    return {"resource": medication("p1", name, mid, status="draft")}


def _order_body(
    hook: str, drafts: list[dict[str, Any]], selections: list[str] | None = None
) -> dict[str, Any]:
    ctx = context(hook, "p1")
    ctx["draftOrders"]["entry"] = drafts
    if hook == "order-select":
        ctx["selections"] = selections or []
    return request_body(hook, ctx)


def test_order_sign_metformin_with_low_egfr_is_critical_with_override_reasons(client: FlaskClient) -> None:
    load(client, [patient("p1", "male", 70), lab("p1", "2160-0", 2.6, days_ago(10))])  # eGFR ~25
    payload = call(
        client, "medication-safety-sign", _order_body("order-sign", [_draft("metformin 500 mg", "d1")])
    )
    card = cards(payload)["renal-dose"]
    assert card["indicator"] == "critical" and "contraindicated" in card["summary"]
    assert card["suggestions"][0]["actions"] == [
        {
            "type": "delete",
            "description": "Remove MedicationRequest/d1",
            "resourceId": ["MedicationRequest/d1"],
        }
    ]
    assert {r["code"] for r in card["overrideReasons"]} >= {"benefit-outweighs-risk"}


@pytest.mark.parametrize(("creatinine", "indicator"), [(1.7, "warning"), (0.9, None)])  # eGFR ~43 and ~86
def test_order_sign_metformin_renal_bands(
    client: FlaskClient, creatinine: float, indicator: str | None
) -> None:
    load(client, [patient("p1", "male", 70), lab("p1", "2160-0", creatinine, days_ago(10))])
    payload = call(
        client, "medication-safety-sign", _order_body("order-sign", [_draft("metformin 500 mg", "d1")])
    )
    assert (cards(payload).get("renal-dose") or {}).get("indicator") == indicator


def test_order_sign_interaction_with_an_active_medication(client: FlaskClient) -> None:
    load(
        client, [patient("p1", "male", 60), medication("p1", "clarithromycin 500 MG Oral Tablet", "m-clari")]
    )
    payload = call(
        client, "medication-safety-sign", _order_body("order-sign", [_draft("simvastatin 40 mg", "d1")])
    )
    card = cards(payload)["ddi"]
    assert card["indicator"] == "critical" and "simvastatin with clarithromycin" in card["summary"]
    assert "MedicationRequest/m-clari" in card["detail"]


def test_order_sign_allergy_conflict(client: FlaskClient) -> None:
    load(client, [patient("p1", "female", 30), allergy("p1", "Penicillin", "a1")])
    payload = call(
        client, "medication-safety-sign", _order_body("order-sign", [_draft("amoxicillin 500 mg", "d1")])
    )
    card = cards(payload)["allergy"]
    assert card["indicator"] == "critical" and "AllergyIntolerance/a1" in card["detail"]


def test_order_select_checks_only_the_selected_orders(client: FlaskClient) -> None:
    load(client, [patient("p1", "female", 30), allergy("p1", "Penicillin", "a1")])
    drafts = [_draft("amoxicillin 500 mg", "d1"), _draft("paracetamol 500 mg", "d2")]
    picked = call(
        client, "medication-safety-select", _order_body("order-select", drafts, ["MedicationRequest/d2"])
    )
    assert picked["cards"] == []
    both = call(
        client, "medication-safety-select", _order_body("order-select", drafts, ["MedicationRequest/d1"])
    )
    assert list(cards(both)) == ["allergy"]


# -- encounter-discharge -------------------------------------------------------------------------


def test_discharge_review_lists_unaddressed_results(client: FlaskClient) -> None:
    encounter = {"resourceType": "Encounter", "id": "enc-1", "status": "in-progress",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                 "subject": {"reference": "Patient/p1"}}  # fmt: skip
    load(client, [patient("p1", "male", 60), encounter, lab("p1", "4548-4", 7.0, days_ago(2))])
    body = request_body("encounter-discharge", context("encounter-discharge", "p1"))
    without = call(client, "discharge-review", body)
    body["prefetch"] = prefetch_for(client, "discharge-review", "p1")
    with_prefetch = call(client, "discharge-review", body)
    assert list(cards(without)) == list(cards(with_prefetch)) == ["diabetes-diagnosis"]


# -- a remote FHIR server ---------------------------------------------------------------------------


class _FhirStub(BaseHTTPRequestHandler):
    """A remote FHIR server: resources by type; a search returns every resource of its type."""

    store: dict[str, list[dict[str, Any]]] = {}
    seen: list[tuple[str, str | None]] = []
    status = 200

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        path = self.path.removeprefix("/fhir/")
        kind = path.partition("?")[0]
        if self.status != 200:
            body: Any = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "exception"}],
            }
        elif "?" in path:
            entries = [{"resource": r} for r in self.store.get(kind, [])]
            body = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        else:
            kind, _, id = kind.partition("/")
            found = [r for r in self.store.get(kind, []) if r["id"] == id]
            if not found:
                self.send_response(404)
                self.end_headers()
                return
            body = found[0]
        raw = json.dumps(body).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def remote() -> Iterator[tuple[str, type[_FhirStub]]]:
    handler = type("Stub", (_FhirStub,), {"store": {}, "seen": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/fhir", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


AUTH = {"access_token": "remote-token-1", "token_type": "Bearer", "scope": "patient/*.read", "subject": "cds"}


def test_remote_fhir_server_is_read_with_the_bearer_token(client: FlaskClient, remote: Any) -> None:
    url, stub = remote
    stub.store = {"Patient": [patient("r1", "female", 50)],
                  "Observation": [lab("r1", "4548-4", 6.9, days_ago(4))],
                  "Condition": []}  # fmt: skip
    body = request_body("patient-view", context("patient-view", "r1"), fhirServer=url, fhirAuthorization=AUTH)
    payload = call(client, "diabetes-diagnosis", body)
    assert list(cards(payload)) == ["diabetes-diagnosis"] and "6.9 %" in payload["cards"][0]["detail"]
    assert {p.split("?")[0] for p, _ in stub.seen} == {
        "/fhir/Patient/r1",
        "/fhir/Observation",
        "/fhir/Condition",
    }
    assert {token for _, token in stub.seen} == {"Bearer remote-token-1"}


def test_remote_prefetch_only_fetches_what_is_missing(client: FlaskClient, remote: Any) -> None:
    url, stub = remote
    stub.store = {"Observation": [lab("r1", "4548-4", 6.9, days_ago(4))]}
    prefetch = {"patient": patient("r1", "female", 50), "conditions": None}
    body = request_body("patient-view", context("patient-view", "r1"), fhirServer=url, fhirAuthorization=AUTH,
                        prefetch=prefetch)  # fmt: skip
    assert list(cards(call(client, "diabetes-diagnosis", body))) == ["diabetes-diagnosis"]
    assert [p.split("?")[0] for p, _ in stub.seen] == ["/fhir/Observation"]


def test_remote_failure_is_412(client: FlaskClient, remote: Any) -> None:
    url, stub = remote
    stub.status = 500
    body = request_body("patient-view", context("patient-view", "r1"), fhirServer=url, fhirAuthorization=AUTH)
    assert call(client, "diabetes-diagnosis", body, 412)["error"]["status"] == 412


def test_unreachable_remote_is_412(client: FlaskClient, remote: Any) -> None:
    url, _ = remote
    dead = url.replace("127.0.0.1", "127.0.0.1").rsplit(":", 1)[0] + ":1/fhir"  # port 1: nothing listens
    body = request_body(
        "patient-view", context("patient-view", "r1"), fhirServer=dead, fhirAuthorization=AUTH
    )
    assert "could not be reached" in call(client, "diabetes-diagnosis", body, 412)["error"]["message"]


def test_app_fixture_has_cds(app: Flask) -> None:
    assert "cds" in app.extensions
