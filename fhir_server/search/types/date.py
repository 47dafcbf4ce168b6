"""Date parameters: date, dateTime, instant, Period and Timing values against ``[prefix]date``.

Index: every value becomes the half-open range [lo, hi) it covers (UTC datetimes):
``2020`` the whole year, ``2020-03-04`` the day, an instant its last digit; a Period from
the start of ``start`` to the end of ``end``, an open end running to :data:`LATEST` (an
ongoing period) and an absent start from :data:`EARLIEST`; a Timing from its earliest to
its latest ``event`` and ``repeat.boundsPeriod``. Anything else is not indexed.

Search: with [rlo, rhi) a target range and [slo, shi) the range the search value covers
(http://hl7.org/fhir/R4/search.html#prefix):

====  ================================  ==============================================
eq    slo <= rlo and rhi <= shi         the search range contains the target
ne    no target range is eq             (and the resource has one; see number.py)
gt    rhi > shi                         the range above the search value overlaps
lt    rlo < slo                         the range below overlaps
ge    rhi > shi or rlo >= slo           gt or eq: "gt or (slo <= rlo and rhi <= shi)",
le    rlo < slo or rhi <= shi           lt or eq  simplified (the second part of eq is not gt)
sa    rlo >= shi                        the target starts after the search range
eb    rhi <= slo                        the target ends before it
ap    rlo < shi + d2 and rhi > slo - d1 overlap with the search range widened by 10 % of
                                        each bound's distance from now, at least one day
====  ================================  ==============================================

Stored datetimes have millisecond precision, so ranges are widened outwards to whole
milliseconds (a sub-millisecond instant never collapses to an empty range).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_server import outcomes
from fhir_server.search.dates import parse_range
from fhir_server.search.index import IndexEntries
from fhir_server.search.types.number import (
    PREFIXES,
    Condition,
    entry_criterion,
    missing_criterion,
    reject_modifier,
    split_prefix,
)

__all__ = ["EARLIEST", "LATEST", "MODIFIERS", "PREFIXES", "criterion", "entry_condition", "index"]

MODIFIERS = ("missing",)
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
_AP_MINIMUM = timedelta(days=1)


# -- values ------------------------------------------------------------------------------


def _floor_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def _ceil_ms(value: datetime) -> datetime:
    floored = _floor_ms(value)
    return floored if floored == value or floored >= LATEST else floored + timedelta(milliseconds=1)


def _range_of_text(value: Any) -> tuple[datetime, datetime] | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_range(value)
    except outcomes.InvalidRequest:
        return None


def node_range(node: Any) -> tuple[datetime, datetime] | None:
    """The [lo, hi) a date/dateTime/instant string, Period or Timing covers, else None."""
    if isinstance(node, str):
        found = _range_of_text(node)
    elif not isinstance(node, dict):
        return None
    elif "start" in node or "end" in node:
        found = _period_range(node)
    elif "event" in node or "repeat" in node:
        found = _timing_range(node)
    else:
        return None
    if found is None:
        return None
    lo, hi = _floor_ms(found[0]), _ceil_ms(found[1])
    return (lo, hi) if lo < hi else (lo, _ceil_ms(lo + timedelta(milliseconds=1)))


def _period_range(period: dict[str, Any]) -> tuple[datetime, datetime] | None:
    start = _range_of_text(period.get("start"))
    end = _range_of_text(period.get("end"))
    if start is None and end is None:
        return None
    lo = start[0] if start else EARLIEST
    hi = end[1] if end else LATEST
    return (lo, hi) if lo <= hi else (hi, lo)


def _timing_range(timing: dict[str, Any]) -> tuple[datetime, datetime] | None:
    events = timing.get("event")
    found = [_range_of_text(e) for e in (events if isinstance(events, list) else [events])]
    repeat = timing.get("repeat")
    if isinstance(repeat, dict) and isinstance(repeat.get("boundsPeriod"), dict):
        found.append(_period_range(repeat["boundsPeriod"]))
    ranges = [r for r in found if r is not None]
    if not ranges:
        return None
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


# -- search ------------------------------------------------------------------------------


def _approximate(slo: datetime, shi: datetime, now: datetime) -> tuple[datetime, datetime]:
    below = max(_AP_MINIMUM, abs(now - slo) / 10)
    above = max(_AP_MINIMUM, abs(now - shi) / 10)
    lo = slo - below if slo - EARLIEST > below else EARLIEST
    hi = shi + above if LATEST - shi > above else LATEST
    return lo, hi


def conditions(
    prefix: str, slo: datetime, shi: datetime, suffix: str = "", *, now: datetime | None = None
) -> tuple[Condition, Condition]:
    """(eq condition, condition for ``prefix``) on the fields ``lo{suffix}``/``hi{suffix}``."""
    lo, hi = "lo" + suffix, "hi" + suffix
    slo, shi = _floor_ms(slo), _ceil_ms(shi)
    eq: Condition = {lo: {"$gte": slo}, hi: {"$lte": shi}}
    if prefix in ("eq", "ne"):
        return eq, eq
    if prefix == "ap":
        alo, ahi = _approximate(slo, shi, now or datetime.now(UTC))
        return eq, {lo: {"$lt": _ceil_ms(ahi)}, hi: {"$gt": _floor_ms(alo)}}
    choices: dict[str, Condition] = {
        "gt": {hi: {"$gt": shi}},
        "lt": {lo: {"$lt": slo}},
        "ge": {"$or": [{hi: {"$gt": shi}}, {lo: {"$gte": slo}}]},
        "le": {"$or": [{lo: {"$lt": slo}}, {hi: {"$lte": shi}}]},
        "sa": {lo: {"$gte": shi}},
        "eb": {hi: {"$lte": slo}},
    }
    other = choices[prefix]
    return eq, other


def _parse(value: str, name: str) -> tuple[str, datetime, datetime]:
    prefix, rest = split_prefix(value, name)
    slo, shi = parse_range(rest, name=name)
    return prefix, slo, shi


def entry_condition(value: str, name: str, suffix: str = "", *, now: datetime | None = None) -> Condition:
    """The condition one entry must meet for ``[prefix]date`` (``ne``: "is not eq")."""
    prefix, slo, shi = _parse(value, name)
    eq, other = conditions(prefix, slo, shi, suffix, now=now)
    return {"$nor": [eq]} if prefix == "ne" else other


# -- the type's interface ----------------------------------------------------------------


def index(code: str, nodes: list[Any], out: IndexEntries) -> None:
    for node in nodes:
        found = node_range(node)
        if found is None:
            continue
        out.add_range(code, found[0], found[1])
        out.sort_value(code, found[0], found[1])


def criterion(code: str, value: str, modifier: str | None, *, now: datetime | None = None) -> Condition:
    """``now`` (default: the current time) only matters for ``ap``."""
    if modifier == "missing":
        return missing_criterion(code, value)
    reject_modifier("date", code, modifier)
    prefix, slo, shi = _parse(value, code)
    eq, other = conditions(prefix, slo, shi, now=now)
    return entry_criterion(code, prefix, eq, other)
