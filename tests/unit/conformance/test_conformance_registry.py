"""The registry loads the official R4 definitions: resource types, search parameters, compartment."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources

import pytest

from conformance.registry import (
    SearchParameterComponent,
    SearchParameterDef,
    domain_resource_types,
    expression_for,
    patient_compartment,
    resource_types,
    search_parameters,
    search_parameters_by_url,
    split_union,
)

MEDPLUM_TYPES = {"Project", "Bot", "ClientApplication", "User", "ProjectMembership", "AccessPolicy", "Login"}


def test_resource_types_are_the_146_of_r4() -> None:
    types = resource_types()
    assert isinstance(types, frozenset)
    assert {"Patient", "Observation", "Bundle", "MedicinalProduct", "EffectEvidenceSynthesis"} <= types
    # R4 4.0.1 defines 148 ResourceType codes, two of them abstract
    assert len(types) == 146
    assert not types & {"Resource", "DomainResource"}


def test_resource_types_have_no_vendor_or_later_version_types() -> None:
    types = resource_types()
    assert not types & MEDPLUM_TYPES
    assert not types & {"SubscriptionStatus", "SubscriptionTopic", "Citation", "ClinicalUseDefinition"}


def test_resource_types_file_is_the_generated_one() -> None:
    document = json.loads(
        resources.files("conformance").joinpath("definitions/resource-types.json").read_text()
    )
    assert document["fhirVersion"] == "4.0.1"
    assert document["count"] == len(document["resourceTypes"]) == 146
    assert document["resourceTypes"] == sorted(document["resourceTypes"])


def test_trimmed_schema_holds_only_official_definitions() -> None:
    schema = json.loads(resources.files("conformance").joinpath("definitions/fhir.schema.json").read_text())
    definitions = schema["definitions"]
    assert set(schema["discriminator"]["mapping"]) == resource_types()
    assert not set(definitions) & MEDPLUM_TYPES
    assert {"project", "author", "account", "compartment"}.isdisjoint(definitions["Meta"]["properties"])
    assert len(definitions["ResourceList"]["oneOf"]) == 146


def test_domain_resource_types() -> None:
    assert resource_types() - domain_resource_types() == {"Binary", "Bundle", "Parameters"}


def test_patient_identifier_is_a_token_with_its_expression() -> None:
    identifier = search_parameters()["Patient"]["identifier"]
    assert identifier == SearchParameterDef(
        code="identifier",
        type="token",
        expression="Patient.identifier",
        url="http://hl7.org/fhir/SearchParameter/Patient-identifier",
        base=("Patient",),
        modifiers=identifier.modifiers,
        xpath_usage="normal",
    )
    assert "text" in identifier.modifiers
    assert dataclasses.is_dataclass(identifier)
    with pytest.raises(dataclasses.FrozenInstanceError):
        identifier.code = "x"  # type: ignore[misc]


def test_observation_code_value_quantity_is_composite_with_components() -> None:
    composite = search_parameters()["Observation"]["code-value-quantity"]
    assert composite.type == "composite"
    assert composite.components == (
        SearchParameterComponent("http://hl7.org/fhir/SearchParameter/clinical-code", "code"),
        SearchParameterComponent(
            "http://hl7.org/fhir/SearchParameter/Observation-value-quantity", "value.as(Quantity)"
        ),
    )
    for component in composite.components:
        assert component.definition in search_parameters_by_url()


@pytest.mark.parametrize(
    "code", ["_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_content"]
)
def test_every_type_inherits_the_resource_parameters(code: str) -> None:
    for resource_type in resource_types():
        assert code in search_parameters()[resource_type], resource_type
    assert search_parameters()["Patient"]["_lastUpdated"].comparators[:2] == ("eq", "ne")


def test_text_applies_to_domain_resources_only() -> None:
    assert "_text" in search_parameters()["Patient"]
    assert "_text" not in search_parameters()["Bundle"]


def test_search_parameters_cover_official_types_only() -> None:
    assert set(search_parameters()) == resource_types()
    urls = {d.url for params in search_parameters().values() for d in params.values()}
    assert all(url.startswith("http://hl7.org/fhir/SearchParameter/") for url in urls)
    # Medplum's R5 DeviceDefinition-classification is not R4
    assert "classification" not in search_parameters()["DeviceDefinition"]


def test_shared_parameters_carry_only_their_type_expression() -> None:
    patient = search_parameters()["Observation"]["patient"]
    assert patient.expression == "Observation.subject.where(resolve() is Patient)"
    assert patient.target == ("Patient",)
    assert "Observation" in patient.base
    assert "Condition" in patient.base
    assert (
        search_parameters()["Condition"]["patient"].expression
        == "Condition.subject.where(resolve() is Patient)"
    )


def test_reference_parameters_have_targets_and_dates_comparators() -> None:
    subject = search_parameters()["Observation"]["subject"]
    assert subject.type == "reference"
    assert "Patient" in subject.target
    assert "type" in subject.modifiers
    assert search_parameters()["Observation"]["date"].comparators == (
        "eq", "ne", "gt", "ge", "lt", "le", "sa", "eb", "ap",
    )  # fmt: skip


def test_split_union_respects_parentheses_and_strings() -> None:
    assert split_union("(A.x as Quantity) | (A.x as Range)") == ["(A.x as Quantity)", "(A.x as Range)"]
    assert split_union("A.y.where(z = 'a|b') | B.y") == ["A.y.where(z = 'a|b')", "B.y"]
    assert split_union("A.b") == ["A.b"]


def test_expression_for_picks_the_type_terms() -> None:
    assert expression_for("A.x | B.x | (A.y as Range)", "A") == "A.x | (A.y as Range)"
    assert expression_for("A.x | B.x", "C") == "A.x | B.x"
    assert expression_for(None, "A") is None


def test_patient_compartment() -> None:
    compartment = patient_compartment()
    assert compartment["Observation"] == ("subject", "performer")
    assert compartment["Patient"] == ("link",)
    assert "ActivityDefinition" not in compartment  # no linking parameter
    assert set(compartment) <= resource_types()
    for resource_type, params in compartment.items():
        for param in params:
            assert param in search_parameters()[resource_type], (resource_type, param)


def test_loaders_are_cached() -> None:
    assert search_parameters() is search_parameters()
    assert resource_types() is resource_types()
