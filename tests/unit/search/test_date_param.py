"""Date parameters: index ranges of real-shaped resources, and every prefix run by mongomock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conformance.registry import search_parameters
from fhir_server import outcomes
from fhir_server.search.fhirpath import compile_expression
from fhir_server.search.index import IndexEntries
from fhir_server.search.types import date
from tests.unit.search.indexed_documents import indexed_collection

CODE = "date"


def _dt(
    year: int, month: int = 1, day: int = 1, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def _entries(resource_type: str, code: str, resource: dict[str, Any]) -> IndexEntries:
    definition = search_parameters()[resource_type][code]
    assert definition.expression
    nodes = compile_expression(definition.expression).evaluate(resource_type, resource)
    out = IndexEntries()
    date.index(code, nodes, out)
    return out


# -- index -------------------------------------------------------------------------------


def test_observation_effective_datetime_is_its_second() -> None:
    out = _entries(
        "Observation",
        "date",
        {"resourceType": "Observation", "effectiveDateTime": "2021-03-04T10:20:30+02:00"},
    )
    assert out.ranges == [{"p": "date", "lo": _dt(2021, 3, 4, 8, 20, 30), "hi": _dt(2021, 3, 4, 8, 20, 31)}]
    assert out.sort == {"date": [_dt(2021, 3, 4, 8, 20, 30), _dt(2021, 3, 4, 8, 20, 31)]}
    assert any(r["p"] == "date" for r in out.ranges)


def test_observation_effective_period_runs_to_the_end_of_its_end_day() -> None:
    resource = {
        "resourceType": "Observation",
        "effectivePeriod": {"start": "2021-03-04", "end": "2021-03-06"},
    }
    out = _entries("Observation", "date", resource)
    assert out.ranges == [{"p": "date", "lo": _dt(2021, 3, 4), "hi": _dt(2021, 3, 7)}]


def test_patient_birthdate_of_month_precision_covers_the_month() -> None:
    out = _entries("Patient", "birthdate", {"resourceType": "Patient", "birthDate": "1970-02"})
    assert out.ranges == [{"p": "birthdate", "lo": _dt(1970, 2, 1), "hi": _dt(1970, 3, 1)}]


def test_encounter_open_periods_are_unbounded() -> None:
    ongoing = _entries("Encounter", "date", {"resourceType": "Encounter", "period": {"start": "2023-01-01"}})
    assert ongoing.ranges == [{"p": "date", "lo": _dt(2023, 1, 1), "hi": date.LATEST}]
    assert ongoing.sort == {"date": [_dt(2023, 1, 1), date.LATEST]}
    ended = _entries("Encounter", "date", {"resourceType": "Encounter", "period": {"end": "2023-01-01"}})
    assert ended.ranges == [{"p": "date", "lo": date.EARLIEST, "hi": _dt(2023, 1, 2)}]


def test_medication_request_dosage_timing_events_are_one_range_each() -> None:
    resource = {
        "resourceType": "MedicationRequest",
        "dosageInstruction": [
            {"timing": {"event": ["2021-01-05T08:00:00Z", "2021-01-02"]}},
            {"timing": {"event": ["2021-02-01"]}},
        ],
    }
    out = _entries("MedicationRequest", "date", resource)
    assert {(r["lo"], r["hi"]) for r in out.ranges} == {
        (_dt(2021, 1, 5, 8), _dt(2021, 1, 5, 8, 0, 1)),
        (_dt(2021, 1, 2), _dt(2021, 1, 3)),
        (_dt(2021, 2, 1), _dt(2021, 2, 2)),
    }
    assert out.sort == {"date": [_dt(2021, 1, 2), _dt(2021, 2, 2)]}


def test_timing_covers_its_events_and_bounds_period() -> None:
    timing = {
        "event": ["2021-01-05", "2021-01-02T10:00:00Z"],
        "repeat": {"boundsPeriod": {"start": "2020-12-30", "end": "2021-01-03"}, "frequency": 2},
    }
    resource = {"resourceType": "CarePlan", "activity": [{"detail": {"scheduledTiming": timing}}]}
    out = _entries("CarePlan", "activity-date", resource)
    assert out.ranges == [{"p": "activity-date", "lo": _dt(2020, 12, 30), "hi": _dt(2021, 1, 6)}]


def test_values_that_are_not_dates_are_not_indexed() -> None:
    out = IndexEntries()
    date.index(
        CODE,
        ["childhood", 2020, {"value": 5, "unit": "a"}, {}, {"start": "soon"}, {"repeat": {"count": 3}}, None],
        out,
    )
    assert out.ranges == []
    assert out.sort == {}
    assert out.keys == set()


def test_sub_millisecond_instants_keep_a_non_empty_range() -> None:
    out = IndexEntries()
    date.index(CODE, ["2021-01-01T00:00:00.1234Z"], out)
    [entry] = out.ranges
    assert entry["lo"] == _dt(2021, 1, 1, 0, 0, 0, 123000)
    assert entry["hi"] == _dt(2021, 1, 1, 0, 0, 0, 124000)


# -- search ------------------------------------------------------------------------------

# Targets of different precision around the search values used below.
DOCUMENTS: dict[str, list[Any]] = {
    "year": ["2020"],
    "day": ["2020-06-15"],
    "instant": ["2020-06-15T12:00:00Z"],
    "open_end": [{"start": "2020-06-15T00:00:00Z"}],
    "open_start": [{"end": "2020-06-14"}],
    "before": ["2019-12-31"],
    "after": ["2021-02-01"],
    "multi": ["2018", "2022-01-01"],
    "none": [],
}


@pytest.fixture(scope="module")
def collection() -> Iterator[Any]:
    with indexed_collection(CODE, DOCUMENTS, date.index) as resources:
        yield resources


def _select(collection: Any, value: str, **kwargs: Any) -> set[str]:
    return {d["_id"] for d in collection.find(date.criterion(CODE, value, None, **kwargs))}


SPEC: dict[str, Callable[[datetime, datetime, datetime, datetime], bool]] = {
    # The R4 wording, literally, with target [rlo, rhi) and search [slo, shi).
    "eq": lambda rlo, rhi, slo, shi: slo <= rlo and rhi <= shi,
    "gt": lambda rlo, rhi, slo, shi: rhi > shi,
    "lt": lambda rlo, rhi, slo, shi: rlo < slo,
    "ge": lambda rlo, rhi, slo, shi: rhi > shi or (slo <= rlo and rhi <= shi),
    "le": lambda rlo, rhi, slo, shi: rlo < slo or (slo <= rlo and rhi <= shi),
    "sa": lambda rlo, rhi, slo, shi: rlo >= shi,
    "eb": lambda rlo, rhi, slo, shi: rhi <= slo,
}


def _oracle(collection: Any, prefix: str, text: str) -> set[str]:
    from fhir_server.search.dates import parse_range

    slo, shi = parse_range(text)
    found = set()
    for doc in collection.find():
        ranges = [(r["lo"], r["hi"]) for r in doc["ir"]]
        if prefix == "ne":
            if ranges and not any(SPEC["eq"](lo, hi, slo, shi) for lo, hi in ranges):
                found.add(doc["_id"])
        elif any(SPEC[prefix](lo, hi, slo, shi) for lo, hi in ranges):
            found.add(doc["_id"])
    return found


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020-06-15", {"day", "instant"}),
        ("eq2020-06-15", {"day", "instant"}),
        ("2020", {"year", "day", "instant"}),
        ("2020-06-15T12:00:00Z", {"instant"}),
        ("2020-06-15T14:00:00+02:00", {"instant"}),
        ("2020-06-15T12:00", {"instant"}),
        ("ne2020-06-15", {"year", "open_end", "open_start", "before", "after", "multi"}),
        ("ne2020", {"open_end", "open_start", "before", "after", "multi"}),
        ("gt2020-06-15", {"year", "open_end", "after", "multi"}),
        ("gt2020", {"open_end", "after", "multi"}),
        ("lt2020-06-15", {"year", "open_start", "before", "multi"}),
        ("lt2020", {"open_start", "before", "multi"}),
        ("ge2020-06-15", {"year", "day", "instant", "open_end", "after", "multi"}),
        ("ge2020", {"year", "day", "instant", "open_end", "after", "multi"}),
        ("le2020-06-15", {"year", "day", "instant", "open_start", "before", "multi"}),
        ("le2020-06-15T11:00:00Z", {"year", "day", "open_end", "open_start", "before", "multi"}),
        ("sa2020-06-15", {"after", "multi"}),
        ("sa2020", {"after", "multi"}),
        ("eb2020-06-15", {"open_start", "before", "multi"}),
        ("eb2020", {"before", "multi"}),
        ("eb2020-06-15T12:00:00Z", {"open_start", "before", "multi"}),
        ("sa2020-06-15T12:00:00Z", {"after", "multi"}),
    ],
)
def test_prefixes_select_exactly(collection: Any, value: str, expected: set[str]) -> None:
    assert _select(collection, value) == expected


@pytest.mark.parametrize("prefix", ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"])
@pytest.mark.parametrize(
    "text",
    ["2020", "2020-06", "2020-06-14", "2020-06-15", "2020-06-15T12:00:00Z", "2019", "2021-02-01", "2030"],
)
def test_prefixes_agree_with_the_spec_wording(collection: Any, prefix: str, text: str) -> None:
    assert _select(collection, prefix + text) == _oracle(collection, prefix, text)


def test_ap_widens_by_a_day_near_now(collection: Any) -> None:
    now = _dt(2020, 6, 15, 12)
    assert _select(collection, "ap2020-06-15", now=now) == {
        "year",
        "day",
        "instant",
        "open_end",
        "open_start",
    }
    assert _select(collection, "ap2020-06-17", now=now) == {"year", "open_end"}


def test_ap_widens_by_a_tenth_of_the_distance_from_now(collection: Any) -> None:
    now = _dt(2030, 6, 15)  # ten years on: about one year either side
    assert _select(collection, "ap2020-06-15", now=now) == {
        "year",
        "day",
        "instant",
        "open_end",
        "open_start",
        "before",
        "after",
    }
    assert _select(collection, "ap2018-03-01", now=now) == {"open_start", "multi"}
    # the lower bound widens by a tenth of its own distance from now
    assert _select(collection, "ap2020-09-01", now=now) == {
        "year",
        "day",
        "instant",
        "open_end",
        "open_start",
        "before",
        "after",
    }


def test_ap_defaults_to_the_current_time(collection: Any) -> None:
    assert "instant" in _select(collection, "ap2020-06-15T12:00:00Z")


def test_missing(collection: Any) -> None:
    assert {d["_id"] for d in collection.find(date.criterion(CODE, "true", "missing"))} == {"none"}
    found = {d["_id"] for d in collection.find(date.criterion(CODE, "false", "missing"))}
    assert found == set(DOCUMENTS) - {"none"}


def test_a_criterion_is_one_elem_match_with_aware_datetimes() -> None:
    criterion = date.criterion(CODE, "ge2020-06-15T10:00:00+02:00", None)
    assert list(criterion) == ["ir"]
    match = criterion["ir"]["$elemMatch"]
    assert match["p"] == CODE
    bounds = [v for part in match["$or"] for ops in part.values() for v in ops.values()]
    assert bounds
    assert all(b.tzinfo is not None and b.utcoffset() == timedelta(0) for b in bounds)


def test_other_parameters_are_not_matched(collection: Any) -> None:
    assert list(collection.find(date.criterion("other", "2020", None))) == []


@pytest.mark.parametrize(
    "value", ["2020-13", "xx2020", "ge", "2020-06-15T25:00:00Z", "", "gt2020-6-1", "today", "2020-02-30"]
)
def test_bad_values_are_invalid_requests(value: str) -> None:
    with pytest.raises(outcomes.InvalidRequest) as raised:
        date.criterion(CODE, value, None)
    assert raised.value.issues[0].expression == (CODE,)


@pytest.mark.parametrize(("modifier", "value"), [("exact", "2020"), ("missing", "maybe")])
def test_bad_modifiers_are_invalid_requests(modifier: str, value: str) -> None:
    with pytest.raises(outcomes.InvalidRequest):
        date.criterion(CODE, value, modifier)


def test_declared_modifiers_and_prefixes() -> None:
    assert date.MODIFIERS == ("missing",)
    assert date.PREFIXES == ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
