"""The CapabilityStatement states exactly what it is given, and is a valid R4 resource."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from conformance.capability import CapabilityFeatures, build_capability_statement
from conformance.registry import search_parameters

FEATURES = CapabilityFeatures(
    versioning="versioned-update",
    read_history=True,
    update_create=True,
    conditional_create=True,
    conditional_update=True,
    conditional_delete="single",
    reference_policy=("literal",),
)
INSTANCE = ("read", "vread", "update", "patch", "delete", "history-instance")
TYPE = ("create", "search-type", "history-type")


def build(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "base_url": "https://fhir.example.org/",
        "software_name": "interop-server",
        "software_version": "1.2.3",
        "interactions": {"Patient": INSTANCE + TYPE, "Observation": ("read", "search-type")},
        "system_interactions": ("history-system",),
        "search_params": {
            "Patient": [search_parameters()["Patient"][c] for c in ("_id", "identifier", "name")],
            "Observation": [search_parameters()["Observation"]["code-value-quantity"]],
        },
        "formats": ("application/fhir+json", "application/json"),
        "patch_formats": ("application/json-patch+json",),
        "features": FEATURES,
        "date": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
    }
    arguments.update(overrides)
    return build_capability_statement(**arguments)


def test_statement_is_a_valid_capability_statement() -> None:
    statement = build()
    parsed = CapabilityStatement.model_validate(statement)
    assert parsed.fhirVersion == "4.0.1"
    assert statement["status"] == "active"
    assert statement["kind"] == "instance"
    assert statement["date"] == "2024-05-01T12:30:00Z"
    assert statement["implementation"]["url"] == "https://fhir.example.org/fhir"
    assert statement["software"] == {"name": "interop-server", "version": "1.2.3"}
    assert statement["format"] == ["application/fhir+json", "application/json"]
    assert statement["patchFormat"] == ["application/json-patch+json"]


def test_statement_date_defaults_to_now() -> None:
    statement = build(date=None)
    CapabilityStatement.model_validate(statement)
    assert statement["date"].endswith("Z")
    assert statement["date"][:4] == str(datetime.now(UTC).year)


def test_resources_list_exactly_the_interactions_passed() -> None:
    rest = build()["rest"]
    assert len(rest) == 1
    assert rest[0]["mode"] == "server"
    assert [r["type"] for r in rest[0]["resource"]] == ["Observation", "Patient"]
    observation, patient = rest[0]["resource"]
    assert [i["code"] for i in patient["interaction"]] == list(INSTANCE + TYPE)
    assert [i["code"] for i in observation["interaction"]] == ["read", "search-type"]
    assert rest[0]["interaction"] == [{"code": "history-system"}]
    assert patient["profile"] == "http://hl7.org/fhir/StructureDefinition/Patient"


def test_resource_features() -> None:
    observation, patient = build()["rest"][0]["resource"]
    assert patient["versioning"] == "versioned-update"
    assert patient["readHistory"] is True
    assert patient["updateCreate"] is True
    assert patient["conditionalCreate"] is True
    assert patient["conditionalUpdate"] is True
    assert patient["conditionalDelete"] == "single"
    assert patient["conditionalRead"] == "not-supported"
    assert patient["referencePolicy"] == ["literal"]
    assert "searchInclude" not in patient
    assert "searchRevInclude" not in patient
    # flags whose interaction is not offered are not claimed
    for absent in (
        "readHistory",
        "updateCreate",
        "conditionalCreate",
        "conditionalUpdate",
        "conditionalDelete",
    ):
        assert absent not in observation


def test_search_params_are_listed_only_when_given() -> None:
    observation, patient = build()["rest"][0]["resource"]
    assert patient["searchParam"] == [
        {"name": "_id", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id", "type": "token"},
        {
            "name": "identifier",
            "definition": "http://hl7.org/fhir/SearchParameter/Patient-identifier",
            "type": "token",
        },
        {"name": "name", "definition": "http://hl7.org/fhir/SearchParameter/Patient-name", "type": "string"},
    ]
    assert observation["searchParam"][0]["type"] == "composite"
    for resource in build(search_params=None)["rest"][0]["resource"]:
        assert "searchParam" not in resource
    only_patient = build(search_params={"Patient": []})["rest"][0]["resource"]
    assert all("searchParam" not in r for r in only_patient)


def test_default_features_claim_nothing() -> None:
    statement = build(features=CapabilityFeatures(), system_interactions=(), patch_formats=())
    CapabilityStatement.model_validate(statement)
    patient = statement["rest"][0]["resource"][1]
    assert patient["versioning"] == "no-version"
    assert patient["readHistory"] is False
    assert patient["updateCreate"] is False
    assert patient["conditionalCreate"] is False
    assert patient["conditionalDelete"] == "not-supported"
    assert "referencePolicy" not in patient
    assert "interaction" not in statement["rest"][0]
    assert "patchFormat" not in statement


def test_a_type_without_interactions_is_left_out() -> None:
    statement = build(interactions={"Patient": ("read",), "Observation": ()})
    assert [r["type"] for r in statement["rest"][0]["resource"]] == ["Patient"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"interactions": {"Patient": ("read", "teleport")}},
        {"system_interactions": ("read",)},
        {"formats": ()},
    ],
)
def test_unknown_codes_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"unknown|format"):
        build(**overrides)


@pytest.mark.parametrize(
    "features",
    [
        {"versioning": "sometimes"},
        {"conditional_delete": "all"},
        {"conditional_read": "maybe"},
        {"reference_policy": ("psychic",)},
    ],
)
def test_unknown_feature_values_are_refused(features: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="unknown"):
        CapabilityFeatures(**features)


def test_full_statement_for_every_type_validates() -> None:
    types = sorted(search_parameters())
    statement = build(
        interactions=dict.fromkeys(types, INSTANCE + TYPE),
        search_params={t: list(search_parameters()[t].values()) for t in types},
    )
    CapabilityStatement.model_validate(statement)
    assert len(statement["rest"][0]["resource"]) == 146
