"""ORU, orders, vaccinations, scheduling, documents, pharmacy: identity and the values that matter."""

from __future__ import annotations

import base64

from tests.unit.mappings.messages.helpers import PID, bundle, entries, msh, one, resources

OBR = "OBR|1|P1^EHR|F1^LAB|24331-1^Lipid panel^LN|||20240312080000|||||||||||||||20240312101400|||F"


def test_oru_points_at_the_patient_without_overwriting_it() -> None:
    b = bundle(msh("ORU^R01"), PID, OBR, "OBX|1|NM|2093-3^Cholesterol^LN||212|mg/dL|<200|H|||F")
    (patient,) = entries(b, "Patient")
    assert patient["request"] == {
        "method": "POST",
        "url": "Patient",
        "ifNoneExist": "identifier=urn:id:GHH|PAT1",
    }
    obs = one(b, "Observation")
    assert obs["subject"]["reference"] == patient["fullUrl"]
    assert obs["valueQuantity"] == {
        "value": 212,
        "unit": "mg/dL",
        "system": "http://unitsofmeasure.org",
        "code": "mg/dL",
    }
    assert obs["interpretation"][0]["coding"][0]["code"] == "H"
    assert obs["effectiveDateTime"] == "2024-03-12T08:00:00+00:00"


def test_results_are_identified_by_filler_number_and_set_id() -> None:
    lines = [msh("ORU^R01"), PID, OBR, "OBX|1|NM|A^a^LN||1||||||F", "OBX|2|NM|B^b^LN||2||||||F"]
    b = bundle(*lines)
    assert [e["request"]["url"] for e in entries(b, "Observation")] == [
        "Observation?identifier=urn:id:LAB|F1/1",
        "Observation?identifier=urn:id:LAB|F1/2",
    ]
    report = one(b, "DiagnosticReport")
    assert report["result"] == [{"reference": e["fullUrl"]} for e in entries(b, "Observation")]
    assert report["status"] == "final"
    assert entries(b, "Observation")[0]["resource"]["status"] == "final"
    corrected = bundle(*[line.replace("||1||||||F", "||1.5||||||C") for line in lines])
    first = entries(corrected, "Observation")[0]
    assert first["request"]["url"] == "Observation?identifier=urn:id:LAB|F1/1"
    assert first["resource"]["status"] == "corrected"


def test_value_types() -> None:
    b = bundle(
        msh("ORU^R01"),
        PID,
        OBR,
        "OBX|1|ST|A^a^LN||Positive \\T\\ confirmed||||||F",
        "OBX|2|CWE|B^b^LN||260385009^Negative^SCT||||||F",
        "OBX|3|SN|C^c^LN||<^0.5|ng/mL|||||F",
        "OBX|4|DT|D^d^LN||20240301||||||F",
        "OBX|5|TX|E^e^LN||line one~line two||||||F",
        "OBX|6|ED|F^PDF report^LN||LAB^AP^PDF^Base64^SGVsbG8=||||||F",
    )
    values = [{k: v for k, v in o.items() if k.startswith("value")} for o in resources(b, "Observation")]
    assert values == [
        {"valueString": "Positive & confirmed"},
        {
            "valueCodeableConcept": {
                "coding": [{"system": "http://snomed.info/sct", "code": "260385009", "display": "Negative"}]
            }
        },
        {
            "valueQuantity": {
                "value": 0.5,
                "comparator": "<",
                "unit": "ng/mL",
                "system": "http://unitsofmeasure.org",
                "code": "ng/mL",
            }
        },
        {"valueDateTime": "2024-03-01"},
        {"valueString": "line one\nline two"},
    ]
    form = one(b, "DiagnosticReport")["presentedForm"][0]
    assert form["contentType"] == "application/pdf"
    assert base64.b64decode(form["data"]) == b"Hello"


def test_monitor_codes_get_loinc_and_the_vital_signs_category() -> None:
    b = bundle(
        msh("ORU^R01"),
        PID,
        OBR,
        "OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||97|262688^MDC_DIM_PERCENT^MDC|||||R",
    )
    obs = one(b, "Observation")
    assert {
        "system": "http://loinc.org",
        "code": "59408-5",
        "display": "Oxygen saturation by Pulse oximetry",
    } in obs["code"]["coding"]
    assert obs["category"][0]["coding"][0]["code"] == "vital-signs"
    assert obs["valueQuantity"]["code"] == "%"
    assert obs["status"] == "preliminary"


def test_orders_update_their_service_request_by_placer_number() -> None:
    new = bundle(msh("ORM^O01"), PID, "ORC|NW|P1^EHR", "OBR|1|P1^EHR||57021-8^CBC^LN")
    cancel = bundle(msh("ORM^O01", "C2"), PID, "ORC|CA|P1^EHR", "OBR|1|P1^EHR||57021-8^CBC^LN")
    (a,), (c,) = entries(new, "ServiceRequest"), entries(cancel, "ServiceRequest")
    assert a["request"] == c["request"] == {"method": "PUT", "url": "ServiceRequest?identifier=urn:id:EHR|P1"}
    assert (a["resource"]["status"], c["resource"]["status"]) == ("active", "revoked")


def test_vaccination() -> None:
    b = bundle(
        msh("VXU^V04"),
        PID,
        "ORC|RE||IZ-1^EHR",
        "RXA|0|1|20240410101500|20240410101500|08^Hep B^CVX|0.5|mL^mL^UCUM||00^New^NIP001"
        "||||||LOT1||MSD^Merck^MVX|||CP",
        "RXR|C28161^Intramuscular^NCIT|LA^Left Arm^HL70163",
    )
    (entry,) = entries(b, "Immunization")
    assert entry["request"]["url"] == "Immunization?identifier=urn:id:EHR|IZ-1"
    imm = entry["resource"]
    assert imm["vaccineCode"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/cvx"
    assert (imm["status"], imm["lotNumber"], imm["primarySource"]) == ("completed", "LOT1", True)
    assert imm["doseQuantity"]["value"] == 0.5
    assert imm["site"]["coding"][0]["display"] == "Left Arm"


def test_appointment_cancel_updates_the_booked_one() -> None:
    sch = "SCH|APT-1^SCHED||||||||30|MIN|^^30^20240402093000"
    booked = bundle(msh("SIU^S12"), sch, PID, "AIS|1|A|99213^Visit^C4|20240402093000|||30|MIN")
    cancelled = bundle(msh("SIU^S15", "C2"), sch, PID)
    (a,), (c,) = entries(booked, "Appointment"), entries(cancelled, "Appointment")
    assert a["request"] == c["request"]
    assert (a["resource"]["status"], c["resource"]["status"]) == ("booked", "cancelled")
    assert (a["resource"]["start"], a["resource"]["end"]) == (
        "2024-04-02T09:30:00+00:00",
        "2024-04-02T10:00:00+00:00",
    )


def test_document_content_is_the_text_of_its_obx() -> None:
    b = bundle(
        msh("MDM^T02"),
        "EVN|T02",
        PID,
        "TXA|1|DS|TX|20240315170000||||||||DOC-1^TRANSCR|||||AU",
        "OBX|1|TX|18842-5^Discharge summary^LN||First line||||||F",
        "OBX|2|TX|18842-5^Discharge summary^LN||Second \\F\\ line||||||F",
    )
    (entry,) = entries(b, "DocumentReference")
    assert entry["request"]["url"] == "DocumentReference?identifier=urn:id:TRANSCR|DOC-1"
    doc = entry["resource"]
    assert doc["docStatus"] == "final"
    text = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
    assert [base64.b64decode(c["attachment"]["data"]).decode() for c in doc["content"]] == [
        "First line",
        "Second | line",
    ]
    assert text == "First line"


def test_pharmacy_order() -> None:
    b = bundle(
        msh("RDE^O11"),
        PID,
        "ORC|NW|RX1^EHR",
        "RXE|^Q12H|197361^Furosemide 40 MG Oral Tablet^RXNORM|40||mg^mg^UCUM|||||30|TAB|2",
        "RXR|PO^Oral^HL70162",
    )
    (entry,) = entries(b, "MedicationRequest")
    assert entry["request"]["url"] == "MedicationRequest?identifier=urn:id:EHR|RX1"
    req = entry["resource"]
    assert req["dosageInstruction"][0]["timing"] == {"code": {"text": "Q12H"}}
    assert req["dosageInstruction"][0]["route"]["coding"][0]["code"] == "PO"
    assert req["dispenseRequest"]["numberOfRepeatsAllowed"] == 2
