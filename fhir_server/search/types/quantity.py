"""Quantity parameters: ``[prefix]number``, ``[prefix]number|system|code``, ``[prefix]number||code``.

Index: a Quantity (and its profiles Age, Count, Distance, Duration, SimpleQuantity) is the
entry ``{"p", "lo": v, "hi": v, "s": system, "c": code, "u": unit}``. A comparator widens
the point to what the value may be: ``<``/``<=`` v -> [-LARGEST, v], ``>``/``>=`` v ->
[v, LARGEST]. Money is ``s`` = urn:iso:std:iso:4217, ``c`` = currency. A Range is
[low.value, high.value] (an absent side open) with the units of ``low`` (else ``high``).
Values are compared as in number.py (same prefixes, the same implicit precision of the
search number). No unit conversion: ``5|http://unitsofmeasure.org|g`` does not find 5000 mg.

``number|system|code`` needs ``s`` and ``c`` to match; ``number||code`` needs ``c`` or ``u``
(the code or the human unit) to match; ``number|system|`` only ``s``; ``number`` any unit.
``ne`` asks for a value in those units and none of them eq: ``ne5||mg`` finds 6 mg, not
5 mg, and not a resource that has only kilograms.
"""

from __future__ import annotations

from typing import Any

from fhir_server import outcomes
from fhir_server.search.escaping import split_unescaped
from fhir_server.search.index import IndexEntries
from fhir_server.search.types.number import (
    LARGEST,
    Condition,
    conditions,
    entry_criterion,
    merge,
    missing_criterion,
    node_bounds,
    parse_decimal,
    reject_modifier,
    split_prefix,
    value_of,
)

MODIFIERS = ("missing",)
CURRENCY_SYSTEM = "urn:iso:std:iso:4217"


# -- values ------------------------------------------------------------------------------


def _units(node: dict[str, Any]) -> dict[str, Any]:
    if "currency" in node:
        return {"s": CURRENCY_SYSTEM, "c": _text(node.get("currency"))}
    return {"s": _text(node.get("system")), "c": _text(node.get("code")), "u": _text(node.get("unit"))}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def node_entry(node: Any) -> dict[str, Any] | None:
    """``{"lo", "hi", "s", "c", "u"}`` (absent units left out) for a Quantity, Money or
    Range node; None for anything else."""
    if not isinstance(node, dict):
        return None
    if "low" in node or "high" in node:
        return _range_entry(node)
    value = value_of(node.get("value"))
    if value is None:
        return None
    lo = hi = value
    comparator = node.get("comparator")
    if comparator in ("<", "<="):
        lo = -LARGEST
    elif comparator in (">", ">="):
        hi = LARGEST
    return {"lo": lo, "hi": hi, **{k: v for k, v in _units(node).items() if v is not None}}


def _range_entry(node: dict[str, Any]) -> dict[str, Any] | None:
    bounds = node_bounds(node)
    if bounds is None:
        return None
    low = node.get("low")
    side = low if isinstance(low, dict) and value_of(low.get("value")) is not None else node.get("high")
    units = _units(side) if isinstance(side, dict) else {}
    return {"lo": bounds[0], "hi": bounds[1], **{k: v for k, v in units.items() if v is not None}}


# -- search ------------------------------------------------------------------------------


def _split_bars(value: str) -> list[str]:
    return split_unescaped(value, "|")


def _unit_condition(system: str, code: str, suffix: str) -> Condition:
    s, c, u = "s" + suffix, "c" + suffix, "u" + suffix
    if system and code:
        return {s: system, c: code}
    if system:
        return {s: system}
    if code:
        return {"$or": [{c: code}, {u: code}]}
    return {}


def _parse(value: str, name: str, suffix: str) -> tuple[str, Condition, Condition, Condition]:
    """(prefix, unit condition, eq condition, condition for the prefix)."""
    parts = _split_bars(value)
    if len(parts) not in (1, 3):
        raise outcomes.InvalidRequest(
            f"'{value}' is not a quantity: use [prefix]number, number|system|code or number||code",
            expression=name,
        )
    prefix, number = split_prefix(parts[0], name)
    eq, other = conditions(prefix, parse_decimal(number, name), suffix)
    units = _unit_condition(parts[1], parts[2], suffix) if len(parts) == 3 else {}
    return prefix, units, eq, other


def entry_condition(value: str, name: str, suffix: str = "") -> Condition:
    """The condition one entry must meet (``ne``: "has the units and is not eq")."""
    prefix, units, eq, other = _parse(value, name, suffix)
    return merge(units, {"$nor": [eq]} if prefix == "ne" else other)


# -- the type's interface ----------------------------------------------------------------


def index(code: str, nodes: list[Any], out: IndexEntries) -> None:
    for node in nodes:
        entry = node_entry(node)
        if entry is None:
            continue
        lo, hi = entry.pop("lo"), entry.pop("hi")
        out.add_range(code, lo, hi, **entry)
        out.sort_value(code, lo, hi)


def criterion(code: str, value: str, modifier: str | None) -> Condition:
    if modifier == "missing":
        return missing_criterion(code, value)
    reject_modifier("quantity", code, modifier)
    prefix, units, eq, other = _parse(value, code, "")
    return entry_criterion(code, prefix, eq, other, scope=units)
