"""Number parameters: index points of real-shaped resources, and every prefix run by mongomock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conformance.registry import search_parameters
from fhir_server import outcomes
from fhir_server.search.fhirpath import compile_expression
from fhir_server.search.index import IndexEntries
from fhir_server.search.types import number
from tests.unit.search.indexed_documents import indexed_collection

CODE = "probability"


def _risk_assessment(*predictions: dict[str, Any]) -> IndexEntries:
    resource = {"resourceType": "RiskAssessment", "prediction": list(predictions)}
    definition = search_parameters()["RiskAssessment"][CODE]
    assert definition.type == "number"
    assert definition.expression
    out = IndexEntries()
    number.index(CODE, compile_expression(definition.expression).evaluate("RiskAssessment", resource), out)
    return out


# -- index -------------------------------------------------------------------------------


def test_risk_assessment_probabilities_are_points() -> None:
    out = _risk_assessment({"probabilityDecimal": 0.02}, {"probabilityDecimal": 1})
    assert out.ranges == [{"p": CODE, "lo": 0.02, "hi": 0.02}, {"p": CODE, "lo": 1.0, "hi": 1.0}]
    assert all(isinstance(r["lo"], float) for r in out.ranges)
    assert out.sort == {CODE: [0.02, 1.0]}
    assert any(r["p"] == CODE for r in out.ranges)


def test_a_probability_range_is_indexed_low_to_high() -> None:
    out = _risk_assessment({"probabilityRange": {"low": {"value": 0.1}, "high": {"value": 0.3}}})
    assert out.ranges == [{"p": CODE, "lo": 0.1, "hi": 0.3}]
    open_high = _risk_assessment({"probabilityRange": {"low": {"value": 0.1}}})
    assert open_high.ranges == [{"p": CODE, "lo": 0.1, "hi": number.LARGEST}]


def test_decimal_strings_are_numbers_and_other_values_are_ignored() -> None:
    out = IndexEntries()
    number.index(CODE, ["12.50", True, "abc", None, {"value": 3}, "1e999", 10**400, float("nan")], out)
    assert out.ranges == [{"p": CODE, "lo": 12.5, "hi": 12.5}]


# -- search ------------------------------------------------------------------------------

DOCUMENTS: dict[str, list[Any]] = {
    "100": [100],
    "100.4": ["100.4"],
    "99.5": [99.5],
    "100.5": [100.5],
    "99.49": [99.49],
    "100.004": [100.004],
    "150": [150],
    "-5": [-5],
    "0": [0],
    "range": [{"low": {"value": 90}, "high": {"value": 110}}],
    "multi": [1, 100],
    "none": [],
}


@pytest.fixture(scope="module")
def collection() -> Iterator[Any]:
    with indexed_collection(CODE, DOCUMENTS, number.index) as resources:
        yield resources


def _select(collection: Any, value: str) -> set[str]:
    return {d["_id"] for d in collection.find(number.criterion(CODE, value, None))}


ALL = set(DOCUMENTS) - {"none"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # eq: the value within the precision of the search number
        ("100", {"100", "100.4", "99.5", "100.004", "multi"}),
        ("eq100", {"100", "100.4", "99.5", "100.004", "multi"}),
        ("1e2", {"100", "100.4", "99.5", "100.004", "multi"}),
        ("100.00", {"100", "100.004", "multi"}),
        ("100.000", {"100", "multi"}),
        ("-5", {"-5"}),
        ("0", {"0"}),
        ("0.0", {"0"}),
        # ne: has a value, and none of them is eq
        ("ne100", ALL - {"100", "100.4", "99.5", "100.004", "multi"}),
        ("ne100.00", ALL - {"100", "100.004", "multi"}),
        # comparisons with the number itself (a Range: some of it / all of it)
        ("gt100", {"100.4", "100.5", "100.004", "150", "range"}),
        ("lt100", {"99.5", "99.49", "-5", "0", "range", "multi"}),
        ("ge100", {"100", "100.4", "100.5", "100.004", "150", "range", "multi"}),
        ("le100", {"100", "99.5", "99.49", "-5", "0", "range", "multi"}),
        ("sa100", {"100.4", "100.5", "100.004", "150"}),
        ("eb100", {"99.5", "99.49", "-5", "0", "multi"}),
        ("sa89", {"99.5", "99.49", "100", "100.4", "100.5", "100.004", "150", "range", "multi"}),
        ("eb111", {"99.5", "99.49", "100", "100.4", "100.5", "100.004", "-5", "0", "range", "multi"}),
        ("gt-5", ALL - {"-5"}),
        ("lt0", {"-5"}),
        # ap: within 10 % of the value (at least its precision)
        ("ap100", {"100", "100.4", "99.5", "100.5", "99.49", "100.004", "range", "multi"}),
        ("ap140", {"150"}),
        ("ap0", {"0"}),
        ("ap-4.6", {"-5"}),
        ("ap1e3", set()),
    ],
)
def test_prefixes_select_exactly(collection: Any, value: str, expected: set[str]) -> None:
    assert _select(collection, value) == expected


def test_missing(collection: Any) -> None:
    assert {d["_id"] for d in collection.find(number.criterion(CODE, "true", "missing"))} == {"none"}
    assert {d["_id"] for d in collection.find(number.criterion(CODE, "false", "missing"))} == ALL


def test_precision_ranges() -> None:
    from decimal import Decimal

    assert number.precision_range(Decimal("100")) == (Decimal("99.5"), Decimal("100.5"))
    assert number.precision_range(Decimal("100.00")) == (Decimal("99.995"), Decimal("100.005"))
    assert number.precision_range(Decimal("2.0")) == (Decimal("1.95"), Decimal("2.05"))
    assert number.precision_range(Decimal("1e2")) == (Decimal("99.5"), Decimal("100.5"))
    assert number.precision_range(Decimal("1.5e-2")) == (Decimal("0.0145"), Decimal("0.0155"))


def test_a_criterion_is_one_elem_match_on_floats() -> None:
    criterion = number.criterion(CODE, "100", None)
    assert criterion == {"ir": {"$elemMatch": {"p": CODE, "lo": {"$gte": 99.5}, "hi": {"$lt": 100.5}}}}
    assert number.criterion(CODE, "gt5", None) == {"ir": {"$elemMatch": {"p": CODE, "hi": {"$gt": 5.0}}}}
    # ap: 10 % of the value, but never less than the value's own precision
    assert number.criterion(CODE, "ap0", None) == {
        "ir": {"$elemMatch": {"p": CODE, "lo": {"$lte": 0.5}, "hi": {"$gte": -0.5}}}
    }


@pytest.mark.parametrize("value", ["abc", "xx5", "1,5", "1e", "NaN", "Infinity", "1_000", "", "gt", "1e999"])
def test_bad_values_are_invalid_requests(value: str) -> None:
    with pytest.raises(outcomes.InvalidRequest) as raised:
        number.criterion(CODE, value, None)
    assert raised.value.issues[0].expression == (CODE,)


@pytest.mark.parametrize(("modifier", "value"), [("exact", "5"), ("missing", "yes")])
def test_bad_modifiers_are_invalid_requests(modifier: str, value: str) -> None:
    with pytest.raises(outcomes.InvalidRequest):
        number.criterion(CODE, value, modifier)
