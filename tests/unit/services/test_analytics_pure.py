"""Calendar arithmetic, statistics and rendering of the analytics (no store needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fhir_server import outcomes
from fhir_server.services.analytics.periods import (
    Period,
    age_band,
    age_on,
    band_labels,
    bucket_start,
    imputed_birth,
    parse_bands,
)
from fhir_server.services.analytics.report import as_parameters
from fhir_server.services.analytics.selection import parse_codes
from fhir_server.services.analytics.stats import histogram, percentile, summary


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("day", "size", "start"),
    [
        (date(2024, 1, 7), "week", date(2024, 1, 1)),  # a Sunday belongs to the week of Monday the 1st
        (date(2024, 1, 8), "week", date(2024, 1, 8)),
        (date(2021, 1, 1), "week", date(2020, 12, 28)),  # ISO week across the new year
        (date(2024, 2, 29), "month", date(2024, 2, 1)),
        (date(2024, 12, 31), "year", date(2024, 1, 1)),
    ],
)
def test_bucket_start(day: date, size: str, start: date) -> None:
    assert bucket_start(day, size) == start


def test_place_marks_dates_wider_than_a_bucket_as_imprecise() -> None:
    period = Period(date(2020, 1, 1), date(2020, 12, 31), "month")
    assert period.place(utc(2020, 3, 4), utc(2020, 3, 5)) == ("2020-03", True)
    assert period.place(utc(2020, 3, 1), utc(2020, 4, 1)) == ("2020-03", True)  # a month in month buckets
    assert period.place(utc(2020, 1, 1), utc(2021, 1, 1)) == ("2020-01", False)  # a year in month buckets
    assert period.place(utc(2021, 1, 1), utc(2021, 1, 2)) is None
    assert period.place(utc(2019, 12, 31, 23, 59), utc(2020, 1, 1)) is None


def test_period_refuses_nonsense() -> None:
    with pytest.raises(outcomes.InvalidRequest):
        Period(date(2020, 2, 1), date(2020, 1, 1), "month")
    with pytest.raises(outcomes.InvalidRequest):
        Period(date(1900, 1, 1), date(2020, 1, 1), "week")  # more than 1000 buckets


def test_ages() -> None:
    assert age_on(date(2000, 2, 29), date(2021, 2, 28)) == 20
    assert age_on(date(2000, 2, 29), date(2021, 3, 1)) == 21
    assert imputed_birth(utc(1960, 1, 1), utc(1961, 1, 1)) == date(1960, 7, 2)  # a leap year's middle
    assert imputed_birth(utc(1961, 2, 1), utc(1961, 3, 1)) == date(1961, 2, 15)
    bands = parse_bands("0,18,65")
    assert band_labels(bands) == ["0-17", "18-64", "65+", "unknown"]
    assert [age_band(a, bands) for a in (0, 17, 18, 64, 65, 120, None)] == [
        "0-17", "0-17", "18-64", "18-64", "65+", "65+", "unknown"
    ]  # fmt: skip
    assert age_band(10, parse_bands("18,65")) == "unknown"  # below the first band
    for bad in ("18,0", "a", "0,0", "-1,5"):
        with pytest.raises(outcomes.InvalidRequest):
            parse_bands(bad)


def test_statistics_by_hand() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(sorted(values), 50) == 3.0
    assert percentile(sorted(values), 25) == 2.0
    assert percentile(sorted(values), 90) == pytest.approx(4 + 0.6 * 6)  # rank 3.6
    figures = summary(values)
    assert (figures["n"], figures["mean"], figures["median"], figures["min"], figures["max"]) == (
        5,
        4.0,
        3.0,
        1,
        10,
    )
    assert summary([])["mean"] is None and summary([7.0])["p90"] == 7.0
    bins = histogram(values, bins=3)
    assert [b["count"] for b in bins] == [3, 1, 1]  # [1, 4), [4, 7), [7, 10]
    assert histogram([5.0, 5.0])[0]["count"] == 2


def test_codes() -> None:
    codes = parse_codes(
        ["http://loinc.org|4548-4,17856-6", "http://snomed.info/sct|", "|x"], "http://loinc.org"
    )
    assert codes.pairs == {("http://loinc.org", "4548-4"), ("http://loinc.org", "17856-6"), ("", "x")}
    assert codes.systems == {"http://snomed.info/sct"}
    assert parse_codes(["abc"]).bare == {"abc"}


def test_parameters_rendering() -> None:
    figures = {"measure": "m", "n": 3, "share": 0.5, "none": None, "rows": [{"a": 1}, {"a": 2}]}
    rendered = as_parameters({**figures, "by": {"x": 1, "y": [1, 2]}})
    assert rendered["resourceType"] == "Parameters"
    names = [p["name"] for p in rendered["parameter"]]
    assert names == ["measure", "n", "share", "rows", "rows", "by"]
    assert rendered["parameter"][1] == {"name": "n", "valueInteger": 3}
    assert rendered["parameter"][2] == {"name": "share", "valueDecimal": 0.5}
    assert rendered["parameter"][5]["part"] == [
        {"name": "x", "valueInteger": 1}, {"name": "y", "valueInteger": 1}, {"name": "y", "valueInteger": 2}
    ]  # fmt: skip
