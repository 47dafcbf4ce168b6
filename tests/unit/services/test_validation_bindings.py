"""The generated required-bindings data: complete, consistent with the R4 schema, R4 only."""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
import pytest

from fhir_server.services import validation_json


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    raw = resources.files("conformance").joinpath("definitions/required-bindings.json").read_bytes()
    assert len(raw) < 100_000  # only required bindings of code elements
    loaded: dict[str, Any] = orjson.loads(raw)
    return loaded


def codes_of(data: dict[str, Any], path: str) -> set[str]:
    return set(data["valueSets"][data["bindings"][path]])


def test_well_known_bindings(data: dict[str, Any]) -> None:
    assert codes_of(data, "Patient.gender") == {"male", "female", "other", "unknown"}
    assert codes_of(data, "HumanName.use") == {
        "usual", "official", "temp", "nickname", "anonymous", "old", "maiden",
    }  # fmt: skip
    assert codes_of(data, "ContactPoint.system") == {"phone", "fax", "email", "pager", "url", "sms", "other"}
    assert codes_of(data, "Identifier.use") == {"usual", "official", "temp", "secondary", "old"}
    assert codes_of(data, "Address.use") == {"home", "work", "temp", "old", "billing"}
    assert "final" in codes_of(data, "Observation.status")
    assert "in-progress" in codes_of(data, "Encounter.status")
    assert "transaction-response" in codes_of(data, "Bundle.type")
    assert len(codes_of(data, "Subscription.channel.type")) == 5


def test_only_r4_content(data: dict[str, Any]) -> None:
    assert all(url.startswith("http://hl7.org/fhir/ValueSet/") for url in data["valueSets"])
    # R4 binds DetectedIssue.status to ObservationStatus (Medplum rebound it to an R5 value set)
    assert data["bindings"]["DetectedIssue.status"] == "http://hl7.org/fhir/ValueSet/observation-status"
    # an R5 element Medplum grafted onto EvidenceVariable
    assert not any("definitionByCombination" in path for path in data["bindings"])
    # Medplum's own resource types are not R4 resource types
    assert "Project" not in codes_of(data, "CapabilityStatement.rest.resource.type")
    assert "Patient" in codes_of(data, "CapabilityStatement.rest.resource.type")
    # abstract codes cannot be used in data
    assert "question" not in codes_of(data, "Questionnaire.item.type")


def test_value_sets_that_cannot_be_expanded_exactly_are_left_out(data: dict[str, Any]) -> None:
    for path in ("Attachment.contentType", "Money.currency", "Composition.confidentiality"):
        assert path not in data["bindings"]


def test_every_binding_resolves_to_one_schema_element(data: dict[str, Any]) -> None:
    definitions = validation_json.schema_definitions()
    located: dict[tuple[str, str], str] = {}
    for path, url in data["bindings"].items():
        where = validation_json._locate(definitions, path)
        assert where is not None, path
        assert located.setdefault(where, url) == url, f"{path} and another path disagree on {where}"
    assert len(validation_json.required_bindings()) == len(located)
    # elements reused through contentReference share their definition's binding
    assert validation_json._locate(definitions, "Questionnaire.item.type") == ("Questionnaire_Item", "type")
    assert ("CapabilityStatement_SearchParam", "type") in located


def test_bindings_agree_with_the_enums_of_the_r4_schema(data: dict[str, Any]) -> None:
    """The HL7 R4 JSON schema enumerates the codes of many required bindings: same codes."""
    bindings = validation_json.required_bindings()
    unbound = set()
    for name, definition in validation_json.schema_definitions().items():
        for prop, schema in definition.get("properties", {}).items():
            enum = schema.get("enum") or schema.get("items", {}).get("enum")
            if enum is None:
                continue
            if (name, prop) not in bindings:
                unbound.add(f"{name}.{prop}")
                continue
            assert set(enum) == bindings[name, prop][1], f"{name}.{prop}"
    # the schema enumerates Expression.language although R4 binds it extensibly
    assert unbound == {"Expression.language"}
