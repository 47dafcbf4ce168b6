"""One patient's stay through the live listener: the record the mappings and services build.

A04 → A01 → ORU^R01 x3 → A08 → A02 → A03, plus a re-sent duplicate and a message
re-sent under a new control id, over MLLP to the real listener with the real
processing: one Patient, one Encounter finished with its location history, every
Observation linked to both. Then a cancel (A11) of another visit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from fhir_server.repository.mongo import MongoRepository
from fhir_server.settings import Settings
from hl7_listener.client import ack_code
from hl7_listener.processing import FhirProcessing
from tests.integration.helpers import headers
from tests.integration.hl7_helpers import RunningListener, send

PID = (
    "PID|1||PAT77^^^HOSP&2.16.840.1.113883.19.5&ISO^MR||Doe^Jane^Q||19700204|F|||"
    "12 Elm St^^Springfield^IL^62701^USA^H"
)


def pv1(visit: str, location: str, *, prior: str = "", discharged: str = "", status: str = "I") -> str:
    fields = [""] * 46
    fields[1], fields[2], fields[3], fields[6] = "1", status, location, prior
    fields[7] = "ATT1^Attend^Ann^^^Dr^^^HOSP"
    fields[10], fields[18], fields[19] = "MED", "IP", f"{visit}^^^HOSP^VN"
    fields[44], fields[45] = "20250301080000", discharged
    return "PV1|" + "|".join(fields[1:]).rstrip("|")


def adt(trigger: str, control: str, visit: str, location: str, **options: str) -> bytes:
    segments = [
        f"MSH|^~\\&|ADT|HOSP|INTEROP|HOSP|20250301080000||ADT^{trigger}^ADT_A01|{control}|P|2.5.1",
        f"EVN|{trigger}|20250301080000",
        PID,
        pv1(visit, location, **options),
    ]
    return ("\r".join(segments) + "\r").encode()


def oru(control: str, filler: str, results: list[tuple[str, str, str, str]]) -> bytes:
    segments = [
        f"MSH|^~\\&|LAB|HOSP|INTEROP|HOSP|20250301100000||ORU^R01^ORU_R01|{control}|P|2.5.1",
        PID,
        pv1("V777", "4W^401^A^HOSP"),
        f"ORC|RE|P{filler}^EHR|{filler}^LAB||CM",
        f"OBR|1|P{filler}^EHR|{filler}^LAB|24323-8^Metabolic panel^LN|||20250301090000"
        "|||||||||||||||20250301095500|||F",
    ]
    for n, (code, name, value, unit) in enumerate(results, 1):
        segments.append(f"OBX|{n}|NM|{code}^{name}^LN||{value}|{unit}^{unit}^UCUM|||||F|||20250301090000")
    return ("\r".join(segments) + "\r").encode()


@pytest.fixture
def listener(settings: Settings, repository: MongoRepository) -> Iterator[RunningListener]:
    assert settings.mongodb_uri
    with RunningListener(settings, FhirProcessing(settings, repository)) as running:
        yield running


def total(client: FlaskClient, query: str) -> int:
    return int(client.get(f"/fhir/{query}", headers=headers()).json["total"])


def test_a_stay_from_registration_to_discharge(listener: RunningListener, client: FlaskClient) -> None:
    ward, transfer = "4W^401^A^HOSP", "5E^502^B^HOSP"
    messages = [
        adt("A04", "M1", "V777", ward, status="O"),
        adt("A01", "M2", "V777", ward),
        oru("M3", "F100", [("2345-7", "Glucose", "98", "mg/dL"), ("2160-0", "Creatinine", "0.9", "mg/dL")]),
        oru("M4", "F101", [("718-7", "Hemoglobin", "13.1", "g/dL")]),
        oru("M5", "F102", [("2951-2", "Sodium", "140", "mmol/L")]),
        adt("A08", "M6", "V777", ward),
        adt("A02", "M7", "V777", transfer, prior=ward),
        adt("A03", "M8", "V777", transfer, discharged="20250305120000"),
    ]
    replies = send(listener.address, messages)
    assert [ack_code(r) for r in replies] == ["AA"] * len(messages)
    # a duplicate (same control id) and the same content under a new control id
    again = send(
        listener.address, [messages[3], oru("M9", "F101", [("718-7", "Hemoglobin", "13.1", "g/dL")])]
    )
    assert [ack_code(r) for r in again] == ["AA", "AA"]
    listener.drain()

    patients = client.get("/fhir/Patient", headers=headers()).json
    assert patients["total"] == 1
    patient = f"Patient/{patients['entry'][0]['resource']['id']}"
    encounters = client.get("/fhir/Encounter", headers=headers()).json
    assert encounters["total"] == 1
    encounter = encounters["entry"][0]["resource"]
    assert encounter["status"] == "finished"
    assert encounter["period"]["end"].startswith("2025-03-05")
    history = [(entry["location"].get("display", ""), entry.get("status")) for entry in encounter["location"]]
    assert len(history) == 2, history
    assert [status for _, status in history] == ["completed", "completed"]
    reference = f"Encounter/{encounter['id']}"
    observations = client.get("/fhir/Observation?_count=50", headers=headers()).json
    assert observations["total"] == 4
    for entry in observations["entry"]:
        assert entry["resource"]["subject"]["reference"] == patient
        assert entry["resource"]["encounter"]["reference"] == reference
    assert total(client, "DiagnosticReport") == 3


def test_a11_cancels_the_admission(listener: RunningListener, client: FlaskClient) -> None:
    replies = send(
        listener.address,
        [adt("A01", "C1", "V900", "4W^401^A^HOSP"), adt("A11", "C2", "V900", "4W^401^A^HOSP")],
    )
    assert [ack_code(r) for r in replies] == ["AA", "AA"]
    listener.drain()
    encounters = client.get("/fhir/Encounter", headers=headers()).json
    assert encounters["total"] == 1
    assert encounters["entry"][0]["resource"]["status"] in ("cancelled", "entered-in-error")
