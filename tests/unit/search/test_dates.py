from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_server.outcomes import InvalidRequest
from fhir_server.search.dates import parse_range


def test_precision_ranges() -> None:
    assert parse_range("2024") == (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    assert parse_range("2024-12")[1] == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_range("2024-02-28")[1] == datetime(2024, 2, 29, tzinfo=UTC)
    start, end = parse_range("2024-01-01T10:00:00+02:00")
    assert start == datetime(2024, 1, 1, 8, tzinfo=UTC)
    assert (end - start).total_seconds() == 1
    start, end = parse_range("2024-01-01T10:00:00.123Z")
    assert (end - start).total_seconds() == pytest.approx(0.001)


@pytest.mark.parametrize("bad", ["yesterday", "2024-13", "2024-02-30", "24-01-01"])
def test_invalid(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_range(bad)
