"""HL7 TS/DTM/DT/TM -> FHIR date, dateTime, instant, time, keeping the sender's precision.

HL7 times look like ``YYYY[MM[DD[HH[MM[SS[.S{1,4}]]]]]][+/-ZZZZ]``. FHIR dateTime takes a
partial date as is (``2024``, ``2024-03``, ``2024-03-12``), but a time of day only with
minutes, seconds and a zone: ``HH`` and ``HHMM`` are completed with zeros, and a time without
an offset is placed in the facility's zone (DST-aware) -- never the server's.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from mappings.errors import DATA_TYPE_ERROR, MappingError

_TS = re.compile(
    r"(?P<y>\d{4})(?:(?P<mo>\d{2})(?:(?P<d>\d{2})(?:(?P<h>\d{2})(?:(?P<mi>\d{2})(?:(?P<s>\d{2})"
    r"(?:\.(?P<f>\d{1,4}))?)?)?)?)?)?(?P<z>[+-]\d{4})?"
)
_TM = re.compile(r"(?P<h>\d{2})(?:(?P<mi>\d{2})(?:(?P<s>\d{2})(?:\.(?P<f>\d{1,4}))?)?)?(?P<z>[+-]\d{4})?")


class Where:
    """Where a value came from (segment id, field number), for precise errors."""

    __slots__ = ("field", "segment")

    def __init__(self, segment: str, field: int) -> None:
        self.segment = segment
        self.field = field

    def error(self, reason: str, code: int = DATA_TYPE_ERROR) -> MappingError:
        return MappingError(code, reason, self.segment, self.field)


def _offset(z: str) -> timezone:
    sign = -1 if z[0] == "-" else 1
    hours, minutes = int(z[1:3]), int(z[3:5])
    if hours > 14 or minutes > 59:
        raise ValueError("offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _format_offset(dt: datetime) -> str:
    off = dt.utcoffset() or timedelta(0)
    total = int(off.total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    total = abs(total)
    return f"{sign}{total // 60:02d}:{total % 60:02d}"


def date_time(text: str, zone: ZoneInfo, where: Where, *, instant: bool = False) -> str | None:
    """HL7 TS/DTM -> FHIR dateTime (or instant, which needs at least seconds); ``None`` if empty."""
    text = text.strip()
    if not text:
        return None
    m = _TS.fullmatch(text)
    if not m:
        raise where.error(f"not an HL7 date/time: {text!r}")
    g = m.groupdict()
    try:
        day = datetime(int(g["y"]), int(g["mo"] or 1), int(g["d"] or 1))
        if g["h"] is None:
            if instant:
                raise where.error(f"an instant needs a time of day: {text!r}")
            parts = [g["y"], g["mo"], g["d"]]
            return "-".join(p for p in parts if p)
        moment = day.replace(hour=int(g["h"]), minute=int(g["mi"] or 0), second=int(g["s"] or 0))
        tz = _offset(g["z"]) if g["z"] else zone
        moment = moment.replace(tzinfo=tz)
    except ValueError as error:
        raise where.error(f"invalid date/time {text!r}: {error}") from None
    fraction = f".{g['f']}" if g["f"] else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + _format_offset(moment)


def date(text: str, where: Where) -> str | None:
    """HL7 DT (or the date part of a TS) -> FHIR date at the sender's precision."""
    text = text.strip()
    if not text:
        return None
    m = _TS.fullmatch(text)
    if not m:
        raise where.error(f"not an HL7 date: {text!r}")
    g = m.groupdict()
    try:
        datetime(int(g["y"]), int(g["mo"] or 1), int(g["d"] or 1))
    except ValueError as error:
        raise where.error(f"invalid date {text!r}: {error}") from None
    return "-".join(p for p in (g["y"], g["mo"], g["d"]) if p)


def time(text: str, where: Where) -> str | None:
    """HL7 TM -> FHIR time (``hh:mm:ss``; an offset has no place in FHIR time and is dropped)."""
    text = text.strip()
    if not text:
        return None
    m = _TM.fullmatch(text)
    if not m or int(m["h"]) > 23 or int(m["mi"] or 0) > 59 or int(m["s"] or 0) > 59:
        raise where.error(f"not an HL7 time: {text!r}")
    fraction = f".{m['f']}" if m["f"] else ""
    return f"{m['h']}:{m['mi'] or '00'}:{m['s'] or '00'}{fraction}"
