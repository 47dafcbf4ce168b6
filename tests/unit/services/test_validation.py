"""Structural validation: every problem reported at once, each with a FHIRPath expression."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from conformance.registry import resource_types
from fhir_server.outcomes import Issue, Unprocessable
from fhir_server.services import validation
from fhir_server.services.validation import is_resource_type, schema_validated_types, validate_resource

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "example",
    "meta": {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z", "profile": ["http://example.org/p"]},
    "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
    "active": True,
    "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
    "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work"}],
    "gender": "male",
    "birthDate": "1974-12-25",
    "_birthDate": {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                "valueDateTime": "1974-12-25T14:35:45-05:00",
            }
        ]
    },
    "deceasedBoolean": False,
    "address": [{"line": ["534 Erewhon St"], "city": "PleasantVille", "postalCode": "3999"}],
    "contact": [
        {
            "relationship": [
                {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}
            ]
        }
    ],
}

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "2016-03-28",
    "valueQuantity": {"value": 67.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
}


def problems(resource: Any) -> list[Issue]:
    with pytest.raises(Unprocessable) as caught:
        validate_resource(resource)
    assert caught.value.status == 422
    return caught.value.issues


def by_expression(issues: list[Issue]) -> dict[str, Issue]:
    return {i.expression[0]: i for i in issues if i.expression}


def test_valid_patient_passes() -> None:
    validate_resource(copy.deepcopy(PATIENT))


def test_valid_observation_passes() -> None:
    validate_resource(copy.deepcopy(OBSERVATION))


def test_validation_does_not_modify_the_resource() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": copy.deepcopy(PATIENT)}]}
    before = copy.deepcopy(bundle)
    validate_resource(bundle)
    assert bundle == before


def test_unknown_element_reports_its_expression() -> None:
    [issue] = problems({**PATIENT, "foo": 1})
    assert issue == Issue("Unknown element 'foo'", code="structure", expression=("Patient.foo",))


def test_unknown_element_in_a_nested_element() -> None:
    [issue] = problems({**PATIENT, "name": [{"family": "X"}, {"family": "Y", "nickname": "Z"}]})
    assert issue.expression == ("Patient.name[1].nickname",)
    assert issue.code == "structure"


def test_several_errors_are_reported_together() -> None:
    issues = problems(
        {"resourceType": "Observation", "foo": 1, "valueQuantity": {"value": "abc"}, "valueString": "x"}
    )
    found = by_expression(issues)
    assert found["Observation.foo"].code == "structure"
    assert found["Observation.code"].code == "required"
    assert found["Observation.status"].code == "required"  # a model-level rule, still reported
    assert found["Observation.valueQuantity.value"].code == "value"
    assert found["Observation.valueString"].code == "structure"  # two value[x] choices
    assert len(issues) == 5


def test_all_problems_are_in_the_operation_outcome() -> None:
    with pytest.raises(Unprocessable) as caught:
        validate_resource({**PATIENT, "foo": 1, "active": "maybe"})
    outcome = caught.value.to_outcome()
    assert {tuple(i["expression"]) for i in outcome["issue"]} == {("Patient.foo",), ("Patient.active",)}


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        ({"active": "maybe"}, "Patient.active"),
        ({"birthDate": "25/12/1974"}, "Patient.birthDate"),
        ({"name": [{"given": "Peter"}]}, "Patient.name[0].given"),
        ({"name": [{"family": 42}]}, "Patient.name[0].family"),
        ({"id": "not an id"}, "Patient.id"),
    ],
)
def test_wrong_type_or_format_is_a_value_issue(change: dict[str, Any], expression: str) -> None:
    [issue] = problems({**PATIENT, **change})
    assert issue.code == "value"
    assert issue.expression == (expression,)


def test_choice_elements_keep_their_json_name() -> None:
    [issue] = problems({**OBSERVATION, "valueQuantity": {"value": "heavy"}})
    assert issue.expression == ("Observation.valueQuantity.value",)


def test_primitive_extension_problems_point_at_the_primitive() -> None:
    [issue] = problems({**PATIENT, "_birthDate": {"extension": [{"url": 7}]}})
    assert issue.expression == ("Patient.birthDate.extension[0].url",)


def test_missing_required_element_inside_a_list() -> None:
    [issue] = problems(
        {**PATIENT, "extension": [{"url": "http://a", "valueString": "x"}, {"valueString": "y"}]}
    )
    assert issue == Issue(
        "Missing required element 'url'", code="required", expression=("Patient.extension[1].url",)
    )


@pytest.mark.parametrize("body", [[], "Patient", None, 3])
def test_a_non_object_body_is_unprocessable(body: Any) -> None:
    [issue] = problems(body)
    assert issue.code == "structure"


@pytest.mark.parametrize("body", [{}, {"id": "x"}, {"resourceType": ""}, {"resourceType": 5}])
def test_a_missing_resource_type_is_unprocessable(body: Any) -> None:
    [issue] = problems(body)
    assert issue.code == "required"


def test_is_resource_type() -> None:
    assert is_resource_type("Patient")
    assert is_resource_type("MedicinalProduct")
    assert not is_resource_type("Project")  # a Medplum type
    assert not is_resource_type("Resource")  # abstract
    assert not is_resource_type("SubscriptionStatus")  # R4B
    assert not is_resource_type("patient")


# --------------------------------------------------------------------------- R4-only types (schema engine)


def test_r4_only_types_are_validated_with_the_r4_schema() -> None:
    assert {"MedicinalProduct", "SubstancePolymer", "EffectEvidenceSynthesis"} <= schema_validated_types()
    assert {"Evidence", "EvidenceVariable"} <= schema_validated_types()
    assert "Patient" not in schema_validated_types()
    missing_in_r4b = set()
    for resource_type in resource_types():
        try:
            get_fhir_model_class(resource_type)
        except ValueError:
            missing_in_r4b.add(resource_type)
    assert schema_validated_types() == missing_in_r4b | validation.R4B_INCOMPATIBLE
    assert len(missing_in_r4b) == 18


def test_a_valid_r4_only_resource_passes() -> None:
    validate_resource(
        {
            "resourceType": "MedicinalProduct",
            "id": "mp",
            "identifier": [{"system": "http://ema.europa.eu/example/MPID", "value": "{mpid}"}],
            "name": [
                {
                    "productName": "Equilidem 2.5 mg film-coated tablets",
                    "namePart": [{"part": "Equilidem", "type": {"code": "INV"}}],
                }
            ],
        }
    )


def test_an_invalid_r4_only_resource_reports_every_problem() -> None:
    issues = problems(
        {"resourceType": "SubstancePolymer", "foo": 1, "class": {"text": 5}, "modification": "not-a-list"}
    )
    assert by_expression(issues) == {
        "SubstancePolymer.foo": Issue(
            "Unknown element 'foo'", code="structure", expression=("SubstancePolymer.foo",)
        ),
        "SubstancePolymer.class.text": by_expression(issues)["SubstancePolymer.class.text"],
        "SubstancePolymer.modification": by_expression(issues)["SubstancePolymer.modification"],
    }
    assert by_expression(issues)["SubstancePolymer.class.text"].code == "value"


def test_r4_evidence_is_accepted_although_r4b_redesigned_it() -> None:
    evidence = {
        "resourceType": "Evidence",
        "status": "active",
        "exposureBackground": {"reference": "Group/1"},
    }
    validate_resource(evidence)
    [issue] = problems({**evidence, "certainty": []})  # an R4B element
    assert issue.expression == ("Evidence.certainty",)


def test_schema_engine_reports_codes_outside_a_required_binding() -> None:
    [issue] = problems(
        {"resourceType": "Evidence", "status": "bogus", "exposureBackground": {"reference": "Group/1"}}
    )
    assert issue.code == "code-invalid"
    assert issue.expression == ("Evidence.status",)


# --------------------------------------------------------------------------- R4 vs R4B differences


def test_r4_extension_content_that_r4b_lacks_is_accepted() -> None:
    validate_resource(
        {
            **PATIENT,
            "extension": [
                {"url": "http://example.org/a", "valueString": "x", "_valueString": {"id": "v1"}},
                {"url": "http://example.org/b", "valueMeta": {"versionId": "3"}},
            ],
        }
    )


def test_r4_extension_content_that_r4b_lacks_is_still_validated() -> None:
    [issue] = problems({**PATIENT, "extension": [{"url": "http://example.org/b", "valueMeta": {"bogus": 1}}]})
    assert issue == Issue(
        "Unknown element 'bogus'", code="structure", expression=("Patient.extension[0].valueMeta.bogus",)
    )


@pytest.mark.parametrize(
    ("resource", "expression"),
    [
        (
            {"resourceType": "ActivityDefinition", "status": "draft", "subjectCanonical": "http://x"},
            "ActivityDefinition.subjectCanonical",
        ),
        (
            {**PATIENT, "extension": [{"url": "http://a", "valueRatioRange": {}}]},
            "Patient.extension[0].valueRatioRange",
        ),
        ({**PATIENT, "fhir_comments": ["hi"]}, "Patient.fhir_comments"),
        (
            {
                **PATIENT,
                "text": {
                    "status": "generated",
                    "div": '<div xmlns="http://www.w3.org/1999/xhtml"/>',
                    "_div": {"id": "d"},
                },
            },
            "Patient.text.div",
        ),
    ],
)
def test_r4b_only_elements_are_rejected(resource: dict[str, Any], expression: str) -> None:
    [issue] = problems(resource)
    assert issue.code == "structure"
    assert issue.expression == (expression,)


def _compare_r4b_models_with_the_r4_schema() -> tuple[set[str], set[str]]:
    """(R4 elements an R4B model lacks, keys R4B models accept that R4 has not got there)."""
    definitions = validation._definitions()
    missing: set[str] = set()
    extra: set[str] = set()
    seen: set[tuple[str, type[Any]]] = set()
    todo = [(t, get_fhir_model_class(t)) for t in sorted(resource_types() - schema_validated_types())]
    while todo:
        name, model = todo.pop()
        if (name, model) in seen:
            continue
        seen.add((name, model))
        props = definitions[name].get("properties", {})
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        for prop, schema in props.items():
            field = fields.get(prop)
            if prop == "resourceType":
                continue
            if field is None:
                missing.add(f"{name}.{prop}")
                continue
            ref = (schema.get("$ref") or schema.get("items", {}).get("$ref") or "").rsplit("/", 1)[-1]
            child = validation._model_of(field.annotation)
            if child is not None and ref in definitions and ref != "ResourceList":
                todo.append((ref, child))
        extra |= {alias for alias in fields if alias not in props}
    return missing, extra


def test_the_documented_r4b_differences_are_complete() -> None:
    """Guards R4B_ONLY_KEYS and the docstring against a new fhir.resources release."""
    missing, extra = _compare_r4b_models_with_the_r4_schema()
    assert extra == validation.R4B_ONLY_KEYS
    primitive_values = {
        "Base64Binary", "Boolean", "Canonical", "Code", "Date", "DateTime", "Decimal", "Id", "Instant",
        "Integer", "Markdown", "Oid", "PositiveInt", "String", "Time", "UnsignedInt", "Uri", "Url", "Uuid",
    }  # fmt: skip
    assert missing == {f"Extension._value{t}" for t in primitive_values} | {
        "Extension.valueMeta",
        "ElementDefinition.defaultValueMeta",
        "ElementDefinition.fixedMeta",
        "ElementDefinition.patternMeta",
        "ElementDefinition_Example.valueMeta",
    }


# --------------------------------------------------------------------------- nested resources


def test_problems_in_nested_resources_are_prefixed_with_their_place() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {**PATIENT, "foo": 1}},
            {"resource": {"resourceType": "Nope"}},
            {"resource": {"resourceType": "SubstancePolymer", "bar": 2}},
            {"resource": {"id": "no-type"}},
            {"response": {"status": "200", "outcome": {"resourceType": "OperationOutcome"}}},
        ],
    }
    found = by_expression(problems(bundle))
    assert found["Bundle.entry[0].resource.foo"].code == "structure"
    assert found["Bundle.entry[1].resource"].diagnostics == "Unknown resource type 'Nope'"
    assert found["Bundle.entry[2].resource.bar"].code == "structure"
    assert found["Bundle.entry[3].resource"].code == "required"
    assert found["Bundle.entry[4].response.outcome.issue"].code == "required"
    assert len(found) == 5


def test_contained_and_parameter_resources_are_validated() -> None:
    found = by_expression(
        problems({**PATIENT, "contained": [{"resourceType": "Observation", "status": "final"}, "x"]})
    )
    assert set(found) == {"Patient.contained[0].code", "Patient.contained[1]"}
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "a", "part": [{"name": "b", "resource": {"resourceType": "Patient", "zz": 1}}]}
        ],
    }
    [issue] = problems(parameters)
    assert issue.expression == ("Parameters.parameter[0].part[0].resource.zz",)


def test_a_valid_bundle_with_mixed_engines_passes() -> None:
    validate_resource(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": "urn:uuid:1",
                    "resource": PATIENT,
                    "request": {"method": "POST", "url": "Patient"},
                },
                {
                    "resource": {"resourceType": "MedicinalProduct", "name": [{"productName": "X"}]},
                    "request": {"method": "POST", "url": "MedicinalProduct"},
                },
            ],
        }
    )
