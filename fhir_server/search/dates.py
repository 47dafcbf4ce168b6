"""FHIR date/dateTime/instant values as the implicit range their precision covers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fhir_server import outcomes

_PATTERN = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def parse_range(text: str, *, name: str = "date") -> tuple[datetime, datetime]:
    """``2024`` -> [2024-01-01, 2025-01-01); a full instant -> [t, t + its last digit)."""
    match = _PATTERN.match(text.strip().replace(" ", "+"))
    if not match:
        raise outcomes.InvalidRequest(f"'{text}' is not a valid FHIR date/time", expression=name)
    g = match.groupdict()
    try:
        tz = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
            from datetime import timezone

            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        year = int(g["year"])
        if g["month"] is None:
            start = datetime(year, 1, 1, tzinfo=UTC)
            return start, datetime(year + 1, 1, 1, tzinfo=UTC)
        month = int(g["month"])
        if g["day"] is None:
            start = datetime(year, month, 1, tzinfo=UTC)
            end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
            return start, end
        day = int(g["day"])
        if g["hour"] is None:
            start = datetime(year, month, day, tzinfo=UTC)
            return start, start + timedelta(days=1)
        second = int(g["second"] or 0)
        fraction = g["fraction"] or ""
        micro = int((fraction + "000000")[:6]) if fraction else 0
        start = datetime(year, month, day, int(g["hour"]), int(g["minute"]), second, micro, tzinfo=tz)
        if g["second"] is None:
            step = timedelta(minutes=1)
        elif not fraction:
            step = timedelta(seconds=1)
        else:
            step = timedelta(microseconds=max(1, 10 ** (6 - min(len(fraction), 6))))
        return start.astimezone(UTC), (start + step).astimezone(UTC)
    except ValueError as exc:
        raise outcomes.InvalidRequest(
            f"'{text}' is not a valid FHIR date/time: {exc}", expression=name
        ) from exc


def format_instant(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
