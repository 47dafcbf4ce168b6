"""A plain-Python reference for a few FHIR R4 search parameters, written from the spec.

Source: http://hl7.org/fhir/R4/search.html. Used by tests/integration/test_search_properties.py
to check the server's answers, so it deliberately shares no code with ``fhir_server.search``:
simple loops over in-memory resources, ``Decimal`` for numbers, exact datetimes for dates.

Supported (``[base]/Type?name[:modifier]=v1,v2&name=...``; comma = OR, repetition = AND;
values hold no escaped commas):

- Patient ``family`` (string: Patient.name.family; ``:exact``, ``:contains``),
  ``gender`` (token: Patient.gender, a code whose system is implicit),
  ``identifier`` (token: Patient.identifier), ``birthdate`` (date: Patient.birthDate),
  ``general-practitioner`` (reference: Patient.generalPractitioner; ``:Type``);
- Observation ``code`` (token: Observation.code.coding),
  ``value-quantity`` (quantity: Observation.valueQuantity),
  ``date`` (date: Observation.effectiveDateTime / effectivePeriod),
  ``subject`` (reference: Observation.subject; ``:Type``);
- ``:missing`` on all of them, ``:not`` on the tokens.

Where the spec leaves a choice, the choice made here (so a disagreement can be judged):

* dates and dateTimes without a time zone are taken as UTC (the server's zone);
* a resource without a value for a parameter matches no value criterion, not even ``ne``;
  ``:missing=true`` finds it, and so does ``:not`` (search.html#token: "return all resources
  that do not have a matching item ... including patients that do not have a gender at all");
* tokens and references compare case-sensitively; quantities are not converted between units;
* ``ap`` on numbers: within 10 % of the search value (the spec's recommended approximation)
  and never narrower than its precision: ``|value - x| <= max(|x| / 10, half a unit of the
  last digit)``, bounds included. ``ap`` on dates (relative to "now") is not modelled.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

Resource = dict[str, Any]

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
GENDER_SYSTEM = "http://hl7.org/fhir/administrative-gender"


class UnsupportedQuery(ValueError):
    """A query outside what this reference models (a test bug, not a server bug)."""


# -- strings (search.html#string) ----------------------------------------------------------


def fold(text: str) -> str:
    """Case- and accent-insensitive form: decompose, drop combining marks, case-fold."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def string_matches(values: list[str], query: str, modifier: str | None) -> bool:
    """Default: the value equals or starts with the query, both folded. ``:exact``: the whole
    string, case and accents included. ``:contains``: the query anywhere, folded."""
    if modifier == "exact":
        return query in values
    if modifier == "contains":
        return any(fold(query) in fold(v) for v in values)
    return any(fold(v).startswith(fold(query)) for v in values)


# -- tokens (search.html#token) -------------------------------------------------------------

Token = tuple[str | None, str]  # (system, code); system None when the element has none


def token_matches(values: list[Token], query: str) -> bool:
    """``code``: any system; ``system|code``: both; ``|code``: no system; ``system|``: any code."""
    if "|" not in query:
        return any(code == query for _, code in values)
    system, _, code = query.partition("|")
    if system == "":
        return any(s is None and c == code for s, c in values)
    if code == "":
        return any(s == system for s, _ in values)
    return any(s == system and c == code for s, c in values)


# -- dates (search.html#date, #prefix) ----------------------------------------------------

# The implicit range of a value is half-open: [start, start + one unit of its precision).
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)  # an absent Period.start
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)  # an absent Period.end
Range = tuple[datetime, datetime]

_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,6}))?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def date_range(text: str) -> Range:
    """``2020`` -> the whole year, ``2020-03`` the month, ``2020-03-15`` the day, a time the
    second (or fraction, or minute) it names; UTC unless the value carries a zone."""
    match = _DATE.fullmatch(text)
    if not match:
        raise UnsupportedQuery(f"not a date: {text!r}")
    g = match.groupdict()
    year = int(g["y"])
    if g["m"] is None:
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    month = int(g["m"])
    if g["d"] is None:
        start = datetime(year, month, 1, tzinfo=UTC)
        following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        return start, following
    day = int(g["d"])
    if g["H"] is None:
        start = datetime(year, month, day, tzinfo=UTC)
        return start, start + timedelta(days=1)
    zone: timezone = UTC
    if g["tz"] and g["tz"] != "Z":
        sign = -1 if g["tz"][0] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(g["tz"][1:3]), minutes=int(g["tz"][4:6])))
    fraction = g["f"] or ""
    start = datetime(
        year,
        month,
        day,
        int(g["H"]),
        int(g["M"]),
        int(g["S"] or 0),
        int(fraction.ljust(6, "0")) if fraction else 0,
        tzinfo=zone,
    )
    if g["S"] is None:
        unit = timedelta(minutes=1)
    elif fraction:
        unit = timedelta(microseconds=10 ** (6 - len(fraction)))
    else:
        unit = timedelta(seconds=1)
    return start.astimezone(UTC), (start + unit).astimezone(UTC)


def period_range(period: dict[str, str]) -> Range:
    """From the start of ``start`` to the end of ``end``; an absent side is open."""
    low = date_range(period["start"])[0] if "start" in period else EARLIEST
    high = date_range(period["end"])[1] if "end" in period else LATEST
    return low, high


def date_matches(target: Range, prefix: str, search: Range) -> bool:
    """The prefix table of search.html#prefix, on the target range [lo, hi) and the range
    [slo, shi) of the search value."""
    lo, hi = target
    slo, shi = search
    eq = slo <= lo and hi <= shi  # the search range fully contains the target range
    above = hi > shi  # the range above the search value overlaps the target
    below = lo < slo  # the range below the search value overlaps the target
    outcome = {
        "eq": eq,
        "ne": not eq,
        "gt": above,
        "lt": below,
        "ge": above or eq,
        "le": below or eq,
        "sa": lo >= shi,  # no overlap, and the range above contains the target
        "eb": hi <= slo,  # no overlap, and the range below contains the target
    }
    if prefix not in outcome:
        raise UnsupportedQuery(f"date prefix {prefix!r}")
    return outcome[prefix]


# -- numbers and quantities (search.html#number, #quantity) -------------------------------


def split_prefix(value: str) -> tuple[str, str]:
    if value[:2] in PREFIXES:
        return value[:2], value[2:]
    return "eq", value


def number_matches(target: Decimal, prefix: str, text: str) -> bool:
    """``eq``/``ne``/``ap`` use the implicit precision of the search number (``100`` is
    [99.5, 100.5), ``100.0`` is [99.95, 100.05)); the others compare with the exact value."""
    if "e" in text.lower():
        raise UnsupportedQuery(f"exponent in {text!r}")
    x = Decimal(text)
    exponent = x.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(exponent - 1)  # half a unit of the last digit given
    eq = x - half <= target < x + half
    if prefix == "eq":
        return eq
    if prefix == "ne":
        return not eq
    if prefix == "ap":
        return abs(target - x) <= max(abs(x) / 10, half)
    comparisons: dict[str, Callable[[Decimal, Decimal], bool]] = {
        "gt": lambda v, s: v > s,
        "lt": lambda v, s: v < s,
        "ge": lambda v, s: v >= s,
        "le": lambda v, s: v <= s,
        "sa": lambda v, s: v > s,  # a point starts after x when it is above it
        "eb": lambda v, s: v < s,
    }
    return comparisons[prefix](target, x)


def quantity_matches(quantity: dict[str, Any], query: str) -> bool:
    """``[prefix]number``, ``[prefix]number|system|code`` (system and code must match) or
    ``[prefix]number||code`` (the code matches Quantity.code or Quantity.unit)."""
    prefix, rest = split_prefix(query)
    number, *units = rest.split("|")
    if units:
        if len(units) != 2 or not units[1]:
            raise UnsupportedQuery(f"quantity units in {query!r}")
        system, code = units
        if system and (quantity.get("system") != system or quantity.get("code") != code):
            return False
        if not system and code not in (quantity.get("code"), quantity.get("unit")):
            return False
    return number_matches(Decimal(str(quantity["value"])), prefix, number)


# -- references (search.html#reference) ---------------------------------------------------


def reference_matches(values: list[str], query: str, modifier: str | None, base: str) -> bool:
    """``id`` (any type), ``Type/id``, ``[base]/Type/id``; ``:Type`` with an ``id``. "A relative
    reference resolving to the same value as a specified absolute URL, or vice versa,
    qualifies as a match": references to this server's base are made relative on both sides.
    An ``id`` alone matches local (relative) references only."""

    def local(reference: str) -> str:
        prefix = base.rstrip("/") + "/"
        return reference[len(prefix) :] if reference.startswith(prefix) else reference

    query, values = local(query), [local(v) for v in values]
    if modifier is not None:
        if "/" in query:
            raise UnsupportedQuery(f"typed reference with a type in the value: {query!r}")
        query = f"{modifier}/{query}"
    if "/" in query:
        return query in values
    return any(value.partition("/")[2] == query for value in values)


# -- the parameters ------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    type: str  # string | token | date | quantity | reference
    values: Callable[[Resource], list[Any]]
    modifiers: tuple[str, ...]


def _family(patient: Resource) -> list[str]:
    return [name["family"] for name in patient.get("name", []) if "family" in name]


def _gender(patient: Resource) -> list[Token]:
    return [(GENDER_SYSTEM, patient["gender"])] if "gender" in patient else []


def _identifier(patient: Resource) -> list[Token]:
    return [(i.get("system"), i["value"]) for i in patient.get("identifier", []) if "value" in i]


def _birthdate(patient: Resource) -> list[Range]:
    return [date_range(patient["birthDate"])] if "birthDate" in patient else []


def _references(key: str) -> Callable[[Resource], list[str]]:
    def values(resource: Resource) -> list[str]:
        found = resource.get(key)
        items = found if isinstance(found, list) else [found] if found else []
        return [item["reference"] for item in items if "reference" in item]

    return values


def _code(observation: Resource) -> list[Token]:
    codings = observation.get("code", {}).get("coding", [])
    return [(c.get("system"), c["code"]) for c in codings if "code" in c]


def _value_quantity(observation: Resource) -> list[dict[str, Any]]:
    quantity = observation.get("valueQuantity")
    return [quantity] if quantity and "value" in quantity else []


def _effective(observation: Resource) -> list[Range]:
    if "effectiveDateTime" in observation:
        return [date_range(observation["effectiveDateTime"])]
    if "effectivePeriod" in observation:
        return [period_range(observation["effectivePeriod"])]
    return []


TOKEN_MODIFIERS = ("missing", "not")
PARAMETERS: dict[str, dict[str, Parameter]] = {
    "Patient": {
        "family": Parameter("string", _family, ("missing", "exact", "contains")),
        "gender": Parameter("token", _gender, TOKEN_MODIFIERS),
        "identifier": Parameter("token", _identifier, TOKEN_MODIFIERS),
        "birthdate": Parameter("date", _birthdate, ("missing",)),
        "general-practitioner": Parameter(
            "reference",
            _references("generalPractitioner"),
            ("missing", "Organization", "Practitioner", "PractitionerRole"),
        ),
    },
    "Observation": {
        "code": Parameter("token", _code, TOKEN_MODIFIERS),
        "value-quantity": Parameter("quantity", _value_quantity, ("missing",)),
        "date": Parameter("date", _effective, ("missing",)),
        "subject": Parameter(
            "reference", _references("subject"), ("missing", "Device", "Group", "Location", "Patient")
        ),
    },
}


def _one_value_matches(
    parameter: Parameter, values: list[Any], value: str, modifier: str | None, base: str
) -> bool:
    """``any`` value of the resource matching: the data in the tests holds at most one value
    per date and quantity parameter, so ``ne`` ("the value is not equal") needs no care."""
    if parameter.type == "string":
        return string_matches(values, value, modifier)
    if parameter.type == "token":
        return token_matches(values, value)
    if parameter.type == "date":
        prefix, rest = split_prefix(value)
        return any(date_matches(v, prefix, date_range(rest)) for v in values)
    if parameter.type == "quantity":
        return any(quantity_matches(q, value) for q in values)
    return reference_matches(values, value, modifier, base)


def criterion_matches(resource: Resource, name: str, raw_value: str, base: str) -> bool:
    """One ``name[:modifier]=v1,v2`` pair: any of the comma-separated values matches."""
    code, _, modifier_text = name.partition(":")
    modifier = modifier_text or None
    parameter = PARAMETERS[resource["resourceType"]].get(code)
    if parameter is None or (modifier is not None and modifier not in parameter.modifiers):
        raise UnsupportedQuery(f"{resource['resourceType']}?{name}")
    values = parameter.values(resource)
    if modifier == "missing":
        if raw_value not in ("true", "false"):
            raise UnsupportedQuery(f":missing={raw_value}")
        return (not values) == (raw_value == "true")
    alternatives = raw_value.split(",")
    if modifier == "not":
        return not any(token_matches(values, v) for v in alternatives)
    return any(_one_value_matches(parameter, values, v, modifier, base) for v in alternatives)


def search(
    resources: Iterable[Resource], resource_type: str, query: list[tuple[str, str]], *, base: str
) -> set[str]:
    """The ids of the resources of ``resource_type`` that meet every criterion of ``query``."""
    return {
        r["id"]
        for r in resources
        if r["resourceType"] == resource_type
        and all(criterion_matches(r, name, value, base) for name, value in query)
    }
