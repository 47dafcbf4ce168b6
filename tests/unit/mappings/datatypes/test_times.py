"""HL7 TS/DT/TM -> FHIR: offsets kept, facility zone (DST-aware) for local times, precision kept."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from mappings.datatypes.times import Where, date, date_time, time
from mappings.errors import MappingError

BERLIN = ZoneInfo("Europe/Berlin")
HERE = Where("OBX", 14)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024", "2024"),
        ("202403", "2024-03"),
        ("20240312", "2024-03-12"),
        ("2024031208", "2024-03-12T08:00:00+01:00"),
        ("202403120830", "2024-03-12T08:30:00+01:00"),
        ("20240312083015", "2024-03-12T08:30:15+01:00"),
        ("20240712083015", "2024-07-12T08:30:15+02:00"),
        ("20240312083015.1234", "2024-03-12T08:30:15.1234+01:00"),
        ("20240312083015-0500", "2024-03-12T08:30:15-05:00"),
        ("20240312083015+0000", "2024-03-12T08:30:15+00:00"),
        ("202403120830+0530", "2024-03-12T08:30:00+05:30"),
        ("", None),
    ],
)
def test_date_time(text: str, expected: str | None) -> None:
    assert date_time(text, BERLIN, HERE) == expected


def test_local_times_use_the_facility_zone_not_the_servers() -> None:
    assert date_time("20240312083015", ZoneInfo("America/Chicago"), HERE) == "2024-03-12T08:30:15-05:00"
    assert date_time("20240312083015", ZoneInfo("UTC"), HERE) == "2024-03-12T08:30:15+00:00"


def test_instant_needs_a_time_of_day() -> None:
    assert date_time("202403120830", BERLIN, HERE, instant=True) == "2024-03-12T08:30:00+01:00"
    with pytest.raises(MappingError) as caught:
        date_time("20240312", BERLIN, HERE, instant=True)
    assert (caught.value.code, caught.value.location) == (102, "OBX-14")


@pytest.mark.parametrize(
    "text", ["2024-03-12", "20241312", "20240230", "2024031225", "yesterday", "202403120830+2500"]
)
def test_invalid_times_are_data_type_errors(text: str) -> None:
    with pytest.raises(MappingError) as caught:
        date_time(text, BERLIN, HERE)
    assert caught.value.code == 102
    assert caught.value.location == "OBX-14"


def test_date_keeps_precision_and_ignores_time() -> None:
    assert date("19610615", Where("PID", 7)) == "1961-06-15"
    assert date("196106", Where("PID", 7)) == "1961-06"
    assert date("1961", Where("PID", 7)) == "1961"
    with pytest.raises(MappingError):
        date("19610631", Where("PID", 7))


def test_time() -> None:
    assert time("0830", Where("OBX", 5)) == "08:30:00"
    assert time("083015.5", Where("OBX", 5)) == "08:30:15.5"
    with pytest.raises(MappingError):
        time("2561", Where("OBX", 5))
