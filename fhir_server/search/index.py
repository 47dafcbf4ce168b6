"""Search index values, extracted from a resource when it is written.

Each head record carries three fields built here, in the same write as the resource,
so a search never sees a resource without its index values:

``ix``  a list of strings ``"{param}\\x1f{kind}\\x1f{value}"``: every token, string,
        reference and uri value in the forms a search can ask for (for example a
        Coding gives ``c`` code, ``sc`` system|code, ``s`` system, and ``n`` code
        without a system). Plus ``"{param}\\x1fm"`` when the parameter has any value,
        for ``:missing``. One multikey index on ``ix`` serves equality and anchored
        prefix queries for every such parameter (the attribute pattern).
``ir``  a list of ``{"p": param, "lo": ..., "hi": ...}`` ranges (dates as datetimes,
        numbers and quantities as floats, quantities also ``s`` system, ``c`` code,
        ``u`` unit; composites also ``k``, the token keys of their first component).
        Indexes on ``(ir.p, ir.lo)`` and ``(ir.p, ir.hi)`` serve prefix comparisons.
``so``  ``{param: smallest value, "param~": largest value}``: sort keys for ``_sort``
        ascending and descending (dates sort by range start and end respectively).

Parameter codes come from the official definitions, never from a request, so they
are safe as parts of keys and field names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEP = "\x1f"


def key(code: str, kind: str, value: str) -> str:
    return f"{code}{SEP}{kind}{SEP}{value}"


def present(code: str) -> str:
    """The marker a resource carries when parameter ``code`` has at least one value."""
    return f"{code}{SEP}m"


@dataclass
class IndexEntries:
    """What one resource contributes to the search indexes."""

    keys: set[str] = field(default_factory=set)
    ranges: list[dict[str, Any]] = field(default_factory=list)
    sort: dict[str, Any] = field(default_factory=dict)

    def add_key(self, code: str, kind: str, value: str) -> None:
        self.keys.add(key(code, kind, value))

    def add_range(self, code: str, lo: Any, hi: Any, **extra: Any) -> None:
        entry = {"p": code, "lo": lo, "hi": hi}
        entry.update({k: v for k, v in extra.items() if v is not None})
        if entry not in self.ranges:
            self.ranges.append(entry)

    def sort_value(self, code: str, low: Any, high: Any | None = None) -> None:
        """Track the smallest value (ascending sort) and the largest (descending sort)."""
        high = low if high is None else high
        current = self.sort.get(code)
        if current is None or low < current:
            self.sort[code] = low
        current = self.sort.get(code + "~")
        if current is None or high > current:
            self.sort[code + "~"] = high

    def as_fields(self) -> dict[str, Any]:
        return {"ix": sorted(self.keys), "ir": self.ranges, "so": self.sort}
