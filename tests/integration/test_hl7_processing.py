"""HL7 messages → mappings → the transaction service, against the real store."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from fhir_server.repository.mongo import MongoRepository
from fhir_server.settings import Settings
from hl7_listener.processing import FhirProcessing
from mappings.errors import MappingError
from mappings.message import parse
from tests.integration.helpers import headers

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "hl7"


@pytest.fixture
def processing(settings: Settings, repository: MongoRepository) -> FhirProcessing:
    return FhirProcessing(settings, repository)


def run(processing: FhirProcessing, raw: bytes | str) -> list[str]:
    return list(processing(parse(raw), None).resources)


def versions(client: FlaskClient, references: list[str]) -> dict[str, str]:
    found = {}
    for reference in references:
        response = client.get(f"/fhir/{reference}", headers=headers())
        assert response.status_code == 200, reference
        found[reference] = response.json["meta"]["versionId"]
    return found


def test_every_sample_message_is_stored_and_a_resend_changes_nothing(
    processing: FhirProcessing, client: FlaskClient
) -> None:
    samples = sorted(SAMPLES.glob("*.hl7"))
    assert len(samples) >= 20
    produced: list[str] = []
    for sample in samples:
        first = run(processing, sample.read_bytes())
        before = versions(client, first)
        assert run(processing, sample.read_bytes()) == first, sample.name
        assert versions(client, first) == before, f"{sample.name}: a resend made a new version"
        produced += first
    assert any(r.startswith("Observation/") for r in produced)
    # however many messages described PATID1234 at the OID authority, it is one Patient
    bundle = client.get(
        "/fhir/Patient?identifier=urn:oid:1.2.840.114350.1.13.99.2|PATID1234", headers=headers()
    ).json
    assert bundle["total"] == 1


def test_a08_after_a01_updates_the_same_patient_and_encounter(
    processing: FhirProcessing, client: FlaskClient
) -> None:
    first = run(processing, (SAMPLES / "adt_a01_admit_v251.hl7").read_bytes())
    second = run(processing, (SAMPLES / "adt_a08_update_v251.hl7").read_bytes())
    patient = next(r for r in first if r.startswith("Patient/"))
    encounter = next(r for r in first if r.startswith("Encounter/"))
    assert patient in second and encounter in second
    stored = client.get(f"/fhir/{patient}", headers=headers()).json
    assert stored["meta"]["versionId"] == "2"
    assert stored["address"][0]["line"] == ["3333 New Street"]
    assert client.get("/fhir/Patient", headers=headers()).json["total"] == 1
    assert client.get("/fhir/Encounter", headers=headers()).json["total"] == 1


def test_a40_moves_the_retired_patients_records_to_the_survivor(
    processing: FhirProcessing, client: FlaskClient
) -> None:
    lab = (SAMPLES / "oru_r01_lab_v251.hl7").read_text()
    retired_lab = lab.replace("PATID1234^^^GHH&1.2.840.114350.1.13.99.2&ISO^MR", "PATID9999^^^GHH^MR")
    produced = run(processing, retired_lab)
    retired = next(r for r in produced if r.startswith("Patient/"))
    observations = [r for r in produced if r.startswith("Observation/")]
    assert observations
    merged = run(processing, (SAMPLES / "adt_a40_merge_v251.hl7").read_bytes())
    survivor = next(r for r in merged if r.startswith("Patient/") and r != retired)
    for observation in observations:
        assert client.get(f"/fhir/{observation}", headers=headers()).json["subject"]["reference"] == survivor
    retired_now = client.get(f"/fhir/{retired}", headers=headers()).json
    assert retired_now["active"] is False
    assert any(link["type"] == "replaced-by" for link in retired_now["link"])
    remaining = client.get(f"/fhir/Observation?subject={retired}", headers=headers()).json
    assert remaining["total"] == 0


def test_unmappable_message_is_a_mapping_error(processing: FhirProcessing) -> None:
    raw = "MSH|^~\\&|A|B|C|D|20240101||ZZZ^Z01|X1|P|2.5.1\rPID|1||1^^^X^MR\r"
    with pytest.raises(MappingError) as failure:
        run(processing, raw)
    assert failure.value.code in (200, 201)
