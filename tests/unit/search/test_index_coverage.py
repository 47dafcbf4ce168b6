"""Every condition the compiler emits starts on a field a declared MongoDB index leads with."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.repository.mongo import SEARCH_INDEXES
from fhir_server.search.compiler import compile_search
from fhir_server.search.request import parse_query_string

LEADING = {keys[0][0] for keys in SEARCH_INDEXES.values()} | {"_id"}

QUERIES = [
    ("Patient", "identifier=http://x|1"),
    ("Patient", "name=ann&gender=male,female"),
    ("Patient", "family:exact=X&given:contains=y"),
    ("Patient", "birthdate=ge1980&birthdate=lt1990"),
    ("Patient", "birthdate:missing=true&gender:missing=false"),
    ("Patient", "gender:not=male"),
    ("Patient", "_id=a,b"),
    ("Patient", "organization=Organization/1"),
    ("Observation", "code=http://loinc.org|1&value-quantity=gt5|http://unitsofmeasure.org|mg"),
    ("Observation", "date=ap2020-01&subject:Patient=1"),
    ("Observation", "code:text=hem&combo-code-value-quantity=http://loinc.org|1$lt3"),
    ("Observation", "component-code-value-quantity=http://loinc.org|8480-6$gt130"),
    ("ValueSet", "url:below=http://x&url:above=http://x/y"),
    ("RiskAssessment", "probability=gt0.5"),
]


def leading_fields(condition: dict[str, Any]) -> list[str]:
    fields: list[str] = []
    for key, value in condition.items():
        if key in ("$and", "$or", "$nor"):
            for clause in value:
                fields += leading_fields(clause)
        else:
            fields.append(key.split(".")[0] if key.startswith("ir.") is False else "ir.p")
    return fields


@pytest.mark.parametrize(("resource_type", "query"), QUERIES)
def test_compiled_conditions_lead_with_indexed_fields(resource_type: str, query: str) -> None:
    compiled = compile_search(parse_query_string(resource_type, query, strict=True))
    fields = leading_fields(compiled.filter)
    assert fields
    for field in fields:
        assert field in LEADING or field == "ir", (query, field, compiled.filter)
        if field == "ir":
            # range conditions are $elemMatch on ir with the parameter first: (ir.p, ir.lo|hi)
            assert "ir.p" in LEADING


def test_range_conditions_name_their_parameter() -> None:
    compiled = compile_search(parse_query_string("Patient", "birthdate=1980", strict=True))
    assert compiled.filter["ir"]["$elemMatch"]["p"] == "birthdate"
