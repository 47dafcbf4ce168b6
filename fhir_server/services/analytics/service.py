"""``$population-analytics``: parse the operation's parameters and run one view."""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir_server import outcomes
from fhir_server.services.analytics import population
from fhir_server.services.analytics.periods import Period, parse_bands
from fhir_server.services.analytics.selection import Codes, parse_codes
from fhir_server.services.analytics.valuesets import codes_of, stored_value_set
from fhir_server.services.resources import ResourceService

MEASURES = ("condition-incidence", "lab-distribution", "treatment-outcome")
PARAMETERS = frozenset(
    {
        "measure", "start", "end", "bucket", "code", "system", "valueSet", "ageBands",
        "unit", "medication", "windowBefore", "windowAfter",
    }
)  # fmt: skip


class AnalyticsService:
    def __init__(self, source: population.RecordSource, resources: ResourceService) -> None:
        self._source = source
        self._resources = resources

    def run(self, params: dict[str, list[str]], value_set: dict[str, Any] | None = None) -> dict[str, Any]:
        """The view's figures as plain JSON (the API renders them as Parameters too)."""
        unknown = sorted(set(params) - PARAMETERS)
        if unknown:
            raise outcomes.InvalidRequest(f"Unknown parameter '{unknown[0]}'", expression=unknown[0])
        measure = _one(params, "measure")
        if measure not in MEASURES:
            raise outcomes.InvalidRequest(
                f"measure must be one of {', '.join(MEASURES)}", expression="measure"
            )
        period = Period(_date(params, "start"), _date(params, "end"), _one(params, "bucket", "month"))
        head: dict[str, Any] = {
            "measure": measure,
            "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
            "bucket": period.size,
        }
        unit = params.get("unit", [None])[0]
        if measure == "condition-incidence":
            codes = self._condition_codes(params, value_set)
            bands = parse_bands(params.get("ageBands", [None])[0])
            return head | population.incidence(self._source, codes, period, bands)
        lab = _required_codes(params, "code", population.LOINC)
        if measure == "lab-distribution":
            return head | population.lab_distribution(self._source, lab, period, unit)
        medication = _required_codes(params, "medication", None)
        before = _days(params, "windowBefore", 180)
        after = _days(params, "windowAfter", 365)
        return head | population.treatment_outcome(self._source, medication, lab, period, unit, before, after)

    def _condition_codes(self, params: dict[str, list[str]], value_set: dict[str, Any] | None) -> Codes:
        codes = parse_codes(params.get("code", []))
        for system in params.get("system", []):
            codes.systems.update(s for s in system.split(",") if s)
        if value_set is not None:
            selected = codes_of(value_set)
        elif params.get("valueSet"):
            selected = codes_of(stored_value_set(self._resources, params["valueSet"][0]))
        else:
            selected = Codes()
        codes.pairs |= selected.pairs
        codes.systems |= selected.systems
        if not codes:
            raise outcomes.InvalidRequest("Give the condition as code, system or valueSet", expression="code")
        return codes


def _one(params: dict[str, list[str]], name: str, default: str | None = None) -> str:
    values = params.get(name) or ([default] if default is not None else [])
    if not values or not values[0]:
        raise outcomes.InvalidRequest(f"Parameter '{name}' is required", expression=name)
    if len(values) > 1:
        raise outcomes.InvalidRequest(f"Parameter '{name}' may be given once", expression=name)
    return values[0]


def _date(params: dict[str, list[str]], name: str) -> date:
    text = _one(params, name)
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise outcomes.InvalidRequest(f"'{name}' must be a date (YYYY-MM-DD)", expression=name) from exc


def _days(params: dict[str, list[str]], name: str, default: int) -> int:
    text = _one(params, name, str(default))
    if not text.isdigit() or not 0 < int(text) <= 3660:
        raise outcomes.InvalidRequest(f"'{name}' must be a number of days (1-3660)", expression=name)
    return int(text)


def _required_codes(params: dict[str, list[str]], name: str, default_system: str | None) -> Codes:
    codes = parse_codes(params.get(name, []), default_system)
    if not codes:
        raise outcomes.InvalidRequest(f"Parameter '{name}' is required for this measure", expression=name)
    return codes
