"""NM, SN, CQ and units -> Quantity, Range, Ratio; unit strings -> UCUM where known."""

from __future__ import annotations

import re
from typing import Any

from mappings.codemaps import load
from mappings.datatypes.codes import coding_system
from mappings.message import Field

UCUM = "http://unitsofmeasure.org"
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")


def number(text: str) -> int | float | None:
    """An HL7 NM as a JSON number (``int`` when it has no decimal point); ``None`` if not a number."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    if "." in text:
        return float(text)
    return int(text)


def unit(field: Field) -> dict[str, Any]:
    """A CWE/CE unit (OBX-6) -> Quantity's ``unit``/``system``/``code`` (UCUM when recognised)."""
    code, text, system_name = field.component(1), field.component(2), field.component(3)
    if not code and not text:
        return {}
    shown = text or code
    system = coding_system(system_name)
    if system == UCUM:
        return {"unit": shown, "system": UCUM, "code": code}
    ucum = load("ucum").get(code) or load("ucum").get(text)
    if ucum:
        return {"unit": shown, "system": UCUM, "code": ucum}
    out: dict[str, Any] = {"unit": shown}
    if system and code:
        out |= {"system": system, "code": code}
    return out


def quantity(value: int | float, units: dict[str, Any], comparator: str = "") -> dict[str, Any]:
    """A Quantity with ``value`` and the units from :func:`unit`."""
    q: dict[str, Any] = {"value": value}
    if comparator:
        q["comparator"] = comparator
    return q | units


_COMPARATORS = {"": "", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "<>": "", "=": ""}


def structured_numeric(field: Field, units: dict[str, Any]) -> tuple[str, Any] | None:
    """SN -> (``valueQuantity``|``valueRange``|``valueRatio``, value); ``None`` if it does not parse.

    SN is comparator ^ number ^ separator ^ number: ``<^5``, ``^3^-^5`` (a range),
    ``^1^:^128`` (a ratio), ``^2^+`` (categorical, not mapped here).
    """
    comparator, first, sep, second = (field.component(i) for i in range(1, 5))
    n1, n2 = number(first), number(second)
    if n1 is None:
        return None
    if sep in ("-", "") and n2 is not None and sep == "-":
        return "valueRange", {"low": quantity(n1, units), "high": quantity(n2, units)}
    if sep in (":", "/") and n2 is not None:
        return "valueRatio", {"numerator": {"value": n1}, "denominator": {"value": n2}}
    if sep or second:
        return None
    if comparator not in _COMPARATORS:
        return None
    return "valueQuantity", quantity(n1, units, _COMPARATORS[comparator])


_RANGE = re.compile(r"\s*(?P<low>[+-]?[\d.]+)?\s*(?:-|\u2013|to)\s*(?P<high>[+-]?[\d.]+)?\s*")
_BOUND = re.compile(r"\s*(?P<op>[<>]=?)\s*(?P<n>[+-]?[\d.]+)\s*")


def reference_range(text: str, units: dict[str, Any]) -> dict[str, Any] | None:
    """OBX-7 -> ``referenceRange`` item: ``3.5-5.1``, ``<200``, ``>=40``; anything else as text."""
    text = text.strip()
    if not text:
        return None
    m = _RANGE.fullmatch(text)
    if m and (m["low"] or m["high"]):
        low, high = number(m["low"] or ""), number(m["high"] or "")
        if (m["low"] is None or low is not None) and (m["high"] is None or high is not None):
            out: dict[str, Any] = {}
            if low is not None:
                out["low"] = quantity(low, units)
            if high is not None:
                out["high"] = quantity(high, units)
            return out | {"text": text}
    b = _BOUND.fullmatch(text)
    if b and number(b["n"]) is not None:
        n = number(b["n"])
        assert n is not None
        return {("high" if b["op"].startswith("<") else "low"): quantity(n, units), "text": text}
    return {"text": text}
