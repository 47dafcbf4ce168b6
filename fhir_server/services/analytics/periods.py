"""Time buckets and ages: the calendar arithmetic of the analytics, kept pure.

A FHIR date may be partial (``2020``, ``2020-03``): it is stored as the range it
covers. An event is placed in the bucket holding the start of its range; when that
range is wider than one bucket the placement is imprecise, and the report counts those.
A partial birth date is taken at the middle of its range (mid-year for a year alone,
mid-month for a month), the usual imputation in epidemiology.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from fhir_server import outcomes

BUCKETS = ("week", "month", "year")
DEFAULT_AGE_BANDS = (0, 18, 40, 65)
UNKNOWN = "unknown"


def bucket_start(day: date, size: str) -> date:
    if size == "week":  # ISO weeks start on Monday
        return day - timedelta(days=day.weekday())
    if size == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def next_bucket(start: date, size: str) -> date:
    if size == "week":
        return start + timedelta(days=7)
    if size == "month":
        return date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return date(start.year + 1, 1, 1)


def bucket_label(start: date, size: str) -> str:
    if size == "year":
        return f"{start.year:04d}"
    if size == "month":
        return f"{start.year:04d}-{start.month:02d}"
    return start.isoformat()


@dataclass(frozen=True)
class Period:
    """The inclusive days [start, end] the analysis covers, cut into buckets."""

    start: date
    end: date
    size: str

    def __post_init__(self) -> None:
        if self.size not in BUCKETS:
            raise outcomes.InvalidRequest(f"bucket must be one of {', '.join(BUCKETS)}", expression="bucket")
        if self.end < self.start:
            raise outcomes.InvalidRequest("end is before start", expression="end")
        if len(self.labels()) > 1000:
            raise outcomes.InvalidRequest("more than 1000 buckets: use a larger bucket", expression="bucket")

    @property
    def lo(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def hi(self) -> datetime:
        """Exclusive upper instant (the day after ``end``)."""
        after = self.end + timedelta(days=1)
        return datetime(after.year, after.month, after.day, tzinfo=UTC)

    def labels(self) -> list[str]:
        found, start = [], bucket_start(self.start, self.size)
        while start <= self.end:
            found.append(bucket_label(start, self.size))
            start = next_bucket(start, self.size)
        return found

    def contains(self, instant: datetime) -> bool:
        return self.lo <= instant < self.hi

    def place(self, lo: datetime, hi: datetime) -> tuple[str, bool] | None:
        """(bucket label, precise?) of an event whose date covers [lo, hi); None outside."""
        if not self.contains(lo):
            return None
        start = bucket_start(lo.date(), self.size)
        end = next_bucket(start, self.size)
        precise = hi <= datetime(end.year, end.month, end.day, tzinfo=UTC)
        return bucket_label(start, self.size), precise


def age_on(birth: date, day: date) -> int:
    """Completed years on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def imputed_birth(lo: datetime, hi: datetime) -> date:
    """The middle of a (possibly partial) birth date's range."""
    return (lo + (hi - lo) / 2).date()


def band_labels(bands: tuple[int, ...]) -> list[str]:
    labels = [f"{low}-{high - 1}" for low, high in itertools.pairwise(bands)]
    return [*labels, f"{bands[-1]}+", UNKNOWN]


def age_band(age: int | None, bands: tuple[int, ...]) -> str:
    if age is None or age < bands[0]:
        return UNKNOWN
    labels = band_labels(bands)
    for i in range(len(bands) - 1, -1, -1):
        if age >= bands[i]:
            return labels[i]
    return UNKNOWN  # pragma: no cover (age >= bands[0] always finds a band)


def parse_bands(text: str | None) -> tuple[int, ...]:
    if not text:
        return DEFAULT_AGE_BANDS
    try:
        bands = tuple(int(part) for part in text.split(","))
    except ValueError as exc:
        raise outcomes.InvalidRequest(
            "ageBands must be ascending integers, e.g. 0,18,65", expression="ageBands"
        ) from exc
    if not bands or any(b < 0 for b in bands) or list(bands) != sorted(set(bands)):
        raise outcomes.InvalidRequest(
            "ageBands must be ascending non-negative integers", expression="ageBands"
        )
    return bands
