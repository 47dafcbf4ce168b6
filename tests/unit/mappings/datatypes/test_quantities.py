"""Numbers, units (UCUM), structured numerics and reference ranges."""

from __future__ import annotations

from typing import Any

import pytest

from mappings.datatypes.quantities import UCUM, number, reference_range, structured_numeric, unit
from mappings.message import Field, parse


def _field(text: str) -> Field:
    return parse(f"MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5\rOBX|1|NM|X||{text}").segments("OBX")[0].field(5)


@pytest.mark.parametrize(("text", "value"), [("5", 5), ("-5", -5), ("5.10", 5.1), (".5", 0.5), ("+7", 7)])
def test_number(text: str, value: float) -> None:
    assert number(text) == value


@pytest.mark.parametrize("text", ["", "5,1", "1e3", "abc", "5.1.2", "-"])
def test_not_a_number(text: str) -> None:
    assert number(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mg/dL^mg/dL^UCUM", {"unit": "mg/dL", "system": UCUM, "code": "mg/dL"}),
        ("mmHg", {"unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}),
        ("266016^MDC_DIM_MMHG^MDC", {"unit": "MDC_DIM_MMHG", "system": UCUM, "code": "mm[Hg]"}),
        ("bananas", {"unit": "bananas"}),
        ("X1^Local unit^99LAB", {"unit": "Local unit", "system": "urn:id:99LAB", "code": "X1"}),
        ("", {}),
    ],
)
def test_units(text: str, expected: dict[str, Any]) -> None:
    assert unit(_field(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<^5", ("valueQuantity", {"value": 5, "comparator": "<"})),
        (">=^5.5", ("valueQuantity", {"value": 5.5, "comparator": ">="})),
        ("^7", ("valueQuantity", {"value": 7})),
        ("^3^-^5", ("valueRange", {"low": {"value": 3}, "high": {"value": 5}})),
        ("^1^:^128", ("valueRatio", {"numerator": {"value": 1}, "denominator": {"value": 128}})),
    ],
)
def test_structured_numeric(text: str, expected: tuple[str, Any]) -> None:
    assert structured_numeric(_field(text), {}) == expected


@pytest.mark.parametrize("text", ["^2^+", "~^5", "^x"])
def test_structured_numeric_that_does_not_parse(text: str) -> None:
    assert structured_numeric(_field(text), {}) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.5-5.1", {"low": {"value": 3.5}, "high": {"value": 5.1}, "text": "3.5-5.1"}),
        ("<200", {"high": {"value": 200}, "text": "<200"}),
        (">= 40", {"low": {"value": 40}, "text": ">= 40"}),
        ("negative", {"text": "negative"}),
        ("", None),
    ],
)
def test_reference_range(text: str, expected: dict[str, Any] | None) -> None:
    assert reference_range(text, {}) == expected
