"""FHIR JSON rules (types, nulls, empty content) and required code bindings."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhir_server.outcomes import Issue, Unprocessable
from fhir_server.services.validation import validate_resource

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [{"use": "official", "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
    "active": True,
    "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
    "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work", "rank": 1}],
    "gender": "male",
    "birthDate": "1974-12-25",
    "multipleBirthInteger": 2,
    "address": [{"use": "home", "type": "both", "line": ["534 Erewhon St"], "city": "PleasantVille"}],
}

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    "subject": {"reference": "Patient/p1"},
    "valueQuantity": {"value": 67.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
}

EXTENSION = {"extension": [{"url": "http://example.org/e", "valueString": "x"}]}


def problems(resource: Any) -> list[Issue]:
    with pytest.raises(Unprocessable) as caught:
        validate_resource(resource)
    return caught.value.issues


def only_problem(resource: Any) -> Issue:
    issues = problems(resource)
    assert len(issues) == 1, issues
    return issues[0]


def patient(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(PATIENT), **changes}


def observation(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(OBSERVATION), **changes}


def test_the_examples_are_valid() -> None:
    validate_resource(patient())
    validate_resource(observation())


# --------------------------------------------------------------------------- JSON types


@pytest.mark.parametrize(
    ("resource", "expression"),
    [
        (patient(active="true"), "Patient.active"),
        (patient(active=1), "Patient.active"),
        (patient(birthDate=19800101), "Patient.birthDate"),
        (patient(gender=["male"]), "Patient.gender"),
        (patient(multipleBirthInteger="2"), "Patient.multipleBirthInteger"),
        (patient(multipleBirthInteger=2.0), "Patient.multipleBirthInteger"),
        (patient(multipleBirthInteger=True), "Patient.multipleBirthInteger"),
        (patient(name=[{"family": 42}]), "Patient.name[0].family"),
        (patient(telecom=[{"value": "1", "rank": "1"}]), "Patient.telecom[0].rank"),
        (observation(valueQuantity={"value": "1.5"}), "Observation.valueQuantity.value"),
        (observation(valueQuantity={"value": True}), "Observation.valueQuantity.value"),
        (
            patient(extension=[{"url": "http://example.org/b", "valueBoolean": "false"}]),
            "Patient.extension[0].valueBoolean",
        ),
        (
            patient(extension=[{"url": "http://example.org/i", "valueInteger": "3"}]),
            "Patient.extension[0].valueInteger",
        ),
    ],
)
def test_primitives_must_have_their_json_type(resource: dict[str, Any], expression: str) -> None:
    issue = only_problem(resource)
    assert issue.code == "value"
    assert issue.expression == (expression,)


def test_a_json_type_problem_says_what_json_is_expected() -> None:
    assert only_problem(patient(active="true")).diagnostics == (
        """Invalid value for 'active': must be JSON true or false (got "true")"""
    )
    assert "must be a JSON number" in only_problem(observation(valueQuantity={"value": "1.5"})).diagnostics


@pytest.mark.parametrize(
    "resource",
    [
        patient(active=False, multipleBirthInteger=0),
        observation(valueQuantity={"value": 70}),  # an integral decimal
        observation(valueQuantity={"value": -1.5e-3}),
        {
            **OBSERVATION,
            "valueQuantity": {"value": 1},
            "component": [{"code": {"text": "c"}, "valueInteger": -3}],
        },
        {
            **OBSERVATION,
            "valueQuantity": {"value": 1},
            "component": [{"code": {"text": "c"}, "valueBoolean": False}],
        },
        patient(extension=[{"url": "http://example.org/d", "valueDecimal": 0.1}]),
        patient(extension=[{"url": "http://example.org/p", "valuePositiveInt": 4}]),
    ],
)
def test_json_typed_primitives_pass(resource: dict[str, Any]) -> None:
    validate_resource(resource)


def test_json_types_are_checked_by_the_r4_schema_engine_too() -> None:
    evidence = {"resourceType": "Evidence", "status": "draft", "exposureBackground": {"reference": "Group/1"}}
    validate_resource(evidence)
    issue = only_problem({**evidence, "version": 3})
    assert (issue.code, issue.expression) == ("value", ("Evidence.version",))


# --------------------------------------------------------------------------- nulls


@pytest.mark.parametrize(
    ("resource", "expression"),
    [
        (patient(gender=None), "Patient.gender"),
        (patient(maritalStatus=None), "Patient.maritalStatus"),
        (patient(name=None), "Patient.name"),
        (patient(name=[{"family": "A"}, None]), "Patient.name[1]"),
        (patient(name=[{"given": ["Peter", None]}]), "Patient.name[0].given[1]"),
        (patient(_birthDate=None), "Patient.birthDate"),
        (patient(name=[{"given": ["A", None], "_given": [None, None]}]), "Patient.name[0].given[1]"),
        (patient(name=[{"_given": [EXTENSION, None]}]), "Patient.name[0].given[1]"),
        (
            {"resourceType": "MedicinalProduct", "name": [{"productName": None}]},
            "MedicinalProduct.name[0].productName",
        ),
    ],
)
def test_null_is_not_allowed(resource: dict[str, Any], expression: str) -> None:
    issue = only_problem(resource)
    assert issue.code == "value"
    assert issue.expression == (expression,)
    assert "null" in issue.diagnostics


@pytest.mark.parametrize(
    "name",
    [
        {"given": ["Peter", None], "_given": [None, EXTENSION]},
        {"given": [None, "James"], "_given": [EXTENSION, None]},
        {"given": ["Peter", "James"], "_given": [None, EXTENSION]},
        {"_given": [EXTENSION, EXTENSION]},
    ],
)
def test_null_is_a_placeholder_in_paired_primitive_arrays(name: dict[str, Any]) -> None:
    validate_resource(patient(name=[name]))


def test_null_placeholders_work_with_the_r4_schema_engine() -> None:
    validate_resource(
        {
            "resourceType": "MedicinalProduct",
            "name": [{"productName": "X"}],
            "specialMeasures": ["a", None],
            "_specialMeasures": [None, EXTENSION],
        }
    )


def test_paired_primitive_arrays_must_have_the_same_length() -> None:
    issue = only_problem(patient(name=[{"given": ["A", None], "_given": [None, EXTENSION, EXTENSION]}]))
    assert (issue.code, issue.expression) == ("structure", ("Patient.name[0].given",))


# --------------------------------------------------------------------------- empty content


@pytest.mark.parametrize(
    ("resource", "code", "expression"),
    [
        (patient(maritalStatus={}), "structure", "Patient.maritalStatus"),
        (patient(_birthDate={}), "structure", "Patient.birthDate"),
        (patient(name=[]), "structure", "Patient.name"),
        (patient(extension=[]), "structure", "Patient.extension"),
        (patient(name=[{"family": "A", "given": []}]), "structure", "Patient.name[0].given"),
        (patient(name=[{"family": "A"}, {}]), "structure", "Patient.name[1]"),
        (patient(name=[{"family": ""}]), "value", "Patient.name[0].family"),
        (patient(name=[{"family": " \t\n"}]), "value", "Patient.name[0].family"),
        (patient(name=[{"given": ["A", " "]}]), "value", "Patient.name[0].given[1]"),
        (patient(text={"status": "generated", "div": ""}), "value", "Patient.text.div"),
        (patient(id=""), "value", "Patient.id"),
        (
            {"resourceType": "MedicinalProduct", "name": [{"productName": "X"}], "identifier": []},
            "structure",
            "MedicinalProduct.identifier",
        ),
        (
            {"resourceType": "MedicinalProduct", "name": [{"productName": " "}]},
            "value",
            "MedicinalProduct.name[0].productName",
        ),
    ],
)
def test_empty_content_is_not_allowed(resource: dict[str, Any], code: str, expression: str) -> None:
    issue = only_problem(resource)
    assert (issue.code, issue.expression) == (code, (expression,))


def test_strings_with_inner_or_surrounding_spaces_pass() -> None:
    validate_resource(patient(name=[{"family": "van der Berg", "given": [" Peter "]}]))


# --------------------------------------------------------------------------- required bindings


@pytest.mark.parametrize(
    ("resource", "expression"),
    [
        (patient(gender="bogus"), "Patient.gender"),
        (patient(gender="Male"), "Patient.gender"),  # codes are case-sensitive
        (patient(name=[{"use": "formal", "family": "X"}]), "Patient.name[0].use"),
        (patient(telecom=[{"system": "mobile", "value": "1"}]), "Patient.telecom[0].system"),
        (patient(identifier=[{"use": "primary", "value": "1"}]), "Patient.identifier[0].use"),
        (patient(address=[{"use": "holiday"}]), "Patient.address[0].use"),
        (patient(contact=[{"gender": "f"}]), "Patient.contact[0].gender"),
        (
            patient(text={"status": "done", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}),
            "Patient.text.status",
        ),
        (observation(status="complete"), "Observation.status"),
        (
            observation(referenceRange=[{"low": {"value": 1, "comparator": "~"}}]),
            "Observation.referenceRange[0].low.comparator",
        ),
        ({"resourceType": "Encounter", "status": "open", "class": {"code": "AMB"}}, "Encounter.status"),
        ({"resourceType": "Bundle", "type": "bag"}, "Bundle.type"),
        ({"resourceType": "DetectedIssue", "status": "mitigated"}, "DetectedIssue.status"),  # R5 code
        (
            {
                "resourceType": "Questionnaire",
                "status": "draft",
                "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "question"}]}],
            },
            "Questionnaire.item[0].item[0].type",  # nested items reuse Questionnaire.item's definition
        ),
        (
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {"text": "x"},
                "subject": {"reference": "Patient/p1"},
                "dosageInstruction": [{"timing": {"repeat": {"when": ["MORN", "LUNCH"]}}}],
            },
            "MedicationRequest.dosageInstruction[0].timing.repeat.when[1]",
        ),
        (
            {"resourceType": "Evidence", "status": "bogus", "exposureBackground": {"reference": "Group/1"}},
            "Evidence.status",  # the R4 schema engine
        ),
    ],
)
def test_codes_outside_a_required_binding_are_rejected(resource: dict[str, Any], expression: str) -> None:
    issue = only_problem(resource)
    assert issue.code == "code-invalid"
    assert issue.expression == (expression,)
    assert "http://hl7.org/fhir/ValueSet/" in issue.diagnostics


def test_a_code_problem_names_the_value_set_and_its_codes() -> None:
    assert only_problem(patient(gender="bogus")).diagnostics == (
        """Invalid value for 'gender': "bogus" is not a code of the required value set """
        "http://hl7.org/fhir/ValueSet/administrative-gender (female, male, other, unknown)"
    )


@pytest.mark.parametrize("gender", ["male", "female", "other", "unknown"])
def test_codes_of_a_required_binding_pass(gender: str) -> None:
    validate_resource(patient(gender=gender))


@pytest.mark.parametrize(
    "resource",
    [
        patient(name=[{"use": "maiden", "family": "X"}]),  # a nested concept of the code system
        patient(_gender=EXTENSION),  # no code, only an extension
        {"resourceType": "Bundle", "type": "searchset", "entry": [{"search": {"mode": "match"}}]},
        {"resourceType": "Encounter", "status": "in-progress", "class": {"code": "AMB"}},
        {"resourceType": "DetectedIssue", "status": "final"},
        # not checked: bindings to value sets that cannot be expanded from the definitions
        {"resourceType": "Binary", "contentType": "application/x-anything"},
        patient(extension=[{"url": "http://example.org/c", "valueCode": "anything"}]),  # unbound
        patient(maritalStatus={"coding": [{"code": "anything"}]}),  # extensible, not required
    ],
)
def test_valid_or_unbound_codes_pass(resource: dict[str, Any]) -> None:
    validate_resource(resource)


# --------------------------------------------------------------------------- reporting


def test_every_problem_is_reported_together() -> None:
    resource = patient(
        active="yes",
        gender="bogus",
        birthDate=None,
        maritalStatus={},
        name=[{"use": "nick", "family": "", "given": []}],
        telecom=[None],  # the R4B model stops at a null list item: the rest is still reported
        foo=1,
    )
    found = {i.expression[0]: i.code for i in problems(resource)}
    assert found == {
        "Patient.active": "value",
        "Patient.gender": "code-invalid",
        "Patient.birthDate": "value",
        "Patient.maritalStatus": "structure",
        "Patient.name[0].use": "code-invalid",
        "Patient.name[0].family": "value",
        "Patient.name[0].given": "structure",
        "Patient.telecom[0]": "value",
        "Patient.foo": "structure",
    }


def test_one_issue_per_element_when_an_engine_also_objects() -> None:
    for resource in (patient(active="maybe"), patient(gender=5), patient(name=[{"family": ""}])):
        assert len(problems(resource)) == 1


def test_problems_in_nested_resources_point_into_them() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": patient(
                    gender="x", active="true", contained=[{"resourceType": "Organization", "name": ""}]
                ),
                "request": {"method": "FETCH", "url": "Patient"},
            },
            {"resource": observation(status=None, valueQuantity={"value": "2"})},
        ],
    }
    found = {i.expression[0]: i.code for i in problems(bundle)}
    assert found == {
        "Bundle.entry[0].request.method": "code-invalid",
        "Bundle.entry[0].resource.gender": "code-invalid",
        "Bundle.entry[0].resource.active": "value",
        "Bundle.entry[0].resource.contained[0].name": "value",
        "Bundle.entry[1].resource.status": "required",
        "Bundle.entry[1].resource.valueQuantity.value": "value",
    }


def test_problems_in_parameters_resources_point_into_them() -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "flag", "valueBoolean": "true"},
            {"name": "p", "part": [{"name": "r", "resource": patient(gender="x")}]},
        ],
    }
    found = {i.expression[0]: i.code for i in problems(parameters)}
    assert found == {
        "Parameters.parameter[0].valueBoolean": "value",
        "Parameters.parameter[1].part[0].resource.gender": "code-invalid",
    }


def test_the_resource_is_not_modified() -> None:
    resource = patient(name=[{"given": ["A", None], "_given": [None, EXTENSION]}], gender="x")
    before = copy.deepcopy(resource)
    problems(resource)
    assert resource == before
