"""ADT: identity (A08 after A01 updates the same records), visit states per event, merge, nulls."""

from __future__ import annotations

from tests.unit.mappings.messages.helpers import PID, bundle, entries, msh, one, resources

PV1 = (
    "PV1|1|I|4W^402^B^GHH^^^MAIN^4||||D1^Attend^Aaron|||MED|||||||||V1^^^GHH^VN"
    "|||||||||||||||||||||||||20240312080000"
)


def _visit(event: str, pv1: str = PV1, control: str = "C1") -> dict:
    return bundle(msh(f"ADT^{event}", control), f"EVN|{event}|20240312083000", PID, pv1)


def test_a01_then_a08_address_the_same_patient_and_encounter() -> None:
    admit, update = _visit("A01"), _visit("A08", control="C2")
    for kind in ("Patient", "Encounter"):
        (a,), (u,) = entries(admit, kind), entries(update, kind)
        assert a["request"] == u["request"]
        assert a["request"]["method"] == "PUT"
        assert a["fullUrl"] == u["fullUrl"]
    assert entries(admit, "Patient")[0]["request"]["url"] == "Patient?identifier=urn:id:GHH|PAT1"
    assert entries(admit, "Encounter")[0]["request"]["url"] == "Encounter?identifier=urn:id:GHH|V1"


def test_resources_name_their_source_message() -> None:
    b = _visit("A01", control="MSG-77")
    assert {r["meta"]["source"] for r in (e["resource"] for e in b["entry"])} == {"urn:hl7v2:APP|GHH#MSG-77"}


def test_patient_demographics() -> None:
    patient = one(_visit("A04"), "Patient")
    assert patient["name"] == [{"family": "Doe", "given": ["Jane"]}]
    assert patient["gender"] == "female"
    assert patient["birthDate"] == "1980-01-01"
    assert patient["address"][0]["city"] == "Springfield"
    assert patient["telecom"] == [{"system": "phone", "value": "(555)555-0100", "use": "home"}]


def test_explicit_null_clears_a_value() -> None:
    pid = PID.replace("(555)555-0100^PRN^PH", '""')
    patient = one(bundle(msh("ADT^A08"), "EVN|A08", pid, PV1), "Patient")
    assert "telecom" not in patient


def test_event_states() -> None:
    assert one(_visit("A01"), "Encounter")["status"] == "in-progress"
    assert one(_visit("A04"), "Encounter")["status"] == "arrived"
    assert one(_visit("A05"), "Encounter")["status"] == "planned"
    assert one(_visit("A11"), "Encounter")["status"] == "cancelled"
    assert one(_visit("A12"), "Encounter")["status"] == "in-progress"


def test_a03_finishes_the_encounter_with_its_end_time() -> None:
    encounter = one(_visit("A03", PV1 + "|20240315154500"), "Encounter")
    assert encounter["status"] == "finished"
    assert encounter["period"] == {"start": "2024-03-12T08:00:00+00:00", "end": "2024-03-15T15:45:00+00:00"}
    assert [loc["status"] for loc in encounter["location"]] == ["completed"]


def test_a03_without_discharge_time_ends_at_the_event_time() -> None:
    b = bundle(msh("ADT^A03"), "EVN|A03|20240315160000||||20240315155000", PID, PV1)
    assert one(b, "Encounter")["period"]["end"] == "2024-03-15T15:50:00+00:00"


def test_a13_reopens_the_encounter() -> None:
    encounter = one(_visit("A13", PV1 + "|20240315154500"), "Encounter")
    assert encounter["status"] == "in-progress"
    assert "end" not in encounter["period"]


def test_a02_lists_the_prior_location_completed_and_the_new_one_active() -> None:
    pv1 = PV1.replace("PV1|1|I|4W^402^B^GHH^^^MAIN^4||||", "PV1|1|I|ICU^1^A^GHH|||4W^402^B^GHH|")
    encounter = one(_visit("A02", pv1), "Encounter")
    assert [(loc["location"]["display"], loc["status"]) for loc in encounter["location"]] == [
        ("4W 402 B", "completed"),
        ("ICU 1 A", "active"),
    ]
    assert len(resources(_visit("A02", pv1), "Location")) == 2


def test_a28_maps_the_patient_only() -> None:
    b = bundle(msh("ADT^A28^ADT_A05"), "EVN|A28", PID, "PV1|1|N")
    assert [e["resource"]["resourceType"] for e in b["entry"]] == ["Patient", "Provenance"]


def test_a08_without_visit_number_maps_the_patient_only() -> None:
    b = bundle(msh("ADT^A08"), "EVN|A08", PID, "PV1|1|O")
    assert resources(b, "Encounter") == []


def test_a40_links_the_retired_patient_to_the_survivor() -> None:
    b = bundle(msh("ADT^A40^ADT_A39"), "EVN|A40", PID, "MRG|OLD9^^^GHH^MR")
    (old,), (survivor,) = (
        [e for e in entries(b, "Patient") if not e["resource"]["active"]],
        [e for e in entries(b, "Patient") if e["resource"]["active"]],
    )
    assert old["request"]["url"] == "Patient?identifier=urn:id:GHH|OLD9"
    assert old["resource"]["link"] == [{"other": {"reference": survivor["fullUrl"]}, "type": "replaced-by"}]
    assert survivor["resource"]["link"] == [{"other": {"reference": old["fullUrl"]}, "type": "replaces"}]
    assert survivor["request"]["url"] == "Patient?identifier=urn:id:GHH|PAT1"


def test_next_of_kin_allergies_diagnoses_procedures_coverage() -> None:
    b = bundle(
        msh("ADT^A01"),
        "EVN|A01",
        PID,
        "NK1|1|Doe^John|SPO^Spouse^HL70063",
        PV1,
        "AL1|1|FA|227493005^Cashew nuts^SCT|MO|Rash",
        "DG1|1||J18.9^Pneumonia, unspecified organism^I10||20240312|W",
        "PR1|1||0BH17EZ^Intubation^I10P||20240312100000",
        "IN1|1|PPO|AETNA^^^GHH|Aetna|||||||||||||SEL|||||||||||||||||||POL-1",
    )
    person = one(b, "RelatedPerson")
    assert person["relationship"][0]["coding"][0]["code"] == "SPO"
    allergy = one(b, "AllergyIntolerance")
    assert (allergy["category"], allergy["criticality"]) == (["food"], "low")
    assert allergy["reaction"][0]["severity"] == "moderate"
    condition = one(b, "Condition")
    assert condition["code"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/icd-10",
        "code": "J18.9",
        "display": "Pneumonia, unspecified organism",
    }
    assert condition["verificationStatus"]["coding"][0]["code"] == "provisional"
    assert condition["encounter"] == {"reference": entries(b, "Encounter")[0]["fullUrl"]}
    assert one(b, "Procedure")["performedDateTime"] == "2024-03-12T10:00:00+00:00"
    coverage = one(b, "Coverage")
    assert coverage["payor"][0]["display"] == "Aetna"
    assert entries(b, "Coverage")[0]["request"]["url"] == "Coverage?identifier=urn:id:GHH|POL-1"


def test_provenance_names_the_inbox_record_and_the_sender() -> None:
    from mappings import Options, parse, to_bundle

    text = "\r".join([msh("ADT^A28^ADT_A05", "M-9"), "EVN|A28", PID])
    with_inbox = to_bundle(parse(text), Options(inbox_id="inbox-42"))
    (provenance,) = resources(with_inbox, "Provenance")
    assert provenance["entity"][0]["what"]["identifier"] == {
        "system": "urn:interop:hl7v2-inbox",
        "value": "inbox-42",
    }
    assert provenance["agent"][0]["who"]["display"] == "APP|GHH"
    assert provenance["recorded"] == "2024-03-12T08:30:00+00:00"
    (without,) = resources(to_bundle(parse(text)), "Provenance")
    assert without["entity"][0]["what"]["identifier"] == {
        "system": "urn:hl7v2:message",
        "value": "APP|GHH#M-9",
    }
    assert without["id"] == provenance["id"]
