from __future__ import annotations

import pytest

from fhir_server.search.fhirpath import UnsupportedExpression, compile_expression, reference_type

OBS = {
    "resourceType": "Observation",
    "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
    "component": [{"code": {"text": "a"}}, {"code": {"text": "b"}}],
    "subject": {"reference": "Patient/123"},
    "valueQuantity": {"value": 1},
    "extension": [{"url": "http://x/ext", "valueString": "e"}],
}


def test_union_and_nested_lists() -> None:
    expr = compile_expression("Observation.code | Observation.component.code")
    assert len(expr.evaluate("Observation", OBS)) == 3


def test_terms_for_other_types_are_skipped() -> None:
    expr = compile_expression("Condition.subject | Observation.subject")
    assert expr.evaluate("Observation", OBS) == [{"reference": "Patient/123"}]


def test_where_resolve_is() -> None:
    assert compile_expression("Observation.subject.where(resolve() is Patient)").evaluate("Observation", OBS)
    assert not compile_expression("Observation.subject.where(resolve() is Group)").evaluate(
        "Observation", OBS
    )


def test_choice_casts() -> None:
    assert compile_expression("(Observation.value as Quantity)").evaluate("Observation", OBS) == [
        {"value": 1}
    ]
    assert compile_expression("Observation.value.as(Quantity)").evaluate("Observation", OBS) == [{"value": 1}]
    assert compile_expression("Observation.value").evaluate("Observation", OBS) == [{"value": 1}]


def test_where_equality_and_extension() -> None:
    patient = {"telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}]}
    assert compile_expression("Patient.telecom.where(system='email')").evaluate("Patient", patient) == [
        {"system": "email", "value": "a@b"}
    ]
    ext = compile_expression("Observation.extension('http://x/ext').value").evaluate("Observation", OBS)
    assert ext == ["e"]


def test_resource_root_applies_to_every_type() -> None:
    assert compile_expression("Resource.id").evaluate("Observation", {"id": "x"}) == ["x"]


@pytest.mark.parametrize(
    "expression",
    ["Patient.deceased.exists() and Patient.deceased != false", "Patient.name.first()", "Patient.a[0]"],
)
def test_unsupported_expressions_are_refused(expression: str) -> None:
    with pytest.raises(UnsupportedExpression):
        compile_expression(expression)


def test_reference_type_forms() -> None:
    assert reference_type({"reference": "http://x/fhir/Patient/1/_history/2"}) == "Patient"
    assert reference_type({"reference": "#contained"}) is None
    assert reference_type({"type": "Group", "reference": "x"}) == "Group"
