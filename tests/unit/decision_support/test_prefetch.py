"""Prefetch templates and the choice between client data, our services and a remote server."""

from __future__ import annotations

from typing import Any

import pytest

from decision_support.hooks import CdsRequest, FhirAuthorization
from decision_support.prefetch import Prefetched, render, resolve
from fhir_server import outcomes

CONTEXT = {"userId": "Practitioner/doc-1", "patientId": "p1", "encounterId": "e9"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Patient/{{context.patientId}}", "Patient/p1"),
        ("Encounter/{{ context.encounterId }}", "Encounter/e9"),
        ("Practitioner/{{userPractitionerId}}", "Practitioner/doc-1"),
        ("Observation?subject={{context.patientId}}&encounter={{context.encounterId}}",
         "Observation?subject=p1&encounter=e9"),
        ("PractitionerRole/{{userPractitionerRoleId}}", None),  # the user is a Practitioner
        ("Encounter/{{context.missing}}", None),
    ],
)  # fmt: skip
def test_render(template: str, expected: str | None) -> None:
    assert render(template, CONTEXT) == expected


def _request(prefetch: dict[str, Any], **fields: Any) -> CdsRequest:
    return CdsRequest(
        "patient-view", "00000000-0000-4000-8000-000000000000", CONTEXT, prefetch=prefetch, **fields
    )


def test_only_missing_or_failed_keys_are_fetched() -> None:
    templates = {
        "patient": "Patient/{{context.patientId}}",
        "obs": "Observation?subject={{context.patientId}}",
        "cond": "Condition?subject={{context.patientId}}",
        "role": "PractitionerRole/{{userPractitionerRoleId}}",
    }
    asked: list[str] = []

    def fetch(query: str) -> dict[str, Any]:
        asked.append(query)
        return {"resourceType": "Bundle", "type": "searchset", "entry": []}

    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    given = {"patient": {"resourceType": "Patient", "id": "p1"}, "obs": outcome, "cond": None}
    data = resolve(templates, _request(given), lambda r: fetch)
    assert asked == ["Observation?subject=p1"]
    assert data.origin == {
        "patient": "prefetch",
        "obs": "fetched",
        "cond": "prefetch",
        "role": "not applicable",
    }
    assert data.resources("cond") == [] and data.resource("patient") == {
        "resourceType": "Patient",
        "id": "p1",
    }


def test_nothing_to_fetch_needs_no_fetcher() -> None:
    given = _request({"patient": {"resourceType": "Patient"}})
    data = resolve({"patient": "Patient/{{context.patientId}}"}, given, lambda r: None)
    assert data.origin == {"patient": "prefetch"}


def test_missing_data_without_a_fetcher_is_412() -> None:
    remote = _request({}, fhir_server="https://ehr.test/fhir")
    with pytest.raises(outcomes.PreconditionFailed, match="patient"):
        resolve({"patient": "Patient/{{context.patientId}}"}, remote, lambda r: None)


def test_bundle_entries_skip_operation_outcomes() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "Observation", "id": "o1"}},
            {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}},
            {},
        ],
    }
    assert Prefetched({"k": bundle}).resources("k") == [{"resourceType": "Observation", "id": "o1"}]


def test_fetcher_choice(app: Any) -> None:
    choose = app.extensions["cds"].fetcher_for
    own = app.extensions["interop"].settings.fhir_base
    token = FhirAuthorization("t", "Bearer", "patient/*.read", "cds")
    assert type(choose(_request({}))).__name__ == "LocalFetcher"
    assert type(choose(_request({}, fhir_server=own))).__name__ == "LocalFetcher"
    assert choose(_request({}, fhir_server="https://ehr.test/fhir")) is None
    remote = choose(_request({}, fhir_server="https://ehr.test/fhir", fhir_authorization=token))
    assert type(remote).__name__ == "RemoteFetcher"
