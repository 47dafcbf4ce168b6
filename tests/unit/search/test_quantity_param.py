"""Quantity parameters: index Quantity, Money and Range values, and every prefix run by mongomock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conformance.registry import search_parameters
from fhir_server import outcomes
from fhir_server.search.fhirpath import compile_expression
from fhir_server.search.index import IndexEntries
from fhir_server.search.types import quantity
from tests.unit.search.indexed_documents import indexed_collection

CODE = "value-quantity"
UCUM = "http://unitsofmeasure.org"


def _entries(resource_type: str, code: str, resource: dict[str, Any]) -> IndexEntries:
    definition = search_parameters()[resource_type][code]
    assert definition.type == "quantity"
    assert definition.expression
    out = IndexEntries()
    quantity.index(code, compile_expression(definition.expression).evaluate(resource_type, resource), out)
    return out


def _mg(value: float, **extra: Any) -> dict[str, Any]:
    return {"value": value, "unit": "mg", "system": UCUM, "code": "mg", **extra}


# -- index -------------------------------------------------------------------------------


def test_observation_value_quantity_is_a_point_with_its_units() -> None:
    out = _entries("Observation", CODE, {"resourceType": "Observation", "valueQuantity": _mg(5.4)})
    assert out.ranges == [{"p": CODE, "lo": 5.4, "hi": 5.4, "s": UCUM, "c": "mg", "u": "mg"}]
    assert out.sort == {CODE: 5.4}
    assert any(r["p"] == CODE for r in out.ranges)


def test_a_comparator_opens_the_point() -> None:
    below = _entries(
        "Observation", CODE, {"resourceType": "Observation", "valueQuantity": _mg(3, comparator="<")}
    )
    assert below.ranges == [{"p": CODE, "lo": -quantity.LARGEST, "hi": 3.0, "s": UCUM, "c": "mg", "u": "mg"}]
    above = _entries(
        "Observation", CODE, {"resourceType": "Observation", "valueQuantity": _mg(3, comparator=">=")}
    )
    assert above.ranges[0]["lo"] == 3.0
    assert above.ranges[0]["hi"] == quantity.LARGEST


def test_money_is_indexed_with_the_currency_system() -> None:
    out = _entries(
        "ChargeItem",
        "price-override",
        {"resourceType": "ChargeItem", "priceOverride": {"value": 40, "currency": "EUR"}},
    )
    assert out.ranges == [
        {"p": "price-override", "lo": 40.0, "hi": 40.0, "s": quantity.CURRENCY_SYSTEM, "c": "EUR"}
    ]


def test_a_use_context_range_is_indexed_low_to_high() -> None:
    resource = {
        "resourceType": "Questionnaire",
        "useContext": [
            {
                "code": {"code": "age"},
                "valueRange": {
                    "low": {"value": 18, "unit": "a", "system": UCUM, "code": "a"},
                    "high": {"value": 65},
                },
            },
            {"code": {"code": "age"}, "valueRange": {"high": {"value": 12, "code": "a"}}},
        ],
    }
    out = _entries("Questionnaire", "context-quantity", resource)
    assert out.ranges == [
        {"p": "context-quantity", "lo": 18.0, "hi": 65.0, "s": UCUM, "c": "a", "u": "a"},
        {"p": "context-quantity", "lo": -quantity.LARGEST, "hi": 12.0, "c": "a"},
    ]


def test_duration_age_and_other_shapes() -> None:
    out = IndexEntries()
    quantity.index(
        "length",
        [
            {"value": 3, "unit": "days", "system": UCUM, "code": "d"},
            {"value": "2.50", "unit": "h"},
            {"unit": "d"},
            7,
            None,
        ],
        out,
    )
    assert out.ranges == [
        {"p": "length", "lo": 3.0, "hi": 3.0, "s": UCUM, "c": "d", "u": "days"},
        {"p": "length", "lo": 2.5, "hi": 2.5, "u": "h"},
    ]


# -- search ------------------------------------------------------------------------------

DOCUMENTS: dict[str, list[Any]] = {
    "mg": [_mg(5.4)],
    "mg_named": [{"value": 5.4, "unit": "milligram", "system": UCUM, "code": "mg"}],
    "kg": [{"value": 5.4, "unit": "kg", "system": UCUM, "code": "kg"}],
    "other_system": [{"value": 5.4, "system": "http://example.org/units", "code": "mg"}],
    "unit_only": [{"value": 5.4, "unit": "mg"}],
    "mg_6": [_mg(6)],
    "mg_5.45": [_mg(5.45)],
    "mg_5.41": [_mg(5.41)],
    "below_3": [_mg(3, comparator="<")],
    "range": [{"low": {"value": 1, "unit": "mg", "system": UCUM, "code": "mg"}, "high": {"value": 10}}],
    "usd": [{"value": 5.4, "currency": "USD"}],
    "none": [],
}
ALL = set(DOCUMENTS) - {"none"}
FIVE_4 = {"mg", "mg_named", "kg", "other_system", "unit_only", "usd"}


@pytest.fixture(scope="module")
def collection() -> Iterator[Any]:
    with indexed_collection(CODE, DOCUMENTS, quantity.index) as resources:
        yield resources


def _select(collection: Any, value: str) -> set[str]:
    return {d["_id"] for d in collection.find(quantity.criterion(CODE, value, None))}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # units
        (f"5.4|{UCUM}|mg", {"mg", "mg_named", "mg_5.41"}),
        ("5.4||mg", {"mg", "mg_named", "other_system", "unit_only", "mg_5.41"}),
        ("5.4||milligram", {"mg_named"}),
        (f"5.4|{UCUM}|", {"mg", "mg_named", "kg", "mg_5.41"}),
        ("5.4||", FIVE_4 | {"mg_5.41"}),
        ("5.4", FIVE_4 | {"mg_5.41"}),
        ("5.40", FIVE_4),
        ("5.4|urn:iso:std:iso:4217|USD", {"usd"}),
        ("5.4||USD", {"usd"}),
        # prefixes, with units
        (f"eq5.4|{UCUM}|mg", {"mg", "mg_named", "mg_5.41"}),
        (f"ne5.4|{UCUM}|mg", {"mg_6", "mg_5.45", "below_3", "range"}),
        (f"gt5.4|{UCUM}|mg", {"mg_6", "mg_5.45", "mg_5.41", "range"}),
        (f"lt5.4|{UCUM}|mg", {"below_3", "range"}),
        (f"ge5.4|{UCUM}|mg", {"mg", "mg_named", "mg_6", "mg_5.45", "mg_5.41", "range"}),
        (f"le5.4|{UCUM}|mg", {"mg", "mg_named", "below_3", "range"}),
        (f"sa5.4|{UCUM}|mg", {"mg_6", "mg_5.45", "mg_5.41"}),
        (f"eb5.4|{UCUM}|mg", {"below_3"}),
        (f"sa0.5|{UCUM}|mg", {"mg", "mg_named", "mg_6", "mg_5.45", "mg_5.41", "range"}),
        (f"ap5.4|{UCUM}|mg", {"mg", "mg_named", "mg_5.45", "mg_5.41", "range"}),
        (f"ap12|{UCUM}|mg", set()),
        (f"ap11|{UCUM}|mg", {"range"}),
        # prefixes, any unit
        ("ne5.4", {"mg_6", "mg_5.45", "below_3", "range"}),
        ("gt5.4", {"mg_6", "mg_5.45", "mg_5.41", "range"}),
        ("lt3", {"below_3", "range"}),
        ("ge10", {"range"}),
        ("le1", {"below_3", "range"}),
    ],
)
def test_prefixes_and_units_select_exactly(collection: Any, value: str, expected: set[str]) -> None:
    assert _select(collection, value) == expected


def test_ne_is_within_the_units(collection: Any) -> None:
    # kg has only a 5.4 kg value: not a "mg value other than 5.4"
    assert "kg" not in _select(collection, f"ne5.4|{UCUM}|mg")
    assert _select(collection, f"ne5.4|{UCUM}|kg") == set()
    assert _select(collection, f"ne6|{UCUM}|kg") == {"kg"}


def test_missing(collection: Any) -> None:
    assert {d["_id"] for d in collection.find(quantity.criterion(CODE, "true", "missing"))} == {"none"}
    assert {d["_id"] for d in collection.find(quantity.criterion(CODE, "false", "missing"))} == ALL


def test_a_criterion_is_one_elem_match() -> None:
    assert quantity.criterion(CODE, f"gt5|{UCUM}|mg", None) == {
        "ir": {"$elemMatch": {"p": CODE, "hi": {"$gt": 5.0}, "s": UCUM, "c": "mg"}}
    }
    assert quantity.criterion(CODE, "5||mg", None) == {
        "ir": {
            "$elemMatch": {
                "p": CODE,
                "lo": {"$gte": 4.5},
                "hi": {"$lt": 5.5},
                "$or": [{"c": "mg"}, {"u": "mg"}],
            }
        }
    }


def test_escaped_bars_belong_to_the_code(collection: Any) -> None:
    criterion = quantity.criterion(CODE, r"5||a\|b", None)
    assert criterion["ir"]["$elemMatch"]["$or"] == [{"c": "a|b"}, {"u": "a|b"}]


@pytest.mark.parametrize("value", ["mg", "5.4|mg", "5.4|a|b|c", "xx5.4", "|http://x|mg", "five||mg", ""])
def test_bad_values_are_invalid_requests(value: str) -> None:
    with pytest.raises(outcomes.InvalidRequest) as raised:
        quantity.criterion(CODE, value, None)
    assert raised.value.issues[0].expression == (CODE,)


@pytest.mark.parametrize(("modifier", "value"), [("exact", "5"), ("missing", "1")])
def test_bad_modifiers_are_invalid_requests(modifier: str, value: str) -> None:
    with pytest.raises(outcomes.InvalidRequest):
        quantity.criterion(CODE, value, modifier)
