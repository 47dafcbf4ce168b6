"""Number parameters, and the prefix and range helpers every range type shares.

Index: each number is a point entry ``{"p": code, "lo": v, "hi": v}`` (floats); a Range
of numbers (RiskAssessment ``probabilityRange``) is [low.value, high.value], an absent side
open (+-:data:`LARGEST`).

Search: ``[prefix]number``. The search value carries an implicit precision range, half a
unit of its last decimal place either side (http://hl7.org/fhir/R4/search.html#number):
``100`` -> [99.5, 100.5), ``100.00`` -> [99.995, 100.005), ``2.0`` -> [1.95, 2.05). An
exponent never widens the range beyond whole units: ``1e2`` is read as ``100`` ->
[99.5, 100.5) (as HAPI does; the spec's table gives [95, 105) for ``1e2``, which no
precision rule yields, and calls it "1 significant figure", which would be [50, 150)).

A target is the closed range [lo, hi] (a point for numbers; a Range or a comparator for
quantities, see quantity.py). With ``x`` the search value and [slo, shi) its precision:

====  ======================================  ================================
eq    slo <= lo and hi < shi                  the target lies within the precision
ne    no target value is eq (see below)
gt    hi > x                                  some of the target is above x
lt    lo < x
ge    hi >= x
le    lo <= x
sa    lo > x                                  all of the target is above x (= gt for points)
eb    hi < x                                  (= lt for points)
ap    lo <= x + d and hi >= x - d             d = max(10 % of |x|, half the precision)
====  ======================================  ================================

``ne`` (here and for dates and quantities): the resource has a value for the parameter
and none of its values is ``eq``; a resource without a value is not "not equal" (find
those with ``:missing=true``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir_server import outcomes
from fhir_server.search.index import IndexEntries

MODIFIERS = ("missing",)
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")

# The largest finite double: the bound of an open Range or a "<" / ">" comparator.
# (Infinities are avoided: not every store we run on accepts them.)
LARGEST = 1.7976931348623157e308

_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")

Condition = dict[str, Any]


# -- shared by the range types (date, number, quantity, composite) ------------------------


def split_prefix(value: str, name: str) -> tuple[str, str]:
    """``ge2020`` -> ("ge", "2020"); no prefix -> ("eq", value); ``xx5`` -> 400."""
    head = value[:2]
    if len(value) > 2 and head.isalpha() and head.isascii():
        if head.lower() not in PREFIXES:
            raise outcomes.InvalidRequest(
                f"Unknown search prefix '{head}' in '{value}'; use one of {', '.join(PREFIXES)}",
                expression=name,
            )
        return head.lower(), value[2:]
    return "eq", value


def missing_criterion(code: str, value: str) -> Condition:
    """``:missing=true`` -> no range entry for ``code``; ``false`` -> at least one."""
    flag = value.strip().lower()
    if flag not in ("true", "false"):
        raise outcomes.InvalidRequest(
            f"The :missing modifier takes true or false, not '{value}'", expression=code
        )
    has = has_value(code)
    return {"$nor": [has]} if flag == "true" else has


def has_value(code: str) -> Condition:
    return {"ir": {"$elemMatch": {"p": code}}}


def entry_criterion(
    code: str, prefix: str, eq: Condition, other: Condition, scope: Condition | None = None
) -> Condition:
    """The one ``$elemMatch`` for ``prefix``; for ``ne``, "has a value, and none is eq".

    ``eq`` is the entry condition of ``eq``, ``other`` the one of ``prefix``; ``scope``
    (e.g. a quantity's units) narrows which entries count, for ``ne`` too.
    """
    base = merge({"p": code}, scope or {})
    if prefix == "ne":
        return {
            "$and": [
                {"ir": {"$elemMatch": base}},
                {"$nor": [{"ir": {"$elemMatch": merge(base, eq)}}]},
            ]
        }
    return {"ir": {"$elemMatch": merge(base, other)}}


def merge(*parts: Condition) -> Condition:
    """AND several entry conditions into one document; clashing keys go under ``$and``."""
    merged: Condition = {}
    extra: list[Condition] = []
    for part in parts:
        if any(k in merged for k in part) or "$and" in part:
            extra.append(part)
        else:
            merged.update(part)
    if extra:
        merged["$and"] = extra
    return merged


def reject_modifier(kind: str, code: str, modifier: str | None) -> None:
    if modifier is not None:
        raise outcomes.InvalidRequest(
            f"The modifier ':{modifier}' is not supported on {kind} parameter '{code}'", expression=code
        )


# -- numbers -----------------------------------------------------------------------------


def parse_decimal(text: str, name: str) -> Decimal:
    """A search number (FHIR decimal, exponent allowed) -> Decimal, or 400."""
    cleaned = text.strip()
    if not _NUMBER.match(cleaned):
        raise outcomes.InvalidRequest(f"'{text}' is not a valid number", expression=name)
    try:
        number = Decimal(cleaned)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
        raise outcomes.InvalidRequest(f"'{text}' is not a valid number", expression=name) from exc
    if abs(number) > Decimal(LARGEST):
        raise outcomes.InvalidRequest(f"'{text}' is out of range", expression=name)
    return number


def precision_range(number: Decimal) -> tuple[Decimal, Decimal]:
    """Half a unit of the last decimal place either side; at most half a unit."""
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(min(exponent, 0) - 1)
    return number - half, number + half


def value_of(node: Any) -> float | None:
    """A JSON number or a decimal string -> float; anything else (bools too) -> None."""
    if isinstance(node, bool):
        return None
    try:
        if isinstance(node, int | float):
            value = float(node)
        elif isinstance(node, str) and _NUMBER.match(node.strip()):
            value = float(Decimal(node.strip()))
        else:
            return None
    except OverflowError:
        return None
    return value if abs(value) <= LARGEST else None


def node_bounds(node: Any) -> tuple[float, float] | None:
    """[lo, hi] of a number (a point) or of a Range of numbers (an absent side open)."""
    value = value_of(node)
    if value is not None:
        return value, value
    if not isinstance(node, dict) or not ("low" in node or "high" in node):
        return None
    low, high = node.get("low"), node.get("high")
    lo = value_of(low.get("value")) if isinstance(low, dict) else None
    hi = value_of(high.get("value")) if isinstance(high, dict) else None
    if lo is None and hi is None:
        return None
    return (-LARGEST if lo is None else lo), (LARGEST if hi is None else hi)


def conditions(prefix: str, number: Decimal, suffix: str = "") -> tuple[Condition, Condition]:
    """(eq condition, condition for ``prefix``) on the fields ``lo{suffix}``/``hi{suffix}``."""
    lo, hi = "lo" + suffix, "hi" + suffix
    slo, shi = precision_range(number)
    x = float(number)
    eq: Condition = {lo: {"$gte": float(slo)}, hi: {"$lt": float(shi)}}
    if prefix in ("eq", "ne"):
        return eq, eq
    if prefix == "ap":
        d = max(abs(number) / 10, number - slo)
        return eq, {lo: {"$lte": float(number + d)}, hi: {"$gte": float(number - d)}}
    operator, field = {
        "gt": ("$gt", hi),
        "lt": ("$lt", lo),
        "ge": ("$gte", hi),
        "le": ("$lte", lo),
        "sa": ("$gt", lo),
        "eb": ("$lt", hi),
    }[prefix]
    return eq, {field: {operator: x}}


def entry_condition(value: str, name: str, suffix: str = "") -> Condition:
    """The condition one entry must meet for ``[prefix]number`` (``ne``: "is not eq")."""
    prefix, rest = split_prefix(value, name)
    eq, other = conditions(prefix, parse_decimal(rest, name), suffix)
    return {"$nor": [eq]} if prefix == "ne" else other


# -- the type's interface ----------------------------------------------------------------


def index(code: str, nodes: list[Any], out: IndexEntries) -> None:
    for node in nodes:
        bounds = node_bounds(node)
        if bounds is None:
            continue
        out.add_range(code, *bounds)
        out.sort_value(code, *bounds)


def criterion(code: str, value: str, modifier: str | None) -> Condition:
    if modifier == "missing":
        return missing_criterion(code, value)
    reject_modifier("number", code, modifier)
    prefix, rest = split_prefix(value, code)
    eq, other = conditions(prefix, parse_decimal(rest, code))
    return entry_criterion(code, prefix, eq, other)
